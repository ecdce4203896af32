// Interop test: sse-relay for operators.
//
// 1. /metrics on the main port: Prometheus text 0.0.4 (its Content-Type),
//    every sample preceded by its family's HELP and TYPE, counters named
//    *_total; the values move: N publishes add N to
//    sse_relay_hub_published_events_total, a subscriber shows in the
//    gauges, a subscriber that stops reading is dropped (--stall) and
//    counted in sse_relay_hub_drops_stall_total. `promtool check metrics`
//    (Debian's prometheus package) accepts the text.
// 2. A real Prometheus (the same package) scrapes the relay every second;
//    its HTTP API says up == 1 and has sse_relay_hub_published_events_total.
// 3. /healthz 200 "ok", /readyz 200 "ready" (and /ready, its old name).
// 4. --metrics-bind: /metrics only there (404 on the main port); at
//    SIGTERM the main socket closes but this one stays: /readyz answers
//    503 "shutting down" while subscribers drain, /healthz still 200.
// 5. --access-log FILE: a line per request and per stream, with its
//    fields; the query string (a token, a Last-Event-ID) is not in it.
//
//   node metrics.mjs PATH-TO-sse-relay    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { HOST, atExit, check, fail, log, publishOk, run, sleep, sseSubscribe, startRelay, track, until } from './relay.mjs';

const bin = process.argv[2];
// The version the relay must report: the project's, from meson.build.
const projectVersion = /version: '([^']+)'/.exec(
	readFileSync(new URL('../../meson.build', import.meta.url), 'utf8'))[1];

/** GET url: {status, type, body}; status 0 when the connection failed. */
function get(url) {
	return new Promise((resolve) => {
		const req = http.get(url, { agent: false }, (res) => {
			let body = '';
			res.setEncoding('utf8');
			res.on('data', (d) => (body += d));
			res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
		});
		req.on('error', (e) => resolve({ status: 0, type: '', body: String(e) }));
		req.setTimeout(5000, () => req.destroy(new Error('timeout')));
	});
}

/** A free port of 127.0.0.1 (closed again: a small race, fine on loopback). */
function freePort() {
	return new Promise((resolve) => {
		const s = net.createServer();
		s.listen(0, HOST, () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

/**
 * Parse Prometheus text: {samples: Map name{labels} -> value, problems: []}.
 * Each sample's family (its name, or the name before {) must have had a
 * HELP and a TYPE line first; a counter's family name ends in _total.
 */
function parseMetrics(text) {
	const help = new Map();
	const type = new Map();
	const samples = new Map();
	const problems = [];
	if (!text.endsWith('\n')) problems.push('the text does not end with a line feed');
	for (const line of text.split('\n')) {
		if (line === '') continue;
		let m;
		if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line))) {
			if (help.has(m[1])) problems.push(`HELP twice for ${m[1]}`);
			help.set(m[1], m[2]);
		} else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line))) {
			if (!help.has(m[1])) problems.push(`TYPE before HELP for ${m[1]}`);
			if (m[2] === 'counter' && !m[1].endsWith('_total')) problems.push(`counter ${m[1]} not named *_total`);
			type.set(m[1], m[2]);
		} else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9]+)$/.exec(line))) {
			if (!help.has(m[1]) || !type.has(m[1])) problems.push(`sample ${m[1]} without HELP and TYPE`);
			samples.set(m[1] + (m[2] || ''), Number(m[3]));
		} else {
			problems.push(`a line of unknown form: ${JSON.stringify(line)}`);
		}
	}
	for (const name of help.keys()) if (!type.has(name)) problems.push(`HELP without TYPE for ${name}`);
	return { samples, type, problems };
}

async function scrape(base, what) {
	const r = await get(`${base}/metrics`);
	if (r.status !== 200) fail(`${what}: GET /metrics: ${r.status} ${r.body}`);
	check(r.type === 'text/plain; version=0.0.4; charset=utf-8', `${what}: Content-Type ${r.type}`);
	const p = parseMetrics(r.body);
	for (const msg of p.problems) check(false, `${what}: ${msg}`);
	return { ...p, text: r.body };
}

