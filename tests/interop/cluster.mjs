// Helpers for the cluster tests (sse-relay --redis): a redis-server of
// the test's own on loopback, sse-relay nodes that may be killed, a TCP
// proxy that can make Redis unreachable, and a proxy for clients that
// sends each connection to the next node in turn and cuts them all on
// command.
//
// A cluster's ids are the Redis log's, "<epoch>-<offset>": the epoch is
// hex, the offsets 1, 2, 3, ... per epoch.
//
// SPDX-License-Identifier: MIT

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOST, WRAPPER, atExit, check, fail, log, sleep, track, until } from './relay.mjs';

export const CLUSTER_ID_RE = /^([0-9a-f]+)-([1-9][0-9]*)$/;
const LISTEN_WAIT_MS = WRAPPER.length ? 60000 : 5000;
const STOP_WAIT_MS = WRAPPER.length ? 60000 : 5000;

/** {epoch, offset} of a cluster id; fails the test on another form. */
export function parseId(id, what = 'id') {
	const m = CLUSTER_ID_RE.exec(id ?? '');
	if (!m) fail(`${what}: ${JSON.stringify(id)} does not match ${CLUSTER_ID_RE}`);
	return { epoch: m[1], offset: Number(m[2]) };
}

/** Why the cluster tests cannot run here, or null. */
export function missing(relayBin) {
	if (spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status !== 0)
		return 'redis-server is not installed (apt-get install redis-server)';
	const help = spawnSync(relayBin, ['--help'], { encoding: 'utf8' });
	if (!/--redis URL +run as one node/.test(help.stdout || '')) return 'sse-relay was built without Redis support (no hiredis)';
	return null;
}

/** A free port of 127.0.0.1 (bound, read, released). */
export async function freePort() {
	const s = net.createServer();
	await new Promise((r) => s.listen(0, HOST, r));
	const port = s.address().port;
	await new Promise((r) => s.close(r));
	return port;
}

function accepts(port) {
	return new Promise((resolve) => {
		const s = net.connect(port, HOST, () => {
			s.destroy();
			resolve(true);
		});
		s.on('error', () => resolve(false));
	});
}

/**
 * A redis-server on a free loopback port, without persistence, in a
 * directory of its own. Returns {port, url(channel), kill(), start(),
 * command(...args)}; kill() is SIGKILL (its data is gone), start() runs it
 * again, empty, on the same port.
 */
export async function startRedis() {
	const dir = mkdtempSync(join(tmpdir(), 'sse-cluster-'));
	const port = await freePort();
	let proc = null;
	const start = async () => {
		proc = track(spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', String(port),
			'--bind', HOST, '--dir', dir, '--enable-debug-command', 'local'], { stdio: 'ignore' }));
		const end = Date.now() + 5000;
		while (!(await accepts(port))) {
			if (Date.now() > end) fail('redis-server did not start within 5 s');
			await sleep(20);
		}
	};
	const kill = async () => {
		if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
		const done = new Promise((r) => proc.on('exit', r));
		proc.kill('SIGKILL');
		await done;
	};
	await start();
	atExit(async () => {
		await kill();
		rmSync(dir, { recursive: true, force: true });
	});
	log(`redis-server on ${HOST}:${port}`);
	return { port, url: (channel, p = port) => `redis://${HOST}:${p}/${channel}`, start, kill, command: (...a) => redisCommand(port, a) };
}

