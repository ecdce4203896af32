// Interop test 7: a subscriber that stops reading. One subscriber reads
// nothing (its socket is paused, so the kernel buffers fill up) while
// 64 MiB of events are published; the relay must close it instead of
// holding ever more for it, keep its own memory bounded, keep answering
// /publish, and keep a reading subscriber served with every event. The
// stalled client, reading again, must see the end of its stream, and on
// resuming from its last id it must be told in-band (sse-reset) if the
// events it missed are gone.
//
//   node slow-consumer.mjs PATH-TO-sse-relay    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { HOST, atExit, check, publishOk, raw, run, sleep, startRelay, until } from './relay.mjs';

function rssKiB(pid) {
	const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
	return m ? Number(m[1]) : 0;
}

await run('slow-consumer', async () => {
	const relay = await startRelay(process.argv[2], ['--heartbeat', '60000']);

	// The reader counts events as they come.
	let readerText = '';
	let readerEvents = 0;
	let readerClosed = false;
	const req = http.get(relay.base + '/events', { agent: false }, (res) => {
		res.setEncoding('latin1');
		res.on('data', (d) => {
			readerText += d;
			let i;
			while ((i = readerText.indexOf('\n\n')) >= 0) {
				if (/(^|\n)data: /.test(readerText.slice(0, i))) readerEvents++;
				readerText = readerText.slice(i + 2);
			}
		});
		res.on('close', () => (readerClosed = true));
	});
	atExit(() => req.destroy());

	// The stalled one: sends its request, reads the head, then stops.
	const stalled = { data: [], closed: false };
	const s = net.connect(relay.port, HOST, () => s.write(`GET /events HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`));
	s.on('data', (d) => stalled.data.push(d));
	s.on('close', () => (stalled.closed = true));
	s.on('error', () => {});
	atExit(() => s.destroy());
	await until(() => stalled.data.length > 0 && readerText.length > 0, 5000, 'the subscribers got no opening bytes');
	s.pause();

	const rss0 = rssKiB(relay.proc.pid);
	const count = 128;
	const body = 'p'.repeat(512 * 1024);
	let maxRss = rss0;
	const t0 = Date.now();
	for (let i = 1; i <= count; i++) {
		await publishOk(relay.base, `${i} ${body}`);
		if (i % 8 === 0) {
			maxRss = Math.max(maxRss, rssKiB(relay.proc.pid));
			// Let the reader keep up, as a live client would.
			await until(() => readerEvents >= i - 8 || readerClosed, 10000, () => `the reader is stuck at ${readerEvents} of ${i} events`);
		}
	}
	const ms = Date.now() - t0;
	await until(() => readerEvents >= count || readerClosed, 15000, () => `the reader got ${readerEvents} of ${count} events`);
	check(!readerClosed && readerEvents === count, `the reading subscriber got ${readerEvents} of ${count} events (closed: ${readerClosed})`);
	console.log(`published ${count} events of 512 KiB in ${ms} ms; the reader got ${readerEvents}`);
	console.log(`relay RSS: ${rss0} KiB at the start, at most ${maxRss} KiB while publishing`);
	check(maxRss - rss0 < 48 * 1024, `the relay's memory grew by ${maxRss - rss0} KiB for one stalled subscriber (64 MiB published)`);

	// Read again: the relay must have ended this stream.
	s.resume();
	await until(() => stalled.closed, 10000, 'the stalled subscriber is still connected after 64 MiB published (it should have been closed)');
	const text = Buffer.concat(stalled.data).toString('latin1');
	const ids = [...text.matchAll(/(?:^|\n)id: (\d+)\n/g)].map((m) => Number(m[1]));
	const lastId = ids.length ? ids[ids.length - 1] : 0;
	console.log(`ok: the stalled subscriber was closed after ${text.length} bytes (last id ${lastId}, of ${count})`);
	check(lastId < count, 'the stalled subscriber got every event anyway (was it really stalled?)');
	if (!text.endsWith('\n\n'))
		console.log('note: its stream ended inside a frame (clients discard that partial event)');

	// Resuming from its last id: the events after it are gone from the ring.
	const r = await raw(relay.port, `GET /events HTTP/1.1\r\nHost: ${HOST}\r\nLast-Event-ID: ${lastId}\r\n\r\n`, { ms: 1000 });
	const body2 = r.data.toString('latin1');
	check(r.status === 200, `resume with Last-Event-ID: ${lastId}: status ${r.status}`);
	check(/(^|\n)event: sse-reset\n/.test(body2), `resume with Last-Event-ID: ${lastId} after missing events: no sse-reset event`);
	check(new RegExp(`(^|\\n)id: ${count}\\n`).test(body2), `the resume did not bring the reader to id ${count}`);

	await publishOk(relay.base, 'after');
	await until(() => readerEvents === count + 1, 5000, 'the reader did not get the event after all that');
});
