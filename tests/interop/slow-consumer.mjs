// Interop test 7: slow consumers. The relay's contract: a subscriber is
// dropped only when it has missed events (the replay ring dropped a frame
// it still owes) or when its socket took no byte for the stall time
// (--stall MS) while it owed bytes; one that reads slowly but steadily is
// never dropped for how much it owes. Drops are logged on stderr as
// "NAME: dropped a slow subscriber: <reason>" (NAME: the server's). Ids are the default
// "<epoch>-<n>"; each part learns its relay's epoch from /publish.
//
// A. Past the ring: one subscriber reads nothing (its socket is paused, so
//    the kernel buffers fill up) while 64 MiB of events are published, far
//    past the ring's 8 MiB. It must be dropped (missed events), the relay's
//    memory must stay bounded, /publish keeps answering, and a reading
//    subscriber gets every event exactly once, in order. The stalled
//    client, reading again, sees its stream end; resuming from the last
//    event it got whole, it is told in-band: the sse-reset event with the
//    newest id, then live events.
// B. The stall time: with --stall 1000 and a ring large enough for all
//    that is published, a subscriber that reads nothing has missed nothing
//    but its socket takes nothing: it is dropped about a second after,
//    not earlier for what it owes. Resuming from its last whole event it
//    then gets every event after it, with no reset (nothing was lost).
// C. A slow but steady reader: a socket read 16 KiB at a time with a
//    50 ms pause after each read (about 320 KiB/s; its receive buffer stays
//    the kernel's default, 128 KiB, as a slow reader's is not grown), while
//    about 6.5 MiB of events are published (less than the ring holds), one
//    of them a frame of 2.5 MiB (a 1 MiB body of 3-character lines). With
//    the relay's default stall time it must never be dropped, must be MiBs
//    behind at its slowest (with ss: of which the relay itself, not the
//    kernel, held more than 512 KiB, twice the old cut-off), and must
//    receive every event exactly once, in order, intact; a fast reader
//    meanwhile gets everything at once. SSE_SLOW_READER_STALL=MS runs this
//    part with --stall MS.
//
// Each stream is parsed as the WHATWG standard says (SseParser).
//
//   node slow-consumer.mjs PATH-TO-sse-relay    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
	WRAPPER, check, checkId, fail, idOf, learnEpoch, log, publishOk, run, sleep, sseSubscribe, startRelay, until,
} from './relay.mjs';

function rssKiB(pid) {
	const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
	return m ? Number(m[1]) : 0;
}

function show(ev) {
	return ev ? `${ev.type}(${ev.lastEventId}) ${JSON.stringify(ev.data.slice(0, 24))}${ev.data.length > 24 ? `...(${ev.data.length} chars)` : ''}` : 'nothing';
}

/** The drop lines the relay logged so far. */
function drops(relay) {
	return relay.stderr().split('\n').filter((l) => /^[a-z0-9-]+: dropped a slow subscriber: /.test(l));
}

/**
 * Check that events are exactly want (an array of {data, n}) with ids
 * idOf(epoch, n), each frame with its own id, in order, once each.
 */
function checkSequence(what, events, want, epoch) {
	let bad = 0;
	for (let i = 0; i < Math.max(events.length, want.length) && bad < 5; i++) {
		const g = events[i];
		const w = want[i];
		if (!g || !w || g.type !== 'message' || g.data !== w.data || g.id !== idOf(epoch, w.n) || g.lastEventId !== idOf(epoch, w.n)) {
			check(false, `${what}: event #${i + 1} is ${show(g)}${g ? ` (own id ${JSON.stringify(g.id)})` : ''}, want ${w ? `message(${idOf(epoch, w.n)}) ${JSON.stringify(w.data.slice(0, 24))}...(${w.data.length} chars)` : 'nothing'}`);
			bad++;
		}
	}
	return bad === 0;
}

