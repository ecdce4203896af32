// Interop test 5b: idle connections. A connection that sends nothing, one
// that stops in the middle of its request head, and a POST whose body
// stops short must each be closed by the relay after its idle timeout
// (about 10 s; accepted here: 5 to 14 s), answered with nothing or 408.
// Meanwhile an event-stream subscriber that only gets the opening bytes
// (default heartbeat, 15 s) and never sends anything is not idle: it must
// still be connected after them and get an event published then.
//
//   node idle-timeout.mjs PATH-TO-sse-relay    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import http from 'node:http';
import net from 'node:net';
import { HOST, atExit, check, publishOk, run, sleep, startRelay, until } from './relay.mjs';

function idler(port, what, bytes) {
	const c = { what, data: '', closedAt: null };
	const t0 = Date.now();
	const s = net.connect(port, HOST, () => bytes && s.write(bytes));
	s.on('data', (d) => (c.data += d.toString('latin1')));
	s.on('close', () => (c.closedAt = Date.now() - t0));
	s.on('error', () => {});
	atExit(() => s.destroy());
	return c;
}

await run('idle-timeout', async () => {
	const relay = await startRelay(process.argv[2]);
	const sub = { text: '', closed: false };
	const req = http.get(relay.base + '/events', { agent: false }, (res) => {
		res.on('data', (d) => (sub.text += d));
		res.on('close', () => (sub.closed = true));
	});
	req.on('error', () => (sub.closed = true));
	atExit(() => req.destroy());
	await until(() => sub.text.length > 0, 5000, 'the subscriber got no opening bytes');

	const idlers = [
		idler(relay.port, 'a connection that sends nothing', ''),
		idler(relay.port, 'a request head cut short', 'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n'),
		idler(relay.port, 'a POST body cut short', 'POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc'),
	];
	await until(() => idlers.every((c) => c.closedAt !== null), 14500,
		() => idlers.filter((c) => c.closedAt === null).map((c) => c.what).join(', ') + ': still open after 14.5 s (idle timeout is about 10 s)');
	for (const c of idlers) {
		const status = /^HTTP\/1\.[01] (\d{3})/.exec(c.data);
		check(c.closedAt >= 5000, `${c.what}: closed after ${c.closedAt} ms already (idle timeout is about 10 s)`);
		check(c.data === '' || (status && status[1] === '408'),
			`${c.what}: answered ${JSON.stringify(c.data.slice(0, 60))} before closing, want nothing or 408`);
		console.log(`ok: ${c.what}: closed after ${c.closedAt} ms${status ? ' with ' + status[1] : ''}`);
	}

	// The subscriber is a stream, not an idle request: still there.
	await sleep(1000);
	check(!sub.closed, 'the event-stream subscriber was closed like an idle request');
	await publishOk(relay.base, 'still connected');
	await until(() => sub.text.includes('data: still connected\n') || sub.closed, 3000, 'the subscriber did not get the event');
	check(sub.text.includes('data: still connected\n'), 'the subscriber did not get the event published after the idle timeout (was it closed?)');
	if (!sub.closed) console.log('ok: the subscriber stayed connected past the idle timeout');
}, 40000);
