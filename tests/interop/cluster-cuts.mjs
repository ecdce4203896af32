// Cluster conformance scenario: three sse-relay nodes (--redis) and one
// redis-server; the npm `eventsource` client connects through a proxy that
// sends each connection to the next node (round robin), and the proxy cuts
// every connection 50 times while events are published, one after another,
// to random nodes. The client must end with every acknowledged event
// exactly once, in publish order: 0 lost, 0 duplicated, no reset event.
//
//   node cluster-cuts.mjs PATH-TO-sse-relay    (via node-test.sh --npm)
//
// SPDX-License-Identifier: MIT

import { EventSource } from 'eventsource';
import { HOST, atExit, check, log, publishOk, run, sleep, until } from './relay.mjs';
import { allReady, missing, parseId, roundRobin, startNode, startRedis } from './cluster.mjs';

const CUTS = 50;
const bin = process.argv[2];

await run('cluster-cuts', async () => {
	const why = missing(bin);
	if (why) {
		console.log(`SKIP: ${why}`);
		return 'skip';
	}
	const redis = await startRedis();
	const nodes = [];
	for (let k = 0; k < 3; k++)
		nodes.push(await startNode(bin, ['--redis', redis.url('cuts'), '--retry', '50', '--heartbeat', '1000']));
	await allReady(nodes);
	const px = await roundRobin(nodes.map((n) => n.port));

	const es = new EventSource(`http://${HOST}:${px.port}/events`);
	const got = [];
	let resets = 0;
	es.addEventListener('message', (e) => got.push({ data: e.data, id: e.lastEventId }));
	es.addEventListener('sse-reset', () => resets++);
	atExit(() => es.close());
	await until(() => px.open() === 1, 5000, 'the client did not connect');
	await sleep(200);

	// The publisher: one event at a time, each to a random node, until told to stop.
	const published = [];
	let stop = false;
	const perNode = [0, 0, 0];
	const publisher = (async () => {
		while (!stop) {
			const k = Math.floor(Math.random() * nodes.length);
			const n = published.length + 1;
			const id = await publishOk(nodes[k].base, `event ${n}`);
			published.push({ data: `event ${n}`, id });
			perNode[k]++;
			await sleep(Math.random() * 15);
		}
	})();

	// The cutter: a cut at a random moment, then wait for the client to be back.
	for (let c = 1; c <= CUTS; c++) {
		await sleep(20 + Math.random() * 120);
		const before = px.st.conns;
		px.cutAll();
		await until(() => px.st.conns > before && px.open() >= 1, 10000, () => `the client did not reconnect after cut ${c}`);
	}
	stop = true;
	await publisher;
	await until(() => got.length >= published.length, 10000, () => `the client has ${got.length} of ${published.length} events`);
	await sleep(300); // room for a duplicate to show

	const want = published.map((p) => p.id);
	const have = got.map((g) => g.id);
	const seen = new Set();
	let dup = 0;
	for (const id of have) {
		if (seen.has(id)) dup++;
		seen.add(id);
	}
	const lost = want.filter((id) => !seen.has(id)).length;
	let outOfOrder = 0;
	for (let i = 1; i < have.length; i++) if (parseId(have[i]).offset <= parseId(have[i - 1]).offset) outOfOrder++;
	const dataOk = got.every((g, i) => published[i] && g.data === published[i].data && g.id === published[i].id);
	log(`cuts: ${CUTS}; connections: ${px.st.conns} (per node ${px.st.perNode.join('/')}); published: ${published.length} (per node ${perNode.join('/')}); received: ${got.length}; lost: ${lost}; duplicated: ${dup}; out of order: ${outOfOrder}; resets: ${resets}`);
	check(lost === 0 && dup === 0 && outOfOrder === 0 && resets === 0 && got.length === published.length && dataOk,
		'the client did not get every event exactly once, in order');
	check(px.st.conns === CUTS + 1, `${px.st.conns} connections, want ${CUTS + 1}`);
	check(px.st.perNode.every((n) => n >= CUTS / 3 - 1), `connections per node ${px.st.perNode}: not round robin`);
	es.close();
	for (const n of nodes) await n.stop();
}, 200000);
