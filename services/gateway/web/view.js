// view.js: DOM rendering of the console. Text only ever goes in through textContent, so
// message content cannot inject markup.

export const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const STATE_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
};

export function showConn(state, detail) {
  const p = $('conn');
  p.dataset.state = state;
  $('conn-text').textContent =
    state === 'connected' ? STATE_TEXT.connected : `${STATE_TEXT[state] || state}: ${detail}`;
}

let errorTimer = null;
export function showError(msg) {
  const p = $('error');
  p.textContent = msg;
  p.hidden = !msg;
  clearTimeout(errorTimer);
  if (msg) errorTimer = setTimeout(() => { p.hidden = true; }, 8000);
}

export function time(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// renderConversations draws the list: title, unread badge, last message preview.
export function renderConversations(convs, openId, nameOf, onOpen) {
  const ul = $('convs');
  ul.replaceChildren();
  const sorted = [...convs.values()].sort((a, b) =>
    (b.last_activity_at || b.created_at || '').localeCompare(a.last_activity_at || a.created_at || ''));
  for (const c of sorted) {
    const li = el('li');
    const b = el('button', 'conv-item');
    b.type = 'button';
    b.dataset.id = c.id;
    if (c.id === openId) b.setAttribute('aria-current', 'true');
    const top = el('span', 'conv-top');
    top.append(el('span', 'conv-title', c.title || `Conversation ${c.id.slice(0, 8)}`));
    const unread = Math.max(0, c.last_seq - c.last_read_seq);
    if (unread > 0) {
      const badge = el('span', 'badge', String(unread));
      badge.setAttribute('aria-label', `${unread} unread`);
      top.append(badge);
    }
    b.append(top);
    const lm = c.last_message;
    b.append(el('span', 'preview',
      lm && lm.content ? `${nameOf(lm.sender_id)}: ${lm.content}` : 'No messages yet'));
    b.addEventListener('click', () => onOpen(c.id));
    li.append(b);
    ul.append(li);
  }
  $('convs-empty').hidden = convs.size > 0;
}

// renderMessages draws the open conversation's messages in seq order (pending sends last) and
// the state of my own: sending, sent, delivered, seen (by another member's read marker).
// onDownload(fileId, name) fetches an attachment (the link alone would carry no token).
export function renderMessages(conv, msgs, me, nameOf, onDownload) {
  const ol = $('msgs');
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
  ol.replaceChildren();
  const list = [...msgs.values()].sort((a, b) => (a.seq || Infinity) - (b.seq || Infinity));
  const readByOthers = Math.max(0, ...[...conv.readers.entries()]
    .filter(([u]) => u !== me).map(([, s]) => s));
  for (const m of list) {
    const mine = m.sender_id === me;
    const li = el('li', mine ? 'msg mine' : 'msg');
    li.dataset.seq = m.seq || '';
    const head = el('span', 'meta');
    head.append(el('span', 'sender', mine ? 'You' : nameOf(m.sender_id)));
    head.append(el('time', 'at', time(m.created_at)));
    li.append(head);
    li.append(el('p', 'content', m.content));
    const files = m.attachments || [];
    files.forEach((id, i) => {
      const name = (files.length === 1 && m.metadata && m.metadata.filename) || `file ${i + 1}`;
      const a = el('a', 'attachment', `Download ${name}`);
      a.href = `/v1/files/${encodeURIComponent(id)}/content`;
      a.dataset.file = id;
      a.addEventListener('click', (ev) => {
        ev.preventDefault();
        onDownload(id, name);
      });
      li.append(a);
    });
    if (mine) {
      let st = 'Sending…';
      if (m.failed) st = `Not sent: ${m.failed}`;
      else if (m.seq && readByOthers >= m.seq) st = 'Seen';
      else if (m.seq && conv.delivered >= m.seq) st = 'Delivered';
      else if (m.seq) st = 'Sent';
      li.append(el('span', m.failed ? 'status failed' : 'status', st));
    }
    ol.append(li);
  }
  if (atBottom || list.length < 20) ol.scrollTop = ol.scrollHeight;
}