/** A: a stalled subscriber, 64 MiB published past the ring. */
async function pastTheRing(bin) {
	log('--- A: a subscriber that stops reading while 64 MiB pass the 8 MiB ring ---');
	const relay = await startRelay(bin, ['--heartbeat', '60000']);
	let epoch = null;

	// The reader checks each event as it comes (64 MiB are not kept).
	const count = 128;
	const body = 'p'.repeat(512 * 1024);
	let readerEvents = 0;
	let readerBad = 0;
	const reader = sseSubscribe(relay.port, {
		keep: false,
		onEvent: (ev) => {
			readerEvents++;
			const want = readerEvents <= count ? `${readerEvents} ${body}` : 'after';
			if (ev.data !== want || (epoch !== null && ev.lastEventId !== idOf(epoch, readerEvents)) || ev.id !== ev.lastEventId)
				if (readerBad++ < 3) check(false, `A: the reader's event #${readerEvents} is ${show(ev)}`);
		},
	});

	// The stalled one: reads the head and the opening bytes, then stops.
	const stalled = sseSubscribe(relay.port);
	await until(() => stalled.status() === 200 && stalled.parser.comments + stalled.bytes() > 0 && reader.status() === 200, 5000,
		'A: the subscribers got no opening bytes');
	stalled.pause();

	const rss0 = rssKiB(relay.proc.pid);
	let maxRss = rss0;
	const t0 = Date.now();
	for (let i = 1; i <= count; i++) {
		const id = await publishOk(relay.base, `${i} ${body}`);
		if (i === 1) epoch = learnEpoch(id, 'A: the first /publish answer');
		checkId(id, epoch, i, `A: /publish answer ${i}`);
		if (i % 8 === 0) {
			maxRss = Math.max(maxRss, rssKiB(relay.proc.pid));
			// Let the reader keep up, as a live client would.
			await until(() => readerEvents >= i - 8 || reader.closed(), 10000, () => `A: the reader is stuck at ${readerEvents} of ${i} events`);
		}
	}
	const ms = Date.now() - t0;
	await until(() => readerEvents >= count || reader.closed(), 15000, () => `A: the reader got ${readerEvents} of ${count} events`);
	check(!reader.closed() && readerEvents === count && readerBad === 0,
		`A: the reading subscriber got ${readerEvents} of ${count} events, ${readerBad} wrong (closed: ${reader.closed()})`);
	log(`published ${count} events of 512 KiB in ${ms} ms; the reader got ${readerEvents}, each as published`);
	log(`relay RSS: ${rss0} KiB at the start, at most ${maxRss} KiB while publishing${WRAPPER.length ? ' (of the wrapper, which holds the relay)' : ''}`);
	check(maxRss - rss0 < 48 * 1024, `A: the relay's memory grew by ${maxRss - rss0} KiB for one stalled subscriber (64 MiB published, ring 8 MiB)`);

	// Read again: the relay must have ended this stream.
	stalled.resume();
	await until(() => stalled.closed(), 10000, 'A: the stalled subscriber is still connected after 64 MiB published (it should have been dropped)');
	const last = stalled.events[stalled.events.length - 1];
	const held = last ? last.lastEventId : null;
	log(`ok: the stalled subscriber was dropped after ${stalled.bytes()} bytes, ${stalled.events.length} whole events (last ${held}), of ${count}`);
	check(stalled.events.length < count, 'A: the stalled subscriber got every event anyway (was it really stalled?)');
	if (stalled.events.length > 0)
		checkSequence('A: the stalled subscriber', stalled.events,
			stalled.events.map((_, k) => ({ n: k + 1, data: `${k + 1} ${body}` })), epoch);
	const d = drops(relay);
	check(d.length === 1 && /missed events/.test(d[0]), `A: want one "dropped a slow subscriber: ...missed events..." line on stderr, got ${JSON.stringify(d)}`);
	if (d.length) log(`relay stderr: ${d[0]}`);

	// Resuming from its last whole event (or, if it got none whole, from the
	// point before event 1, "<epoch>-0"): those after it are gone from the ring.
	const from = held ?? idOf(epoch, 0);
	const back = sseSubscribe(relay.port, { headers: { 'Last-Event-ID': from } });
	await until(() => back.events.length >= 1, 5000, `A: resume with Last-Event-ID: ${from}: no event`);
	await sleep(300); // room for events that must not come
	check(back.status() === 200, `A: resume with Last-Event-ID: ${from}: status ${back.status()}`);
	check(back.events.length === 1 && back.events[0].type === 'sse-reset' && back.events[0].lastEventId === idOf(epoch, count),
		`A: resume with Last-Event-ID: ${from} after missing events: got ${back.events.map(show).join(', ')}, want the sse-reset event with id ${idOf(epoch, count)} alone`);

	const id = await publishOk(relay.base, 'after');
	checkId(id, epoch, count + 1, 'A: /publish answer after all that');
	await until(() => readerEvents === count + 1 && back.events.length === 2, 5000, 'A: the reader and the resumed client did not get the event after all that');
	check(back.events[1].data === 'after' && back.events[1].lastEventId === idOf(epoch, count + 1),
		`A: the resumed client's live event is ${show(back.events[1])}`);
	log(`ok: resuming from ${from}: sse-reset (${idOf(epoch, count)}), then live events`);
	reader.close();
	back.close();
	await relay.stop();
}

