// lib.mjs: a tiny client of the pubsub routes of the gateway for the tests (SB_GW, SB_TOKENS).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

export const GW = process.env.SB_GW;
export const tokens = JSON.parse(readFileSync(process.env.SB_TOKENS, 'utf8'));

// call returns {status, body, headers}; body is parsed JSON when there is any.
export async function call(method, path, body, who = 'admin', headers = {}) {
	const h = { ...headers };
	if (who) h.Authorization = `Bearer ${tokens[who]}`;
	if (body !== undefined) h['Content-Type'] = 'application/json';
	const r = await fetch(GW + path, {
		method,
		headers: h,
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const text = await r.text();
	let json = null;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {
		json = text;
	}
	return { status: r.status, body: json, headers: r.headers };
}

// expect checks the status and returns the body; a problem answer's type is checked too.
export async function expect(status, method, path, body, who = 'admin', headers = {}) {
	const r = await call(method, path, body, who, headers);
	assert.equal(r.status, status, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
	if (status >= 400)
		assert.match(r.headers.get('content-type') || '', /application\/problem\+json/);
	return r.body;
}

let seq = 0;
export function uniq(prefix) {
	return `${prefix}-${process.pid}-${Date.now() % 100000}-${++seq}`;
}

// SB_PS_TEST_STRATEGY (pubsub_test.sh): the default_strategy of the topics a test makes without
// naming a type or a strategy, so that one run of the generic tests (expiry, nack, DLQ, ...)
// goes through cursor subscriptions (direct) and the other (pubsub_rows_test.sh) through rows.
const DEFAULT_STRATEGY = process.env.SB_PS_TEST_STRATEGY || '';

export async function topic(fields) {
	const name = fields.name || uniq('t');
	const extra = DEFAULT_STRATEGY && !fields.type && !fields.default_strategy ? { default_strategy: DEFAULT_STRATEGY } : {};
	return expect(201, 'POST', '/api/v1/topics', { ...extra, ...fields, name });
}

export async function publish(msg, who = 'produce') {
	return expect(202, 'POST', '/api/v1/messages/publish', msg, who);
}

export async function consume(topic, q = {}, who = 'consume') {
	const qs = new URLSearchParams(q).toString();
	const b = await expect(200, 'GET', `/api/v1/messages/consume/${topic}${qs ? '?' + qs : ''}`,
		undefined, who);
	return b.messages;
}

export async function ack(id, body = {}, who = 'consume') {
	return expect(200, 'POST', `/api/v1/messages/${id}/ack`, body, who);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// sql runs one query on the test's PostgreSQL (SB_TEST_PG_DSN; psql from SB_TEST_PG_BIN when
// set, else from PATH) and returns its unaligned output.
const PSQL = process.env.SB_TEST_PG_BIN ? `${process.env.SB_TEST_PG_BIN}/psql` : 'psql';
export const sql = (q) => execFileSync(PSQL, ['-X', '-At', '-v', 'ON_ERROR_STOP=1', process.env.SB_TEST_PG_DSN, '-c', q], { encoding: 'utf8' }).trim();