/** One Redis command over RESP; resolves to the first line of the reply. */
export function redisCommand(port, args, ms = 10000) {
	return new Promise((resolve, reject) => {
		const s = net.connect(port, HOST);
		let got = '';
		const t = setTimeout(() => {
			s.destroy();
			reject(new Error(`redis ${args.join(' ')}: no answer within ${ms} ms`));
		}, ms);
		s.on('connect', () => s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')));
		s.on('data', (d) => {
			got += d.toString('latin1');
			const at = got.indexOf('\r\n');
			if (at < 0) return;
			clearTimeout(t);
			s.destroy();
			resolve(got.slice(0, at));
		});
		s.on('error', (e) => {
			clearTimeout(t);
			reject(e);
		});
	});
}

/**
 * sse-relay as one node: like relay.mjs's startRelay, but it may be
 * killed (kill(): SIGKILL, not counted as a failure). stop(): SIGTERM, must
 * exit 0 (99 under the wrapper: its errors). Resolves to {port, base, proc,
 * stderr(), stop(), kill()}.
 */
export async function startNode(bin, args) {
	const all = ['--port', '0', ...args];
	const argv = [...WRAPPER, bin, ...all];
	const proc = track(spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }));
	let out = '';
	let err = '';
	let exited = null;
	let killed = false;
	let stopped = false;
	proc.stdout.on('data', (d) => (out += d));
	proc.stderr.on('data', (d) => (err += d));
	const done = new Promise((r) => proc.on('exit', (code, sig) => r((exited = { code, sig }))));
	const what = `sse-relay ${all.join(' ')}`;
	await until(() => /\n/.test(out) || exited !== null, LISTEN_WAIT_MS, `${what} printed no listening line`);
	if (exited) fail(`${what} exited early: ${JSON.stringify(exited)}: ${err}`);
	const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
	if (!m) fail(`unexpected first line of stdout: ${JSON.stringify(out)}`);
	const port = Number(m[1]);
	const stop = async () => {
		if (stopped || killed) return;
		stopped = true;
		if (exited !== null) {
			check(false, `${what} died during the test: ${JSON.stringify(exited)}\n${err.slice(-2000)}`);
			return;
		}
		proc.kill('SIGTERM');
		const t = setTimeout(() => proc.kill('SIGKILL'), STOP_WAIT_MS);
		await done;
		clearTimeout(t);
		if (WRAPPER.length) console.error(`--- ${what} stderr ---\n${err.slice(-30000)}`);
		check(exited.sig === null && exited.code === 0,
			`${what} exited with ${exited.sig ? 'signal ' + exited.sig : 'status ' + exited.code} after SIGTERM` +
			(exited.code === 99 ? ' (the wrapper reported errors)' : '') + `\n${err.slice(-2000)}`);
	};
	const kill = async () => {
		killed = true;
		if (exited !== null) return;
		proc.kill('SIGKILL');
		await done;
	};
	atExit(stop);
	log(`${what}: listening on ${HOST}:${port}`);
	return { port, base: `http://${HOST}:${port}`, proc, stderr: () => err, stop, kill };
}

/** GET path; resolves {status, body, ms}. */
export function get(base, path, ms = 5000) {
	return new Promise((resolve, reject) => {
		const t0 = Date.now();
		const req = http.get(base + path, { agent: false, timeout: ms }, (res) => {
			let body = '';
			res.on('data', (d) => (body += d));
			res.on('end', () => resolve({ status: res.statusCode, body, ms: Date.now() - t0 }));
		});
		req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${ms} ms`)));
		req.on('error', reject);
	});
}

/** Wait until every node answers GET /ready with 200 (in step with Redis). */
export async function allReady(nodes, ms = 10000) {
	const end = Date.now() + ms;
	for (const n of nodes) {
		for (;;) {
			const r = await get(n.base, '/ready');
			if (r.status === 200) break;
			if (Date.now() > end) fail(`node ${n.port} not ready within ${ms} ms: ${r.status} ${r.body}`);
			await sleep(50);
		}
	}
}

/**
 * A TCP proxy from an ephemeral port to target. down(): cut every
 * connection and refuse new ones (accepted and closed at once); up():
 * forward again. attempts: connections tried while down.
 */
export async function tcpProxy(target) {
	const conns = new Set();
	const st = { up: true, attempts: 0, attemptTimes: [] };
	const srv = net.createServer((down) => {
		if (!st.up) {
			st.attempts++;
			st.attemptTimes.push(Date.now());
			down.destroy();
			return;
		}
		const up = net.connect(target, HOST);
		const pair = { down, up };
		conns.add(pair);
		const close = () => {
			conns.delete(pair);
			down.destroy();
			up.destroy();
		};
		down.pipe(up);
		up.pipe(down);
		for (const s of [down, up]) {
			s.on('error', close);
			s.on('close', close);
		}
	});
	await new Promise((r) => srv.listen(0, HOST, r));
	const cutAll = () => {
		for (const p of [...conns]) {
			p.down.destroy();
			p.up.destroy();
		}
		conns.clear();
	};
	atExit(() => {
		cutAll();
		srv.close();
	});
	return {
		port: srv.address().port,
		st,
		down: () => {
			st.up = false;
			cutAll();
		},
		up: () => (st.up = true),
	};
}

/**
 * The clients' load balancer: each new connection goes to the next of
 * ports in turn (round robin); cutAll() cuts every connection at once.
 * conns: how many were made; perNode: how many each node got.
 */
export async function roundRobin(ports) {
	const open = new Set();
	const st = { conns: 0, perNode: ports.map(() => 0), next: 0 };
	const srv = net.createServer((down) => {
		const k = st.next++ % ports.length;
		st.conns++;
		st.perNode[k]++;
		const up = net.connect(ports[k], HOST);
		const pair = { down, up };
		open.add(pair);
		const close = () => {
			open.delete(pair);
			down.destroy();
			up.destroy();
		};
		down.pipe(up);
		up.pipe(down);
		for (const s of [down, up]) {
			s.on('error', close);
			s.on('close', close);
		}
	});
	await new Promise((r) => srv.listen(0, HOST, r));
	const cutAll = () => {
		const n = open.size;
		for (const p of [...open]) {
			p.down.destroy();
			p.up.destroy();
		}
		open.clear();
		return n;
	};
	atExit(() => {
		cutAll();
		srv.close();
	});
	return { port: srv.address().port, st, cutAll, open: () => open.size };
}
