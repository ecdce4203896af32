// Conformance over HTTP/2 in a real browser: Debian's Chromium (headless,
// driven by playwright-core) opens EventSources on sse-h2 over TLS, ALPN
// "h2", and publishes with fetch() from the same page. Checked:
//
//   - every /events response came over h2, all on ONE connection, eight of
//     them at once (more than the six HTTP/1.1 connections a browser allows
//     per host);
//   - each of the eight gets every nasty payload (tests/interop/relay.mjs)
//     exactly, once, in order, and a 900 KiB event intact (flow control
//     over eight streams);
//   - one EventSource closed (the browser resets its HTTP/2 stream): the
//     others keep receiving on the same connection;
//   - resume: an EventSource opened with ?lastEventId=ID gets exactly the
//     events after ID; an unknown id gets the "sse-reset" event.
//
//   node chromium-h2.mjs PATH-TO-sse-h2    (via node-test.sh --npm)
//
// Skipped (exit 77) when Chromium cannot run, when the openssl command
// cannot make a certificate, or when sse-h2 was built without OpenSSL.
//
// SPDX-License-Identifier: MIT

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from './browser.mjs';
import { atExit, check, fail, nastyPayloads, run, show, startRelay, until } from './relay.mjs';

const SOURCES = 8;
const BIG = 900 * 1024;

// A self-signed certificate for 127.0.0.1, or null.
function certificate() {
	const dir = mkdtempSync(join(tmpdir(), 'sse-h2-tls-'));
	atExit(() => rmSync(dir, { recursive: true, force: true }));
	const cert = join(dir, 'cert.pem');
	const key = join(dir, 'key.pem');
	try {
		execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
			'-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
			'-keyout', key, '-out', cert], { stdio: 'pipe' });
	} catch (e) {
		return null;
	}
	return { cert, key };
}

// In the page: open n EventSources on path; each keeps what it got.
function openSources([n, path]) {
	window.sources = window.sources || [];
	const first = window.sources.length;
	for (let i = 0; i < n; i++) {
		const es = new EventSource(path);
		es.got = [];
		es.resets = 0;
		es.onmessage = (e) => es.got.push({ id: e.lastEventId, data: e.data });
		es.addEventListener('sse-reset', () => es.resets++);
		window.sources.push(es);
	}
	return first;
}

// In the page: POST the bytes (base64) to /publish; the answer.
async function publishInPage(b64) {
	const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
	const r = await fetch('/publish', { method: 'POST', body: bytes, headers: { 'Content-Type': 'text/plain' } });
	return { status: r.status, text: await r.text() };
}