/** B: a stalled subscriber that missed nothing is dropped by --stall. */
async function stallTime(bin) {
	log('--- B: --stall 1000, a subscriber that reads nothing but misses nothing ---');
	const relay = await startRelay(bin, ['--heartbeat', '60000', '--stall', '1000', '--replay-bytes', String(64 << 20)]);
	let epoch = null;
	const count = 24; // 12 MiB: more than the kernel buffers hold, less than the ring
	const body = 'q'.repeat(512 * 1024);
	let readerEvents = 0;
	const reader = sseSubscribe(relay.port, { keep: false, onEvent: () => readerEvents++ });
	const stalled = sseSubscribe(relay.port);
	await until(() => stalled.status() === 200 && reader.status() === 200, 5000, 'B: the subscribers got no answer');
	await sleep(100);
	stalled.pause();
	const t0 = Date.now();
	for (let i = 1; i <= count; i++) {
		const id = await publishOk(relay.base, `${i} ${body}`);
		if (i === 1) epoch = learnEpoch(id, 'B: the first /publish answer');
		checkId(id, epoch, i, `B: /publish answer ${i}`);
		await until(() => readerEvents >= i - 4 || reader.closed(), 10000, () => `B: the reader is stuck at ${readerEvents} of ${i} events`);
	}
	const published = Date.now();
	await until(() => drops(relay).length >= 1, 10000, 'B: the stalled subscriber was not dropped within 10 s (--stall 1000)');
	const dropped = Date.now();
	const d = drops(relay);
	check(d.length === 1 && /stall/.test(d[0]), `B: want one "dropped a slow subscriber: ...stall..." line on stderr, got ${JSON.stringify(d)}`);
	log(`published ${count} events of 512 KiB in ${published - t0} ms; the stalled subscriber was dropped ${dropped - t0} ms after the first publish: ${d[0]}`);
	// It stopped taking bytes when the kernel buffers filled, during the
	// publishing; not dropped before a second of that, nor long after.
	check(dropped - t0 >= 1000, `B: dropped ${dropped - t0} ms after the first publish, before the stall time (1000 ms) could pass`);
	check(dropped - published <= 5000, `B: dropped only ${dropped - published} ms after the last publish (--stall 1000)`);
	await until(() => readerEvents >= count, 10000, () => `B: the reader got ${readerEvents} of ${count}`);
	check(!reader.closed(), 'B: the reading subscriber was closed');

	stalled.resume();
	await until(() => stalled.closed(), 10000, 'B: the dropped subscriber\'s stream did not end');
	const got = stalled.events.length;
	check(got < count, `B: the stalled subscriber got all ${count} events (was it stalled?)`);
	if (got) checkSequence('B: the stalled subscriber', stalled.events, stalled.events.map((_, k) => ({ n: k + 1, data: `${k + 1} ${body}` })), epoch);
	const from = got ? stalled.events[got - 1].lastEventId : idOf(epoch, 0);
	// Nothing was lost: the ring still has every event after it.
	const back = sseSubscribe(relay.port, { headers: { 'Last-Event-ID': from } });
	await until(() => back.events.length >= count - got || back.closed(), 15000,
		() => `B: resume from ${from}: got ${back.events.length} of ${count - got} events`);
	await sleep(300);
	const want = [];
	for (let n = got + 1; n <= count; n++) want.push({ n, data: `${n} ${body}` });
	if (checkSequence(`B: resume from ${from}`, back.events, want, epoch))
		log(`ok: resuming from ${from}: events ${got + 1}..${count} replayed, each once, no reset (nothing was lost)`);
	reader.close();
	back.close();
	await relay.stop();
}

