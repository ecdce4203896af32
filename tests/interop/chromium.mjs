// Interop test 6: a real browser. Debian's Chromium, headless, driven over
// the DevTools protocol by playwright-core (never a downloaded browser),
// loads the relay's page at http://127.0.0.1:PORT/, whose EventSource lists
// the events. Published events must show up in the page's DOM, each in an
// element holding its id and its data; markup in a payload must show as
// text, never become elements or run.
//
//   node chromium.mjs PATH-TO-sse-relay    (via node-test.sh --npm)
//
// Skipped (exit 77) when Chromium is not installed or cannot start.
//
// SPDX-License-Identifier: MIT

import { launchChromium } from './browser.mjs';
import { check, fail, publishOk, run, startRelay } from './relay.mjs';

await run('chromium', async () => {
	const browser = await launchChromium();
	if (typeof browser === 'string') {
		console.log(`SKIP: ${browser}`);
		return 'skip';
	}

	const relay = await startRelay(process.argv[2], ['--heartbeat', '60000']);
	// Events from before the page: a fresh EventSource starts live, without them.
	for (let i = 0; i < 7; i++) await publishOk(relay.base, `before the page ${'abcdefg'[i]}`);

	const page = await browser.newPage();
	const pageErrors = [];
	page.on('pageerror', (e) => pageErrors.push(String(e)));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/favicon\.ico/.test(m.location().url || ''))
			pageErrors.push('console: ' + m.text() + ' ' + (m.location().url || ''));
	});
	const res = await page.goto(relay.base + '/', { waitUntil: 'load', timeout: 10000 });
	check(res && res.status() === 200, `GET / answered ${res && res.status()}`);
	check(/text\/html/.test((res && res.headers()['content-type']) || ''), `GET / Content-Type: ${res && res.headers()['content-type']}`);
	const hasES = await page.evaluate(() => document.documentElement.outerHTML.includes('EventSource'));
	check(hasES, 'the page does not use EventSource');
	// Events published before the page's EventSource is connected are not
	// for it: publish a probe until one shows up.
	let probes = 0;
	for (const t0 = Date.now(); ; ) {
		probes++;
		await publishOk(relay.base, `probe ${'x'.repeat(probes)}`);
		const seen = await page.waitForFunction(() => document.body.textContent.includes('probe x'), null, { timeout: 300 })
			.then(() => true, () => false);
		if (seen) break;
		if (Date.now() - t0 > 10000) fail('the page shows no event within 10 s of loading');
	}

	const payloads = [
		['plain', 'hello from the relay'],
		['UTF-8', 'héllo wörld — 日本語 😀'],
		['two lines', 'first line\nsecond line'],
		['CRLF', 'crlf one\r\ncrlf two'],
		['markup', '<img src=x onerror="window.__xss=1"><b>bold?</b> & <i>amp</i>'],
		['script', '</li></ul><script>window.__xss=2</script>'],
		['leading space', '  spaced out'],
	];
	const sent = [];
	for (const [name, p] of payloads) sent.push({ name, p, id: await publishOk(relay.base, p) });

	// Find each payload's element: the innermost element whose text has a
	// distinctive part of it, then up to 3 ancestors for one that also
	// holds the id (as text or in an attribute).
	const find = ({ p, id }) => {
		const mark = p.replace(/\r\n|\r/g, '\n').split('\n').filter((l) => l.trim())[0].trim();
		const all = [...document.body.querySelectorAll('*')].filter((e) => e.textContent.includes(mark));
		const inner = all.filter((e) => ![...e.children].some((c) => c.textContent.includes(mark)));
		const idRe = new RegExp(`(^|\\D)${id}(\\D|$)`);
		for (let e of inner) {
			for (let k = 0; e && e !== document.body && k < 4; k++, e = e.parentElement) {
				const attrs = [...e.attributes].map((a) => a.value).join(' ');
				if (idRe.test(e.textContent.replace(mark, ' ')) || idRe.test(attrs))
					return { ok: true, text: e.textContent, tag: e.tagName };
			}
		}
		return { ok: false, found: inner.map((e) => e.outerHTML.slice(0, 200)) };
	};
	for (const s of sent) {
		let r;
		try {
			await page.waitForFunction(find, s, { timeout: 8000, polling: 100 });
			r = await page.evaluate(find, s);
		} catch {
			r = await page.evaluate(find, s);
		}
		if (!check(r.ok, `${s.name} (id ${s.id}): no element with the id and the data in the page; elements with the data: ${JSON.stringify(r.found)}`))
			continue;
		const lines = s.p.replace(/\r\n|\r/g, '\n').split('\n');
		check(lines.every((l) => r.text.includes(l.trim())), `${s.name}: element text ${JSON.stringify(r.text)} lacks part of ${JSON.stringify(s.p)}`);
		console.log(`ok: ${s.name}: <${r.tag.toLowerCase()}> ${JSON.stringify(r.text.slice(0, 80))}`);
	}
	const xss = await page.evaluate(() => ({
		flag: window.__xss,
		imgs: document.querySelectorAll('img[src="x"]').length,
		bold: [...document.querySelectorAll('b')].filter((b) => b.textContent === 'bold?').length,
		scripts: [...document.querySelectorAll('script')].filter((e) => e.textContent.includes('__xss')).length,
	}));
	check(!xss.flag && !xss.imgs && !xss.bold && !xss.scripts,
		`payload markup became part of the page (use textContent, not innerHTML): ${JSON.stringify(xss)}`);
	// The page's own publish form, if it has one, used as a person would.
	const form = await page.$('form textarea, form input[name=data], form #data');
	if (form) {
		await form.fill('typed into the form');
		await page.click('form [type=submit], form button');
		const r = await page.waitForFunction(find, { p: 'typed into the form', id: String(sent.length + probes + 8) },
			{ timeout: 8000, polling: 100 }).then(() => true, () => false);
		check(r, `an event published with the page's form did not show up with id ${sent.length + probes + 8}`) &&
			console.log('ok: the page\'s own form published an event that showed up');
	} else {
		console.log('note: the page has no publish form; not tested');
	}
	const before = await page.evaluate(() => document.body.textContent.includes('before the page'));
	check(!before, 'events from before the page loaded showed up (a fresh EventSource has no Last-Event-ID)');
	check(pageErrors.length === 0, `errors in the page: ${pageErrors.join('; ')}`);
	await page.close();
});
