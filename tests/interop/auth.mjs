// Interop test: sse-relay's authorization (examples/relay-auth.c).
//
// Tokens are made here with node:crypto (HS256 with createHmac, RS256 with
// a key pair of generateKeyPairSync and sign), no JWT package.
//
// A. Where a token may come from and what is refused: a valid token in
//    the Authorization header, a cookie or the query lets a client
//    subscribe (200) and publish (202); none, a bad signature, the wrong
//    algorithm (HS256 signed with the RS256 public key as its secret, alg
//    none), an expired token, one not yet valid, one without exp get 401
//    with exactly "unauthorized\n" and WWW-Authenticate: Bearer; a token
//    that does not grant the channel gets 403 with exactly "forbidden\n".
//    --token still lets a publisher in; a cookie from a foreign page is
//    not taken.
// B. --jwt-expiry stop: a real EventSource (npm) with a token in the query
//    whose exp is about 2 s away, events flowing: the stream ends at exp
//    (not before), on an event boundary (a raw subscriber checks the
//    bytes), and the reconnect with the same token gets 401, which closes
//    the EventSource for good (readyState 2).
// C. --jwt-expiry retry:200: the stream ends with "retry: 200" at exp; the
//    EventSource (its fetch option gives each connection a fresh token)
//    comes back and, through Last-Event-ID, loses no event.
// D. CORS and the Origin check: preflights answered with the listed
//    origin only (credentials only for it, '*' without them), no CORS
//    lines for others; POST /publish with a foreign Origin 403, with a
//    listed or our own one 202; GET /events from a listed origin gets
//    its ACAO and Vary: Origin.
//
//   node auth.mjs PATH-TO-sse-relay    (via node-test.sh --npm)
//
// SPDX-License-Identifier: MIT

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { WRAPPER, atExit, check, fail, log, publish, raw, run, sleep, sseSubscribe, startRelay, until } from './relay.mjs';

const bin = process.argv[2];
const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const SECRET = crypto.randomBytes(32).toString('hex'); // 64 bytes of text
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' });
const now = () => Math.floor(Date.now() / 1000);
const ALL = { subscribe: ['*'], publish: ['*'] };

function hs256(claims, secret = SECRET, header = { alg: 'HS256', typ: 'JWT' }) {
	const signed = `${b64u(header)}.${b64u(claims)}`;
	return `${signed}.${crypto.createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

function rs256(claims) {
	const signed = `${b64u({ alg: 'RS256', typ: 'JWT' })}.${b64u(claims)}`;
	return `${signed}.${crypto.sign('sha256', Buffer.from(signed), privateKey).toString('base64url')}`;
}

function claims(sse = ALL, ttl = 60, extra = {}) {
	return { sub: 'test', iat: now(), exp: now() + ttl, sse, ...extra };
}

/** One request on a fresh connection: {status, head, body}. */
async function ask(port, method, path, headers = {}, body = '') {
	const h = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
	const len = method === 'POST' ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : '';
	const r = await raw(port, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${h}${len}Connection: close\r\n\r\n${body}`,
		{ ms: method === 'GET' && path.startsWith('/events') ? (WRAPPER.length ? 3000 : 400) : 5000 });
	const text = r.data.toString('latin1');
	const at = text.indexOf('\r\n\r\n');
	return { status: r.status, head: at < 0 ? text : text.slice(0, at), body: at < 0 ? '' : text.slice(at + 4) };
}

function header(head, name) {
	const m = new RegExp(`^${name}: (.*)$`, 'mi').exec(head);
	return m ? m[1] : null;
}