/**
 * The kernel's side of the subscriber on local port cport, from ss:
 * {sendQ, sndbuf} of the relay's socket and {recvQ, rcvbuf} of the
 * client's; null when ss is missing or does not show both.
 */
function kernelQueues(port, cport) {
	return new Promise((resolve) => {
		execFile('ss', ['-Htnm', 'state', 'established', `( sport = :${port} and dport = :${cport} ) or ( sport = :${cport} and dport = :${port} )`],
			{ timeout: 2000 }, (err, out) => {
				if (err) return resolve(null);
				const q = {};
				// Each socket: "Recv-Q Send-Q Local Peer" then skmem:(r..,rb..,t..,tb..,...).
				for (const m of out.matchAll(/(\d+)\s+(\d+)\s+\S+:(\d+)\s+\S+:\d+\s+skmem:\(([^)]*)\)/g)) {
					const mem = Object.fromEntries(m[4].split(',').map((kv) => [kv.replace(/\d+$/, ''), Number(kv.replace(/^\D+/, ''))]));
					if (Number(m[3]) === port) Object.assign(q, { sendQ: Number(m[2]), sndbuf: mem.tb });
					else Object.assign(q, { recvQ: Number(m[1]), rcvbuf: mem.rb });
				}
				resolve(q.sendQ !== undefined && q.recvQ !== undefined ? q : null);
			});
	});
}

