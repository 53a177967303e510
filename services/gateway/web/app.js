// app.js: the Switchboard web console. Sign in as a dev user, list conversations with unread
// counts, open one, send, see messages arrive live, move read markers, watch the connection.
import { ApiError, Session, devCredentials, uuid } from './api.js';
import { Live } from './live.js';
import { Upload, download, uploadsAvailable } from './upload.js';
import { $, renderConversations, renderMessages, showConn, showError } from './view.js';

const POLL_WHILE_OFFLINE_MS = 10_000;

const st = {
  roles: null, // seed-dev roles, when the gateway serves them
  names: new Map(), // user id → dev role name
  me: '',
  convs: new Map(), // id → conversation (numbers for seqs, msgs, readers, cursor)
  openId: null,
  poll: null,
  upload: null, // the Upload in progress or done, for the next message
  attachment: null, // { id, name } once the upload is complete
};

const session = new Session((token) => live.send({ type: 'refresh', token }));
session.onFail = (e) => showError(`Session: ${e.message}`);

const live = new Live({
  token: () => session.token(),
  refresh: () => session.refresh(),
  cursors: () => [...st.convs.values()].map((c) => [c.id, c.cursor]),
  onFrame,
  onState: (state, detail) => {
    showConn(state, detail);
    clearInterval(st.poll);
    if (state !== 'connected' && st.me)
      st.poll = setInterval(() => refreshAll().catch(() => {}), POLL_WHILE_OFFLINE_MS);
  },
});

const num = (v) => Number(v || 0);
const nameOf = (uid) => st.names.get(uid) || (uid ? uid.slice(0, 8) : '?');

const signInFailed = (e) => showError(`Sign-in failed: ${e.message}`);

function report(e) {
  showError(e instanceof ApiError ? e.message : `Error: ${e.message || e}`);
}

// merge folds a conversation from the API into the local one; seqs and markers only grow.
function merge(raw) {
  let c = st.convs.get(raw.id);
  if (!c) {
    c = { id: raw.id, last_seq: 0, last_read_seq: 0, msgs: new Map(), readers: new Map(),
      delivered: 0, cursor: num(raw.last_seq), loaded: false };
    st.convs.set(raw.id, c);
  }
  for (const k of ['kind', 'title', 'created_at', 'last_activity_at']) if (raw[k]) c[k] = raw[k];
  if (raw.last_message && num(raw.last_message.seq) >= num(c.last_message && c.last_message.seq))
    c.last_message = raw.last_message;
  c.last_seq = Math.max(c.last_seq, num(raw.last_seq));
  c.last_read_seq = Math.max(c.last_read_seq, num(raw.last_read_seq));
  for (const m of raw.members || []) {
    c.readers.set(m.user_id, Math.max(c.readers.get(m.user_id) || 0, num(m.last_read_seq)));
  }
  return c;
}

function draw() {
  const who = (uid) => (uid === st.me ? 'You' : nameOf(uid));
  renderConversations(st.convs, st.openId, who, (id) => openConversation(id).catch(report));
  const c = st.convs.get(st.openId);
  if (c) {
    renderMessages(c, c.msgs, st.me, nameOf,
      (id, name) => download(id, () => session.token(), name).catch(report));
  }
}

function addMessage(c, m) {
  const seq = num(m.seq);
  const known = c.msgs.get(m.id);
  if (known && known.seq && known.seq === seq) return false; // a replay or a duplicate
  c.msgs.set(m.id, { ...known, ...m, seq, failed: undefined });
  c.cursor = Math.max(c.cursor, seq);
  c.last_seq = Math.max(c.last_seq, seq);
  if (seq >= num(c.last_message && c.last_message.seq)) {
    c.last_message = { id: m.id, seq, sender_id: m.sender_id, content: m.content, created_at: m.created_at };
    c.last_activity_at = m.created_at || c.last_activity_at;
  }
  return true;
}

