/*
 * Two costs of resuming and keeping streams alive:
 *
 *  1. Replaying 10 000 retained events to one stream that reconnected with
 *     the id of the oldest (sse_stream_resume(), then one flush of the
 *     following stream): per event, and against a memcpy of the same
 *     bytes measured in the same run.
 *  2. One heartbeat tick over 100 000 idle streams of which 1% are due,
 *     with the scheduler (a heap: visits the due ones) and, as the
 *     baseline it replaces, a loop calling sse_stream_tick on every stream.
 *
 * Best of several runs; it reports and always exits 0.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-common.h"
#include "sse.h"

#define RUNS 7
#define REPLAY_EVENTS 10000
#define STREAMS 100000
#define INTERVAL_MS 15000u
#define GROUPS 100 /* streams start in 100 groups: 1% due per tick */

/* A transport that takes everything and only counts: the cost measured
 * is the library's, not a socket's. */
static int count_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	BARRIER(buf);
	*(size_t *)ctx += len;
	*taken = len;
	return 0;
}

static struct sse_transport counting(size_t *sink)
{
	return (struct sse_transport){.size = sizeof(struct sse_transport),
				      .write = count_write, .ctx = sink};
}

static struct sse_replay *fill_ring(size_t *total_bytes)
{
	/* Plain ids ("1", "2", ...), so the oldest id is known in advance. */
	struct sse_replay_config cfg = {.size = sizeof(cfg), .max_events = REPLAY_EVENTS,
					.max_bytes = 8u << 20, .epoch = ""};
	struct sse_replay *r;
	char data[128];

	if (sse_replay_new(&r, &cfg, NULL) != 0)
		exit(0);
	for (int i = 0; i < REPLAY_EVENTS; i++) {
		int n = snprintf(data, sizeof(data),
				 "{\"seq\":%d,\"price\":101.25,\"qty\":300,\"sym\":\"ACME\","
				 "\"side\":\"buy\",\"venue\":\"XNAS\"}",
				 i);
		struct sse_event ev = {.type = "tick", .type_len = 4, .data = data,
				       .data_len = (size_t)n, .retry = SSE_RETRY_NONE};

		if (sse_replay_publish(r, &ev, 0, NULL) != 0)
			exit(0);
	}
	*total_bytes = sse_replay_bytes(r);
	return r;
}

/* Resume one new stream from the oldest id ("1"): every later frame. */
static double time_replay(struct sse_replay *r)
{
	struct sse_transport tr;
	struct sse_stream *s;
	size_t sent = 0;
	int status = -1;
	double t;

	tr = counting(&sent);
	if (sse_stream_new(&s, &tr, NULL, NULL) != 0)
		exit(0);
	t = now_ns();
	if (sse_stream_resume(s, r, "1", 1, &status) != 0 || sse_stream_flush(s) != 0) {
		fputs("bench-replay: the resumed stream failed\n", stderr);
		exit(0);
	}
	t = now_ns() - t;
	if (status != SSE_REPLAY_FOUND || sse_stream_cursor(s) != sse_replay_next_seq(r))
		fputs("bench-replay: replay did not catch up\n", stderr);
	sse_stream_free(s);
	return t;
}

static double time_memcpy(const char *src, char *dst, size_t n)
{
	double t = now_ns();

	memcpy(dst, src, n);
	BARRIER(dst);
	return now_ns() - t;
}

/* The retained frames back to back: what memcpy copies as the baseline. */
static char *frames_copy(struct sse_replay *r, size_t total)
{
	char *buf = xmalloc(total);
	size_t off = 0;

	for (uint64_t c = sse_replay_first_seq(r); c < sse_replay_next_seq(r); c++) {
		const char *p;
		size_t len;

		if (sse_replay_frame(r, c, &p, &len) == 1) {
			memcpy(buf + off, p, len);
			off += len;
		}
	}
	return buf;
}