async function partA(files) {
	log('--- A: where tokens come from, and what is refused ---');
	const relay = await startRelay(bin, ['--jwt-hs256-secret-file', files.secret, '--jwt-rs256-public-key', files.pem,
		'--token', 'plain-s3cret', '--heartbeat', '60000']);
	const p = relay.port;
	const good = hs256(claims());
	const ways = {
		header: (t) => [{ Authorization: `Bearer ${t}` }, ''],
		cookie: (t) => [{ Cookie: `other=1; sse_token=${t}; more=2` }, ''],
		query: (t) => [{}, `token=${encodeURIComponent(t)}`],
	};
	for (const [way, f] of Object.entries(ways)) {
		const [h, q] = f(good);
		const sub = await ask(p, 'GET', '/events' + (q ? '?' + q : ''), h);
		check(sub.status === 200, `A: subscribe, token in the ${way}: ${sub.status}, want 200`) && log(`ok: A: subscribe with the token in the ${way}: 200`);
		const pub = await ask(p, 'POST', '/publish' + (q ? '?' + q : ''), h, 'x');
		check(pub.status === 202, `A: publish, token in the ${way}: ${pub.status} ${pub.body}, want 202`) && log(`ok: A: publish with the token in the ${way}: 202`);
	}
	const rs = await ask(p, 'GET', '/events', { Authorization: `Bearer ${rs256(claims())}` });
	check(rs.status === 200, `A: RS256 token: ${rs.status}`) && log('ok: A: an RS256 token: 200');
	const plain = await ask(p, 'POST', '/publish', { Authorization: 'Bearer plain-s3cret' }, 'x');
	check(plain.status === 202, `A: --token: ${plain.status}`) && log('ok: A: --token still publishes: 202');

	const hdr = { alg: 'HS256', typ: 'JWT' };
	const c = claims();
	const bad = [
		['no token', null],
		['garbage', 'not.a.token'],
		['bad signature', hs256(c, 'another secret of enough length, 32+ bytes')],
		['signature cut', good.slice(0, -3)],
		['HS256 signed with the RS256 public key as secret', hs256(c, PUBLIC_PEM)],
		['alg none', `${b64u({ alg: 'none', typ: 'JWT' })}.${b64u(c)}.`],
		['alg none with a signature', `${b64u({ alg: 'none' })}.${b64u(c)}.${good.split('.')[2]}`],
		['HS512', (() => { const s = `${b64u({ alg: 'HS512' })}.${b64u(c)}`; return `${s}.${crypto.createHmac('sha512', SECRET).update(s).digest('base64url')}`; })()],
		['expired', hs256(claims(ALL, -1))],
		['not yet valid (nbf + 60 s)', hs256(claims(ALL, 120, { nbf: now() + 60 }))],
		['issued in the future (iat + 60 s)', hs256(claims(ALL, 120, { iat: now() + 60 }))],
		['no exp', hs256({ sub: 'x', sse: ALL })],
		['exp as a string', hs256({ ...c, exp: String(c.exp) })],
		['exp as a fraction', hs256({ ...c, exp: c.exp + 0.5 })],
		['Basic scheme', null, { Authorization: `Basic ${good}` }],
	];
	for (const [what, tok, extra] of bad) {
		for (const [kind, path] of [['subscribe', '/events'], ['publish', '/publish']]) {
			const h = extra || (tok ? { Authorization: `Bearer ${tok}` } : {});
			const r = await ask(p, kind === 'publish' ? 'POST' : 'GET', path, h, 'x');
			check(r.status === 401 && r.body === 'unauthorized\n' && header(r.head, 'WWW-Authenticate') === 'Bearer',
				`A: ${what} (${kind}): ${r.status} ${JSON.stringify(r.body)} WWW-Authenticate ${header(r.head, 'WWW-Authenticate')}`);
		}
	}
	log(`ok: A: ${bad.length} bad tokens x subscribe/publish: 401, body exactly "unauthorized\\n", WWW-Authenticate: Bearer`);
	const denied = [
		['only publish granted, subscribing', { publish: ['*'] }, 'GET', '/events'],
		['only subscribe granted, publishing', { subscribe: ['default'] }, 'POST', '/publish'],
		['another channel', { subscribe: ['news'], publish: ['news'] }, 'GET', '/events'],
		['another channel (publish)', { subscribe: ['news'], publish: ['news', 'defaults'] }, 'POST', '/publish'],
		['no sse claim', null, 'GET', '/events'],
		['sse claim null', { sse: null }, 'GET', '/events'],
		['channels not an array', { subscribe: 'default' }, 'GET', '/events'],
	];
	for (const [what, sse, method, path] of denied) {
		const cl = sse === null ? { iat: now(), exp: now() + 60 } : sse.sse === null ? { exp: now() + 60, sse: null } : claims(sse);
		const r = await ask(p, method, path, { Authorization: `Bearer ${hs256(cl)}` }, 'x');
		check(r.status === 403 && r.body === 'forbidden\n', `A: ${what}: ${r.status} ${JSON.stringify(r.body)}, want 403 "forbidden\\n"`);
	}
	log(`ok: A: ${denied.length} tokens not granting the channel: 403, body exactly "forbidden\\n"`);
	const named = await ask(p, 'GET', '/events', { Authorization: `Bearer ${hs256(claims({ subscribe: ['news', 'default'] }))}` });
	check(named.status === 200, `A: a token naming "default": ${named.status}`) && log('ok: A: a token naming the channel "default": 200');
	const foreign = await ask(p, 'GET', '/events', { Origin: 'http://evil.example', Cookie: `sse_token=${good}` });
	check(foreign.status === 401, `A: a cookie sent from a foreign page: ${foreign.status}, want 401`) && log('ok: A: a cookie sent by a foreign page is not taken: 401');
	await relay.stop();
}

