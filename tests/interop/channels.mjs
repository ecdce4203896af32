// Interop test: sse-relay's channels (/events/NAME, /publish/NAME).
//
// A. Isolation: raw subscribers of a, b and the default channel; events
//    published to each in a mixed order: every subscriber gets exactly
//    its channel's events, in order, with its channel's ids (an epoch of
//    its own, 1, 2, ...); the default channel keeps its paths and ids.
//    A subscribe creates a channel as a publish does. Names out of
//    [A-Za-z0-9._-]{1,64} answer 404; a 64-character name works.
// B. Resume in a channel: a subscriber of b comes back with the
//    Last-Event-ID of b's event 2 and gets exactly b's events after it; an
//    id of channel a given to channel b gets the reset event.
// C. Life of a channel, seen through /metrics (sse_relay_channels and its
//    counters): kept while it has a subscriber, however idle; freed
//    --channel-idle after its last subscriber left, its ring with it (a
//    resume then gets the reset event).
// D. The cap, --max-channels 4: a new channel beyond it gets 503 for a
//    publish, 200 with a retry: and no event for a subscribe; existing
//    channels keep working; room comes back when one is freed.
// E. A real EventSource (the npm package) on /events/a across >= 20 forced
//    cuts (--max-lifetime rotation) while events are published at random
//    to a and b: every event of a once, in order, none of b's.
// F. Auth (when the relay has libjwt): a token granting channel a only:
//    /events/a 200, /publish/a 202, /events/b and /publish/b 403.
//
//   node channels.mjs PATH-TO-sse-relay    (via node-test.sh --npm)
//
// SPDX-License-Identifier: MIT

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { WRAPPER, atExit, check, checkId, fail, learnEpoch, log, raw, run, sleep, sseSubscribe, startRelay, until } from './relay.mjs';

const bin = process.argv[2];
const SLOW = WRAPPER.length ? 4 : 1;
const IDLE = 400 * SLOW;

async function metrics(base) {
	const text = await (await fetch(base + '/metrics')).text();
	const v = (name) => {
		const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
		if (!m) fail(`/metrics has no ${name}`);
		return Number(m[1]);
	};
	return { channels: v('sse_relay_channels'), created: v('sse_relay_channels_created_total'),
		freed: v('sse_relay_channels_freed_total'), refused: v('sse_relay_channels_refused_total') };
}

