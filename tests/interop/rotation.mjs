// Interop test: graceful rotation.
//
// A. --max-lifetime 400 (give or take a tenth) --retry 50: a real
//    EventSource (the npm package) stays subscribed while an event is
//    published every 10 ms, across at least 20 rotations: each stream
//    ends on an event boundary and the client reconnects with
//    Last-Event-ID, so it gets every event exactly once, in order. The
//    lifetimes it saw are printed (their spread is the jitter). A raw
//    subscriber checks the bytes: each stream it gets ends with a whole
//    frame (nothing after the last blank line).
// B. Shutdown with --shutdown-retry-window 4000: 40 raw subscribers, events
//    flowing; at SIGTERM each stream's last frame is "retry: N" with N in
//    400..4000, N spread over the window, the stream ends on an event
//    boundary after every event published before, and the relay exits 0.
//
//   node rotation.mjs PATH-TO-sse-relay    (via node-test.sh --npm)
//
// SPDX-License-Identifier: MIT

import { EventSource } from 'eventsource';
import { atExit, check, fail, log, publishOk, run, sleep, sseSubscribe, startRelay, until } from './relay.mjs';

async function lifetime(bin) {
	log('--- A: --max-lifetime 400 with an EventSource ---');
	const relay = await startRelay(bin, ['--max-lifetime', '400', '--retry', '50', '--heartbeat', '60000']);
	const got = [];
	const opens = [];
	const es = new EventSource(`${relay.base}/events`);
	atExit(() => es.close());
	es.onopen = () => opens.push(Date.now());
	es.onmessage = (ev) => got.push(ev);
	await until(() => opens.length === 1, 5000, 'A: the EventSource did not open');
	// A raw subscriber, reconnected by hand, to look at where streams end.
	const ends = [];
	let raw = sseSubscribe(relay.port, { keep: false });
	let sent = 0;
	let publishing = true;
	const publisher = (async () => {
		while (publishing) {
			await publishOk(relay.base, `event ${++sent}`);
			await sleep(10);
		}
	})();
	const t0 = Date.now();
	while (opens.length < 22) {
		if (Date.now() - t0 > 40000) fail(`A: only ${opens.length - 1} rotations in 40 s`);
		if (raw.closed()) {
			ends.push({ partial: raw.parser.partial, data: raw.parser.data.length });
			raw = sseSubscribe(relay.port, { keep: false });
		}
		await sleep(20);
	}
	publishing = false;
	await publisher;
	await until(() => got.length >= sent, 5000, () => `A: the EventSource got ${got.length} of ${sent} events`);
	await sleep(200);
	let bad = 0;
	for (let i = 0; i < Math.max(got.length, sent) && bad < 5; i++)
		if (!got[i] || got[i].data !== `event ${i + 1}`)
			check(false, `A: event #${i + 1} is ${got[i] ? JSON.stringify(got[i].data) : 'missing'}`), bad++;
	const lives = opens.slice(1).map((t, i) => t - opens[i]);
	log(`A: ${opens.length - 1} rotations, ${sent} events published, ${got.length} received; time between opens ${Math.min(...lives)}..${Math.max(...lives)} ms (lifetime 360..440 + retry 50 + reconnect)`);
	check(Math.max(...lives) - Math.min(...lives) >= 20, 'A: every stream lived as long: no jitter');
	check(Math.min(...lives) >= 340, `A: a stream ended after ${Math.min(...lives)} ms, before its lifetime`);
	if (bad === 0 && got.length === sent) log(`ok: A: every one of ${sent} events once, in order, across ${opens.length - 1} rotations`);
	check(ends.length >= 10, `A: the raw subscriber saw only ${ends.length} streams end`);
	const cut = ends.filter((e) => e.partial !== '' || e.data !== 0);
	check(cut.length === 0, `A: ${cut.length} of ${ends.length} streams ended inside a frame`);
	log(`ok: A: ${ends.length} streams seen raw, each ended on an event boundary`);
	es.close();
	raw.close();
	await relay.stop();
}

async function shutdown(bin) {
	log('--- B: SIGTERM with --shutdown-retry-window 4000 ---');
	const relay = await startRelay(bin, ['--shutdown-retry-window', '4000', '--heartbeat', '60000']);
	const subs = [];
	const ends = [];
	for (let i = 0; i < 40; i++) {
		const retries = [];
		const s = sseSubscribe(relay.port);
		s.parser.line = ((orig) => function (l) {
			if (/^retry:/.test(l)) retries.push(Number(l.slice(6).trim()));
			return orig.call(this, l);
		})(s.parser.line);
		s.retries = retries;
		subs.push(s);
	}
	await until(() => subs.every((s) => s.status() === 200 && s.bytes() > 0), 5000, 'B: subscribers not all served');
	let sent = 0;
	for (; sent < 50; sent++) await publishOk(relay.base, `before ${sent + 1} ${'x'.repeat(2000)}`);
	const stopping = relay.stop();
	await until(() => subs.every((s) => s.closed()), 5000, 'B: streams still open 5 s after SIGTERM');
	await stopping;
	const told = [];
	for (const [i, s] of subs.entries()) {
		check(s.events.length === sent, `B: subscriber ${i} got ${s.events.length} of ${sent} events`);
		check(s.parser.partial === '' && s.parser.data.length === 0, `B: subscriber ${i}'s stream ended inside a frame`);
		if (check(s.retries.length === 1, `B: subscriber ${i} saw retry fields ${JSON.stringify(s.retries)}, want one`)) told.push(s.retries[0]);
		ends.push(s);
	}
	const inWindow = told.filter((n) => n >= 400 && n <= 4000);
	check(inWindow.length === told.length, `B: retries outside 400..4000: ${told.filter((n) => n < 400 || n > 4000)}`);
	const sorted = [...told].sort((a, b) => a - b);
	const mean = told.reduce((a, b) => a + b, 0) / (told.length || 1);
	const sd = Math.sqrt(told.reduce((a, b) => a + (b - mean) ** 2, 0) / (told.length || 1));
	log(`B: retry told at shutdown to ${told.length} subscribers: min ${sorted[0]}, median ${sorted[sorted.length >> 1]}, max ${sorted[sorted.length - 1]}, sd ${Math.round(sd)} ms (uniform on 400..4000: sd 1039)`);
	check(sd > 500 && new Set(told).size > 30, 'B: the retries are not spread over the window');
	log(`ok: B: each of ${subs.length} streams got all ${sent} events, then one retry:, and ended on an event boundary; the relay exited 0`);
}

await run('rotation', async () => {
	await lifetime(process.argv[2]);
	await shutdown(process.argv[2]);
}, 90000);
