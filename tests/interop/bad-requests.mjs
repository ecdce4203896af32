// Interop test 5: bad requests while a subscriber keeps receiving.
//
// A `curl -sN` subscriber stays connected the whole time. Raw requests over
// TCP (malformed request lines and header fields, a 10 KB header, unknown
// paths and methods, POST without a length, an oversize body, ...) must each
// get their status code, after which the relay closes the connection. Then
// the subscriber must still get a published event, and the relay must still
// accept a body of exactly 1 MiB and deliver it. A second relay checks
// --token.
//
//   node bad-requests.mjs PATH-TO-sse-relay    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { HOST, atExit, check, publish, publishOk, raw, run, sleep, startRelay, track, until } from './relay.mjs';

const H = 'Host: 127.0.0.1\r\n';

/** [what, request bytes (latin1), acceptable statuses] */
const cases = [
	['garbage request line', 'BLAH\r\n\r\n', [400]],
	['request line with 4 parts', `GET /events HTTP/1.1 junk\r\n${H}\r\n`, [400]],
	['two spaces in the request line', `GET  /events HTTP/1.1\r\n${H}\r\n`, [400]],
	['no version', `GET /events\r\n${H}\r\n`, [400]],
	['lower-case version', `GET /events http/1.1\r\n${H}\r\n`, [400]],
	['HTTP/2.0 in text', `GET /events HTTP/2.0\r\n${H}\r\n`, [400, 505]],
	['header without colon', `GET /events HTTP/1.1\r\n${H}NoColonHere\r\n\r\n`, [400]],
	['space before the colon', `GET /events HTTP/1.1\r\nHost : x\r\n\r\n`, [400]],
	['empty header name', `GET /events HTTP/1.1\r\n${H}: x\r\n\r\n`, [400]],
	['control byte in a value', `GET /events HTTP/1.1\r\n${H}X-Bad: a\x01b\r\n\r\n`, [400]],
	['NUL in a value', `GET /events HTTP/1.1\r\n${H}X-Nul: a\x00b\r\n\r\n`, [400]],
	['bare CR in a value', `GET /events HTTP/1.1\r\n${H}X-CR: a\rb\r\n\r\n`, [400]],
	['obsolete line folding', `GET /events HTTP/1.1\r\n${H}X-Fold: a\r\n b\r\n\r\n`, [400]],
	['TLS ClientHello', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + '\x00'.repeat(40), [400]],
	['bad percent-escape in lastEventId', `GET /events?lastEventId=%zz HTTP/1.1\r\n${H}\r\n`, [400]],
	['10 KB header field', `GET /events HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(10240)}\r\n\r\n`, [431]],
	['head over 8 KiB in many fields', `GET /events HTTP/1.1\r\n${H}${Array.from({ length: 20 }, (_, i) => `X-F${i}: ${'b'.repeat(500)}\r\n`).join('')}\r\n`, [431]],
	['100 header fields', `GET /events HTTP/1.1\r\n${H}${Array.from({ length: 100 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, [400, 431]],
	// RFC 9112 section 3.2: an HTTP/1.1 request without exactly one Host is a bad request.
	['HTTP/1.1 without Host', 'GET /nope HTTP/1.1\r\n\r\n', [400]],
	['two Host fields', `GET /events HTTP/1.1\r\n${H}Host: 127.0.0.2\r\n\r\n`, [400]],
	['HTTP/1.0 without Host (allowed)', 'GET /nope HTTP/1.0\r\n\r\n', [404]],
	['unknown path', `GET /nope HTTP/1.1\r\n${H}\r\n`, [404]],
	['path below a channel', `GET /events/x/y HTTP/1.1\r\n${H}\r\n`, [404]],
	['path starting like /publish', `POST /publishing HTTP/1.1\r\n${H}Content-Length: 1\r\n\r\nx`, [404]],
	['favicon', `GET /favicon.ico HTTP/1.1\r\n${H}\r\n`, [404]],
	['bare LF line ends (allowed)', `GET /nope HTTP/1.1\n${H.replace('\r', '')}\n`, [404]],
	['POST /events', `POST /events HTTP/1.1\r\n${H}Content-Length: 1\r\n\r\nx`, [405]],
	['DELETE /', `DELETE / HTTP/1.1\r\n${H}\r\n`, [405]],
	['PUT /publish', `PUT /publish HTTP/1.1\r\n${H}Content-Length: 1\r\n\r\nx`, [405]],
	['GET /publish', `GET /publish HTTP/1.1\r\n${H}\r\n`, [405]],
	['POST /publish without Content-Length', `POST /publish HTTP/1.1\r\n${H}\r\n`, [411]],
	['POST /publish chunked', `POST /publish HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n`, [400, 411, 501]],
	['Content-Length: abc', `POST /publish HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n`, [400]],
	['Content-Length: -1', `POST /publish HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, [400]],
	['Content-Length: +1', `POST /publish HTTP/1.1\r\n${H}Content-Length: +1\r\n\r\nx`, [400]],
	['Content-Length: 1 1', `POST /publish HTTP/1.1\r\n${H}Content-Length: 1 1\r\n\r\nxx`, [400]],
	['two different Content-Lengths', `POST /publish HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx`, [400]],
	['Content-Length: 99999999999999999999999', `POST /publish HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n`, [400, 413]],
];