async function loadConversations() {
  const page = await session.call('GET', '/v1/conversations?limit=100');
  const seen = new Set();
  for (const raw of page.items || []) seen.add(merge(raw).id);
  for (const id of st.convs.keys()) if (!seen.has(id) && id !== st.openId) st.convs.delete(id);
  for (const c of st.convs.values()) live.subscribe(c.id, c.cursor);
}

async function loadHistory(c) {
  const url = `/v1/conversations/${c.id}/messages?limit=200` +
    (c.loaded ? `&after_seq=${c.cursor}` : `&before_seq=${c.last_seq + 1}`);
  const page = await session.call('GET', url);
  for (const m of page.items || []) addMessage(c, m);
  c.loaded = true;
}

// refreshAll is the fallback while the WebSocket is down: the list and the open conversation.
async function refreshAll() {
  await loadConversations();
  const c = st.convs.get(st.openId);
  if (c) await loadHistory(c);
  draw();
  markRead();
}

async function openConversation(id) {
  st.openId = id;
  const c = st.convs.get(id);
  $('conv-title').textContent = c.title || `Conversation ${id.slice(0, 8)}`;
  $('send').hidden = false;
  draw();
  merge(await session.call('GET', `/v1/conversations/${id}`));
  await loadHistory(c);
  draw();
  markRead();
  $('send-text').focus();
}

// markRead moves my marker to the end of the open conversation while the page is visible.
let reading = false;
async function markRead() {
  const c = st.convs.get(st.openId);
  if (!c || reading || document.visibilityState !== 'visible' || c.last_seq <= c.last_read_seq)
    return;
  reading = true;
  try {
    const r = await session.call('POST', `/v1/conversations/${c.id}/read`, { up_to_seq: c.last_seq });
    c.last_read_seq = Math.max(c.last_read_seq, num(r.last_read_seq));
    draw();
  } catch (e) {
    report(e);
  } finally {
    reading = false;
  }
  if (c.last_seq > c.last_read_seq && c.id === st.openId) setTimeout(markRead, 300);
}

async function ensureConversation(id) {
  if (!st.convs.has(id)) merge(await session.call('GET', `/v1/conversations/${id}`));
  return st.convs.get(id);
}

function onFrame(f) {
  const id = f.conversation_id;
  switch (f.type) {
  case 'ready':
    // anything created while we were away, then subscriptions for it
    loadConversations().then(draw, report);
    break;
  case 'message.created':
    ensureConversation(id).then((c) => {
      if (!addMessage(c, { ...f.message, conversation_id: id, seq: f.seq })) return;
      draw();
      if (id === st.openId) markRead();
    }, report);
    break;
  case 'conversation.read': {
    const c = st.convs.get(id);
    if (!c) break;
    const up = num(f.up_to_seq);
    if (f.user_id === st.me) c.last_read_seq = Math.max(c.last_read_seq, up);
    c.readers.set(f.user_id, Math.max(c.readers.get(f.user_id) || 0, up));
    draw();
    break;
  }
  case 'message.delivered': {
    const c = st.convs.get(id);
    if (c) c.delivered = Math.max(c.delivered, num(f.seq));
    draw();
    break;
  }
  case 'conversation.created':
  case 'conversation.joined':
    live.subscribed.add(id); // realtime subscribed us itself
    ensureConversation(id).then(draw, report);
    break;
  case 'conversation.left':
    st.convs.delete(id);
    if (st.openId === id) st.openId = null;
    draw();
    break;
  case 'subscribed':
    if (f.recovered === false) {
      // the gap was too large to replay: reload from the API
      const c = st.convs.get(id);
      if (c) {
        c.loaded = false;
        session.call('GET', `/v1/conversations/${id}`).then(merge)
          .then(() => (id === st.openId ? loadHistory(c) : null)).then(draw, report);
      }
    }
    break;
  case 'error':
    if (f.code !== 'bad_state') showError(`Live: ${f.message || f.code}`);
    break;
  default:
    break;
  }
}

