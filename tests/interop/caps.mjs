// Interop test: connection caps answered "come back later", not reset.
//
// A. --max-per-addr 5: five /events streams from 127.0.0.1 are served; a
//    sixth gets a complete 200 text/event-stream response whose body is
//    only "retry: N" (N in 2000..10000 ms), then the relay closes (read
//    to the end: no reset). Once one of the five leaves, a new stream is
//    served again. Publishing is never refused by it.
// B. --max-conns 40: subscribers may take 40 less the publish reserve
//    (a quarter of 40: 10), i.e. 30; the 31st /events gets the same
//    200 + retry answer, and a publish still gets 202 and reaches all 30.
//    Then 10 idle connections fill the rest: a connection past the cap is
//    still answered (a few are let in for that), /events with 200 + retry
//    and /publish with 503 + Retry-After.
// C. --max-conns-per-addr 8: 20 idle connections from 127.0.0.1 (they
//    send nothing): 8 stay open, 12 are closed at once (not after the
//    10 s request deadline). Meanwhile 127.0.0.2 (the client socket
//    bound to it) still subscribes and publishes; once the idle ones
//    close, 127.0.0.1 is served again. Prints the counts.
// D. --cors-origin A with --max-per-addr 1: a second /events with Origin
//    A is refused 200 + retry + close carrying
//    Access-Control-Allow-Origin: A (with credentials, Vary: Origin), so
//    that a page of A reads the retry rather than a network error; one
//    from no Origin carries none.
//
//   node caps.mjs PATH-TO-sse-relay    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import net from 'node:net';
import { HOST, atExit, check, log, publish, publishOk, raw, run, sleep, sseSubscribe, startRelay, until } from './relay.mjs';

const GET = 'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n';

/** A refused /events: 200, event-stream, Content-Length, body "retry: N\n\n", closed. */
function checkRetryLater(what, r) {
	const text = r.data.toString('latin1');
	const at = text.indexOf('\r\n\r\n');
	const head = at < 0 ? text : text.slice(0, at);
	const body = at < 0 ? '' : text.slice(at + 4);
	const m = /^retry: (\d+)\n\n$/.exec(body);
	const len = /\r\ncontent-length: (\d+)/i.exec(head);
	const ok = check(r.status === 200, `${what}: status ${r.status} (${JSON.stringify(text.slice(0, 80))}), want 200`) &&
		check(/\r\ncontent-type: text\/event-stream/i.test(head), `${what}: no text/event-stream in ${JSON.stringify(head)}`) &&
		check(len && Number(len[1]) === Buffer.byteLength(body), `${what}: Content-Length ${len && len[1]} for a body of ${body.length}`) &&
		check(m !== null, `${what}: body ${JSON.stringify(body)}, want "retry: N\\n\\n"`) &&
		check(m && Number(m[1]) >= 2000 && Number(m[1]) <= 10000, `${what}: retry ${m && m[1]} outside 2000..10000`) &&
		check(r.closed, `${what}: the connection was not closed after the answer`);
	if (ok) log(`ok: ${what}: 200 + "retry: ${m[1]}" + close, ${r.data.length} bytes read to the end`);
	return ok ? Number(m[1]) : null;
}

async function perAddress(bin) {
	log('--- A: --max-per-addr 5 ---');
	const relay = await startRelay(bin, ['--max-per-addr', '5', '--heartbeat', '60000']);
	const subs = [];
	for (let i = 0; i < 5; i++) subs.push(sseSubscribe(relay.port));
	await until(() => subs.every((s) => s.status() === 200 && s.bytes() > 0), 5000, 'A: five subscribers not all served');
	const retries = [];
	for (let i = 0; i < 4; i++) retries.push(checkRetryLater(`A: stream #${6 + i} from one address`, await raw(relay.port, GET, { ms: 3000 })));
	log(`A: retries told: ${retries.join(', ')} ms`);
	check(new Set(retries).size > 1, `A: every refused client was told the same retry (${retries}): no spread`);
	await publishOk(relay.base, 'not capped');
	await until(() => subs.every((s) => s.events.length === 1), 5000, 'A: the five did not get the event');
	subs[0].close();
	await sleep(200);
	const again = sseSubscribe(relay.port);
	await until(() => again.status() !== null && again.bytes() > 0, 5000, 'A: no answer after one of the five left');
	check(again.status() === 200 && !again.closed(), 'A: a stream after one of five left was not served');
	await publishOk(relay.base, 'after');
	await until(() => again.events.length === 1, 5000, 'A: the new stream did not get the event');
	log('ok: A: after one of the five left, a new stream from the address is served');
	for (const s of subs) s.close();
	again.close();
	await relay.stop();
}