/** C: a slow but steady reader is never dropped and gets everything. */
async function steadyReader(bin) {
	// SSE_SLOW_READER_STALL=MS: run this part with --stall MS (default: the
	// relay's own stall time).
	const stall = process.env.SSE_SLOW_READER_STALL ? ['--stall', process.env.SSE_SLOW_READER_STALL] : [];
	log(`--- C: a reader of 16 KiB every 50 ms while 6.5 MiB are published${stall.length ? ` (--stall ${stall[1]})` : ''} ---`);
	const relay = await startRelay(bin, ['--heartbeat', '60000', ...stall]);
	const want = []; // {n, data}
	const bodies = [];
	const medium = (k) => `${k} `.padEnd(100 * 1024, String.fromCharCode(97 + (k % 26)));
	for (let k = 0; k < 10; k++) bodies.push(medium(k));
	// 1 MiB of 3-character lines: each becomes "data: xyz\n", a frame of 2.5 MiB.
	const lines = [];
	for (let k = 0; k < 262144; k++) lines.push((k % 46656).toString(36).padStart(3, '0'));
	const big = lines.join('\n') + '\n';
	if (big.length !== 1 << 20) fail(`the big body is ${big.length} bytes`);
	bodies.push(big);
	for (let k = 10; k < 40; k++) bodies.push(medium(k));
	for (let k = 0; k < 5; k++) bodies.push(`small ${k}`);

	const slow = sseSubscribe(relay.port, { chunk: 16384, pauseMs: 50 });
	let fastDone = 0;
	const fast = sseSubscribe(relay.port, { onEvent: () => (fastDone = Date.now()) });
	await until(() => slow.status() === 200 && fast.status() === 200, 5000, 'C: the subscribers got no answer');

	// How far behind the slow one is, against the fast one's bytes (the
	// same stream); with ss, how much of that the kernel holds.
	let maxLag = 0;
	let maxRelayHeld = null;
	let bufs = null;
	let sampling = true;
	const sampler = (async () => {
		while (sampling) {
			maxLag = Math.max(maxLag, fast.bytes() - slow.bytes());
			const q = await kernelQueues(relay.port, slow.sock.localPort);
			if (q) {
				maxRelayHeld = Math.max(maxRelayHeld ?? 0, fast.bytes() - slow.bytes() - q.sendQ - q.recvQ);
				bufs = `the relay's send buffer ${q.sndbuf} bytes, the reader's receive buffer ${q.rcvbuf}`;
			}
			await sleep(100);
		}
	})();

	let epoch = null;
	const t0 = Date.now();
	for (let i = 0; i < bodies.length; i++) {
		const id = await publishOk(relay.base, bodies[i]);
		if (i === 0) epoch = learnEpoch(id, 'C: the first /publish answer');
		checkId(id, epoch, i + 1, `C: /publish answer ${i + 1}`);
		want.push({ n: i + 1, data: bodies[i] });
		if (i > 10) await sleep(150); // the second half over a couple of seconds
	}
	const published = Date.now();
	await until(() => fast.events.length >= bodies.length, 10000, () => `C: the fast reader got ${fast.events.length} of ${bodies.length}`);
	log(`published ${bodies.length} events (${(fast.bytes() / 1048576).toFixed(2)} MiB of stream) in ${published - t0} ms; ` +
		`the fast reader had them all ${Math.max(0, fastDone - published)} ms after the last publish answer, the slow one ${slow.events.length} by then`);
	check(fastDone - published < 5000, `C: the fast reader got the last event ${fastDone - published} ms after it was published`);
	checkSequence('C: the fast reader', fast.events, want, epoch);

	await until(() => slow.events.length >= bodies.length || slow.closed(), 100000,
		() => `C: the slow reader got ${slow.events.length} of ${bodies.length} events (${slow.bytes()} bytes)`);
	const slowDone = Date.now();
	sampling = false;
	await sampler;
	await sleep(300); // room for duplicates
	check(!slow.closed(), `C: the slow but steady reader was closed after ${slow.events.length} events`);
	const d = drops(relay);
	check(d.length === 0, `C: the relay dropped a subscriber: ${JSON.stringify(d)}`);
	const rate = slow.bytes() / 1024 / ((slowDone - t0) / 1000);
	log(`the slow reader: ${slow.reads()} reads, ${slow.bytes()} bytes in ${slowDone - t0} ms (${rate.toFixed(0)} KiB/s)`);
	log(`it was at most ${(maxLag / 1048576).toFixed(2)} MiB behind the fast one` +
		(maxRelayHeld === null ? ' (ss not available: the kernel\'s share unknown)'
			: `; the relay itself held up to ${(maxRelayHeld / 1048576).toFixed(2)} MiB of it, the rest was in the kernel (${bufs})`));
	check(maxLag > 3 << 20, `C: the slow reader was never more than ${maxLag} bytes behind: not slow enough to test anything`);
	if (maxRelayHeld !== null)
		check(maxRelayHeld > 512 << 10, `C: the relay itself never owed the slow reader more than ${maxRelayHeld} bytes (the kernel held the rest): not a test of a large backlog`);
	if (checkSequence('C: the slow reader', slow.events, want, epoch))
		log(`ok: the slow reader got all ${want.length} events, the 2.5 MiB frame among them, each once, in order, intact; not dropped`);
	slow.close();
	fast.close();
	await relay.stop();
}

await run('slow-consumer', async () => {
	const bin = process.argv[2];
	await pastTheRing(bin);
	await stallTime(bin);
	await steadyReader(bin);
}, 170000);