// send posts a message, with the completed upload as its attachment (its name in metadata, so
// that the other members' pages can label the link).
async function send(text) {
  const c = st.convs.get(st.openId);
  const att = st.attachment;
  if (!c || (!text.trim() && !att)) return;
  const content = text.trim() ? text : att.name;
  const m = { id: uuid(), conversation_id: c.id, sender_id: st.me, content,
    created_at: new Date().toISOString(), seq: 0 };
  const body = { id: m.id, conversation_id: c.id, content };
  if (att) {
    m.attachments = body.attachments = [att.id];
    m.metadata = body.metadata = { filename: att.name };
    clearUpload();
  }
  c.msgs.set(m.id, m);
  draw();
  try {
    const r = await session.call('POST', '/v1/messages', body);
    addMessage(c, { ...m, seq: r.seq, created_at: r.created_at });
  } catch (e) {
    m.failed = e.message;
  }
  draw();
  markRead();
}

// --- uploads (upload.js): one file at a time, attached to the next message sent ---
function uploadUi(state, text) {
  $('upload').hidden = state === 'none';
  $('upload').dataset.state = state;
  $('upload-status').textContent = text || '';
  $('upload-pause').hidden = state !== 'uploading';
  $('upload-resume').hidden = state !== 'paused' && state !== 'failed';
}

function clearUpload() {
  st.upload = null;
  st.attachment = null;
  $('attach-file').value = '';
  $('upload-progress').value = 0;
  uploadUi('none');
}

function startUpload(file) {
  if (!file) return;
  if (st.upload && !st.attachment) st.upload.cancel();
  st.attachment = null;
  $('upload-name').textContent = file.name;
  $('upload-progress').value = 0;
  uploadUi('uploading', 'Uploading…');
  const up = new Upload(file, () => session.token(), {
    progress: (sent, total) => {
      if (st.upload !== up) return;
      const pct = total ? Math.floor((sent * 100) / total) : 0;
      $('upload-progress').value = pct;
      if (!up.paused) uploadUi('uploading', `${pct}%`);
    },
    done: (id) => {
      if (st.upload !== up) return;
      st.attachment = { id, name: file.name };
      $('upload-progress').value = 100;
      uploadUi('done', 'Uploaded: it goes with your next message');
    },
    error: (msg) => {
      if (st.upload !== up || up.paused) return;
      uploadUi('failed', msg);
    },
  });
  st.upload = up;
  up.start();
}

function setupUploads() {
  if (!uploadsAvailable()) {
    $('attach-file').disabled = true;
    $('attach-off').hidden = false;
    return;
  }
  $('attach-file').addEventListener('change', (ev) => startUpload(ev.target.files[0]));
  $('upload-pause').addEventListener('click', () => {
    const up = st.upload;
    if (!up) return;
    up.pause().then(() => uploadUi('paused', `Paused at ${$('upload-progress').value}%`), report);
  });
  $('upload-resume').addEventListener('click', () => {
    if (!st.upload) return;
    uploadUi('uploading', 'Resuming…');
    st.upload.start();
  });
  $('upload-remove').addEventListener('click', () => {
    if (st.upload && !st.attachment) st.upload.cancel();
    clearUpload();
  });
  const conv = $('conv');
  conv.addEventListener('dragover', (ev) => {
    if (!st.openId) return;
    ev.preventDefault();
    conv.classList.add('dropping');
  });
  conv.addEventListener('dragleave', () => conv.classList.remove('dropping'));
  conv.addEventListener('drop', (ev) => {
    conv.classList.remove('dropping');
    if (!st.openId) return;
    ev.preventDefault();
    startUpload(ev.dataTransfer.files[0]);
  });
}

