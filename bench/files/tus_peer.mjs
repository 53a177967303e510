// The peer of bench/files_bench.sh: the reference tus server, @tus/server with @tus/file-store,
// listening on 127.0.0.1:$PORT at /files and storing under $DIR. @tus/file-store writes each
// PATCH through a file stream and does not sync. With DURABLE=1 the store is the same
// FileStore with one step added after each PATCH's bytes are written: the file is fdatasync'ed
// before the offset is returned (and so before the 204), which is the durability sb-files gives
// every acknowledged PATCH; the comparison at equal durability uses this variant.
import { promises as fsp } from 'node:fs';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

class DurableFileStore extends FileStore {
	async write(readable, id, offset) {
		const end = await super.write(readable, id, offset);
		const fh = await fsp.open(this.resolve(id), 'r+');
		try {
			await fh.datasync();
		} finally {
			await fh.close();
		}
		return end;
	}
}

const Store = process.env.DURABLE === '1' ? DurableFileStore : FileStore;
const server = new Server({ path: '/files', datastore: new Store({ directory: process.env.DIR }) });
server.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
