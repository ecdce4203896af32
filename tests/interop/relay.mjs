// Helpers for the interop tests written for Node: start sse-relay on an
// ephemeral port of 127.0.0.1, publish, send raw requests, and fail or
// skip with the exit codes meson understands (77 = skipped).
//
// SPDX-License-Identifier: MIT

import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

export const HOST = '127.0.0.1';

let failures = 0;
const cleanups = [];
const relayLogs = []; // stderr of each relay, shown when the test fails

export function log(...a) {
	console.log(...a);
}

/** Record a failure and go on. */
export function check(ok, msg) {
	if (!ok) {
		failures++;
		console.error('FAIL: ' + msg);
	}
	return ok;
}

export class Fatal extends Error {}

/** Fail at once. */
export function fail(msg) {
	throw new Fatal(msg);
}

export function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

/** Resolve when pred() is true; reject after ms with msg. */
export async function until(pred, ms, msg) {
	const end = Date.now() + ms;
	while (!pred()) {
		if (Date.now() > end) fail(`timed out after ${ms} ms: ${typeof msg === 'function' ? msg() : msg}`);
		await sleep(20);
	}
}

/** Child processes killed when Node exits, however it exits. */
const children = new Set();
process.on('exit', () => {
	for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
export function track(child) {
	children.add(child);
	return child;
}

/** Run a cleanup at the end, even after a failure (last added runs first). */
export function atExit(fn) {
	cleanups.push(fn);
}

/**
 * Run main() with an overall time limit; stop everything it started, then
 * exit 0, 1, or 77 when main returns 'skip'.
 */
export async function run(name, main, limitMs = 60000) {
	let rc = 0;
	let finishing = false;
	const timer = setTimeout(() => {
		console.error(`FAIL: ${name}: still running after ${limitMs} ms`);
		finish(1);
	}, limitMs);
	for (const sig of ['SIGINT', 'SIGTERM'])
		process.on(sig, () => {
			console.error(`FAIL: ${name}: stopped by ${sig}`);
			finish(1);
		});
	try {
		const r = await main();
		if (r === 'skip') rc = 77;
	} catch (e) {
		console.error('FAIL: ' + (e instanceof Fatal ? e.message : e?.stack || e));
		rc = 1;
	}
	clearTimeout(timer);
	await finish(rc);

	async function finish(code) {
		if (finishing) return;
		finishing = true;
		while (cleanups.length) {
			try {
				await cleanups.pop()();
			} catch (e) {
				console.error('FAIL: cleanup: ' + (e instanceof Fatal ? e.message : e?.stack || e));
				failures++;
			}
		}
		if (code === 0 && failures) code = 1;
		if (code === 1)
			for (const log of relayLogs) if (log()) console.error('--- sse-relay stderr ---\n' + log().slice(-4000));
		if (code === 0) console.log(`PASS: ${name}`);
		process.exit(code);
	}
}

/**
 * Start the relay with --port 0 and args; resolves to {port, base, proc}.
 * At exit it is sent SIGTERM and must exit 0 within 5 s.
 */
export async function startRelay(bin, args = []) {
	const all = ['--port', '0', ...args];
	const proc = track(spawn(bin, all, { stdio: ['ignore', 'pipe', 'pipe'] }));
	let out = '';
	let err = '';
	let exited = null;
	proc.stdout.on('data', (d) => (out += d));
	proc.stderr.on('data', (d) => (err += d));
	relayLogs.push(() => err);
	const done = new Promise((r) => proc.on('exit', (code, sig) => r((exited = { code, sig }))));
	atExit(async () => {
		if (exited === null) {
			proc.kill('SIGTERM');
			const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
			await done;
			clearTimeout(t);
			check(exited.sig === null && exited.code === 0,
				`sse-relay exited with ${exited.sig ? 'signal ' + exited.sig : 'status ' + exited.code} after SIGTERM (want status 0)`);
		} else {
			check(false, `sse-relay died during the test: ${JSON.stringify(exited)}`);
		}
	});
	await until(() => /\n/.test(out) || exited !== null, 5000,
		() => `sse-relay ${all.join(' ')} printed no listening line within 5 s`);
	if (exited) fail(`sse-relay ${all.join(' ')} exited early: ${JSON.stringify(exited)}: ${err}`);
	const m = /^sse-relay: listening on http:\/\/127\.0\.0\.1:(\d+)\/\n/.exec(out);
	if (!m) fail(`unexpected first line of stdout: ${JSON.stringify(out)}`);
	const port = Number(m[1]);
	if (!(port > 0)) fail(`bad port in ${JSON.stringify(out)}`);
	log(`sse-relay ${all.join(' ')}: listening on ${HOST}:${port}`);
	return { port, base: `http://${HOST}:${port}`, proc, stderr: () => err };
}

/**
 * One raw HTTP exchange: send the bytes (a string is sent as latin1, so
 * "\x00" is one byte), read until the server closes or ms pass.
 * Resolves to {data, status, closed, ms}.
 */
export function raw(port, bytes, { ms = 5000, end = false } = {}) {
	return new Promise((resolve) => {
		const s = net.connect(port, HOST);
		const chunks = [];
		const t0 = Date.now();
		let settled = false;
		const done = (closed) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			s.destroy();
			const data = Buffer.concat(chunks);
			const m = /^HTTP\/1\.[01] (\d{3})/.exec(data.toString('latin1'));
			resolve({ data, status: m ? Number(m[1]) : null, closed, ms: Date.now() - t0 });
		};
		const timer = setTimeout(() => done(false), ms);
		s.on('connect', () => {
			if (bytes.length) s.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
			if (end) s.end();
		});
		s.on('data', (d) => chunks.push(d));
		s.on('end', () => done(true));
		s.on('error', () => done(true));
	});
}

/** POST body (string or Buffer) to /publish[query]; resolves {status, body, id}. */
export function publish(base, body, query = '', headers = {}) {
	const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
	return new Promise((resolve, reject) => {
		const req = http.request(base + '/publish' + query, {
			method: 'POST',
			agent: false, // a new connection each time: no keep-alive races
			headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': buf.length, ...headers },
			timeout: 10000,
		}, (res) => {
			const chunks = [];
			res.on('data', (d) => chunks.push(d));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				const m = /\d+/.exec(text);
				resolve({ status: res.statusCode, body: text, id: m ? m[0] : null });
			});
			res.on('error', reject);
		});
		req.on('timeout', () => req.destroy(new Error('/publish: no answer within 10 s')));
		req.on('error', reject);
		req.end(buf);
	});
}

