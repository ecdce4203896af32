// Interop test: a flood of large publish bodies keeps the relay's memory
// bounded (--body-memory, default 4 MiB, for all bodies being received).
//
// 2 000 connections (400 under SSE_RELAY_WRAPPER) each announce a body of 1 000 000 bytes and send it
// slowly (64 KiB at a time, only when their socket takes it) for 8 s, less
// than the 10 s request deadline. Without a global bound the relay would
// buffer most of 2 GB; with it, two bodies at a time are read (bodies over
// 64 KiB share half the budget) and the others wait unread. The relay's
// RSS (from /proc) is sampled all along: it must stay within 64 MiB of
// where it started. A small publish made in the middle of the flood still
// gets 202 (it fits in the half large ones cannot take), and a subscriber
// gets it. Prints the RSS figures.
//
// Then the adversary of that half: 16 connections announce exactly the
// largest body (1 MiB) and send 1 KiB a second, so the two that get
// budget hold it until their request deadline. 20 small publishes, one
// after the other, must each get 202 within a second; their times and the
// relay's RSS (within 64 MiB of its start) are printed.
//
//   node body-flood.mjs PATH-TO-sse-relay    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import net from 'node:net';
import { HOST, WRAPPER, atExit, check, log, publishOk, rssKiB, run, sleep, sseSubscribe, startRelay, until } from './relay.mjs';

// Under a wrapper (valgrind) the relay is far slower: a flood of 400 is
// enough to check it for errors and leaks.
const CONNS = WRAPPER.length ? 400 : 2000;
const BODY = 1000000;

await run('body-flood', async () => {
	const relay = await startRelay(process.argv[2], ['--heartbeat', '60000']);
	const sub = sseSubscribe(relay.port);
	await until(() => sub.status() === 200 && sub.bytes() > 0, 5000, 'the subscriber got no opening bytes');
	const rss0 = rssKiB(relay.proc.pid);
	const piece = Buffer.alloc(65536, 'f');
	const socks = [];
	let connected = 0;
	let sentTotal = 0;
	let answered = 0;
	let flooding = true;
	for (let i = 0; i < CONNS; i++) {
		const s = net.connect(relay.port, HOST);
		s.sent = 0;
		s.on('connect', () => {
			connected++;
			s.write(`POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${BODY}\r\n\r\n`);
		});
		s.on('data', () => answered++);
		s.on('error', () => {});
		atExit(() => s.destroy());
		socks.push(s);
		if (i % 200 === 199) await sleep(10);
	}
	// Most of the body, slowly: a piece whenever the socket has room.
	const feeder = setInterval(() => {
		for (const s of socks) {
			if (!flooding || s.destroyed || s.writableLength > 0 || s.sent >= BODY - piece.length) continue;
			s.write(piece);
			s.sent += piece.length;
			sentTotal += piece.length;
		}
	}, 250);
	let maxRss = rss0;
	const t0 = Date.now();
	let small = null;
	while (Date.now() - t0 < 8000) {
		maxRss = Math.max(maxRss, rssKiB(relay.proc.pid));
		if (small === null && Date.now() - t0 > 3000) small = publishOk(relay.base, 'small, during the flood');
		await sleep(100);
	}
	flooding = false;
	clearInterval(feeder);
	const id = await small;
	log(`${connected} connections each sent up to ${BODY} bytes of body: ${(sentTotal / 1048576).toFixed(0)} MiB left the clients in 8 s`);
	log(`relay RSS: ${rss0} KiB before, at most ${maxRss} KiB during the flood (+${maxRss - rss0} KiB)${WRAPPER.length ? ' (of the wrapper)' : ''}`);
	check(connected === CONNS, `only ${connected} of ${CONNS} connections were made`);
	check(maxRss - rss0 < 64 * 1024, `the relay grew by ${maxRss - rss0} KiB under the flood (bound: 64 MiB)`);
	await until(() => sub.events.some((e) => e.data === 'small, during the flood'), 5000, 'the subscriber did not get the small publish');
	log(`ok: a small publish during the flood: 202 (${id}), delivered`);
	for (const s of socks) s.destroy();
	await sleep(300);
	await publishOk(relay.base, 'after the flood');
	log(`ok: after the flood, publishing works (${answered} flood connections had an answer)`);
	sub.close();
	await relay.stop();
	await slowLargest(process.argv[2]);
}, 120000);

/** 16 slow bodies of exactly the largest size, and small publishes beside them. */
async function slowLargest(bin) {
	const MAX = 1048576;
	const relay = await startRelay(bin, ['--heartbeat', '60000']);
	const rss0 = rssKiB(relay.proc.pid);
	const socks = [];
	for (let i = 0; i < 16; i++) {
		const s = net.connect(relay.port, HOST);
		s.on('connect', () => s.write(`POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${MAX}\r\n\r\n`));
		s.on('error', () => {});
		atExit(() => s.destroy());
		socks.push(s);
	}
	const trickle = setInterval(() => {
		for (const s of socks) if (!s.destroyed) s.write(Buffer.alloc(1024, 's'));
	}, 1000);
	atExit(() => clearInterval(trickle));
	await sleep(500);
	const times = [];
	let maxRss = rss0;
	for (let i = 0; i < 20; i++) {
		const t0 = Date.now();
		await publishOk(relay.base, `small ${i}, beside slow large bodies`);
		times.push(Date.now() - t0);
		maxRss = Math.max(maxRss, rssKiB(relay.proc.pid));
	}
	clearInterval(trickle);
	log(`slow 1 MiB bodies x16: 20 small publishes answered 202 in ${times.join(', ')} ms (slowest ${Math.max(...times)} ms)`);
	log(`relay RSS: ${rss0} KiB before, at most ${maxRss} KiB beside the slow bodies (+${maxRss - rss0} KiB)${WRAPPER.length ? ' (of the wrapper)' : ''}`);
	const bound = WRAPPER.length ? 5000 : 1000; // valgrind is slow, not the budget
	check(Math.max(...times) < bound, `a small publish beside slow largest bodies took ${Math.max(...times)} ms (bound: ${bound})`) &&
		log('ok: small publishes get through while slow largest bodies hold their share');
	check(maxRss - rss0 < 64 * 1024, `the relay grew by ${maxRss - rss0} KiB beside the slow bodies (bound: 64 MiB)`);
	for (const s of socks) s.destroy();
	await relay.stop();
}