/** One request on a fresh connection: {status, body}. */
async function ask(port, method, path, body = '', headers = {}) {
	const h = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
	const len = method === 'POST' ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : '';
	const r = await raw(port, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${h}${len}Connection: close\r\n\r\n${body}`,
		{ ms: method === 'GET' && path.startsWith('/events') ? 300 * SLOW : 5000 });
	const text = r.data.toString('latin1');
	const at = text.indexOf('\r\n\r\n');
	return { status: r.status, body: at < 0 ? '' : text.slice(at + 4) };
}

/** POST data to /publish/CH (CH '': /publish): the id, or fail. */
async function publishTo(base, ch, data) {
	const res = await fetch(`${base}/publish${ch ? '/' + ch : ''}`, { method: 'POST', body: data });
	const text = await res.text();
	if (res.status !== 202) fail(`/publish/${ch} of ${JSON.stringify(data)}: ${res.status} ${text}`);
	return text.replace(/\n$/, '');
}

const opened = (s) => until(() => s.status() !== null && s.bytes() > 0, 5000 * SLOW, 'a subscriber got no head and opening bytes');

async function partA(relay) {
	log('--- A: isolation ---');
	const { port, base } = relay;
	let m = await metrics(base);
	check(m.channels === 0 && m.created === 0, `A: channels at start: ${JSON.stringify(m)}`);
	const subs = { a: sseSubscribe(port, { path: '/events/a' }), b: sseSubscribe(port, { path: '/events/b' }), '': sseSubscribe(port) };
	for (const s of Object.values(subs)) await opened(s);
	m = await metrics(base);
	check(m.channels === 2 && m.created === 2, `A: subscribes create channels: ${JSON.stringify(m)}`) &&
		log('ok: A: subscribing to a and b created two channels (the default is not counted)');
	const sent = { a: [], b: [], '': [] };
	const ids = { a: [], b: [], '': [] };
	for (const ch of ['a', 'b', 'a', '', 'b', 'a', '', 'b', 'b', 'a']) {
		const data = `${ch || 'default'} ${sent[ch].length + 1}`;
		ids[ch].push(await publishTo(base, ch, data));
		sent[ch].push(data);
	}
	const epochs = {};
	for (const ch of Object.keys(sent)) {
		epochs[ch] = learnEpoch(ids[ch][0], `A: id of channel "${ch}"`);
		ids[ch].forEach((id, i) => checkId(id, epochs[ch], i + 1, `A: channel "${ch}" publish ${i + 1}`));
	}
	check(new Set(Object.values(epochs)).size === 3, `A: epochs ${JSON.stringify(epochs)} not all different`);
	for (const [ch, s] of Object.entries(subs)) {
		await until(() => s.events.length >= sent[ch].length, 5000 * SLOW, () => `A: subscriber of "${ch}" got ${s.events.length} of ${sent[ch].length}`);
		await sleep(100);
		const got = s.events.map((e) => `${e.id}|${e.data}`);
		const want = sent[ch].map((d, i) => `${ids[ch][i]}|${d}`);
		check(JSON.stringify(got) === JSON.stringify(want), `A: subscriber of "${ch}" got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`) &&
			log(`ok: A: the subscriber of "${ch || 'default'}" got exactly its ${want.length} events, in order, with its ids`);
	}
	for (const bad of ['/events/bad!name', '/events/', '/publish/', `/events/${'x'.repeat(65)}`, '/events/a/b', '/publish/a%2Fb']) {
		const r = await ask(port, bad.startsWith('/publish') ? 'POST' : 'GET', bad, 'x');
		check(r.status === 404, `A: ${bad}: ${r.status}, want 404`);
	}
	log('ok: A: bad channel names answer 404');
	const long = 'L'.repeat(60) + '.-_9';
	check((await ask(port, 'POST', `/publish/${long}`, 'x')).status === 202, 'A: a 64-character name') && log('ok: A: a 64-character name is a channel');
	return { subs, ids, epochs, sent };
}

async function partB(relay, a) {
	log('--- B: resume in a channel ---');
	const { port, base } = relay;
	a.subs.b.close();
	const more = [await publishTo(base, 'b', 'b 5'), await publishTo(base, 'b', 'b 6')];
	const back = sseSubscribe(port, { path: '/events/b', headers: { 'Last-Event-ID': a.ids.b[1] } });
	await until(() => back.events.length >= 4, 5000 * SLOW, () => `B: resumed subscriber got ${back.events.length} of 4`);
	await sleep(100);
	const want = [...a.ids.b.slice(2), ...more].join(' ');
	check(back.events.map((e) => e.id).join(' ') === want, `B: resumed ids ${back.events.map((e) => e.id).join(' ')}, want ${want}`) &&
		log(`ok: B: /events/b from ${a.ids.b[1]} resumed exactly: ${want}`);
	back.close();
	const wrong = sseSubscribe(port, { path: '/events/b', headers: { 'Last-Event-ID': a.ids.a[0] } });
	await until(() => wrong.events.length >= 1, 5000 * SLOW, 'B: an id of a on b got nothing');
	check(wrong.events[0].type === 'sse-reset', `B: an id of a on b: first event ${JSON.stringify(wrong.events[0])}, want sse-reset`) &&
		log('ok: B: an id of channel a given to channel b gets the reset event');
	wrong.close();
}

async function partC(relay, a) {
	log('--- C: idle channels are freed, held ones kept ---');
	const { port, base } = relay;
	// The 64-character channel has no subscriber: freed; a has one: kept.
	await sleep(IDLE * 3);
	let m = await metrics(base);
	check(m.channels === 1 && m.freed === 2, `C: after ${IDLE * 3} ms: ${JSON.stringify(m)}, want only a left (b, the long one freed)`) &&
		log(`ok: C: channels without subscribers freed after --channel-idle ${IDLE}; a, subscribed, kept (${JSON.stringify(m)})`);
	a.subs.a.close();
	await sleep(IDLE / 4);
	m = await metrics(base);
	check(m.channels === 1, `C: a freed too early: ${JSON.stringify(m)}`);
	const end = Date.now() + IDLE * 4;
	while (Date.now() < end && (await metrics(base)).channels !== 0) await sleep(50);
	m = await metrics(base);
	check(m.channels === 0 && m.freed === 3, `C: a not freed after its subscriber left: ${JSON.stringify(m)}`) &&
		log('ok: C: a freed once its last subscriber left and it stayed idle');
	const again = sseSubscribe(port, { path: '/events/a', headers: { 'Last-Event-ID': a.ids.a.at(-1) } });
	await until(() => again.events.length >= 1, 5000 * SLOW, 'C: a resume on a freed channel got nothing');
	check(again.events[0].type === 'sse-reset', `C: resume on a freed channel: ${JSON.stringify(again.events[0])}, want sse-reset`) &&
		log('ok: C: a resume on a channel freed meanwhile gets the reset event');
	again.close();
}

async function partD(relay) {
	log('--- D: --max-channels 4 ---');
	const { port, base } = relay;
	// C's last resume made a again: wait until it is freed.
	const t = Date.now() + IDLE * 6;
	while (Date.now() < t && (await metrics(base)).channels !== 0) await sleep(50);
	let m = await metrics(base);
	check(m.channels === 0, `D: channels left from C: ${JSON.stringify(m)}`);
	const holders = [];
	for (let i = 0; i < 4; i++) {
		const s = sseSubscribe(port, { path: `/events/cap${i}` });
		await opened(s);
		holders.push(s);
	}
	m = await metrics(base);
	check(m.channels === 4, `D: ${JSON.stringify(m)}, want 4 channels`);
	const pub = await ask(port, 'POST', '/publish/over', 'x');
	check(pub.status === 503, `D: a publish to a fifth channel: ${pub.status}, want 503`) && log('ok: D: a publish to a fifth channel: 503');
	const sub = await ask(port, 'GET', '/events/over');
	check(sub.status === 200 && /^retry: \d+\n\n$/.test(sub.body), `D: a subscribe to a fifth channel: ${sub.status} ${JSON.stringify(sub.body)}, want 200 and only a retry:`) &&
		log(`ok: D: a subscribe to a fifth channel: 200 with ${JSON.stringify(sub.body)}`);
	check((await metrics(base)).refused === m.refused + 2, 'D: refusals not counted');
	check((await ask(port, 'POST', '/publish/cap1', 'x')).status === 202, 'D: an existing channel refused at the cap') &&
		log('ok: D: existing channels still take publishes at the cap');
	check((await ask(port, 'POST', '/publish', 'x')).status === 202, 'D: the default channel refused at the cap');
	holders[0].close();
	const end = Date.now() + IDLE * 6;
	let st = 0;
	while (Date.now() < end && (st = (await ask(port, 'POST', '/publish/over', 'x')).status) !== 202) await sleep(50);
	check(st === 202, `D: no room after a channel was freed: ${st}`) && log('ok: D: room again once a channel was freed');
	for (const h of holders) h.close();
}

async function partE() {
	log('--- E: an EventSource on /events/a across >= 20 rotations ---');
	const relay = await startRelay(bin, ['--max-lifetime', '300', '--retry', '50', '--heartbeat', '60000']);
	const got = [];
	let opens = 0;
	const es = new EventSource(`${relay.base}/events/a`);
	atExit(() => es.close());
	es.onopen = () => opens++;
	es.onmessage = (ev) => got.push({ id: ev.lastEventId, data: ev.data });
	await until(() => opens === 1, 5000 * SLOW, 'E: the EventSource did not open');
	const sent = { a: [], b: [] };
	const ids = {};
	let epoch = null;
	const t0 = Date.now();
	while (opens < 21 || Date.now() - t0 < 2000) {
		if (Date.now() - t0 > 60000 * SLOW) fail(`E: only ${opens - 1} reconnections in 60 s`);
		const ch = Math.random() < 0.6 ? 'a' : 'b';
		const data = `${ch} ${sent[ch].length + 1}`;
		const id = await publishTo(relay.base, ch, data);
		if (ch === 'a') {
			epoch ??= learnEpoch(id, 'E: id of a');
			ids[data] = id;
		}
		sent[ch].push(data);
		await sleep(Math.random() * 15);
	}
	await until(() => got.length >= sent.a.length, 5000 * SLOW, () => `E: got ${got.length} of ${sent.a.length} events of a`);
	await sleep(200);
	es.close();
	const want = sent.a.map((d) => `${ids[d]}|${d}`).join('\n');
	const have = got.map((e) => `${e.id}|${e.data}`).join('\n');
	const seen = new Set(got.map((e) => e.data));
	check(have === want, `E: ${got.length} events (${seen.size} distinct) of ${sent.a.length} sent to a; first difference at ` +
		`${[...have.split('\n')].findIndex((l, i) => l !== want.split('\n')[i])}`) &&
		log(`ok: E: ${opens - 1} reconnections; all ${sent.a.length} events of a once, in order, with a's ids; none of b's ${sent.b.length}`);
	await relay.stop();
}

async function partF() {
	log('--- F: auth by channel ---');
	if (!spawnSync(bin, ['--help']).stdout.toString().includes('--jwt-hs256-secret-file')) {
		log('skip: F: the relay has no libjwt');
		return;
	}
	const dir = mkdtempSync(join(tmpdir(), 'sse-channels-'));
	atExit(() => rmSync(dir, { recursive: true, force: true }));
	const secret = crypto.randomBytes(32).toString('hex');
	writeFileSync(join(dir, 'secret'), secret);
	const relay = await startRelay(bin, ['--jwt-hs256-secret-file', join(dir, 'secret'), '--heartbeat', '60000']);
	const b64u = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
	const now = Math.floor(Date.now() / 1000);
	const signed = `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u({ sub: 't', iat: now, exp: now + 60, sse: { subscribe: ['a'], publish: ['a'] } })}`;
	const token = `${signed}.${crypto.createHmac('sha256', secret).update(signed).digest('base64url')}`;
	const h = { Authorization: `Bearer ${token}` };
	const want = [['GET', '/events/a', 200], ['POST', '/publish/a', 202], ['GET', '/events/b', 403], ['POST', '/publish/b', 403], ['GET', '/events', 403]];
	for (const [method, path, st] of want) {
		const r = await ask(relay.port, method, path, 'x', h);
		check(r.status === st, `F: ${method} ${path} with a token for a: ${r.status}, want ${st}`);
	}
	log('ok: F: a token granting channel a: /events/a 200, /publish/a 202; b and the default 403');
	await relay.stop();
}

await run('channels', async () => {
	const relay = await startRelay(bin, ['--channel-idle', String(IDLE), '--max-channels', '4', '--heartbeat', '60000']);
	const a = await partA(relay);
	await partB(relay, a);
	await partC(relay, a);
	await partD(relay);
	a.subs[''].close();
	await relay.stop();
	await partE();
	await partF();
}, 180000);
