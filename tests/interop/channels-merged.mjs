// sse-relay: one connection following several channels as one merged
// stream, GET /events?channel=a&channel=b (examples/relay-merge.c).
//
//  A. The real `eventsource` client on a+b across >= 20 forced cuts
//     (--max-lifetime rotation) while events go to a and b at random:
//     every event of both exactly once, in order per channel.
//  B. A resume whose part for a is lost (unknown id): a's reset event,
//     its data naming the channel; b resumes exactly.
//  C. The composite id's format and bound; 400 past 8 channels, for a bad
//     name or one twice; one keep-alive per interval, not one per channel.
//  D. A token granting a only: a+b is 403, a alone 200.
//  E. A merged subscriber that reads nothing while MiBs go to a and b, past
//     the rings: the whole connection is dropped (logged), the relay keeps
//     serving, and a resume with the last whole event's composite id gets
//     a reset event for each lost channel, then live events.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { WRAPPER, atExit, check, fail, log, raw, run, sleep, startRelay, until } from './relay.mjs';

const bin = process.argv[2];
const SLOW = WRAPPER.length ? 4 : 1;
const CURSOR_RE = /^([A-Za-z0-9._-]{1,64}:[^;:\r\n]{0,64})(;[A-Za-z0-9._-]{1,64}:[^;:\r\n]{0,64}){0,7}$/;

async function publishTo(base, ch, data) {
	const res = await fetch(`${base}/publish/${ch}`, { method: 'POST', body: data });
	const text = await res.text();
	if (res.status !== 202) fail(`/publish/${ch}: ${res.status} ${text}`);
	return text.replace(/\n$/, '');
}