/** Events every 25 ms until stop(); returns {count(), stop()}. */
function publisher(base, headers) {
	let n = 0;
	let on = true;
	const done = (async () => {
		while (on) {
			const r = await publish(base, `event ${n + 1}`, '', headers);
			if (r.status !== 202) fail(`publish: ${r.status} ${r.body}`);
			n++;
			await sleep(25);
		}
	})();
	return { count: () => n, stop: async () => { on = false; await done; } };
}

async function partB(files) {
	log('--- B: --jwt-expiry stop: the stream ends at exp, the reconnect gets 401 ---');
	const relay = await startRelay(bin, ['--jwt-hs256-secret-file', files.secret, '--retry', '100', '--heartbeat', '60000']);
	const pubTok = hs256(claims({ publish: ['default'] }, 600));
	const pub = publisher(relay.base, { Authorization: `Bearer ${pubTok}` });
	await sleep(100);
	const exp = now() + 2;
	const tok = hs256(claims({ subscribe: ['default'] }, 0, { exp }));
	const url = `${relay.base}/events?token=${encodeURIComponent(tok)}`;
	const rawSub = sseSubscribe(relay.port, { path: `/events?token=${encodeURIComponent(tok)}`, keep: true });
	const es = new EventSource(url);
	atExit(() => es.close());
	let opens = 0, errors = 0, got = 0, endedAt = null, status = null;
	es.onopen = () => opens++;
	es.onmessage = () => got++;
	es.onerror = (e) => {
		errors++;
		if (endedAt === null) endedAt = Date.now();
		if (e && e.code) status = e.code;
	};
	await until(() => es.readyState === 2, 10000, () => `B: the EventSource is not closed (readyState ${es.readyState}, ${errors} errors)`);
	await until(() => rawSub.closed(), 2000, 'B: the raw subscriber was not closed at exp');
	await pub.stop();
	const early = exp * 1000 - endedAt;
	log(`B: token exp at ${new Date(exp * 1000).toISOString()}; the stream ended ${-early} ms after it; ${got} events received; ${opens} open(s), ${errors} error(s), status ${status}`);
	check(opens === 1, `B: the EventSource opened ${opens} times, want 1 (the reconnect must get 401)`);
	check(early <= 0 && early > -1000, `B: the stream ended ${-early} ms after exp, want within [0, 1000)`);
	check(got > 20, `B: only ${got} events before exp`);
	check(status === 401 || status === null, `B: the reconnect's status ${status}, want 401`);
	check(rawSub.status() === 200 && rawSub.events.length > 20, `B: the raw subscriber got ${rawSub.status()} and ${rawSub.events.length} events`);
	check(rawSub.parser.partial === '' && rawSub.parser.data.length === 0, 'B: the raw stream ended inside a frame');
	const again = await ask(relay.port, 'GET', `/events?token=${encodeURIComponent(tok)}`);
	check(again.status === 401 && again.body === 'unauthorized\n', `B: the expired token: ${again.status}`);
	log(`ok: B: ended at exp on an event boundary (raw: ${rawSub.events.length} whole events); the reconnect got 401 and the EventSource is closed (readyState 2)`);
	await relay.stop();
}