static void bench_replay(void)
{
	size_t total;
	struct sse_replay *r = fill_ring(&total);
	char *src = frames_copy(r, total), *dst = xmalloc(total);
	double best_r = 1e30, best_m = 1e30;

	for (int i = 0; i < RUNS; i++) {
		double tr = time_replay(r), tm = time_memcpy(src, dst, total);

		best_r = tr < best_r ? tr : best_r;
		best_m = tm < best_m ? tm : best_m;
	}
	printf("replay %d retained events (%zu bytes) to one resumed stream:\n", REPLAY_EVENTS - 1,
	       total);
	printf("  replay   %8.1f us  %6.1f ns/event  %6.2f GB/s\n", best_r / 1e3,
	       best_r / (REPLAY_EVENTS - 1), (double)total / best_r);
	printf("  memcpy   %8.1f us  %6.1f ns/event  %6.2f GB/s\n", best_m / 1e3,
	       best_m / (REPLAY_EVENTS - 1), (double)total / best_m);
	printf("  ratio replay/memcpy throughput: %.2f\n\n", best_m / best_r);
	free(src);
	free(dst);
	sse_replay_free(r);
}

/* Streams of group g start at time g, so at INTERVAL_MS + g exactly the
 * STREAMS / GROUPS streams of group g are due. */
static struct sse_stream **make_streams(size_t *sink)
{
	struct sse_stream **ss = xmalloc(STREAMS * sizeof(*ss));
	struct sse_transport tr = counting(sink);

	for (int i = 0; i < STREAMS; i++) {
		if (sse_stream_new(&ss[i], &tr, NULL, NULL) != 0)
			exit(0);
		sse_stream_set_heartbeat(ss[i], INTERVAL_MS, 0);
		sse_stream_start(ss[i], (uint64_t)(i % GROUPS));
	}
	return ss;
}

static void free_streams(struct sse_stream **ss)
{
	for (int i = 0; i < STREAMS; i++)
		sse_stream_free(ss[i]);
	free(ss);
}

/* Best single tick (1% due) with the scheduler; also returns the visits. */
static double ticks_with_timers(struct sse_stream **ss, size_t *visits)
{
	struct sse_timers *t;
	double best = 1e30;

	if (sse_timers_new(&t, NULL, NULL, NULL) != 0)
		exit(0);
	for (int i = 0; i < STREAMS; i++)
		sse_timers_add(t, ss[i]);
	for (int g = 0; g < GROUPS; g++) {
		double t0 = now_ns();

		sse_timers_run(t, INTERVAL_MS + (uint64_t)g, NULL, visits);
		t0 = now_ns() - t0;
		best = t0 < best ? t0 : best;
	}
	sse_timers_free(t);
	return best;
}

/* Best single tick when the caller visits every stream itself. */
static double ticks_scanning_all(struct sse_stream **ss, uint64_t base)
{
	double best = 1e30;
	uint64_t next;

	for (int g = 0; g < GROUPS; g++) {
		double t0 = now_ns();

		for (int i = 0; i < STREAMS; i++)
			sse_stream_tick(ss[i], base + (uint64_t)g, &next);
		t0 = now_ns() - t0;
		best = t0 < best ? t0 : best;
	}
	return best;
}

static void bench_heartbeat(void)
{
	size_t sink = 0, visits = 0;
	struct sse_stream **ss = make_streams(&sink);
	double heap = ticks_with_timers(ss, &visits);
	double scan;

	/* The streams beat once in the scheduler's pass; the scan starts a
	 * full interval later so the same 1% is due on each of its ticks. */
	scan = ticks_scanning_all(ss, 2 * INTERVAL_MS);
	printf("heartbeat tick over %d idle streams, 1%% due (%zu visited per tick):\n", STREAMS,
	       visits);
	printf("  scheduler (heap)     %9.1f us per tick  %6.1f ns per due stream\n", heap / 1e3,
	       heap / (STREAMS / GROUPS));
	printf("  scan of all streams  %9.1f us per tick  %6.1f ns per stream\n", scan / 1e3,
	       scan / STREAMS);
	printf("  ratio scan/scheduler: %.1f\n", scan / heap);
	free_streams(ss);
}

int main(void)
{
	bench_replay();
	bench_heartbeat();
	return 0;
}
