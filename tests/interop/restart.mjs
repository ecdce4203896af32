// Interop test 8: a client that outlives a relay run. The ids of a relay
// run are "<epoch>-<n>", with a fresh epoch per run, so that an id held
// from an earlier run is unknown to the next one and gets the sse-reset
// event instead of a resume from the wrong place.
//
// The `eventsource` client subscribes to a relay run with its default
// options; 3 events are published and the client holds the last id. The
// relay is stopped (SIGTERM: it must exit 0), the client notices and
// reconnects by itself, and a new relay run starts on the same port, where
// 5 events are published. The client's own reconnection carries the id of
// the first run (checked), and what it gets must be the sse-reset event,
// whose id is the new run's newest ("<epoch2>-5"), and then live events
// only: none of the new run's events 1..5 as if it had resumed. A raw
// connection sent with that Last-Event-ID by hand gets the same.
//
// Then the same with --plain-ids on both runs, the old failure mode that
// the flag documents: the client holding "3" silently gets events 4 and 5
// of the new run, and a client holding "2" events 3..5, with no reset.
//
// The client's fetch is wrapped only to hold its reconnect request until
// the new run has published its 5 events (so the order is the one above
// every time); the request, with its Last-Event-ID, is the client's own.
//
//   node restart.mjs PATH-TO-sse-relay    (via node-test.sh --npm)
//
// SPDX-License-Identifier: MIT

import { EventSource } from 'eventsource';
import {
	ID_RE, atExit, check, checkId, idOf, learnEpoch, log, publishOk, run, sleep, sseSubscribe, startRelay, until,
} from './relay.mjs';

/** An EventSource whose requests are recorded and can be held at a gate. */
function client(url) {
	const requests = []; // {lastEventId} of each request the client made
	let gate = null;
	let openGate = null;
	const fetchThroughGate = async (u, init) => {
		const h = new Headers(init?.headers);
		requests.push({ lastEventId: h.get('last-event-id') });
		if (gate) await gate;
		return fetch(u, init);
	};
	const es = new EventSource(url, { fetch: fetchThroughGate });
	const got = []; // {type, data, lastEventId, conn}: conn = requests made so far
	const errors = [];
	let opens = 0;
	for (const t of ['message', 'sse-reset'])
		es.addEventListener(t, (e) => got.push({ type: e.type, data: e.data, lastEventId: e.lastEventId, conn: requests.length }));
	es.addEventListener('open', () => opens++);
	es.addEventListener('error', (e) => errors.push(e.message || 'error'));
	atExit(() => es.close());
	return {
		es, got, errors, requests,
		opens: () => opens,
		hold: () => (gate = new Promise((r) => (openGate = r))),
		release: () => {
			gate = null;
			openGate();
		},
	};
}

function show(events) {
	return JSON.stringify(events.map((e) => `${e.type}(${e.lastEventId}): ${e.data.slice(0, 30)}`));
}

