// The batching window (--batch MS), end to end: events published within
// the window reach a subscriber together, in one write (so in few reads),
// each once and in order; every publish is answered before the window's
// fan-out (publishing never waits for a pass over the subscribers); and
// no event is held much past its window.
//
//   node batch.mjs PATH-TO-SERVER    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import { check, fail, publishOk, run, sleep, sseSubscribe, startRelay, until } from './relay.mjs';

const WINDOW_MS = 300;
const EVENTS = 20;
// Loop turns and a loaded machine: generous, yet far below a missed deadline.
const SLACK_MS = 700;

await run('batch', async () => {
	const relay = await startRelay(process.argv[2], ['--heartbeat', '60000', '--batch', String(WINDOW_MS)]);
	const arrived = [];
	const subs = [0, 1, 2].map(() => sseSubscribe(relay.port, { onEvent: (ev) => arrived.push({ ev, at: Date.now() }) }));
	await until(() => subs.every((s) => s.status() === 200), 5000, 'subscribers got no 200 within 5 s');
	await sleep(100);
	const reads0 = subs.map((s) => s.reads());

	// Back to back: each publish waits for its 202 before the next.
	const ids = [];
	const t0 = Date.now();
	for (let i = 0; i < EVENTS; i++) ids.push(await publishOk(relay.base, `event ${i}`));
	const answered = Date.now() - t0;
	const early = arrived.filter((a) => a.at - t0 < answered).length;
	console.log(`${EVENTS} publishes answered in ${answered} ms; ${early} deliveries before the last answer`);

	await until(() => subs.every((s) => s.events.length >= EVENTS), WINDOW_MS + SLACK_MS + 2000,
		`not every subscriber got ${EVENTS} events: ${subs.map((s) => s.events.length).join(' ')}`);
	for (const [k, s] of subs.entries()) {
		const got = s.events.map((e) => `${e.lastEventId} ${e.data}`);
		const want = ids.map((id, i) => `${id} event ${i}`);
		check(JSON.stringify(got) === JSON.stringify(want), `subscriber ${k}: got ${JSON.stringify(got)}`);
		const reads = s.reads() - reads0[k];
		// Without a window: one write per event. With it: the events of a
		// window in one write; publishes this fast fill few windows.
		const windows = Math.ceil(answered / WINDOW_MS) + 1;
		check(reads <= windows + 1, `subscriber ${k}: ${EVENTS} events came in ${reads} reads, want <= ${windows + 1}`);
		console.log(`subscriber ${k}: ${EVENTS} events in ${reads} reads`);
	}
	// No event waited much longer than the window after the first publish
	// of its batch (at most: its own publish time + the window).
	const last = Math.max(...arrived.map((a) => a.at)) - t0;
	check(last <= answered + WINDOW_MS + SLACK_MS,
		`the last event arrived ${last} ms after the first publish; publishing took ${answered} ms, window ${WINDOW_MS}`);
	console.log(`the last delivery came ${last} ms after the first publish`);
	if (arrived.length !== EVENTS * subs.length) fail(`${arrived.length} deliveries, want ${EVENTS * subs.length}`);
});