async function enterApp() {
  const me = await session.call('GET', '/v1/me');
  st.me = me.user_id;
  $('who-name').textContent = session.label || nameOf(st.me);
  $('who-id').textContent = st.me;
  $('who').hidden = false;
  $('signin').hidden = true;
  $('app').hidden = false;
  fillPeers();
  await loadConversations();
  draw();
  live.start();
}

function fillPeers() {
  const sel = $('new-peer');
  sel.replaceChildren();
  for (const [role, c] of Object.entries(st.roles || {})) {
    if (!c.user_id || c.user_id === st.me) continue;
    sel.append(new Option(role, c.user_id));
  }
  sel.append(new Option('someone else (paste a user id)', ''));
  $('new-peer-id-label').hidden = sel.value !== '';
}

async function createConversation(form) {
  const peer = form.peer.value || form.peer_id.value.trim();
  if (!/^[0-9a-f-]{36}$/i.test(peer)) throw new Error('enter the other user\'s id (a UUID)');
  const mine = session.label || nameOf(st.me);
  const title = form.title.value.trim() || `${mine} & ${nameOf(peer)}`;
  const c = merge(await session.call('POST', '/v1/conversations',
    { kind: 'group', title, member_ids: [peer] }));
  live.subscribe(c.id, 0);
  form.reset();
  fillPeers();
  await openConversation(c.id);
}

async function signInAs(role) {
  const c = st.roles[role];
  await session.signIn(c.client_id, c.client_secret, role);
  await enterApp();
}

function signOut() {
  live.stop();
  clearInterval(st.poll);
  if (st.upload && !st.attachment) st.upload.pause().catch(() => {});
  clearUpload();
  session.signOut();
  Object.assign(st, { me: '', openId: null });
  st.convs.clear();
  $('who').hidden = true;
  $('app').hidden = true;
  $('signin').hidden = false;
  $('send').hidden = true;
  $('conv-title').textContent = 'Pick a conversation';
  $('msgs').replaceChildren();
  showConn('offline', 'signed out');
  $('conn-text').textContent = 'Signed out';
  showError(''); // the last session's error is not this page's
}

async function main() {
  try {
    st.roles = await devCredentials();
  } catch (e) {
    $('dev-note').textContent = `Dev users unavailable: ${e.message}`;
    $('dev-note').hidden = false;
  }
  if (st.roles) {
    for (const [role, c] of Object.entries(st.roles)) {
      if (c.user_id) st.names.set(c.user_id, role);
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = `Sign in as ${role}`;
      b.addEventListener('click', () => signInAs(role).catch(signInFailed));
      $('dev-users').append(b);
    }
  } else if ($('dev-note').hidden) {
    $('dev-note').textContent = 'Dev sign-in is off (the gateway serves /dev/credentials only ' +
      'when SB_DEV_CREDENTIALS_FILE is set, as `make run` does).';
    $('dev-note').hidden = false;
  }
  $('client-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = ev.target;
    showError(''); // an earlier error must not pass for this attempt's answer
    session.signIn(f.client_id.value.trim(), f.client_secret.value, f.client_id.value.trim())
      .then(enterApp).catch(signInFailed);
  });
  $('sign-out').addEventListener('click', signOut);
  $('new-peer').addEventListener('change', () => {
    $('new-peer-id-label').hidden = $('new-peer').value !== '';
  });
  $('new-conv').addEventListener('submit', (ev) => {
    ev.preventDefault();
    createConversation(ev.target).catch(report);
  });
  $('send').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('send-text');
    const text = t.value;
    if (st.upload && !st.attachment) {
      showError('The upload is not finished yet: wait for it, or remove it.');
      return;
    }
    t.value = '';
    send(text).catch(report);
  });
  $('send-text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      $('send').requestSubmit();
    }
  });
  document.addEventListener('visibilitychange', () => markRead());
  setupUploads();
  if (session.restore()) {
    session.schedule();
    enterApp().catch((e) => {
      session.signOut();
      report(e);
    });
  }
}

main();