/** One restart, with the relay's default ids (plain false) or --plain-ids. */
async function scenario(bin, plain) {
	const mode = plain ? '--plain-ids' : 'default ids';
	const flags = plain ? ['--plain-ids'] : [];
	log(`--- ${mode} ---`);
	const r1 = await startRelay(bin, flags);
	const port = r1.port;
	const c = client(`${r1.base}/events`);
	await until(() => c.opens() === 1, 10000, () => `${mode}: the client did not open; errors: ${c.errors.join('; ')}`);

	// Run 1: three events.
	let e1 = '';
	for (let k = 1; k <= 3; k++) {
		const id = await publishOk(r1.base, `run 1 event ${k}`);
		if (k === 1 && !plain) e1 = learnEpoch(id, `${mode}: run 1: the first /publish answer`);
		checkId(id, e1, k, `${mode}: run 1: /publish answer ${k}`);
	}
	await until(() => c.got.length >= 3, 5000, () => `${mode}: run 1: the client got ${c.got.length} of 3 events`);
	for (let k = 1; k <= 3; k++) {
		const g = c.got[k - 1];
		check(g.type === 'message' && g.data === `run 1 event ${k}` && g.lastEventId === idOf(e1, k),
			`${mode}: run 1: event ${k} is ${show([g])}, want message(${idOf(e1, k)}): run 1 event ${k}`);
	}
	const held = c.got[2].lastEventId;
	log(`run 1 on port ${port}: ids ${idOf(e1, 1)}..${held}; the client holds ${held}`);

	// Stop run 1: stop() sends SIGTERM and fails the test unless the relay
	// exits with status 0. The client notices the end of its stream.
	c.hold();
	await r1.stop();
	log(`run 1 stopped: ${JSON.stringify(r1.exited())}`);
	await until(() => c.errors.length >= 1, 10000, `${mode}: the client did not notice that the relay stopped`);

	// Run 2 on the same port: five events while the client is away.
	const r2 = await startRelay(bin, flags, { port });
	check(r2.port === port, `${mode}: run 2 listens on ${r2.port}, want ${port}`);
	let e2 = '';
	for (let k = 1; k <= 5; k++) {
		const id = await publishOk(r2.base, `run 2 event ${k}`);
		if (k === 1 && !plain) {
			e2 = learnEpoch(id, `${mode}: run 2: the first /publish answer`);
			check(e2 !== e1, `${mode}: run 2 has the epoch of run 1 (${e1}): its ids would resume wrongly`);
		}
		checkId(id, e2, k, `${mode}: run 2: /publish answer ${k}`);
	}
	if (!plain) log(`epochs: run 1 ${e1}, run 2 ${e2}`);

	// By hand: Last-Event-ID held from run 1 (default), or "2" (--plain-ids).
	const handId = plain ? '2' : held;
	const hand = sseSubscribe(port, { headers: { 'Last-Event-ID': handId } });
	await until(() => hand.status() !== null, 5000, `${mode}: no answer to GET /events with Last-Event-ID: ${handId}`);
	check(hand.status() === 200, `${mode}: GET /events with Last-Event-ID: ${handId}: status ${hand.status()}`);
	await until(() => hand.events.length >= (plain ? 3 : 1), 5000,
		() => `${mode}: Last-Event-ID: ${handId}: got ${show(hand.events)}`);
	await sleep(300); // room for events that must not come
	const handWant = plain
		? [3, 4, 5].map((k) => ({ type: 'message', lastEventId: String(k), data: `run 2 event ${k}` }))
		: [{ type: 'sse-reset', lastEventId: idOf(e2, 5) }];
	const strip = (evs, withData) => evs.map((e) => ({ type: e.type, lastEventId: e.lastEventId, ...(withData ? { data: e.data } : {}) }));
	if (check(JSON.stringify(strip(hand.events, plain)) === JSON.stringify(handWant),
		`${mode}: a client sent with Last-Event-ID: ${handId} got ${show(hand.events)}, want ${JSON.stringify(handWant)}`))
		log(plain
			? `ok: --plain-ids: Last-Event-ID: 2 of run 1 silently got events 3..5 of run 2, no reset (what the flag documents)`
			: `ok: Last-Event-ID: ${handId} of run 1, sent by hand: sse-reset with id ${idOf(e2, 5)} and nothing replayed`);
	if (!plain) check(hand.events.every((e) => e.id !== null && (e.type !== 'sse-reset' || ID_RE.test(e.id))),
		`${mode}: the reset event's id is not of the form ${ID_RE}: ${show(hand.events)}`);

	// The client's own reconnection, held until now.
	await until(() => c.requests.length >= 2, 15000, `${mode}: the client did not try to reconnect within 15 s`);
	check(c.requests[1].lastEventId === held,
		`${mode}: the client's reconnect carried Last-Event-ID ${JSON.stringify(c.requests[1].lastEventId)}, want ${JSON.stringify(held)}`);
	const before = c.got.length;
	c.release();
	await until(() => c.opens() >= 2, 10000, () => `${mode}: the client did not reconnect to run 2; errors: ${c.errors.join('; ')}`);
	await until(() => c.got.length >= before + (plain ? 2 : 1), 5000,
		() => `${mode}: after reconnecting the client got ${show(c.got.slice(before))}`);
	await sleep(300);

	// One live event of run 2: both get it.
	const id6 = await publishOk(r2.base, 'run 2 event 6');
	checkId(id6, e2, 6, `${mode}: run 2: /publish answer 6`);
	await until(() => c.got.some((g) => g.data === 'run 2 event 6') && hand.events.some((g) => g.data === 'run 2 event 6'), 5000,
		() => `${mode}: the live event 6 of run 2 did not reach both clients: ${show(c.got.slice(before))}, ${show(hand.events)}`);
	await sleep(300); // room for duplicates

	const after = c.got.slice(before);
	const want = plain
		? [4, 5, 6].map((k) => ({ type: 'message', lastEventId: String(k), data: `run 2 event ${k}` }))
		: [{ type: 'sse-reset', lastEventId: idOf(e2, 5) }, { type: 'message', lastEventId: idOf(e2, 6), data: 'run 2 event 6' }];
	const gotAfter = after.map((e) => ({ type: e.type, lastEventId: e.lastEventId, ...(e.type === 'message' ? { data: e.data } : {}) }));
	if (check(JSON.stringify(gotAfter) === JSON.stringify(want),
		`${mode}: after reconnecting with ${held}, the client got ${show(after)}, want ${JSON.stringify(want)}`))
		log(plain
			? `ok: --plain-ids: the client holding "3" silently resumed into run 2: events 4, 5 (then 6 live), no reset`
			: `ok: the client's own reconnect with ${held}: sse-reset (${idOf(e2, 5)}) first, none of run 2's events 1..5, then ${idOf(e2, 6)} live`);
	if (!plain) {
		const resumed = after.filter((e) => /^run 2 event [1-5]$/.test(e.data));
		check(resumed.length === 0, `${mode}: events of run 2 delivered as if resumed: ${show(resumed)}`);
	}
	check(c.got.slice(0, before).length === 3, `${mode}: the client got ${before} events from run 1, want 3`);
	const handLast = hand.events[hand.events.length - 1];
	check(handLast && handLast.data === 'run 2 event 6' && handLast.lastEventId === idOf(e2, 6),
		`${mode}: the client sent by hand did not end with event 6 of run 2 live: ${show(hand.events)}`);

	c.es.close();
	hand.close();
	await r2.stop();
}

await run('restart', async () => {
	const bin = process.argv[2];
	await scenario(bin, false);
	await scenario(bin, true);
}, 150000);
