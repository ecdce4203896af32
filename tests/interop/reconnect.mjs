// Interop test 3: reconnection with Last-Event-ID, through a TCP proxy
// that logs each request head and cuts connections on command.
//
// The `eventsource` client connects through the proxy to a relay run with
// --retry 200. The proxy cuts the connection twice: once between events,
// once in the middle of a frame (the partial event must be discarded by the
// client and replayed by the relay). Events are published while the client
// is away. The client must end with every event exactly once, in order,
// and each reconnect request must carry the Last-Event-ID of the last
// complete event. The relay runs with its default ids, "<epoch>-<n>": the
// epoch is learnt from the first /publish answer and every id checked in
// full.
//
//   node reconnect.mjs PATH-TO-sse-relay    (via node-test.sh --npm)
//
// SPDX-License-Identifier: MIT

import net from 'node:net';
import { EventSource } from 'eventsource';
import { HOST, atExit, check, checkId, idOf, learnEpoch, publishOk, run, sleep, startRelay, until } from './relay.mjs';

/** A proxy from an ephemeral port to the relay, keeping its connections. */
async function proxy(port) {
	const conns = [];
	const srv = net.createServer((down) => {
		const up = net.connect(port, HOST);
		const c = { down, up, head: '', cutAt: null, closed: false };
		conns.push(c);
		const close = () => {
			c.closed = true;
			down.destroy();
			up.destroy();
		};
		c.close = close;
		down.on('data', (d) => {
			if (!c.head.includes('\r\n\r\n')) c.head += d.toString('latin1');
			up.write(d);
		});
		let sent = '';
		up.on('data', (d) => {
			c.bytes = (c.bytes || 0) + d.length;
			if (c.closed) return;
			// cutAt(text) may return an offset into text: forward only that
			// much, then cut both sides (a frame cut in two).
			const text = d.toString('latin1');
			const at = c.cutAt ? c.cutAt(sent + text) : null;
			if (at !== null && at !== undefined) {
				const keep = Math.max(0, at - sent.length);
				down.write(d.subarray(0, keep), close);
				c.closed = true;
				return;
			}
			sent += text;
			down.write(d);
		});
		down.on('error', close);
		up.on('error', close);
		down.on('close', close);
		up.on('close', close);
	});
	await new Promise((r) => srv.listen(0, HOST, r));
	atExit(() => {
		for (const c of conns) c.close();
		srv.close();
	});
	return { port: srv.address().port, conns };
}

function lastEventIdOf(head) {
	const m = /\r\nlast-event-id:[ \t]*([^\r\n]*?)[ \t]*\r\n/i.exec(head);
	return m ? m[1] : null;
}

await run('reconnect', async () => {
	const relay = await startRelay(process.argv[2], ['--retry', '200', '--heartbeat', '60000']);
	const px = await proxy(relay.port);

	const es = new EventSource(`http://${HOST}:${px.port}/events`);
	const got = [];
	const errors = [];
	es.addEventListener('message', (e) => got.push({ data: e.data, id: e.lastEventId }));
	es.addEventListener('error', (e) => errors.push(e.message || 'error'));
	atExit(() => es.close());
	// The opening bytes (here "retry: 200") say the subscriber is in.
	await until(() => px.conns.length === 1 && px.conns[0].bytes > 0, 5000, 'the client did not connect');

	let n = 0;
	let epoch = null;
	const pub = async () => {
		n++;
		const id = await publishOk(relay.base, `event ${n}\nline 2 of ${n}`);
		if (n === 1) epoch = learnEpoch(id, 'the first /publish answer');
		checkId(id, epoch, n, `/publish answer ${n}`);
	};

	// 1: five events, then cut the connection between events.
	for (let k = 0; k < 5; k++) await pub();
	await until(() => got.length >= 5, 5000, () => `got ${got.length} of 5 events before the first cut`);
	px.conns[0].close();
	// Published while the client is away (its retry is 200 ms).
	for (let k = 0; k < 5; k++) await pub();
	await until(() => px.conns.length === 2 && px.conns[1].head.includes('\r\n\r\n'), 5000, () => `no reconnect within 5 s; errors: ${errors.join('; ')}`);
	check(lastEventIdOf(px.conns[1].head) === idOf(epoch, 5),
		`first reconnect: Last-Event-ID ${JSON.stringify(lastEventIdOf(px.conns[1].head))}, want "${idOf(epoch, 5)}"; head:\n${px.conns[1].head}`);
	await until(() => got.length >= 10, 5000, () => `got ${got.length} of 10 events after the first reconnect`);
	for (let k = 0; k < 5; k++) await pub(); // live again
	await until(() => got.length >= 15, 5000, () => `got ${got.length} of 15 events`);
	await sleep(100);
	const ids15 = got.map((g) => g.id).join(',');
	if (check(ids15 === Array.from({ length: 15 }, (_, k) => idOf(epoch, k + 1)).join(','),
		`after the first cut: ids ${ids15}, want ${idOf(epoch, 1)}..${idOf(epoch, 15)} once each`))
		console.log(`ok: cut between events: events 6-10 replayed after the reconnect with Last-Event-ID: ${idOf(epoch, 5)}`);

	// 2: cut in the middle of the frame with id <epoch>-18; publish 16..20
	// with the cut armed, so 16 and 17 arrive whole and 18 only in part.
	const cutLine = `id: ${idOf(epoch, 18)}\n`;
	px.conns[1].cutAt = (text) => {
		const at = text.indexOf(cutLine);
		return at >= 0 && (at === 0 || text[at - 1] === '\n') ? at + cutLine.length : null;
	};
	for (let k = 0; k < 5; k++) await pub();
	await until(() => px.conns.length === 3 && px.conns[2].head.includes('\r\n\r\n'), 5000, () => `no reconnect after the mid-frame cut; errors: ${errors.join('; ')}`);
	check(lastEventIdOf(px.conns[2].head) === idOf(epoch, 17),
		`second reconnect: Last-Event-ID ${JSON.stringify(lastEventIdOf(px.conns[2].head))}, want "${idOf(epoch, 17)}" (the frame of 18 was cut); head:\n${px.conns[2].head}`);
	await until(() => got.length >= 20, 5000, () => `got ${got.length} of 20 events after the second reconnect`);
	for (let k = 0; k < 3; k++) await pub();
	await until(() => got.length >= 23, 5000, () => `got ${got.length} of 23 events`);
	await sleep(300); // room for a duplicate to show up

	const want = Array.from({ length: n }, (_, k) => ({ data: `event ${k + 1}\nline 2 of ${k + 1}`, id: idOf(epoch, k + 1) }));
	const gotIds = got.map((g) => g.id).join(',');
	check(JSON.stringify(got) === JSON.stringify(want),
		`the client's events are not ${idOf(epoch, 1)}..${idOf(epoch, n)} exactly once in order: ids ${gotIds}`);
	if (JSON.stringify(got) === JSON.stringify(want))
		console.log(`ok: mid-frame cut: the partial event was discarded and replayed; ${n} events, each once, in order`);
	check(px.conns.length === 3, `${px.conns.length} connections, want 3 (two reconnects)`);
});
