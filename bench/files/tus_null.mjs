// The client's ceiling for bench/files_bench.sh: the least a tus 1.0 server can do (creation,
// HEAD, PATCH) while keeping the protocol: every byte of a PATCH is read and counted, then
// discarded (no disk, no checksum, no auth). tus-js-client against it shows how fast the client
// itself can send on this machine, the bound of any server measured with it. Listens on
// 127.0.0.1:$PORT at /files.
import http from 'node:http';

const uploads = new Map();
let next = 0;
const server = http.createServer((req, res) => {
  const h = { 'Tus-Resumable': '1.0.0' };
  if (req.method === 'POST' && req.url === '/files') {
    const id = String(++next);
    uploads.set(id, { length: Number(req.headers['upload-length']), offset: 0 });
    res.writeHead(201, { ...h, Location: `/files/${id}` }).end();
    return;
  }
  const u = uploads.get(req.url.replace('/files/', ''));
  if (u === undefined) {
    res.writeHead(404, h).end();
    return;
  }
  if (req.method === 'HEAD') {
    res.writeHead(200, { ...h, 'Upload-Offset': u.offset, 'Upload-Length': u.length }).end();
    return;
  }
  if (req.method !== 'PATCH' || Number(req.headers['upload-offset']) !== u.offset) {
    res.writeHead(409, h).end();
    return;
  }
  req.on('data', (b) => { u.offset += b.length; });
  req.on('end', () => res.writeHead(204, { ...h, 'Upload-Offset': u.offset }).end());
});
server.listen(Number(process.env.PORT), '127.0.0.1');