async function partC(files) {
	log('--- C: --jwt-expiry retry:200: a fresh token on each reconnect, nothing lost ---');
	const relay = await startRelay(bin, ['--jwt-hs256-secret-file', files.secret, '--jwt-expiry', 'retry:200', '--heartbeat', '60000']);
	const fresh = () => hs256(claims({ subscribe: ['*'] }, 0, { exp: now() + 2 }));
	const rawSub = sseSubscribe(relay.port, { path: `/events?token=${encodeURIComponent(fresh())}` });
	let retryTold = null;
	rawSub.parser.line = ((orig) => function (l) {
		if (/^retry:/.test(l)) retryTold = Number(l.slice(6).trim());
		return orig.call(this, l);
	})(rawSub.parser.line);
	let urls = [];
	const es = new EventSource(`${relay.base}/events`, {
		fetch: (input, init) => {
			const u = `${relay.base}/events?token=${encodeURIComponent(fresh())}`;
			urls.push(u);
			return fetch(u, init);
		},
	});
	atExit(() => es.close());
	const got = [];
	let opens = 0;
	es.onopen = () => opens++;
	es.onmessage = (ev) => got.push(ev.data);
	await until(() => opens === 1, 5000, 'C: the EventSource did not open');
	const pub = publisher(relay.base, { Authorization: `Bearer ${hs256(claims({ publish: ['*'] }, 600))}` });
	const t0 = Date.now();
	await until(() => opens >= 3, 12000, () => `C: only ${opens} opens in ${Date.now() - t0} ms`);
	await pub.stop();
	const sent = pub.count();
	await until(() => got.length >= sent, 5000, () => `C: got ${got.length} of ${sent}`);
	check(es.readyState !== 2, 'C: the EventSource closed for good');
	let bad = 0;
	for (let i = 0; i < sent && bad < 5; i++) if (got[i] !== `event ${i + 1}`) check(false, `C: event #${i + 1} is ${JSON.stringify(got[i])}`), bad++;
	check(got.length === sent, `C: got ${got.length} events, sent ${sent}`);
	await until(() => rawSub.closed(), 3000, 'C: the raw subscriber was not closed at exp');
	check(retryTold === 200, `C: the stream's last retry: is ${retryTold}, want 200`);
	check(rawSub.parser.partial === '' && rawSub.parser.data.length === 0, 'C: the raw stream ended inside a frame');
	log(`ok: C: ${opens} connections, each with a fresh token (${urls.length} fetches), retry: ${retryTold} told at exp; all ${sent} events once, in order`);
	es.close();
	await relay.stop();
}