await run('chromium-h2', async () => {
	const bin = process.argv[2];
	const browser = await launchChromium();
	if (typeof browser === 'string') {
		console.log(`SKIP: ${browser}`);
		return 'skip';
	}
	const tls = certificate();
	if (!tls) {
		console.log('SKIP: the openssl command cannot make a certificate');
		return 'skip';
	}
	const probe = spawnSync(bin, ['--tls-cert', tls.cert, '--tls-key', tls.key, '--help'], { encoding: 'utf8' });
	if (/without OpenSSL/.test(probe.stderr + probe.stdout)) {
		console.log('SKIP: sse-h2 was built without OpenSSL (libssl-dev)');
		return 'skip';
	}
	const srv = await startRelay(bin, ['--heartbeat', '60000', '--tls-cert', tls.cert, '--tls-key', tls.key]);
	const origin = `https://127.0.0.1:${srv.port}`;

	const context = await browser.newContext({ ignoreHTTPSErrors: true });
	const page = await context.newPage();
	const pageErrors = [];
	page.on('pageerror', (e) => pageErrors.push(String(e)));
	// The page itself comes from the test; everything else from sse-h2.
	await page.route(origin + '/test-page', (r) => r.fulfill({
		status: 200, contentType: 'text/html', body: '<!doctype html><title>libsse over h2</title>',
	}));
	const cdp = await context.newCDPSession(page);
	await cdp.send('Network.enable');
	const heads = [];
	cdp.on('Network.responseReceived', (e) => {
		if (new URL(e.response.url).pathname === '/events')
			heads.push({ protocol: e.response.protocol, conn: e.response.connectionId, status: e.response.status });
	});
	await page.goto(origin + '/test-page', { waitUntil: 'load', timeout: 10000 });

	await page.evaluate(openSources, [SOURCES, '/events']);
	await page.waitForFunction((n) => window.sources.filter((s) => s.readyState === 1).length === n, SOURCES,
		{ timeout: 10000 }).catch(() => fail(`not all ${SOURCES} EventSources opened within 10 s`));
	await until(() => heads.length >= SOURCES, 5000, 'DevTools reported fewer /events responses than EventSources');
	check(heads.every((h) => h.protocol === 'h2' && h.status === 200),
		`/events responses not all 200 over h2: ${JSON.stringify(heads)}`);
	const conns = new Set(heads.map((h) => h.conn));
	check(conns.size === 1, `the ${SOURCES} EventSources used ${conns.size} connections, want one: ${JSON.stringify(heads)}`);
	console.log(`ok: ${SOURCES} EventSources open over h2 on ${conns.size} connection`);

	// Every nasty payload, then a large one, published over h2 from the page.
	const sent = [];
	const payloads = [...nastyPayloads(), ['900 KiB', 'L'.repeat(BIG - 1) + '\n', 'L'.repeat(BIG - 1) + '\n']];
	for (const [name, payload, want] of payloads) {
		const r = await page.evaluate(publishInPage, Buffer.from(payload, 'utf8').toString('base64'));
		if (r.status !== 202) fail(`${name}: /publish answered ${r.status}: ${r.text.slice(0, 200)}`);
		sent.push({ name, id: r.text.replace(/\n$/, ''), want });
	}
	const ok = await page.waitForFunction((n) => window.sources.every((s) => s.got.length >= n), sent.length,
		{ timeout: 20000, polling: 100 }).then(() => true, () => false);
	const got = await page.evaluate(() => window.sources.map((s) => s.got));
	check(ok, `not every EventSource got all ${sent.length} events: ${got.map((g) => g.length).join(' ')}`);
	for (let i = 0; i < SOURCES; i++) {
		check(got[i].length === sent.length, `source ${i}: ${got[i].length} events, want ${sent.length}`);
		for (let k = 0; k < Math.min(got[i].length, sent.length); k++) {
			const g = got[i][k];
			const s = sent[k];
			if (!check(g.id === s.id && g.data === s.want,
				`source ${i}, event ${k} (${s.name}): got id ${g.id} data ${show(g.data)}, want id ${s.id} data ${show(s.want)}`))
				break;
		}
	}
	console.log(`ok: each of ${SOURCES} sources got ${sent.length} events exactly, in order, incl. ${BIG} B`);

	// Close one: only its HTTP/2 stream ends.
	await page.evaluate(() => window.sources[0].close());
	const after = await page.evaluate(publishInPage, Buffer.from('after a close').toString('base64'));
	check(after.status === 202, `publish after a close answered ${after.status}`);
	const rest = await page.waitForFunction((n) => window.sources.slice(1).every((s) => s.got.length === n + 1),
		sent.length, { timeout: 10000, polling: 100 }).then(() => true, () => false);
	check(rest, 'after one EventSource closed, the others did not all get the next event');
	console.log('ok: closing one EventSource left the others receiving');

	// Resume from the second event's id; and from an id nobody issued.
	const from = 1;
	const [resumed] = [await page.evaluate(openSources, [1, `/events?lastEventId=${encodeURIComponent(sent[from].id)}`])];
	const want = sent.length - from - 1 + 1; // the events after it, and "after a close"
	const rok = await page.waitForFunction(([i, n]) => window.sources[i].got.length >= n, [resumed, want],
		{ timeout: 10000, polling: 100 }).then(() => true, () => false);
	const rgot = await page.evaluate((i) => window.sources[i].got, resumed);
	check(rok && rgot.length === want, `resumed after ${sent[from].id}: ${rgot.length} events, want ${want}`);
	for (let k = 0; k < Math.min(rgot.length, want - 1); k++)
		if (!check(rgot[k].id === sent[from + 1 + k].id && rgot[k].data === sent[from + 1 + k].want,
			`resumed event ${k}: id ${rgot[k].id}, want ${sent[from + 1 + k].id}`))
			break;
	console.log(`ok: ?lastEventId resumed with the ${want} events after it`);
	const unknown = await page.evaluate(openSources, [1, '/events?lastEventId=nobody-issued-this']);
	const reset = await page.waitForFunction((i) => window.sources[i].resets > 0, unknown,
		{ timeout: 10000, polling: 100 }).then(() => true, () => false);
	check(reset, 'an unknown Last-Event-ID did not get the sse-reset event');
	console.log('ok: an unknown id got the sse-reset event');

	check(pageErrors.length === 0, `errors in the page: ${pageErrors.join('; ')}`);
	await context.close();
}, 120000);

