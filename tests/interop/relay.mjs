// Helpers for the interop tests written for Node: start sse-relay on an
// ephemeral port of 127.0.0.1 (or a given one), stop and restart it,
// publish, send raw requests, parse an event stream as the WHATWG
// standard does, and fail or skip with the exit codes meson understands
// (77 = skipped).
//
// Ids: by default each relay run has an epoch of its own (8 characters of
// [0-9a-v]) and ids "<epoch>-<n>", n = 1, 2, 3, ...; tests learn the epoch
// from the first /publish answer (learnEpoch) and check ids with idOf /
// checkId. With --plain-ids the ids are "1", "2", "3", ...
//
// SSE_RELAY_WRAPPER: when set (e.g. "valgrind --leak-check=full
// --error-exitcode=99 -q"), the relay runs under it (its words, split on
// blanks, come before the relay's path); the waits for the listening line
// and for the exit are longer, an exit status of 99 is reported as the
// wrapper's errors, and every relay's stderr (the wrapper's report) is
// shown at the end, pass or fail.
//
// SPDX-License-Identifier: MIT

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

export const HOST = '127.0.0.1';

/** The words of SSE_RELAY_WRAPPER ([] when unset or blank). */
export const WRAPPER = (process.env.SSE_RELAY_WRAPPER || '').trim().split(/\s+/).filter(Boolean);
const LISTEN_WAIT_MS = WRAPPER.length ? 60000 : 5000;
const STOP_WAIT_MS = WRAPPER.length ? 60000 : 5000;

/** Ids of a default run, and of --plain-ids. */
export const ID_RE = /^[0-9a-v]{8}-[1-9][0-9]*$/;
export const PLAIN_ID_RE = /^[1-9][0-9]*$/;

/** The id of event n: "<epoch>-n", or "n" when epoch is '' (--plain-ids). */
export function idOf(epoch, n) {
	return epoch ? `${epoch}-${n}` : String(n);
}

/** The epoch of a default-mode id; fails the test unless id has the form. */
export function learnEpoch(id, what = 'id') {
	if (typeof id !== 'string' || !ID_RE.test(id)) fail(`${what}: ${JSON.stringify(id)} does not match ${ID_RE}`);
	return id.slice(0, id.lastIndexOf('-'));
}

/** id must be exactly idOf(epoch, n), in the strict format of its mode. */
export function checkId(id, epoch, n, what = 'id') {
	const re = epoch ? ID_RE : PLAIN_ID_RE;
	if (!check(typeof id === 'string' && re.test(id), `${what}: ${JSON.stringify(id)} does not match ${re}`)) return false;
	return check(id === idOf(epoch, n), `${what}: ${JSON.stringify(id)}, want ${JSON.stringify(idOf(epoch, n))}`);
}

let failures = 0;
const cleanups = [];
const relayLogs = []; // stderr of each relay (its end; all of it after a wrapper's errors), shown when the test fails

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
		// Under a wrapper its report is in there: shown pass or fail.
		if (code === 1 || WRAPPER.length)
			for (const log of relayLogs) if (log()) console.error('--- sse-relay stderr ---\n' + log());
		if (code === 0) console.log(`PASS: ${name}`);
		process.exit(code);
	}
}

/**
 * Start the relay with --port PORT (0: an ephemeral one) and args;
 * resolves to {port, base, proc, stderr(), stop()}. On a given port it is
 * tried again for up to 5 s while the port is busy (a restart). At exit,
 * or at stop(), it is sent SIGTERM and must exit 0 within 5 s.
 */
export async function startRelay(bin, args = [], { port = 0, prefix = [] } = {}) {
	const end = Date.now() + 5000;
	for (;;) {
		const r = await launchRelay(bin, args, port, prefix);
		if (r !== 'busy') return r;
		if (port === 0 || Date.now() > end) fail(`port ${port} still busy after 5 s`);
		log(`port ${port} is busy; trying again`);
		await sleep(200);
	}
}

