// console.test.mjs: the web console in Debian's headless Chromium (playwright-core, no
// downloaded browser). Two pages, alice and bob, each in its own browser context: they sign in
// with the dev buttons, alice starts a conversation with bob and writes; bob's list shows it
// with one unread message, bob opens it, reads and replies; alice sees the reply live and her
// message as seen; alice drops offline, bob writes, alice comes back and gets the gap replayed;
// alice uploads a file (tus-js-client in the page), pauses and resumes it, sends it as an
// attachment, and bob's page shows a link that downloads the same bytes; a dropped file
// uploads too, and Remove takes it off the next message.
// Run by tests/integration/console_browser_test.sh (SB_CONSOLE_URL, SB_TEST_TMP).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const base = process.env.SB_CONSOLE_URL;
const shots = process.env.SB_TEST_TMP || '/tmp';
const T = 10_000;
const title = `Console test ${Date.now()}`;

let browser;
const pages = {};
const consoleErrors = [];

// signIn opens the console in a browser context of its own (its own sessionStorage), checks
// what a signed-out visitor sees, and signs in with the dev button of role.
async function signIn(role) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await ctx.newPage();
  pages[role] = page;
  page.on('pageerror', (e) => consoleErrors.push(`${role}: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(`${role}: ${m.text()}`));
  const res = await page.goto(`${base}/`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-security-policy'], /default-src 'self'/);
  for (const r of ['admin', 'alice', 'bob'])
    await page.getByRole('button', { name: `Sign in as ${r}` }).waitFor({ timeout: T });
  assert.equal(await page.locator('#conn-text').textContent(), 'Signed out');
  await page.getByRole('button', { name: `Sign in as ${role}` }).click();
  await page.locator('#who-name').filter({ hasText: role }).waitFor({ timeout: T });
  await page.locator('#conn[data-state="connected"]').waitFor({ timeout: T });
  assert.equal(await page.locator('#conn-text').textContent(), 'Connected');
  assert.match(await page.locator('#who-id').textContent(), /^[0-9a-f-]{36}$/);
}

const convItem = (page) => page.locator('.conv-item', { hasText: title });
const message = (page, text) => page.locator('#msgs .msg', { hasText: text });

before(async () => {
  assert.ok(base, 'SB_CONSOLE_URL is not set');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  for (const [role, page] of Object.entries(pages))
    await page.screenshot({ path: `${shots}/console-${role}-last.png` }).catch(() => {});
  await browser?.close();
});

test('alice and bob sign in with the dev buttons and go live', async () => {
  await Promise.all([signIn('alice'), signIn('bob')]);
});

test('alice starts a conversation with bob and sends a message', async () => {
  const a = pages.alice;
  await a.locator('#new-peer').selectOption({ label: 'bob' });
  await a.getByLabel('Title').fill(title);
  await a.getByRole('button', { name: 'Start conversation' }).click();
  await a.locator('#conv-title').filter({ hasText: title }).waitFor({ timeout: T });
  await a.getByLabel('Message').fill('hello bob, from the console');
  await a.getByRole('button', { name: 'Send' }).click();
  const mine = message(a, 'hello bob, from the console');
  await mine.locator('.status').filter({ hasText: /^(Sent|Delivered|Seen)$/ }).waitFor({ timeout: T });
  assert.equal(await mine.locator('.sender').textContent(), 'You');
});

test('bob sees the conversation with one unread message, live', async () => {
  const b = pages.bob;
  const item = convItem(b);
  await item.waitFor({ timeout: T });
  await item.locator('.badge').filter({ hasText: /^1$/ }).waitFor({ timeout: T });
  assert.equal(await item.locator('.badge').getAttribute('aria-label'), '1 unread');
  assert.match(await item.locator('.preview').textContent(), /^alice: hello bob, from the console$/);
  await b.screenshot({ path: `${shots}/console-bob-unread.png` });
});

test('bob opens it: the message is there and the unread count goes to zero', async () => {
  const b = pages.bob;
  await convItem(b).click();
  const m = message(b, 'hello bob, from the console');
  await m.waitFor({ timeout: T });
  assert.equal(await m.locator('.sender').textContent(), 'alice');
  await convItem(b).locator('.badge').waitFor({ state: 'detached', timeout: T });
  // alice's page learns of bob's read marker (conversation.read) and shows her message as seen
  const mine = message(pages.alice, 'hello bob, from the console');
  await mine.locator('.status').filter({ hasText: 'Seen' }).waitFor({ timeout: T });
});

test('bob replies and alice sees it arrive live', async () => {
  const b = pages.bob;
  await b.getByLabel('Message').fill('hi alice, got it');
  await b.getByLabel('Message').press('Enter');
  const a = pages.alice;
  const m = message(a, 'hi alice, got it');
  await m.waitFor({ timeout: T });
  assert.equal(await m.locator('.sender').textContent(), 'bob');
  // it arrived over the WebSocket: alice's page never left the connected state
  assert.equal(await a.locator('#conn').getAttribute('data-state'), 'connected');
  // alice has the conversation open and visible: her marker follows, no unread badge stays
  await convItem(a).locator('.badge').waitFor({ state: 'detached', timeout: T });
});

test('alice goes offline, bob writes, alice reconnects and gets the gap', async () => {
  const a = pages.alice;
  await a.context().setOffline(true);
  await a.locator('#conn[data-state="offline"]').waitFor({ timeout: T });
  assert.match(await a.locator('#conn-text').textContent(), /^Offline/);
  const b = pages.bob;
  await b.getByLabel('Message').fill('sent while alice was away');
  await b.getByRole('button', { name: 'Send' }).click();
  await message(b, 'sent while alice was away').locator('.status')
    .filter({ hasText: /^(Sent|Delivered|Seen)$/ }).waitFor({ timeout: T });
  assert.equal(await message(a, 'sent while alice was away').count(), 0);
  await a.context().setOffline(false);
  await a.locator('#conn[data-state="connected"]').waitFor({ timeout: T });
  // replayed from since_seq on the new connection (the offline poll runs only every 10 s)
  await message(a, 'sent while alice was away').waitFor({ timeout: 5_000 });
  const texts = await a.locator('#msgs .msg .content').allTextContents();
  assert.deepEqual(texts, ['hello bob, from the console', 'hi alice, got it', 'sent while alice was away']);
  for (const role of ['alice', 'bob'])
    await pages[role].screenshot({ path: `${shots}/console-${role}.png` });
});

test('alice uploads a file, pauses, resumes and sends it; bob downloads the same bytes', async () => {
  const a = pages.alice;
  const b = pages.bob;
  const bytes = randomBytes(3 * 1024 * 1024);
  // 64 KiB per PATCH (instead of 8 MiB) so that this file takes 48 requests: time to pause
  await a.evaluate(() => localStorage.setItem('sb-upload-chunk-bytes', String(64 * 1024)));
  const patches = []; // Upload-Offset of each PATCH the page sends
  let creations = 0;
  a.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (r.method() === 'POST' && path === '/files/') creations++;
    if (r.method() === 'PATCH' && path.startsWith('/files/'))
      patches.push(Number(r.headers()['upload-offset']));
  });
  await a.locator('#attach-file').setInputFiles({ name: 'notes.bin',
    mimeType: 'application/octet-stream', buffer: bytes });
  await a.waitForFunction(() => document.getElementById('upload-progress').value >= 10,
    null, { timeout: T, polling: 20 });
  await a.getByRole('button', { name: 'Pause' }).click();
  await a.locator('#upload[data-state="paused"]').waitFor({ timeout: T });
  const pausedAt = await a.locator('#upload-progress').evaluate((e) => e.value);
  assert.ok(pausedAt < 100, `paused at ${pausedAt}%: the upload finished before the pause`);
  assert.match(await a.locator('#upload-status').textContent(), /^Paused at \d+%$/);
  const sentBeforePause = patches.length;
  await a.waitForTimeout(1000);
  assert.equal(patches.length, sentBeforePause, 'PATCH requests went on while paused');
  await a.getByRole('button', { name: 'Resume' }).click();
  await a.locator('#upload[data-state="done"]').waitFor({ timeout: 60_000 });
  assert.equal(creations, 1, 'the upload was created again instead of resumed');
  assert.ok(patches[sentBeforePause] > 0,
    `the first PATCH after resuming was at offset ${patches[sentBeforePause]}, not where it stopped`);
  await a.getByLabel('Message').fill('the notes, attached');
  await a.getByRole('button', { name: 'Send' }).click();
  const mine = message(a, 'the notes, attached');
  await mine.locator('.status').filter({ hasText: /^(Sent|Delivered|Seen)$/ }).waitFor({ timeout: T });
  assert.equal(await a.locator('#upload').isHidden(), true);
  // bob's page (on another conversation view) gets it live, with the link
  const link = message(b, 'the notes, attached').getByRole('link', { name: 'Download notes.bin' });
  await link.waitFor({ timeout: T });
  const [dl] = await Promise.all([b.waitForEvent('download', { timeout: T }), link.click()]);
  assert.equal(dl.suggestedFilename(), 'notes.bin');
  const got = readFileSync(await dl.path());
  assert.equal(got.length, bytes.length);
  assert.ok(got.equals(bytes), 'bob downloaded other bytes than alice uploaded');
  await b.screenshot({ path: `${shots}/console-bob-attachment.png` });
});

test('a file dropped on the conversation uploads too, and Remove takes it off the next message', async () => {
  const a = pages.alice;
  const dt = await a.evaluateHandle(() => {
    const d = new DataTransfer();
    d.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
    return d;
  });
  await a.dispatchEvent('#conv', 'drop', { dataTransfer: dt });
  await a.locator('#upload[data-state="done"]').waitFor({ timeout: T });
  assert.equal(await a.locator('#upload-name').textContent(), 'dropped.txt');
  await a.getByRole('button', { name: 'Remove' }).click();
  assert.equal(await a.locator('#upload').isHidden(), true);
  await a.getByLabel('Message').fill('nothing attached');
  await a.getByRole('button', { name: 'Send' }).click();
  const m = message(a, 'nothing attached');
  await m.locator('.status').filter({ hasText: /^(Sent|Delivered|Seen)$/ }).waitFor({ timeout: T });
  assert.equal(await m.locator('.attachment').count(), 0);
});

test('bob is offline while alice sends an attachment: the replay brings its link', async () => {
  const a = pages.alice;
  const b = pages.bob;
  await b.context().setOffline(true);
  await b.locator('#conn[data-state="offline"]').waitFor({ timeout: T });
  const bytes = randomBytes(5000);
  await a.locator('#attach-file').setInputFiles({ name: 'away.bin',
    mimeType: 'application/octet-stream', buffer: bytes });
  await a.locator('#upload[data-state="done"]').waitFor({ timeout: T });
  await a.getByLabel('Message').fill('attached while bob was away');
  await a.getByRole('button', { name: 'Send' }).click();
  await message(a, 'attached while bob was away').locator('.status')
    .filter({ hasText: /^(Sent|Delivered|Seen)$/ }).waitFor({ timeout: T });
  await b.context().setOffline(false);
  await b.locator('#conn[data-state="connected"]').waitFor({ timeout: T });
  // replayed by realtime from since_seq (history), not the 10 s offline poll
  const link = message(b, 'attached while bob was away').getByRole('link', { name: 'Download away.bin' });
  await link.waitFor({ timeout: 5_000 });
  const [dl] = await Promise.all([b.waitForEvent('download', { timeout: T }), link.click()]);
  assert.ok(readFileSync(await dl.path()).equals(bytes), 'the replayed link gave other bytes');
});

test('no script errors on either page during the conversation', () => {
  // A request that fails while the test itself holds a page offline (setOffline above) is
  // logged by Chromium as a failed resource load; that is the network, not a script error.
  const offline = /Failed to load resource: net::ERR_INTERNET_DISCONNECTED$/;
  assert.deepEqual(consoleErrors.filter((e) => !offline.test(e)), []);
});

test('bob signs out; a wrong client secret is refused with a clear message', async () => {
  const b = pages.bob;
  await b.getByRole('button', { name: 'Sign out' }).click();
  await b.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: T });
  assert.equal(await b.locator('#conn-text').textContent(), 'Signed out');
  assert.equal(await b.evaluate(() => sessionStorage.length), 0);
  const creds = await b.evaluate(async () => (await fetch('/dev/credentials')).json());
  await b.getByText('Sign in with a client id and secret').click();
  await b.getByLabel('Client id').fill(creds.bob.client_id);
  await b.getByLabel('Client secret').fill('not-the-secret');
  await b.locator('#client-form').getByRole('button', { name: 'Sign in' }).click();
  const alert = b.getByRole('alert');
  await alert.waitFor({ timeout: T });
  assert.match(await alert.textContent(), /client|credential|secret/i);
  assert.equal(await b.locator('#app').isHidden(), true);
});