async function total(bin) {
	log('--- B: --max-conns 40 ---');
	const relay = await startRelay(bin, ['--max-conns', '40', '--heartbeat', '60000']);
	const subs = [];
	for (let i = 0; i < 30; i++) subs.push(sseSubscribe(relay.port));
	await until(() => subs.every((s) => s.status() === 200 && s.bytes() > 0), 5000, 'B: 30 subscribers not all served');
	checkRetryLater('B: the 31st /events (30 = 40 less the reserve of 10)', await raw(relay.port, GET, { ms: 3000 }));
	const id = await publishOk(relay.base, 'reserve');
	await until(() => subs.every((s) => s.events.length === 1), 5000, 'B: the 30 did not all get the event');
	log(`ok: B: a publish with subscribers at their cap: 202 (${id}), delivered to all 30`);
	// Fill the reserve with idle connections: 30 + 10 = 40.
	const idle = [];
	for (let i = 0; i < 10; i++) {
		const s = net.connect(relay.port, HOST);
		s.on('error', () => {});
		atExit(() => s.destroy());
		idle.push(s);
	}
	await Promise.all(idle.map((s) => new Promise((r) => s.once('connect', r))));
	await sleep(200);
	checkRetryLater('B: /events past --max-conns', await raw(relay.port, GET, { ms: 3000 }));
	const p = await publish(relay.base, 'over');
	check(p.status === 503, `B: /publish past --max-conns: ${p.status}, want 503`) && log('ok: B: /publish past --max-conns: 503 (Retry-After), not a reset');
	for (const s of idle) s.destroy();
	await sleep(200);
	await publishOk(relay.base, 'room again');
	log('ok: B: with the idle connections gone, publishing works again');
	for (const s of subs) s.close();
	await relay.stop();
}

/** A connection from localAddress that sends nothing: resolves once connected; .closedAt set when the relay closes it. */
function idleFrom(port, localAddress) {
	const s = net.connect({ port, host: HOST, localAddress });
	s.closedAt = null;
	s.on('error', () => {});
	s.on('close', () => { s.closedAt = Date.now(); });
	s.on('end', () => s.end());
	atExit(() => s.destroy());
	return new Promise((resolve) => s.once('connect', () => resolve(s)));
}

/** One raw exchange from localAddress: {status, closed}. */
function rawFrom(port, localAddress, bytes) {
	return new Promise((resolve) => {
		const s = net.connect({ port, host: HOST, localAddress });
		let data = '';
		const done = (closed) => {
			clearTimeout(timer);
			s.destroy();
			const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
			resolve({ status: m ? Number(m[1]) : null, closed, data });
		};
		const timer = setTimeout(() => done(false), 3000);
		s.on('connect', () => s.write(bytes));
		s.on('data', (d) => { data += d.toString('latin1'); });
		s.on('end', () => done(true));
		s.on('error', () => done(true));
	});
}