async function get(port, path, headers = {}) {
	const h = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
	const r = await raw(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${h}Connection: close\r\n\r\n`, { ms: 400 * SLOW });
	const text = r.data.toString('latin1');
	const at = text.indexOf('\r\n\r\n');
	return { status: r.status, body: at < 0 ? '' : text.slice(at + 4) };
}

/** The events of a stream's body: [{id, event, data}]. */
function events(body) {
	return body.split('\n\n').filter((f) => /^(id|data|event):/m.test(f)).map((f) => {
		const ev = { id: '', event: 'message', data: '' };
		for (const line of f.split('\n')) {
			const m = /^(id|event|data): ?(.*)$/.exec(line);
			if (m) ev[m[1]] = m[2];
		}
		return ev;
	});
}

async function partA() {
	log('--- A: an EventSource on a+b across >= 20 rotations ---');
	const relay = await startRelay(bin, ['--max-lifetime', '300', '--retry', '50', '--heartbeat', '60000']);
	const got = [];
	let opens = 0;
	const es = new EventSource(`${relay.base}/events?channel=a&channel=b`);
	atExit(() => es.close());
	es.onopen = () => opens++;
	es.onmessage = (ev) => got.push({ id: ev.lastEventId, data: ev.data });
	await until(() => opens === 1, 5000 * SLOW, 'A: the EventSource did not open');
	const sent = { a: [], b: [] };
	const t0 = Date.now();
	while (opens < 21 || Date.now() - t0 < 2000) {
		if (Date.now() - t0 > 60000 * SLOW) fail(`A: only ${opens - 1} reconnections in 60 s`);
		const ch = Math.random() < 0.5 ? 'a' : 'b';
		const data = `${ch} ${sent[ch].length + 1}`;
		await publishTo(relay.base, ch, data);
		sent[ch].push(data);
		await sleep(Math.random() * 15);
	}
	const total = sent.a.length + sent.b.length;
	await until(() => got.length >= total, 5000 * SLOW, () => `A: got ${got.length} of ${total} events`);
	await sleep(300);
	es.close();
	const seen = new Map();
	for (const e of got) seen.set(e.data, (seen.get(e.data) || 0) + 1);
	const dup = [...seen.values()].filter((n) => n > 1).length;
	const lost = [...sent.a, ...sent.b].filter((d) => !seen.has(d)).length;
	const order = (ch) => got.filter((e) => e.data.startsWith(ch + ' ')).map((e) => e.data).join('\n') === sent[ch].join('\n');
	const badIds = got.filter((e) => !CURSOR_RE.test(e.id)).length;
	log(`A: ${opens - 1} reconnections; sent a ${sent.a.length}, b ${sent.b.length}; got ${got.length}; lost ${lost}, duplicated ${dup}, bad ids ${badIds}`);
	check(lost === 0 && dup === 0 && got.length === total && order('a') && order('b') && badIds === 0,
		`A: lost ${lost}, duplicated ${dup}, got ${got.length} of ${total}, order a ${order('a')} b ${order('b')}`) &&
		log(`ok: A: every event of a and b once, in order per channel, across ${opens - 1} cuts`);
	await relay.stop();
}

async function partBC() {
	log('--- B, C: a lost part resets its channel only; the cursor; 400s ---');
	const relay = await startRelay(bin, ['--heartbeat', '60000']);
	const port = relay.port;
	const ida1 = await publishTo(relay.base, 'a', 'a1');
	const idb1 = await publishTo(relay.base, 'b', 'b1');
	await publishTo(relay.base, 'a', 'a2');
	await publishTo(relay.base, 'b', 'b2');
	const exact = events((await get(port, '/events?channel=a&channel=b', { 'Last-Event-ID': `a:${ida1};b:${idb1}` })).body);
	check(exact.map((e) => e.data).join(',') === 'a2,b2', `C: exact resume: ${JSON.stringify(exact)}`) &&
		log('ok: C: a composite id resumes both channels exactly');
	const last = exact[exact.length - 1].id;
	check(CURSOR_RE.test(last) && last.startsWith('a:') && last.includes(';b:') && last.length <= 8 * 130,
		`C: composite id ${JSON.stringify(last)}`) && log(`ok: C: composite id ${last} (bound 8 x (64 + 1 + 64 + 1) = 1040 bytes)`);
	const lost = events((await get(port, '/events?channel=a&channel=b', { 'Last-Event-ID': `a:zzzzzzzz-1;b:${idb1}` })).body);
	check(lost.length === 2 && lost[0].event === 'sse-reset' && lost[0].data === 'a' && lost[1].data === 'b2',
		`B: ${JSON.stringify(lost)}`) && log('ok: B: a lost part of a: a\'s reset event (data "a"), b resumed exactly');
	const many = Array.from({ length: 9 }, (_, i) => `channel=c${i}`).join('&');
	const st9 = (await get(port, `/events?${many}`)).status;
	const stBad = (await get(port, '/events?channel=a&channel=a')).status;
	const stName = (await get(port, '/events?channel=a%2Fb')).status;
	check(st9 === 400 && stBad === 400 && stName === 400, `C: 9 channels ${st9}, twice ${stBad}, bad name ${stName}`) &&
		log('ok: C: 400 for 9 channels, a channel twice, a bad name');
	await relay.stop();
}

async function partHeartbeat() {
	const relay = await startRelay(bin, ['--heartbeat', '100']);
	const r = await raw(relay.port, `GET /events?channel=a&channel=b&channel=c HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\nConnection: close\r\n\r\n`, { ms: 1050 * SLOW });
	const text = r.data.toString('latin1');
	const beats = text.slice(text.indexOf('\r\n\r\n') + 4).split('\n').filter((l) => l === ':').length;
	const per = (1050 * SLOW) / 100; // intervals in the window: one stream beats that often, three 3x
	check(r.status === 200 && beats >= per / 3 && beats <= per * 1.5 + 3,
		`C: ${beats} keep-alive lines in ${1050 * SLOW} ms at --heartbeat 100 on 3 channels, want about ${per}`) &&
		log(`ok: C: ${beats} keep-alive lines in ${1050 * SLOW} ms at --heartbeat 100 on 3 channels (one stream beats, not three: ~${per})`);
	await relay.stop();
}

async function partD() {
	if (!spawnSync(bin, ['--help']).stdout.toString().includes('--jwt-hs256-secret-file')) {
		log('skip: D: the relay has no libjwt');
		return;
	}
	const dir = mkdtempSync(join(tmpdir(), 'sse-merged-'));
	atExit(() => rmSync(dir, { recursive: true, force: true }));
	const secret = crypto.randomBytes(32).toString('hex');
	writeFileSync(join(dir, 'secret'), secret);
	const relay = await startRelay(bin, ['--jwt-hs256-secret-file', join(dir, 'secret'), '--heartbeat', '60000']);
	const b64u = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
	const now = Math.floor(Date.now() / 1000);
	const signed = `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u({ sub: 't', iat: now, exp: now + 60, sse: { subscribe: ['a'] } })}`;
	const h = { Authorization: `Bearer ${signed}.${crypto.createHmac('sha256', secret).update(signed).digest('base64url')}` };
	const ab = (await get(relay.port, '/events?channel=a&channel=b', h)).status;
	const a = (await get(relay.port, '/events?channel=a', h)).status;
	check(ab === 403 && a === 200, `D: a token for a: a+b ${ab}, want 403; a ${a}, want 200`) &&
		log('ok: D: a token granting a: /events?channel=a&channel=b 403, ?channel=a 200');
	await relay.stop();
}

async function partE() {
	const relay = await startRelay(bin, ['--heartbeat', '60000', '--replay-bytes', String(1 << 20), '--sndbuf', '16384']);
	const net = await import('node:net');
	let got = '';
	let closed = false;
	const sock = net.connect(relay.port, '127.0.0.1', () =>
		sock.write(`GET /events?channel=a&channel=b HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\n\r\n`));
	atExit(() => sock.destroy());
	sock.on('data', (d) => { got += d.toString('latin1'); });
	sock.on('error', () => { closed = true; });
	sock.on('close', () => { closed = true; });
	await until(() => got.includes('\r\n\r\n'), 5000 * SLOW, 'E: no head');
	sock.pause();
	const big = 'x'.repeat(32 * 1024);
	for (let i = 0; i < 200; i++) await publishTo(relay.base, i % 2 ? 'b' : 'a', `${i} ${big}`);
	await until(() => /dropped a slow subscriber/.test(relay.stderr()), 10000 * SLOW, 'E: the paused merged subscriber was not dropped');
	sock.resume();
	await until(() => closed, 10000 * SLOW, 'E: its connection did not end');
	const whole = events(got.slice(got.indexOf('\r\n\r\n') + 4).replace(/[^\n]*$/, '').replace(/\n?$/, '\n'))
		.filter((e) => e.id !== '');
	const cursor = whole.length ? whole[whole.length - 1].id : '';
	check(CURSOR_RE.test(cursor), `E: last whole event's id ${JSON.stringify(cursor)}`);
	const after = events((await get(relay.port, '/events?channel=a&channel=b', { 'Last-Event-ID': cursor })).body);
	const resets = after.filter((e) => e.event === 'sse-reset').map((e) => e.data).sort().join(',');
	check(resets === 'a,b', `E: resume after the drop: resets ${resets}; ${after.length} events`) &&
		log(`ok: E: a paused merged subscriber was dropped whole after ${whole.length} whole events; its resume got the reset of ${resets}`);
	await relay.stop();
}

await run('channels-merged', async () => {
	await partBC();
	await partHeartbeat();
	await partD();
	await partE();
	await partA();
}, 180000);
