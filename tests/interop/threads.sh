#!/usr/bin/env bash
# sse-relay --threads: the default channel fanned out from several loop
# threads sharing one ring. Against --threads 4 and the default (one
# thread per usable CPU), each a relay of its own:
#
#   - 200 subscribers connect while 300 events are published, each from
#     the id of event 1 (so each is owed events 2..300 wherever it joins),
#     spread across the threads (sse_relay_thread_connections);
#   - a quarter of them drop their connection at a random event and come
#     back with Last-Event-ID: the thread that serves the resume is
#     usually another, and the ring is the same;
#   - every subscriber gets events 2..300 exactly once, in order (ids and
#     data), across its connections;
#   - /metrics sums all threads: the published count is 300 (not once per
#     thread), subscribers and subscribes count every connection, each
#     resume was found in the ring, deliveries cover every event owed;
#   - SIGTERM: every stream is told a retry: and closed, and the relay
#     exits 0.
#
# Also: --threads N > 1 with --redis is refused (exit 2, said why).
# The clients are Node (net sockets, relay.mjs's parser); without Node the
# test is skipped.
#
#   bash threads.sh PATH-TO-sse-relay
#
# SPDX-License-Identifier: MIT
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
relay=$(realpath "${1:?usage: $0 PATH-TO-sse-relay}")

command -v node >/dev/null || {
	echo "SKIP: Node.js is not installed"
	exit 77
}

# --threads 2 with --redis: refused before anything starts (a relay built
# without hiredis refuses --redis itself: exit 2 too).
out=$("$relay" --port 0 --redis redis://127.0.0.1:1 --threads 2 2>&1 </dev/null)
rc=$?
if [ $rc -ne 2 ]; then
	echo "FAIL: --threads 2 --redis: exit status $rc, want 2: $out" >&2
	exit 1
fi
echo "--threads 2 --redis refused: $out"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sse-threads.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/threads.mjs" <<'EOF'
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const { run, startRelay, publishOk, sseSubscribe, learnEpoch, idOf, check, fail, log, sleep, until, HOST } =
	await import(pathToFileURL(process.env.RELAY_MJS).href);

const [bin, threadsArg, cpus] = process.argv.slice(2);
const SUBS = 200, EVENTS = 300, RESUMERS = SUBS / 4;

function metrics(port) {
	return new Promise((resolve, reject) => {
		http.get({ host: HOST, port, path: '/metrics', agent: false }, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (d) => (text += d));
			res.on('end', () => {
				const m = new Map();
				for (const line of text.split('\n')) {
					const g = /^([a-z_]+(?:\{[^}]*\})?) ([0-9]+)$/.exec(line);
					if (g) m.set(g[1], Number(g[2]));
				}
				resolve(m);
			});
		}).on('error', reject);
	});
}

