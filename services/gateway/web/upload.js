// upload.js: the console's uploads and downloads of attachments. Uploads speak tus 1.0 to the
// files service at /files/ (same origin: the ingress routes /files and /v1/files to it)
// through tus-js-client, whose browser bundle the gateway serves at /console/tus.min.js from
// the cache (tools/deps.d/console.sh); it defines window.tus. Pausing aborts the current
// request without terminating the upload; resuming asks the server for its offset (HEAD) and
// continues from there.

// Bytes per PATCH. Files keeps one request in memory (SB_FILES_MAX_REQUEST_BYTES, 64 MiB by
// default); 8 MiB keeps a pause cheap. The browser test makes it smaller (localStorage key
// sb-upload-chunk-bytes) so that a small file still takes several requests.
const CHUNK_BYTES = 8 * 1024 * 1024;

export function uploadsAvailable() {
  return typeof window.tus === 'object' && window.tus.isSupported;
}

function chunkBytes() {
  const v = Number(localStorage.getItem('sb-upload-chunk-bytes'));
  return Number.isInteger(v) && v >= 1024 ? v : CHUNK_BYTES;
}

// Upload: one file on its way; on.progress(sent, total), on.done(fileId), on.error(message).
export class Upload {
  constructor(file, token, on) {
    this.file = file;
    this.on = on;
    this.paused = false;
    this.fileId = '';
    this.tus = new window.tus.Upload(file, {
      endpoint: '/files/',
      chunkSize: chunkBytes(),
      retryDelays: [0, 1000, 3000],
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
      storeFingerprintForResuming: false,
      // a fresh access token on every request (uploads can outlive one)
      onBeforeRequest: async (req) => req.setHeader('Authorization', `Bearer ${await token()}`),
      onProgress: (sent, total) => on.progress(sent, total),
      onSuccess: () => {
        this.fileId = this.tus.url.split('/').pop();
        on.done(this.fileId);
      },
      onError: (e) => on.error(uploadError(e)),
    });
  }

  start() {
    this.paused = false;
    this.tus.start();
  }

  async pause() {
    this.paused = true;
    await this.tus.abort(false); // keeps the upload on the server
  }

  // cancel stops and terminates the upload (its bytes are deleted).
  async cancel() {
    this.paused = true;
    await this.tus.abort(Boolean(this.tus.url)).catch(() => {});
  }
}

function uploadError(e) {
  const res = e && e.originalResponse;
  if (res) {
    try {
      const p = JSON.parse(res.getBody());
      if (p && p.detail) return `upload refused (${res.getStatus()}): ${p.detail}`;
    } catch {
      // not a problem body
    }
    return `upload refused (${res.getStatus()})`;
  }
  return `upload failed: ${e && e.message ? e.message : e}`;
}

// download fetches an attachment with the bearer token and hands it to the browser as a file.
export async function download(fileId, token, fallbackName) {
  const res = await fetch(`/v1/files/${encodeURIComponent(fileId)}/content`, {
    headers: { authorization: `Bearer ${await token()}` },
  });
  if (!res.ok) {
    let detail = '';
    try {
      detail = (await res.json()).detail || '';
    } catch {
      // not a problem body
    }
    throw new Error(`download refused (${res.status})${detail ? `: ${detail}` : ''}`);
  }
  const cd = res.headers.get('content-disposition') || '';
  const m = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  let name = fallbackName || fileId;
  if (m) {
    try {
      name = decodeURIComponent(m[1]);
    } catch {
      // keep the fallback
    }
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
