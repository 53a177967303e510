// The peer of bench/files_bench.sh: the reference tus server, @tus/server with @tus/file-store
// (which writes each PATCH through a file stream and does not fsync). Listens on
// 127.0.0.1:$PORT at /files, storing under $DIR.
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const server = new Server({ path: '/files', datastore: new FileStore({ directory: process.env.DIR }) });
server.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