async function launchRelay(bin, args, want, prefix = []) {
	const all = ['--port', String(want), ...args];
	const argv = [...prefix, ...WRAPPER, bin, ...all];
	const proc = track(spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }));
	let out = '';
	let err = '';
	let exited = null;
	let stopped = false;
	proc.stdout.on('data', (d) => (out += d));
	proc.stderr.on('data', (d) => (err += d));
	const done = new Promise((r) => proc.on('exit', (code, sig) => r((exited = { code, sig }))));
	const spawnErr = new Promise((r) => proc.on('error', r));
	const what = `sse-relay ${all.join(' ')}`;
	await until(() => /\n/.test(out) || exited !== null, LISTEN_WAIT_MS,
		() => `${what} printed no listening line within ${LISTEN_WAIT_MS / 1000} s`).catch(async (e) => {
		proc.kill('SIGKILL');
		throw e;
	});
	if (exited) {
		await Promise.race([spawnErr, sleep(50)]);
		if (want !== 0 && /cannot listen.*in use/.test(err)) return 'busy';
		fail(`${what} exited early: ${JSON.stringify(exited)}: ${err}`);
	}
	relayLogs.push(() => err.slice(WRAPPER.length ? -30000 : -4000));

	const stop = async () => {
		if (stopped) return;
		stopped = true;
		if (exited !== null) {
			check(false, `${what} died during the test: ${JSON.stringify(exited)}` +
				(WRAPPER.length && exited.code === 99 ? ' (the wrapper reported errors)' : ''));
			return;
		}
		proc.kill('SIGTERM');
		let late = false;
		const t = setTimeout(() => {
			late = true;
			proc.kill('SIGKILL');
		}, STOP_WAIT_MS);
		await done;
		clearTimeout(t);
		if (late) {
			check(false, `sse-relay did not exit within ${STOP_WAIT_MS / 1000} s of SIGTERM`);
			return;
		}
		if (WRAPPER.length && exited.code === 99) {
			check(false, `the relay wrapper (${WRAPPER.join(' ')}) reported errors: exit status 99 after SIGTERM`);
			return;
		}
		check(exited.sig === null && exited.code === 0,
			`sse-relay exited with ${exited.sig ? 'signal ' + exited.sig : 'status ' + exited.code} after SIGTERM (want status 0)`);
	};
	atExit(stop);
	const m = /^[a-z0-9-]+: listening on http:\/\/127\.0\.0\.1:(\d+)\/\n/.exec(out);
	if (!m) fail(`unexpected first line of stdout: ${JSON.stringify(out)}`);
	const port = Number(m[1]);
	if (!(port > 0)) fail(`bad port in ${JSON.stringify(out)}`);
	if (want !== 0 && port !== want) fail(`asked for port ${want}, listening on ${port}`);
	log(`${WRAPPER.length ? WRAPPER.join(' ') + ' ' : ''}${what}: listening on ${HOST}:${port}`);
	return { port, base: `http://${HOST}:${port}`, proc, stderr: () => err, stop, exited: () => exited };
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
				// A 202 answer is the id and one LF.
				const text = Buffer.concat(chunks).toString('utf8');
				const m = /^([^\r\n]+)\n$/.exec(text);
				resolve({ status: res.statusCode, body: text, id: m ? m[1] : null });
			});
			res.on('error', reject);
		});
		req.on('timeout', () => req.destroy(new Error('/publish: no answer within 10 s')));
		req.on('error', reject);
		req.end(buf);
	});
}

/**
 * publish() that must answer 202 with "ID\n"; returns the id as a string
 * (its form is for the caller to check: checkId).
 */