async function connsPerAddress(bin) {
	log('--- C: --max-conns-per-addr 8 ---');
	const relay = await startRelay(bin, ['--max-conns-per-addr', '8', '--heartbeat', '60000']);
	const t0 = Date.now();
	const idle = [];
	for (let i = 0; i < 20; i++) idle.push(await idleFrom(relay.port, '127.0.0.1'));
	await sleep(500);
	const open = idle.filter((s) => s.closedAt === null).length;
	const cut = idle.filter((s) => s.closedAt !== null);
	const slowest = cut.length ? Math.max(...cut.map((s) => s.closedAt - t0)) : 0;
	log(`C: 20 idle connections from 127.0.0.1: ${open} open, ${cut.length} closed by the relay (the last ${slowest} ms after the first connect)`);
	check(open === 8 && cut.length === 12, `C: ${open} idle connections open and ${cut.length} closed, want 8 and 12`) &&
		check(slowest < 3000, `C: an idle connection past the cap was closed only after ${slowest} ms`) &&
		log('ok: C: one address is cut off at 8 connections, at once');
	const POST = 'POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nother';
	const p = await rawFrom(relay.port, '127.0.0.2', POST);
	const e = await rawFrom(relay.port, '127.0.0.2', GET);
	const from1 = await rawFrom(relay.port, '127.0.0.1', POST);
	log(`C: with 127.0.0.1 at its cap: from 127.0.0.2 /publish ${p.status}, /events ${e.status}; from 127.0.0.1 /publish ${from1.status ?? 'closed unanswered'}`);
	check(p.status === 202, `C: /publish from 127.0.0.2: ${p.status}, want 202`) &&
		check(e.status === 200 && !e.closed, `C: /events from 127.0.0.2 not served a stream (closed: ${e.closed}): ${JSON.stringify(e.data.slice(0, 120))}`) &&
		check(from1.status === null && from1.closed, `C: a ninth connection from 127.0.0.1 was answered ${from1.status}`) &&
		log('ok: C: another address is served while the first is at its cap');
	for (const s of idle) s.destroy();
	await sleep(200);
	const again = await rawFrom(relay.port, '127.0.0.1', POST);
	check(again.status === 202, `C: /publish from 127.0.0.1 after its idle connections closed: ${again.status}`) &&
		log('ok: C: with its idle connections gone, 127.0.0.1 is served again');
	await relay.stop();
}

async function corsRefusal(bin) {
	log('--- D: a refused /events carries the CORS lines ---');
	const A = 'https://app.example';
	const relay = await startRelay(bin, ['--cors-origin', A, '--max-per-addr', '1', '--heartbeat', '60000']);
	const sub = sseSubscribe(relay.port);
	await until(() => sub.status() === 200 && sub.bytes() > 0, 5000, 'D: the first subscriber was not served');
	const withOrigin = GET.replace('\r\n\r\n', `\r\nOrigin: ${A}\r\n\r\n`);
	const r = await raw(relay.port, withOrigin, { ms: 3000 });
	checkRetryLater('D: a second /events with a listed Origin', r);
	const head = r.data.toString('latin1').split('\r\n\r\n')[0];
	check(new RegExp(`\r\naccess-control-allow-origin: ${A.replace(/\./g, '\\.')}\r\n`, 'i').test(head + '\r\n'), `D: no Access-Control-Allow-Origin: ${A} in ${JSON.stringify(head)}`) &&
		check(/\r\naccess-control-allow-credentials: true\r\n/i.test(head + '\r\n') && /\r\nvary: origin\r\n/i.test(head + '\r\n'), `D: no credentials or Vary in ${JSON.stringify(head)}`) &&
		log(`ok: D: the refusal carries Access-Control-Allow-Origin: ${A}, credentials, Vary: Origin`);
	const plain = await raw(relay.port, GET, { ms: 3000 });
	checkRetryLater('D: a second /events with no Origin', plain);
	check(!/access-control-allow-origin/i.test(plain.data.toString('latin1')), 'D: a refusal with no Origin carries Access-Control-Allow-Origin') &&
		log('ok: D: a refusal with no Origin has no Access-Control-Allow-Origin');
	sub.close();
	await relay.stop();
}

await run('caps', async () => {
	await perAddress(process.argv[2]);
	await total(process.argv[2]);
	await connsPerAddress(process.argv[2]);
	await corsRefusal(process.argv[2]);
}, 80000);