function value(m, name) {
	if (!m.samples.has(name)) fail(`no sample ${name} in /metrics`);
	return m.samples.get(name);
}

/** promtool check metrics on the text: true, false, or null (no promtool). */
function promtool(text) {
	const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
	if (r.error && r.error.code === 'ENOENT') return null;
	log(`promtool check metrics: exit ${r.status}${r.stdout || r.stderr ? ': ' + (r.stdout + r.stderr).trim() : ''}`);
	return r.status === 0;
}

/** Part 1: the counters and gauges move as they should. */
async function countersMove(dir) {
	const logFile = join(dir, 'access.log');
	const relay = await startRelay(bin, ['--stall', '500', '--sndbuf', '4096', '--heartbeat', '60000',
		'--replay-bytes', String(64 << 20), '--access-log', logFile]);
	const m0 = await scrape(relay.base, 'first scrape');
	log(`first scrape: ${m0.samples.size} samples, ${m0.type.size} families`);
	// Every hub counter (SSE_HUB_STATS) is there: a few by name.
	for (const n of ['published_events_total', 'deliveries_total', 'writes_total', 'subscribes_total', 'drops_gap_total', 'drops_stall_total', 'drops_lifetime_total', 'subscribers', 'parked'])
		value(m0, `sse_relay_hub_${n}`);
	value(m0, `sse_relay_build_info{version="${projectVersion}",redis="off"}`);
	check(value(m0, 'sse_relay_ready') === 1, 'sse_relay_ready is not 1');

	const N = 7;
	for (let i = 0; i < N; i++) await publishOk(relay.base, `event ${i}`);
	const m1 = await scrape(relay.base, 'after publishing');
	const dPub = value(m1, 'sse_relay_hub_published_events_total') - value(m0, 'sse_relay_hub_published_events_total');
	log(`published ${N}: published_events_total moved by ${dPub}`);
	check(dPub === N, `published_events_total moved by ${dPub}, want ${N}`);

	// A subscriber that reads, with secrets in its query string.
	const sub = sseSubscribe(relay.port, { path: '/events?token=SECRET-TOKEN&lastEventId=SECRET-ID' });
	await until(() => sub.status() === 200, 5000, 'the subscriber was not answered');
	const m2 = await scrape(relay.base, 'with a subscriber');
	log(`one subscriber: sse_relay_hub_subscribers ${value(m2, 'sse_relay_hub_subscribers')}, streaming connections ${value(m2, 'sse_relay_connections{state="streaming"}')}`);
	check(value(m2, 'sse_relay_hub_subscribers') === 1, 'sse_relay_hub_subscribers is not 1');
	check(value(m2, 'sse_relay_connections{state="streaming"}') === 1, 'no streaming connection counted');
	sub.close();
	let m3;
	const end = Date.now() + 5000;
	do {
		await sleep(50);
		m3 = await scrape(relay.base, 'after the subscriber left');
	} while (value(m3, 'sse_relay_hub_subscribers') !== 0 && Date.now() < end);
	check(value(m3, 'sse_relay_hub_subscribers') === 0, 'the subscriber that left is still counted');
	check(value(m3, 'sse_relay_hub_unsubscribes_total') === 1, `unsubscribes_total ${value(m3, 'sse_relay_hub_unsubscribes_total')}, want 1`);

	// A subscriber that stops reading: dropped after --stall 500 ms.
	const slow = sseSubscribe(relay.port);
	await until(() => slow.status() === 200, 5000, 'the slow subscriber was not answered');
	slow.pause();
	const big = 'x'.repeat(256 * 1024);
	for (let i = 0; i < 16; i++) await publishOk(relay.base, big);
	let m4;
	const end4 = Date.now() + 5000;
	do {
		await sleep(100);
		m4 = await scrape(relay.base, 'after the stall');
	} while (value(m4, 'sse_relay_hub_drops_stall_total') === 0 && Date.now() < end4);
	log(`a stalled subscriber: drops_stall_total ${value(m4, 'sse_relay_hub_drops_stall_total')}, subscribers ${value(m4, 'sse_relay_hub_subscribers')}`);
	check(value(m4, 'sse_relay_hub_drops_stall_total') === 1, 'the stalled subscriber was not counted in drops_stall_total');
	check(value(m4, 'sse_relay_hub_subscribers') === 0, 'the dropped subscriber is still counted');
	check(value(m4, 'sse_relay_hub_published_bytes_total') > 16 * 256 * 1024, 'published_bytes_total did not grow with the bodies');

	const ok = promtool(m4.text);
	if (ok === null) log('SKIP (promtool part): promtool is not installed (Debian package prometheus; bash .ci/deps.sh test)');
	else check(ok, 'promtool check metrics refused the text');

	// 3. health.
	const h = await get(`${relay.base}/healthz`);
	check(h.status === 200 && h.body === 'ok\n', `/healthz: ${h.status} ${JSON.stringify(h.body)}`);
	for (const path of ['/readyz', '/ready']) {
		const r = await get(`${relay.base}${path}`);
		check(r.status === 200 && r.body === 'ready\n', `${path}: ${r.status} ${JSON.stringify(r.body)}`);
	}
	const post = await get(`${relay.base}/nothing-here`);
	check(post.status === 404, `an unknown path: ${post.status}`);
	await relay.stop();
	return logFile;
}