async function partD() {
	log('--- D: CORS and the Origin check ---');
	const A = 'http://a.example:8000';
	const relay = await startRelay(bin, ['--cors-origin', A, '--heartbeat', '60000']);
	const p = relay.port;
	const pre = (origin, path = '/publish') => ask(p, 'OPTIONS', path, {
		Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization',
	});
	let r = await pre(A);
	check(r.status === 200 && header(r.head, 'Access-Control-Allow-Origin') === A &&
		header(r.head, 'Access-Control-Allow-Credentials') === 'true' && /Authorization/.test(header(r.head, 'Access-Control-Allow-Headers') || '') &&
		/POST/.test(header(r.head, 'Access-Control-Allow-Methods') || '') && header(r.head, 'Vary') === 'Origin',
	`D: preflight from ${A}: ${r.head}`) && log(`ok: D: preflight from the listed origin: 200, ACAO ${A}, credentials, methods, headers, Vary: Origin`);
	r = await pre('http://b.example');
	check(r.status === 200 && header(r.head, 'Access-Control-Allow-Origin') === null && header(r.head, 'Access-Control-Allow-Credentials') === null,
		`D: preflight from another origin: ${r.head}`) && log('ok: D: preflight from an origin not listed: no ACAO, no credentials');
	r = await ask(p, 'POST', '/publish', { Origin: 'http://b.example' }, 'x');
	check(r.status === 403 && r.body === 'forbidden\n', `D: POST from a foreign Origin: ${r.status} ${r.body}`) && log('ok: D: POST /publish from a foreign Origin: 403 "forbidden"');
	r = await ask(p, 'POST', '/publish', { Origin: 'null' }, 'x');
	check(r.status === 403, `D: POST from Origin null: ${r.status}`) && log('ok: D: POST /publish from Origin null: 403');
	r = await ask(p, 'POST', '/publish', { Origin: A }, 'x');
	check(r.status === 202 && header(r.head, 'Access-Control-Allow-Origin') === A, `D: POST from ${A}: ${r.status} ${r.head}`) && log('ok: D: POST /publish from the listed origin: 202 with its ACAO');
	r = await ask(p, 'POST', '/publish', { Origin: `http://127.0.0.1:${p}` }, 'x');
	check(r.status === 202, `D: POST from our own origin: ${r.status}`) && log('ok: D: POST /publish from our own origin: 202');
	r = await ask(p, 'GET', '/events', { Origin: A });
	check(r.status === 200 && header(r.head, 'Access-Control-Allow-Origin') === A && header(r.head, 'Access-Control-Allow-Credentials') === 'true' &&
		header(r.head, 'Vary') === 'Origin', `D: GET /events from ${A}: ${r.head}`) && log('ok: D: GET /events from the listed origin: ACAO, credentials, Vary: Origin');
	r = await ask(p, 'GET', '/events', { Origin: 'http://b.example' });
	check(r.status === 200 && header(r.head, 'Access-Control-Allow-Origin') === null, `D: GET /events from another origin: ${r.head}`) && log('ok: D: GET /events from an origin not listed: no ACAO');
	await relay.stop();

	const star = await startRelay(bin, ['--cors-origin', A, '--cors-origin', '*', '--heartbeat', '60000']);
	r = await ask(star.port, 'OPTIONS', '/events', { Origin: 'http://b.example', 'Access-Control-Request-Method': 'GET' });
	check(r.status === 200 && header(r.head, 'Access-Control-Allow-Origin') === '*' && header(r.head, 'Access-Control-Allow-Credentials') === null,
		`D: '*': preflight from another origin: ${r.head}`) && log("ok: D: with '*': another origin gets ACAO * and no credentials");
	r = await ask(star.port, 'GET', '/events', { Origin: A });
	check(header(r.head, 'Access-Control-Allow-Origin') === A && header(r.head, 'Access-Control-Allow-Credentials') === 'true',
		`D: '*': the listed origin: ${r.head}`) && log("ok: D: with '*': the listed origin still gets itself and credentials");
	r = await ask(star.port, 'POST', '/publish', { Origin: 'http://b.example' }, 'x');
	check(r.status === 202, `D: '*': POST from another origin: ${r.status}`) && log("ok: D: with '*': POST from any origin: 202");
	await star.stop();

	const none = await startRelay(bin, ['--heartbeat', '60000']);
	r = await ask(none.port, 'POST', '/publish', { Origin: 'http://b.example' }, 'x');
	check(r.status === 403, `D: no --cors-origin, no --token: POST from a foreign Origin: ${r.status}`) && log('ok: D: without --cors-origin or --token: a foreign Origin still gets 403');
	r = await ask(none.port, 'OPTIONS', '/publish', { Origin: 'http://b.example' });
	check(r.status === 405 && header(r.head, 'Vary') === null, `D: no --cors-origin: OPTIONS: ${r.status}`) && log('ok: D: without --cors-origin: OPTIONS is 405 as before, no CORS lines');
	await none.stop();
}

await run('auth', async () => {
	const probe = spawnSync(bin, ['--jwt-hs256-secret-file', '/dev/null', '--help'], { encoding: 'utf8', timeout: 5000 });
	const dir = mkdtempSync(join(tmpdir(), 'sse-auth-'));
	atExit(() => rmSync(dir, { recursive: true, force: true }));
	await partD(); // CORS needs no libjwt
	if (probe.status !== 0) {
		log(`SKIP: A-C: ${(probe.stderr || '').split('\n')[0]}`);
		return /without libjwt/.test(probe.stderr || '') ? 'skip' : fail(`sse-relay --jwt-hs256-secret-file: ${probe.stderr}`);
	}
	const files = { secret: join(dir, 'secret'), pem: join(dir, 'public.pem') };
	writeFileSync(files.secret, SECRET + '\n');
	writeFileSync(files.pem, PUBLIC_PEM);
	await partA(files);
	await partB(files);
	await partC(files);
}, 110000);
