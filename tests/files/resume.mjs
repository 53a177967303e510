// tus-js-client (the reference tus client) against sb-files: upload a file in chunks, abort at
// about half (in the middle of a PATCH), then a new client given the same upload URL resumes
// from the offset the server reports; the file read back in Ranges has the original's SHA-256.
//
// Environment: SB_FILES_URL (http://127.0.0.1:port), SB_TOKEN (files:read files:write),
// SB_SIZE_MIB (default 200), SB_CHUNK_MIB (default 8).
import { createHash, randomFillSync } from 'node:crypto';
import * as tus from 'tus-js-client';

const base = process.env.SB_FILES_URL;
const token = process.env.SB_TOKEN;
const size = Number(process.env.SB_SIZE_MIB ?? 200) * 1024 * 1024;
const chunkSize = Number(process.env.SB_CHUNK_MIB ?? 8) * 1024 * 1024;
const auth = { Authorization: `Bearer ${token}` };

function fail(msg) {
  console.log(`FAIL: ${msg}`);
  process.exit(1);
}

const data = Buffer.alloc(size);
for (let off = 0; off < size; off += 1 << 20) randomFillSync(data, off, Math.min(1 << 20, size - off));
const want = createHash('sha256').update(data).digest('hex');
const t0 = Date.now();

// 1. Upload until about half, then abort while a PATCH is in flight.
const url = await new Promise((resolve, reject) => {
  let aborted = false;
  const up = new tus.Upload(data, {
    endpoint: `${base}/files/`,
    chunkSize,
    headers: auth,
    retryDelays: null,
    metadata: { filename: 'big.bin', filetype: 'application/octet-stream' },
    onProgress(sent) {
      // mid-PATCH: part of a chunk past the half is on the wire
      if (!aborted && sent >= size / 2 + chunkSize / 2) {
        aborted = true;
        up.abort().then(() => resolve(up.url), reject);
      }
    },
    onSuccess() {
      reject(new Error('the first upload finished: abort came too late'));
    },
    onError: reject,
  });
  up.start();
}).catch((e) => fail(`first upload: ${e.message}`));
if (!url) fail('no upload URL after the first part');
console.log(`ok: first client aborted after ${Date.now() - t0} ms, upload ${url}`);

// 2. The server's offset: past the half, below the end, on a chunk boundary (the PATCH cut
// in the middle changed nothing).
const head = await fetch(url, { method: 'HEAD', headers: { ...auth, 'Tus-Resumable': '1.0.0' } });
const offset = Number(head.headers.get('upload-offset'));
if (head.status !== 200) fail(`HEAD ${head.status}`);
if (!(offset >= size / 2 && offset < size)) fail(`offset ${offset} not between half and end`);
if (offset % chunkSize !== 0) fail(`offset ${offset} is not a chunk boundary: a cut PATCH left bytes`);
console.log(`ok: server offset after the abort: ${offset} of ${size}`);

// 3. A new client with the same URL resumes there.
let firstPatch = null;
await new Promise((resolve, reject) => {
  const up = new tus.Upload(data, {
    uploadUrl: url,
    chunkSize,
    headers: auth,
    retryDelays: null,
    onBeforeRequest(req) {
      if (req.getMethod() === 'PATCH' && firstPatch === null) firstPatch = Number(req.getHeader('Upload-Offset'));
    },
    onSuccess: resolve,
    onError: reject,
  });
  up.start();
}).catch((e) => fail(`resumed upload: ${e.message}`));
if (firstPatch !== offset) fail(`the resumed client started at ${firstPatch}, not at ${offset}`);
const secs = (Date.now() - t0) / 1000;
console.log(`ok: resumed at ${firstPatch} and finished; ${size / 1048576} MiB in ${secs.toFixed(1)} s`);

// 4. Read it back in Ranges and compare.
const id = url.split('/').pop();
const h = createHash('sha256');
const step = 32 * 1024 * 1024;
for (let from = 0; from < size; from += step) {
  const to = Math.min(from + step, size) - 1;
  const r = await fetch(`${base}/v1/files/${id}/content`, { headers: { ...auth, Range: `bytes=${from}-${to}` } });
  if (r.status !== 206) fail(`range ${from}-${to}: ${r.status}`);
  const b = Buffer.from(await r.arrayBuffer());
  if (b.length !== to - from + 1) fail(`range ${from}-${to}: ${b.length} bytes`);
  h.update(b);
}
const got = h.digest('hex');
if (got !== want) fail(`downloaded sha256 ${got} != original ${want}`);
console.log(`ok: downloaded file has the original's sha256 ${want}`);
console.log('PASS');