await run(`threads (${threadsArg})`, async () => {
	const args = ['--replay-events', '1000', '--heartbeat', '60000'];
	const accessLog = `${process.env.TMP_DIR}/access-${threadsArg}.log`;
	// With 4 threads, what they share too: the per-address table, the log.
	if (threadsArg !== 'default')
		args.push('--threads', threadsArg, '--max-per-addr', '1000', '--max-conns-per-addr', '2000',
			  `--access-log=${accessLog}`);
	const want = threadsArg === 'default' ? Math.min(Number(cpus), 256) : Number(threadsArg);
	const relay = await startRelay(bin, args);
	const epoch = learnEpoch(await publishOk(relay.base, '1'), 'first id');

	// Each subscriber: a list of connections, the events of all of them.
	const subs = [];
	const connect = (sub, lastId) => {
		let alive = true; // the rest of a chunk read before close() is not ours
		sub.conns++;
		sub.current = sseSubscribe(relay.port, {
			headers: { 'Last-Event-ID': lastId },
			keep: false,
			onEvent: (ev) => {
				if (!alive) return;
				sub.events.push(ev);
				if (sub.dropAt !== 0 && Number(ev.data) === sub.dropAt) {
					sub.dropAt = 0; // once: close and resume from here after a while
					const from = ev.id;
					alive = false;
					sub.current.close();
					setTimeout(() => connect(sub, from), 5 + Math.floor(Math.random() * 30));
				}
			},
		});
	};

	// Publish all events while the subscribers connect.
	let published = 1;
	const publisher = (async () => {
		for (let n = 2; n <= EVENTS; n++) {
			const id = await publishOk(relay.base, String(n));
			if (id !== idOf(epoch, n)) fail(`publish ${n}: id ${id}, want ${idOf(epoch, n)}`);
			published = n;
			if (n % 10 === 0) await sleep(5);
		}
	})();
	for (let i = 0; i < SUBS; i++) {
		const sub = { events: [], conns: 0, current: null,
			      dropAt: i % 4 === 0 ? 20 + Math.floor(Math.random() * (EVENTS - 60)) : 0 };
		subs.push(sub);
		connect(sub, idOf(epoch, 1));
		if (i % 10 === 9) await sleep(10);
	}
	log(`${SUBS} subscribers connected while ${published} of ${EVENTS} events were out`);

	// Spread: every thread holds some, none most; all 200 stream.
	await until(() => subs.every((s) => s.current.status() === 200), 20000, 'every subscriber answered 200');
	{
		const m = await metrics(relay.port);
		check(m.get('sse_relay_threads') === want, `sse_relay_threads ${m.get('sse_relay_threads')}, want ${want}`);
		const per = [];
		for (let t = 0; t < want; t++) per.push(m.get(`sse_relay_thread_connections{thread="${t}"}`));
		log(`subscribers per thread: ${per.join(' ')}`);
		const total = per.reduce((a, b) => a + (b ?? 0), 0);
		check(total >= SUBS - RESUMERS && total <= SUBS, `threads hold ${total} subscribers, want about ${SUBS}`);
		for (let t = 0; t < want; t++)
			check(per[t] >= SUBS / want / 3, `thread ${t} holds ${per[t]} of ${SUBS}: not spread`);
	}

	await publisher;
	await until(() => subs.every((s) => s.events.length >= EVENTS - 1 && s.dropAt === 0), 30000,
		() => `every subscriber got ${EVENTS - 1} events: ${subs.filter((s) => s.events.length < EVENTS - 1).length} short`);
	await sleep(200); // a duplicate, if any, would come now

	// Every event once, in order, over every connection of a subscriber.
	let bad = 0, resumed = 0;
	for (const [i, s] of subs.entries()) {
		resumed += s.conns - 1;
		const got = s.events.map((e) => e.data).join(',');
		const wantSeq = Array.from({ length: EVENTS - 1 }, (_, k) => String(k + 2)).join(',');
		const idsOk = s.events.every((e) => e.id === idOf(epoch, Number(e.data)));
		if ((got !== wantSeq || !idsOk) && bad++ < 5)
			check(false, `subscriber ${i} (${s.conns} connections): got ${s.events.length} events, ` +
				`first wrong at ${s.events.findIndex((e, k) => e.data !== String(k + 2))}`);
	}
	check(bad === 0, `${bad} of ${SUBS} subscribers did not get events 2..${EVENTS} once each, in order`);
	check(resumed === RESUMERS, `${resumed} resumes, want ${RESUMERS}`);
	log(`${SUBS} subscribers, ${resumed} resumed: every one got events 2..${EVENTS} once, in order`);

	// /metrics: the threads' hubs summed, the published events counted once.
	const m = await metrics(relay.port);
	const hub = (k) => m.get(`sse_relay_hub_${k}`);
	check(hub('published_events_total') === EVENTS, `published_events_total ${hub('published_events_total')}, want ${EVENTS}`);
	check(hub('subscribers') === SUBS, `hub subscribers ${hub('subscribers')}, want ${SUBS}`);
	check(hub('subscribes_total') === SUBS + RESUMERS, `subscribes_total ${hub('subscribes_total')}, want ${SUBS + RESUMERS}`);
	check(hub('replay_found_total') === SUBS + RESUMERS, `replay_found_total ${hub('replay_found_total')}, want ${SUBS + RESUMERS}`);
	check(hub('unsubscribes_total') + hub('drops_error_total') === RESUMERS,
	      `unsubscribes_total ${hub('unsubscribes_total')} + drops_error_total ${hub('drops_error_total')}, want ${RESUMERS}`);
	check(hub('deliveries_total') >= SUBS * (EVENTS - 1), `deliveries_total ${hub('deliveries_total')}, want >= ${SUBS * (EVENTS - 1)}`);
	check(m.get('sse_relay_connections{state="streaming"}') === SUBS,
	      `streaming ${m.get('sse_relay_connections{state="streaming"}')}, want ${SUBS}`);
	log(`/metrics: published ${hub('published_events_total')}, subscribers ${hub('subscribers')}, ` +
	    `subscribes ${hub('subscribes_total')}, deliveries ${hub('deliveries_total')}`);

	// Shutdown: every stream told a retry and closed; the relay exits 0.
	await relay.stop();
	await until(() => subs.every((s) => s.current.closed()), 5000, 'every stream closed at shutdown');
	const noRetry = subs.filter((s) => s.current.parser.retry === null).length;
	check(noRetry === 0, `${noRetry} streams closed at shutdown without a retry:`);
	log('shutdown: every stream told a retry: and closed; the relay exited 0');

	// The access log: a whole line per stream, from whichever thread.
	if (threadsArg !== 'default') {
		const lines = readFileSync(accessLog, 'utf8').split('\n').filter((l) => l.includes('path=/events'));
		const whole = lines.filter((l) => /^time=\S+ peer=\S+ method=GET path=\/events status=200 bytes=\d+ ms=\d+ end=[a-z]+$/.test(l));
		const shut = lines.filter((l) => l.endsWith(' end=shutdown')).length;
		check(lines.length === SUBS + RESUMERS && whole.length === lines.length,
		      `access log: ${lines.length} /events lines (${whole.length} whole), want ${SUBS + RESUMERS}`);
		check(shut === SUBS, `access log: ${shut} streams ended by the shutdown, want ${SUBS}`);
		log(`access log: ${lines.length} stream lines, ${shut} end=shutdown`);
	}
}, 120000);
EOF

cpus=$(nproc)
rc=0
for t in 4 default; do
	TMP_DIR="$tmp" RELAY_MJS="$here/relay.mjs" node "$tmp/threads.mjs" "$relay" "$t" "$cpus" || rc=1
done
exit $rc
