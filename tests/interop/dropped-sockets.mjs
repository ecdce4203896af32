// Interop test: the kernel memory of subscribers that stop reading is
// bounded while they are connected (a subscriber's SO_SNDBUF: --sndbuf,
// default 65536, which the kernel doubles) and freed at once when they
// are dropped (an abortive close: a reset, no socket left holding its
// unsent data).
//
// 50 subscribers read nothing (their sockets paused) while 10 MiB of
// events pass (the ring holds them all; --stall 1000 drops them). With ss,
// the relay's side of their connections: the bytes queued for sending
// before the drop (per socket, against a relay with --sndbuf 0, the
// kernel's autotuned buffer, in the same run), and after the drops: no
// socket of the relay's port left with bytes queued, none lingering in
// FIN-WAIT. Prints the figures.
//
//   node dropped-sockets.mjs PATH-TO-sse-relay    (via node-test.sh)
//
// SPDX-License-Identifier: MIT

import { check, fail, log, publishOk, relaySockets, run, sleep, sseSubscribe, startRelay, until } from './relay.mjs';

const N = 50;

async function stallAndDrop(bin, sndbuf) {
	const relay = await startRelay(bin, ['--stall', '1000', '--heartbeat', '60000', '--replay-bytes', String(64 << 20), '--sndbuf', String(sndbuf)]);
	const subs = [];
	for (let i = 0; i < N; i++) subs.push(sseSubscribe(relay.port));
	await until(() => subs.every((s) => s.status() === 200 && s.bytes() > 0), 5000, 'subscribers not all served');
	for (const s of subs) s.pause();
	const body = 's'.repeat(256 * 1024);
	// The relay's side, sampled while the events pass (a subscriber may be
	// dropped a second after its buffers fill): the most queued per socket,
	// and in all.
	let perSocket = 0;
	let queued = 0;
	let est = 0;
	const sample = () => {
		const now = relaySockets(relay.port) || [];
		const e = now.filter((s) => s.state === 'ESTAB');
		est = Math.max(est, e.length);
		queued = Math.max(queued, e.reduce((a, s) => a + s.wmem, 0));
		perSocket = Math.max(perSocket, ...e.map((s) => s.wmem));
	};
	for (let i = 0; i < 40; i++) {
		await publishOk(relay.base, body);
		if (i % 4 === 3) sample();
	}
	const drops = () => relay.stderr().split('\n').filter((l) => /dropped a slow subscriber/.test(l)).length;
	await until(() => drops() >= N, 10000, () => `only ${drops()} of ${N} dropped (--stall 1000)`);
	await sleep(100);
	const after = relaySockets(relay.port);
	const left = after.filter((s) => s.wmem > 0 || s.sendQ > 0);
	const finWait = after.filter((s) => /FIN-WAIT/.test(s.state));
	await relay.stop();
	return { est, queued, perSocket, after, left, finWait };
}

await run('dropped-sockets', async () => {
	if (relaySockets(1) === null) {
		log('SKIP: ss (iproute2) is not installed');
		return 'skip';
	}
	const bounded = await stallAndDrop(process.argv[2], 65536);
	const kernel = await stallAndDrop(process.argv[2], 0);
	if (!bounded || !kernel) fail('ss failed');
	log(`--sndbuf 65536: ${bounded.est} stalled subscribers, at most ${(bounded.queued / 1048576).toFixed(1)} MiB queued in the kernel in all, ${(bounded.perSocket / 1024).toFixed(0)} KiB on one socket`);
	log(`--sndbuf 0 (the kernel's autotuning): ${kernel.est} stalled subscribers, at most ${(kernel.queued / 1048576).toFixed(1)} MiB queued in all, ${(kernel.perSocket / 1024).toFixed(0)} KiB on one socket`);
	check(bounded.est >= N * 0.8, `only ${bounded.est} of ${N} subscriber sockets seen stalled before the drops`);
	check(kernel.perSocket > bounded.perSocket, 'the kernel\'s own buffer held no more than --sndbuf 65536: the comparison shows nothing');
	check(bounded.perSocket <= 160 * 1024, `${bounded.perSocket} bytes queued per stalled socket with --sndbuf 65536 (bound: 2 x 65536 and overhead)`);
	for (const [what, r] of [['--sndbuf 65536', bounded], ['--sndbuf 0', kernel]]) {
		log(`${what}, after the ${N} drops: ${r.after.length} sockets of the relay's port left, ${r.left.length} with bytes queued, ${r.finWait.length} in FIN-WAIT`);
		check(r.left.length === 0 && r.finWait.length === 0, `${what}: dropped subscribers' sockets still hold data: ${JSON.stringify(r.left.slice(0, 3))}`);
	}
	log('ok: stalled subscribers hold a bounded send buffer, and dropping them frees it at once (reset)');
}, 90000);