/** Part 2: a real Prometheus scrapes the relay. */
async function prometheusScrapes(dir) {
	const which = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
	if (which.error) {
		log('SKIP (Prometheus part): prometheus is not installed (Debian package prometheus; bash .ci/deps.sh test)');
		return;
	}
	const relay = await startRelay(bin, []);
	for (let i = 0; i < 3; i++) await publishOk(relay.base, `p${i}`);
	const port = await freePort();
	const cfg = join(dir, 'prometheus.yml');
	writeFileSync(cfg, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: sse-relay\n    static_configs:\n      - targets: ['${HOST}:${relay.port}']\n`);
	let out = '';
	const prom = track(spawn('prometheus', [`--config.file=${cfg}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`,
		`--web.listen-address=${HOST}:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
	prom.stdout.on('data', (d) => (out += d));
	prom.stderr.on('data', (d) => (out += d));
	atExit(() => prom.kill('SIGKILL'));
	const api = `http://${HOST}:${port}/api/v1/query?query=`;
	const query = async (q) => {
		const r = await get(api + encodeURIComponent(q));
		if (r.status !== 200) return [];
		try {
			return JSON.parse(r.body).data.result;
		} catch {
			return [];
		}
	};
	let up = [];
	let pub = [];
	const end = Date.now() + 30000;
	while (Date.now() < end) {
		up = await query('up{job="sse-relay"}');
		pub = await query('sse_relay_hub_published_events_total');
		if (up.length && up[0].value[1] === '1' && pub.length) break;
		if (prom.exitCode !== null) break;
		await sleep(500);
	}
	log(`Prometheus: up = ${JSON.stringify(up.map((r) => r.value[1]))}, sse_relay_hub_published_events_total = ${JSON.stringify(pub.map((r) => r.value[1]))}`);
	if (!check(up.length === 1 && up[0].value[1] === '1', 'Prometheus did not scrape the relay (up != 1)'))
		log(out.slice(-3000));
	check(pub.length === 1 && pub[0].value[1] === '3', 'Prometheus has no sse_relay_hub_published_events_total of 3');
	prom.kill('SIGTERM');
	await relay.stop();
}

/** Part 4: --metrics-bind, and /readyz through the shutdown. */
async function opsListener() {
	const opsPort = await freePort();
	const ops = `http://${HOST}:${opsPort}`;
	const relay = await startRelay(bin, ['--metrics-bind', `${HOST}:${opsPort}`, '--sndbuf', '4096',
		'--heartbeat', '60000', '--replay-bytes', String(64 << 20)]);
	const main = await get(`${relay.base}/metrics`);
	check(main.status === 404, `/metrics on the main port with --metrics-bind: ${main.status}, want 404`);
	const m = await scrape(ops, '--metrics-bind');
	check(m.samples.has('sse_relay_hub_published_events_total'), '--metrics-bind: no hub counters');
	const other = await get(`${ops}/events`);
	check(other.status === 404, `/events on the --metrics-bind port: ${other.status}, want 404`);
	// A subscriber that owes bytes keeps the shutdown going for its grace.
	const slow = sseSubscribe(relay.port);
	await until(() => slow.status() === 200, 5000, 'the subscriber was not answered');
	slow.pause();
	const big = 'y'.repeat(256 * 1024);
	for (let i = 0; i < 8; i++) await publishOk(relay.base, big);
	const stopped = relay.stop();
	let ready = { status: 0 };
	const end = Date.now() + 900;
	while (Date.now() < end && ready.status !== 503) ready = await get(`${ops}/readyz`);
	const health = await get(`${ops}/healthz`);
	const mainNow = await get(`${relay.base}/healthz`);
	log(`after SIGTERM: /readyz ${ready.status} ${JSON.stringify(ready.body)}, /healthz ${health.status}, main port ${mainNow.status || 'refused'}`);
	check(ready.status === 503 && ready.body === 'shutting down\n', `/readyz during shutdown: ${ready.status} ${JSON.stringify(ready.body)}`);
	check(health.status === 200, `/healthz during shutdown: ${health.status}`);
	check(mainNow.status === 0, `the main port still answers during shutdown: ${mainNow.status}`);
	await stopped;
}

/** Part 5: the access log of part 1. */
function accessLog(file) {
	const text = readFileSync(file, 'utf8');
	const lines = text.trim().split('\n');
	log(`access log: ${lines.length} lines; e.g.\n  ${lines.filter((l) => /path=\/events/.test(l)).join('\n  ')}`);
	const re = /^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z peer=127\.0\.0\.1:\d+ method=[A-Z]+ path=\/\S* status=(\d{3}|-) bytes=\d+ ms=\d+ end=(answered|closed|left|gap|stall|error|lifetime|shutdown)$/;
	for (const l of lines) check(re.test(l), `access log line of unexpected form: ${l}`);
	check(!/SECRET/.test(text), 'the access log holds a query string secret');
	const streams = lines.filter((l) => /method=GET path=\/events status=200/.test(l));
	const ends = streams.map((l) => /end=(\w+)$/.exec(l)[1]);
	check(ends.includes('left'), `no stream line with end=left: ${ends}`);
	check(ends.includes('stall'), `no stream line with end=stall: ${ends}`);
	const publishes = lines.filter((l) => /method=POST path=\/publish status=202 .* end=answered$/.test(l));
	check(publishes.length === 7 + 16, `${publishes.length} publish lines, want ${7 + 16}`);
	const stalled = streams.find((l) => /end=stall$/.test(l));
	const bytes = stalled ? Number(/bytes=(\d+)/.exec(stalled)[1]) : 0;
	check(bytes > 4096, `the stalled stream's line says ${bytes} bytes sent`);
}

await run('metrics', async () => {
	const dir = mkdtempSync(join(tmpdir(), 'sse-metrics-'));
	atExit(() => rmSync(dir, { recursive: true, force: true }));
	const logFile = await countersMove(dir);
	accessLog(logFile);
	await prometheusScrapes(dir);
	await opsListener();
	log('ok: /metrics, /healthz, /readyz and the access log');
}, 100000);
