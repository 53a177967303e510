// One upload of bench/files_bench.sh with tus-js-client: $SIZE_MIB MiB of random bytes in
// $CHUNK_MIB MiB PATCHes to $ENDPOINT (with $TOKEN as a bearer token when set). Prints one line
// of JSON: {"seconds", "mib_per_s", "url"}; the time runs from start() to onSuccess.
import { randomFillSync } from 'node:crypto';
import * as tus from 'tus-js-client';

const size = Number(process.env.SIZE_MIB) * 1024 * 1024;
const data = Buffer.alloc(size);
for (let off = 0; off < size; off += 1 << 24) randomFillSync(data, off, Math.min(1 << 24, size - off));
const headers = process.env.TOKEN ? { Authorization: `Bearer ${process.env.TOKEN}` } : {};
const t0 = process.hrtime.bigint();
const url = await new Promise((resolve, reject) => {
  const up = new tus.Upload(data, {
    endpoint: process.env.ENDPOINT,
    chunkSize: Number(process.env.CHUNK_MIB) * 1024 * 1024,
    headers,
    retryDelays: null,
    metadata: { filename: 'bench.bin', filetype: 'application/octet-stream' },
    onSuccess: () => resolve(up.url),
    onError: reject,
  });
  up.start();
});
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ seconds: s, mib_per_s: size / 1048576 / s, url }));