/** Send a head announcing a body over 1 MiB, then the body, until answered. */
async function oversize(port) {
	const len = 1048576 + 1;
	return new Promise((resolve) => {
		const s = net.connect(port, HOST);
		const chunks = [];
		let sent = 0;
		let answered = false;
		const t0 = Date.now();
		const timer = setTimeout(() => done(false), 5000);
		function done(closed) {
			clearTimeout(timer);
			s.destroy();
			const data = Buffer.concat(chunks).toString('latin1');
			const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
			resolve({ status: m ? Number(m[1]) : null, closed, data, sent, ms: Date.now() - t0 });
		}
		s.on('connect', () => {
			s.write(`POST /publish HTTP/1.1\r\n${H}Content-Type: text/plain\r\nContent-Length: ${len}\r\n\r\n`);
			// The rest a bit later, in pieces, as long as no answer came.
			const piece = Buffer.alloc(65536, 'z');
			const more = () => {
				if (answered || sent >= len || s.destroyed) return;
				const n = Math.min(piece.length, len - sent);
				sent += n;
				if (s.write(piece.subarray(0, n))) setTimeout(more, 2);
				else s.once('drain', more);
			};
			setTimeout(more, 200);
		});
		s.on('data', (d) => {
			answered = true;
			chunks.push(d);
		});
		s.on('end', () => done(true));
		s.on('error', () => done(true));
	});
}

/** Write a request one byte at a time (a slow but valid client). */
async function trickle(port, text) {
	const s = net.connect(port, HOST);
	const chunks = [];
	let closed = false;
	s.on('data', (d) => chunks.push(d));
	s.on('close', () => (closed = true));
	s.on('error', () => (closed = true));
	await new Promise((r) => s.once('connect', r));
	for (const ch of Buffer.from(text, 'latin1')) {
		s.write(Buffer.from([ch]));
		await sleep(3);
	}
	await until(() => closed || /\r\n\r\n/.test(Buffer.concat(chunks).toString('latin1')), 3000, 'no answer to a trickled request');
	s.destroy();
	const m = /^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'));
	return m ? Number(m[1]) : null;
}

/** A curl -sN subscriber (or Node's http when curl is missing). */
function subscriber(base) {
	const sub = { text: '', closed: false };
	if (spawnSync('curl', ['--version']).status === 0) {
		const p = track(spawn('curl', ['-sN', '--noproxy', '*', '--max-time', '60', base + '/events'], { stdio: ['ignore', 'pipe', 'inherit'] }));
		p.stdout.on('data', (d) => (sub.text += d.toString('utf8')));
		p.on('exit', () => (sub.closed = true));
		atExit(() => p.kill());
		sub.what = 'curl -sN';
	} else {
		const req = http.get(base + '/events', (res) => {
			res.on('data', (d) => (sub.text += d.toString('utf8')));
			res.on('close', () => (sub.closed = true));
		});
		atExit(() => req.destroy());
		sub.what = 'node http (curl is not installed)';
	}
	return sub;
}