export async function publishOk(base, body, query = '') {
	const r = await publish(base, body, query);
	if (r.status !== 202) fail(`/publish${query} of ${JSON.stringify(String(body).slice(0, 60))} answered ${r.status}: ${r.body.slice(0, 200)}`);
	if (r.id === null) fail(`/publish answered 202 with ${JSON.stringify(r.body)}, want an id and one LF`);
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

/**
 * An event-stream parser that follows the WHATWG HTML standard's
 * "interpreting an event stream": UTF-8 decoding (a leading BOM skipped,
 * invalid bytes as U+FFFD), lines ended by CRLF, LF or CR (also when a CRLF
 * is split between two chunks), comments, "field: value" with one leading
 * space removed, data lines joined by LF, the last-event-id buffer that
 * persists across events (an id with NUL ignored), dispatch at a blank
 * line only when data was given. An event left incomplete at the end of
 * the stream is never dispatched.
 *
 * Each dispatched event is {type, data, lastEventId, id}: id is the value
 * of the id field in this event's own block (null when it had none), the
 * part of the standard tests need to say "one id per frame".
 */
export class SseParser {
	constructor(onEvent) {
		this.onEvent = onEvent || ((ev) => this.events.push(ev));
		this.events = [];
		this.comments = 0;
		this.retry = null;
		this.lastEventId = '';
		this.decoder = new TextDecoder('utf-8');
		this.partial = '';
		this.afterCR = false;
		this.data = [];
		this.type = '';
		this.blockId = null;
	}

	/** Feed bytes (Buffer or Uint8Array). */
	feed(bytes) {
		this.text(this.decoder.decode(bytes, { stream: true }));
	}

	text(s) {
		let i = 0;
		if (this.afterCR) {
			this.afterCR = false;
			if (s.startsWith('\n')) i = 1; // the LF of a CRLF cut in two
		}
		const re = /[\r\n]/g;
		while (i < s.length) {
			re.lastIndex = i;
			const m = re.exec(s);
			if (!m) {
				this.partial += s.slice(i);
				break;
			}
			const line = this.partial + s.slice(i, m.index);
			this.partial = '';
			this.line(line);
			i = m.index + 1;
			if (m[0] === '\r') {
				if (i === s.length) this.afterCR = true;
				else if (s[i] === '\n') i++;
			}
		}
	}

	line(l) {
		if (l === '') return this.dispatch();
		if (l[0] === ':') {
			this.comments++;
			return;
		}
		const c = l.indexOf(':');
		const field = c < 0 ? l : l.slice(0, c);
		let value = c < 0 ? '' : l.slice(c + 1);
		if (value[0] === ' ') value = value.slice(1);
		if (field === 'event') this.type = value;
		else if (field === 'data') this.data.push(value);
		else if (field === 'id') {
			if (!value.includes('\0')) this.lastEventId = value;
			this.blockId = value;
		} else if (field === 'retry') {
			if (/^[0-9]+$/.test(value)) this.retry = Number(value);
		}
	}

	dispatch() {
		const id = this.blockId;
		this.blockId = null;
		if (this.data.length === 0) {
			this.type = '';
			return;
		}
		const ev = { type: this.type || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId, id };
		this.data = [];
		this.type = '';
		this.onEvent(ev);
	}
}

/**
 * A subscriber on a raw socket: sends GET path with the given headers,
 * checks nothing itself but parses the response head (status, head) and
 * feeds the body to an SseParser. Options:
 *   chunk: read at most this many bytes at a time (0: as Node does);
 *   pauseMs: after each read, stop reading for this long (a slow reader);
 *   onEvent: called with each event as it is dispatched;
 *   keep: false to keep no events in .events (only onEvent sees them).
 * Returns {sock, parser, events, status(), head(), bytes() (of the body),
 * closed(), reads(), pause(), resume(), close()}; closed at exit.
 */
export function sseSubscribe(port, { path = '/events', headers = {}, chunk = 0, pauseMs = 0, onEvent, keep = true } = {}) {
	const st = { headBuf: Buffer.alloc(0), head: null, status: null, bytes: 0, closed: false, reads: 0, events: [] };
	const parser = new SseParser((ev) => {
		if (keep) st.events.push(ev);
		if (onEvent) onEvent(ev);
	});
	let pausedByUser = false;
	let timer = null;
	const take = (buf) => {
		st.reads++;
		if (st.head === null) {
			st.headBuf = Buffer.concat([st.headBuf, buf]);
			const at = st.headBuf.indexOf('\r\n\r\n');
			if (at < 0) return;
			st.head = st.headBuf.subarray(0, at).toString('latin1');
			const m = /^HTTP\/1\.[01] (\d{3})/.exec(st.head);
			st.status = m ? Number(m[1]) : null;
			buf = st.headBuf.subarray(at + 4);
			st.headBuf = null;
		}
		st.bytes += buf.length;
		parser.feed(buf);
	};
	const opts = { port, host: HOST };
	if (chunk > 0)
		opts.onread = {
			buffer: Buffer.alloc(chunk),
			callback: (n, buf) => {
				take(Buffer.from(buf.subarray(0, n)));
				if (pauseMs > 0 && !pausedByUser) {
					sock.pause();
					timer = setTimeout(() => {
						timer = null;
						if (!pausedByUser) sock.resume();
					}, pauseMs);
				}
			},
		};
	const sock = net.connect(opts, () => {
		const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
		sock.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nAccept: text/event-stream\r\n${extra}\r\n`);
	});
	if (chunk === 0) sock.on('data', take);
	sock.on('close', () => (st.closed = true));
	sock.on('error', () => {});
	const close = () => {
		if (timer) clearTimeout(timer);
		sock.destroy();
	};
	atExit(close);
	return {
		sock,
		parser,
		events: st.events,
		status: () => st.status,
		head: () => st.head,
		bytes: () => st.bytes,
		closed: () => st.closed,
		reads: () => st.reads,
		pause: () => {
			pausedByUser = true;
			sock.pause();
		},
		resume: () => {
			pausedByUser = false;
			sock.resume();
		},
		close,
	};
}

/** The resident set of process pid, in KiB (0 when unknown). */
export function rssKiB(pid) {
	try {
		const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
		return m ? Number(m[1]) : 0;
	} catch {
		return 0;
	}
}

/**
 * The relay's side of its TCP connections on port (not the listening
 * socket), from `ss -tanm`: [{state, sendQ, wmem}] (wmem: skmem's w, the
 * bytes queued for sending, in the kernel's accounting); null without ss.
 */
export function relaySockets(port) {
	const r = spawnSync('ss', ['-Htanm', `sport = :${port}`], { encoding: 'utf8', timeout: 5000 });
	if (r.status !== 0) return null;
	const out = [];
	for (const m of r.stdout.matchAll(/^(\S+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+(?:\s+\S+)*?\s*\n?\s*skmem:\(([^)]*)\)/gm)) {
		if (m[1] === 'LISTEN') continue;
		const mem = Object.fromEntries(m[4].split(',').map((kv) => [kv.replace(/\d+$/, ''), Number(kv.replace(/^\D+/, ''))]));
		out.push({ state: m[1], sendQ: Number(m[3]), wmem: mem.w ?? 0, tb: mem.tb ?? 0 });
	}
	return out;
}