/** publish() that must answer 202; returns the id as a string. */
export async function publishOk(base, body, query = '') {
	const r = await publish(base, body, query);
	if (r.status !== 202) fail(`/publish${query} of ${JSON.stringify(String(body).slice(0, 60))} answered ${r.status}: ${r.body.slice(0, 200)}`);
	return r.id;
}

/**
 * The nasty payloads: [name, payload, what the client must see as data].
 * Line breaks CR and CRLF reach the client as LF.
 */
export function nastyPayloads() {
	const big = 'x'.repeat(102400);
	const p = [
		['plain', 'hello'],
		['LF', 'a\nb'],
		['CR', 'a\rb'],
		['CRLF', 'a\r\nb'],
		['LF LF', 'a\n\nb'],
		['CR CR', 'a\r\rb'],
		['CRLF CRLF', 'a\r\n\r\nb'],
		['LF CR', 'a\n\rb'],
		['mixed run', 'a\n\r\nb\r\rc'],
		['CR CRLF LF', 'a\r\r\n\nb'],
		['leading LF', '\nlead'],
		['leading CR', '\rlead'],
		['leading CRLF', '\r\nlead'],
		['trailing LF', 'trail\n'],
		['trailing CR', 'trail\r'],
		['trailing CRLF', 'trail\r\n'],
		['trailing LF LF', 'trail\n\n'],
		['only LF', '\n'],
		['only CR', '\r'],
		['only CRLF', '\r\n'],
		['only breaks', '\r\n\r\n\n'],
		['leading space', ' one space'],
		['leading spaces', '  two spaces'],
		['one space', ' '],
		['indents', 'x\n  indented\n\tTAB'],
		['colon', ':'],
		['colon inside', 'a: b'],
		['colons', '::x::'],
		['data: inside', 'data: inside'],
		['data: lines inside', 'x\ndata: y\ndata:z'],
		['comment-like lines', ': not a comment\n:also not'],
		['field-like lines', 'id: 999\nevent: bogus\nretry: 1\n\ndata: after a blank line'],
		['UTF-8', 'héllo wörld — 日本語 😀'],
		['BOM and U+2028 inside', '\ufeffbom\u2028ls'],
		['empty', ''],
		['100 KB line', big],
		['two 100 KB lines', big + '\r\n' + big],
		['NUL inside', 'a\u0000b'],
	];
	return p.map(([name, payload]) => [name, payload, payload.replace(/\r\n|\r/g, '\n')]);
}

/** Short printable form of a string for messages. */
export function show(s) {
	const j = JSON.stringify(s);
	return j.length > 80 ? j.slice(0, 60) + `...(${s.length} chars)` : j;
}
