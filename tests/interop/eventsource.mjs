// Interop test 2: the `eventsource` npm package (a WHATWG-conformant
// EventSource for Node) as the client. Every nasty payload is published;
// each message's data must equal the payload with CR and CRLF turned into
// LF, with the type given by ?event= and lastEventId the id /publish
// answered. The relay runs with its default ids: the first answer must be
// "<epoch>-1" (epoch: 8 characters of [0-9a-v]), and the k-th "<epoch>-k".
// Then two more clients start from ?lastEventId=<epoch>-3 and
// ?last_event_id=<epoch>-10 and must get exactly the events after that id.
//
//   node eventsource.mjs PATH-TO-sse-relay    (via node-test.sh --npm)
//
// SPDX-License-Identifier: MIT

import { EventSource } from 'eventsource';
import { atExit, check, checkId, idOf, learnEpoch, nastyPayloads, publishOk, run, show, startRelay, until } from './relay.mjs';

const TYPES = ['message', 'update', 'x-y.z'];

/** An EventSource that records every message of TYPES, closed at exit. */
function client(url) {
	const es = new EventSource(url);
	const got = [];
	const errors = [];
	let opened = false;
	for (const t of TYPES)
		es.addEventListener(t, (e) => got.push({ type: e.type, data: e.data, id: e.lastEventId }));
	es.addEventListener('open', () => (opened = true));
	es.addEventListener('error', (e) => errors.push(e.message || String(e.code || 'error')));
	atExit(() => es.close());
	return { es, got, errors, opened: () => opened };
}

function compare(what, got, want) {
	let bad = 0;
	for (let i = 0; i < Math.max(got.length, want.length); i++) {
		const g = got[i];
		const w = want[i];
		if (!g || !w) {
			check(false, `${what}: message #${i + 1}: got ${g ? show(g.data) : 'nothing'}, want ${w ? w.name : 'nothing'}`);
			bad++;
			continue;
		}
		const ok = check(g.data === w.data, `${what}: ${w.name}: data ${show(g.data)}, want ${show(w.data)}`) &
			check(g.type === w.type, `${what}: ${w.name}: type ${show(g.type)}, want ${show(w.type)}`) &
			check(g.id === w.id, `${what}: ${w.name}: lastEventId ${show(g.id)}, want ${show(w.id)}`);
		if (!ok) bad++;
	}
	return bad === 0;
}

await run('eventsource', async () => {
	const relay = await startRelay(process.argv[2], ['--heartbeat', '60000']);
	const a = client(relay.base + '/events');
	await until(a.opened, 5000, () => `EventSource did not open: ${a.errors.join('; ')}`);

	const want = [];
	let i = 0;
	for (const [name, payload, data] of nastyPayloads()) {
		// Every third one gets a type of its own.
		const type = i % 3 === 1 ? 'update' : i % 3 === 2 && i % 2 ? 'x-y.z' : 'message';
		const q = type === 'message' ? (i % 5 === 0 ? '?event=message' : '') : `?event=${type}`;
		const id = await publishOk(relay.base, payload, q);
		want.push({ name, data, type, id });
		i++;
	}
	const epoch = learnEpoch(want[0].id, 'the first /publish answer');
	for (let k = 0; k < want.length; k++) checkId(want[k].id, epoch, k + 1, `/publish answer for ${want[k].name}`);
	console.log(`ok: /publish answered ids ${idOf(epoch, 1)} .. ${idOf(epoch, want.length)}`);

	await until(() => a.got.length >= want.length, 10000,
		() => `got ${a.got.length} of ${want.length} messages; errors: ${a.errors.join('; ')}`);
	if (compare('live', a.got, want)) console.log(`ok: ${want.length} nasty payloads arrived intact, in order, with their types and ids`);

	// Resuming from the query string (EventSource cannot set headers on
	// its first connection): everything after event 3, and after event 10.
	for (const [param, from] of [['lastEventId', 3], ['last_event_id', 10]]) {
		const id = idOf(epoch, from);
		const b = client(`${relay.base}/events?${param}=${encodeURIComponent(id)}`);
		const rest = want.slice(from);
		await until(() => b.got.length >= rest.length, 10000,
			() => `?${param}=${id}: got ${b.got.length} of ${rest.length} replayed messages; errors: ${b.errors.join('; ')}`);
		if (compare(`replay ?${param}=${id}`, b.got, rest))
			console.log(`ok: ?${param}=${id} replayed the ${rest.length} events after it, intact`);
		b.es.close();
	}

	// A live event after all that reaches the first client only once.
	const id = await publishOk(relay.base, 'the end', '?event=update');
	checkId(id, epoch, want.length + 1, 'the last /publish answer');
	await until(() => a.got.length >= want.length + 1, 5000, 'the last event did not arrive');
	await new Promise((r) => setTimeout(r, 200));
	check(a.got.length === want.length + 1, `the first client got ${a.got.length} messages, want ${want.length + 1}`);
	const last = a.got[want.length];
	check(last.data === 'the end' && last.type === 'update' && last.id === id,
		`last message: ${JSON.stringify(last)}, want data "the end", type update, id ${id}`);
	check(a.errors.length === 0, `the first client saw errors (a reconnect?): ${a.errors.join('; ')}`);
});