await run('bad-requests', async () => {
	const relay = await startRelay(process.argv[2], ['--heartbeat', '60000']);
	const sub = subscriber(relay.base);
	await until(() => sub.text.length > 0, 5000, `${sub.what}: no opening bytes`);
	await publishOk(relay.base, 'before');
	await until(() => sub.text.includes('data: before\n'), 5000, 'the subscriber did not get "before"');

	const results = await Promise.all(cases.map(([, req]) => raw(relay.port, req, { ms: 4000 })));
	for (let i = 0; i < cases.length; i++) {
		const [what, , want] = cases[i];
		const r = results[i];
		const first = r.data.toString('latin1').split('\r\n')[0];
		if (check(want.includes(r.status), `${what}: status ${r.status} (${JSON.stringify(first)}), want ${want.join(' or ')}`))
			check(r.closed, `${what}: the connection was not closed within 4 s of the ${r.status} answer`) &&
				console.log(`ok: ${what}: ${r.status}, then closed`);
	}

	const big = await oversize(relay.port);
	check(big.status === 413, `body of 1 MiB + 1: status ${big.status} (${JSON.stringify(big.data.slice(0, 60))}) after ${big.sent} body bytes, want 413`) &&
		check(big.closed, 'body of 1 MiB + 1: not closed after the 413') &&
		console.log(`ok: body of 1 MiB + 1: 413 after ${big.sent} body bytes, then closed`);

	const slow = await trickle(relay.port, `GET /nope HTTP/1.1\r\n${H}X-Slow: yes\r\n\r\n`);
	check(slow === 404, `a request sent one byte at a time: status ${slow}, want 404`) && console.log('ok: one byte at a time: 404');

	// The subscriber was never disturbed.
	check(!sub.closed, 'the subscriber was disconnected during the bad requests');
	await publishOk(relay.base, 'after');
	await until(() => sub.text.includes('data: after\n'), 5000, 'the subscriber did not get "after" following the bad requests');
	console.log('ok: the subscriber still receives');

	// Exactly 1 MiB is allowed, and reaches the subscriber whole.
	const mib = 'm'.repeat(1048576);
	const r = await publish(relay.base, mib);
	if (check(r.status === 202, `a body of exactly 1 MiB: status ${r.status} (${r.body.slice(0, 100)}), want 202`)) {
		await until(() => sub.text.includes('data: ' + mib + '\n\n'), 10000,
			() => `the subscriber did not get the 1 MiB event (has ${sub.text.length} chars, closed: ${sub.closed})`);
		console.log('ok: a body of exactly 1 MiB: 202 and delivered');
	}
	await publishOk(relay.base, 'still here');
	await until(() => sub.text.includes('data: still here\n'), 5000, 'the subscriber lost the stream after the 1 MiB event');
	check(!sub.closed, 'the subscriber was closed');

	// --token: publishing needs "Authorization: Bearer T".
	const t = await startRelay(process.argv[2], ['--token', 's3cret']);
	for (const [what, headers, want] of [
		['no Authorization', {}, 401],
		['wrong token', { Authorization: 'Bearer nope' }, 401],
		['token as Basic', { Authorization: 'Basic s3cret' }, 401],
		['token with a suffix', { Authorization: 'Bearer s3cret2' }, 401],
		['right token', { Authorization: 'Bearer s3cret' }, 202],
	]) {
		const p = await publish(t.base, 'x', '', headers);
		check(p.status === want, `--token: ${what}: status ${p.status}, want ${want}`) && console.log(`ok: --token: ${what}: ${want}`);
	}
});
