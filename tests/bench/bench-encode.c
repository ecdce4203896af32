/*
 * Encoder throughput against memcpy of the same output bytes, the floor any
 * encoder into a caller's buffer pays. Three shapes: one 64 KiB line, 64 KiB
 * of 80-column lines, and small JSON events with an id and a type.
 *
 * Each shape runs plain and in strict UTF-8 mode, through three call
 * patterns: encode (into a buffer known to be big enough), size+encode
 * (sse_encode_size, then sse_encode: the event is checked twice), and
 * size+unchecked (sse_encode_size, then the library's own unchecked writer
 * of lib/encode.h: checked once, as the replay ring publishes).
 *
 * Each figure is the best of several timed rounds after a warm-up; memcpy
 * runs in the same process right beside the encoder. It reports and
 * always exits 0: the goals are printed, not enforced.
 *
 * Built with SSE_BENCH_BASELINE defined, it uses the public API only, so
 * tests/bench/compare-release.sh can run this same program against an
 * earlier release; the size+unchecked rows are left out then.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-common.h"
#include "sse.h"
#ifndef SSE_BENCH_BASELINE
#include "encode.h"
#include "scan.h"
#endif

/* Many short runs rather than a few long ones: on a loaded shared machine
 * a 20 ms run is rarely left alone, and the best of 15 such runs swung by a
 * factor of two from one process to the next; the best of 61 runs of 2 ms
 * mostly stayed within 10%. (-D either to try other settings.) */
#ifndef RUNS
#define RUNS 61
#endif
#ifndef MIN_RUN_NS
#define MIN_RUN_NS 2000000.0 /* calibrate each run to at least 2 ms */
#endif
#define SMALL_EVENTS 256

/* A workload: events to encode in turn, and their encoded sizes. */
struct work {
	const char *name;
	unsigned flags;
	struct sse_event *ev;
	size_t *size;
	size_t count;
	size_t out_bytes; /* sum of size[] over one pass */
	char *out;        /* the caller's own buffer, big enough for any event */
	char *src;        /* memcpy source: the encoded events back to back */
};

enum op { OP_ENCODE, OP_SIZE_ENCODE, OP_SIZE_UNCHECKED, OP_MEMCPY, OP_COUNT };

static const char *const op_name[OP_COUNT] = {"encode", "size+encode", "size+unchecked", "memcpy"};

static int op_available(enum op op)
{
#ifdef SSE_BENCH_BASELINE
	return op != OP_SIZE_UNCHECKED;
#else
	(void)op;
	return 1;
#endif
}

/* One pass over the workload: every event once. */
static void pass(const struct work *w, enum op op)
{
	size_t n, off = 0;

	for (size_t i = 0; i < w->count; i++) {
		switch (op) {
		case OP_MEMCPY:
			memcpy(w->out, w->src + off, w->size[i]);
			off += w->size[i];
			break;
		case OP_SIZE_ENCODE:
			sse_encode_size(&w->ev[i], w->flags, &n);
			sse_encode(&w->ev[i], w->flags, w->out, n, &n);
			break;
#ifndef SSE_BENCH_BASELINE
		case OP_SIZE_UNCHECKED:
			if (sse_encode_size(&w->ev[i], w->flags, &n) == 0)
				sse__encode_unchecked(&w->ev[i], w->out, n);
			break;
#endif
		default:
			sse_encode(&w->ev[i], w->flags, w->out, w->size[i], &n);
			break;
		}
		BARRIER(w->out);
	}
}

static double time_passes(const struct work *w, enum op op, long passes)
{
	double t0 = now_ns();

	for (long i = 0; i < passes; i++)
		pass(w, op);
	return now_ns() - t0;
}

/* Enough passes for one run to last MIN_RUN_NS; also the warm-up. */
static long calibrate(const struct work *w, enum op op)
{
	long passes = 1;

	while (time_passes(w, op, passes) < MIN_RUN_NS && passes < (1L << 30))
		passes *= 2;
	return passes;
}

/*
 * Best nanoseconds per pass of each op over RUNS rounds. A round times
 * every op back to back, so a disturbance of a shared machine (another
 * process, a frequency change) hits memcpy and the encoder alike instead
 * of skewing their ratio.
 */
static void best_ns_per_pass(const struct work *w, double best[OP_COUNT])
{
	long passes[OP_COUNT];

	for (int op = 0; op < OP_COUNT; op++)
		passes[op] = op_available((enum op)op) ? calibrate(w, (enum op)op) : 0;
	for (int r = 0; r < RUNS; r++) {
		for (int op = 0; op < OP_COUNT; op++) {
			if (passes[op] == 0)
				continue;
			double t = time_passes(w, (enum op)op, passes[op]) / (double)passes[op];

			if (r == 0 || t < best[op])
				best[op] = t;
		}
	}
}

/* Fill sizes, the output buffer and the memcpy source; check each encode. */
static int prepare(struct work *w)
{
	size_t max = 0, off = 0;

	w->out_bytes = 0;
	for (size_t i = 0; i < w->count; i++) {
		int rc = sse_encode_size(&w->ev[i], w->flags, &w->size[i]);
		if (rc != 0) {
			printf("%s: sse_encode_size failed: %s\n", w->name, sse_strerror(rc));
			return rc;
		}
		w->out_bytes += w->size[i];
		max = w->size[i] > max ? w->size[i] : max;
	}
	w->out = xmalloc(max);
	w->src = xmalloc(w->out_bytes);
	for (size_t i = 0; i < w->count; i++) {
		size_t n;
		int rc = sse_encode(&w->ev[i], w->flags, w->src + off, w->size[i], &n);
		if (rc != 0 || n != w->size[i]) {
			printf("%s: sse_encode failed: %s\n", w->name, sse_strerror(rc));
			return rc ? rc : -1;
		}
		off += n;
	}
	return 0;
}

struct goal {
	double ratio;      /* encode/memcpy throughput wanted; 0: none */
	double events_sec; /* events per second wanted; 0: none */
};

static void print_row(const struct work *w, enum op op, double enc_ns, double cpy_ns,
		      const struct goal *g)
{
	static const struct goal none = {0, 0};
	char how[32];
	double gbs = (double)w->out_bytes / enc_ns; /* bytes per ns = GB/s */
	double ratio = cpy_ns / enc_ns;
	double evs = (double)w->count / enc_ns * 1e9;
	char goal[64] = "";

	snprintf(how, sizeof(how), "%s%s", op_name[op],
		 w->flags & SSE_ENCODE_STRICT_UTF8 ? "/strict" : "");
	if (w->flags != 0) /* the goals are for plain mode */
		g = &none;
	if (g->ratio > 0)
		snprintf(goal, sizeof(goal), "ratio >= %.2f: %s", g->ratio,
			 ratio >= g->ratio ? "met" : "NOT met");
	else if (g->events_sec > 0)
		snprintf(goal, sizeof(goal), ">= %.0f M ev/s: %s", g->events_sec / 1e6,
			 evs >= g->events_sec ? "met" : "NOT met");
	printf("%-24s %-21s %9.0f %8.2f %8.2f %6.2f %9.2f  %s\n", w->name, how,
	       (double)w->out_bytes / (double)w->count, gbs,
	       (double)w->out_bytes / cpy_ns, ratio, evs / 1e6, goal);
}

static void run(struct work *w, const struct goal *g)
{
	double best[OP_COUNT];

	if (prepare(w) != 0)
		return;
	best_ns_per_pass(w, best);
	for (int op = 0; op < OP_MEMCPY; op++)
		if (op_available((enum op)op))
			print_row(w, (enum op)op, best[op], best[OP_MEMCPY], g);
	free(w->out);
	free(w->src);
}

/* Printable bytes, as a payload of text would be. */
static void fill_text(char *p, size_t n, size_t line)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + i % 26);
	for (size_t i = line; line && i <= n; i += line)
		p[i - 1] = '\n';
}

static void bench_big(const char *name, size_t line, unsigned flags, const struct goal *g)
{
	size_t n = 64 * 1024, size;
	char *data = xmalloc(n);
	struct sse_event ev = {NULL, 0, NULL, 0, data, n, SSE_RETRY_NONE};
	struct work w = {name, flags, &ev, &size, 1, 0, NULL, NULL};

	fill_text(data, n, line);
	run(&w, g);
	free(data);
}

/* Market-data style events: a sequence id, a type, ~100 bytes of JSON. */
static void bench_small(unsigned flags, const struct goal *g)
{
	static char ids[SMALL_EVENTS][24], data[SMALL_EVENTS][128];
	static struct sse_event ev[SMALL_EVENTS];
	static size_t size[SMALL_EVENTS];
	struct work w = {"(c) 100 B JSON + id/type", flags, ev, size, SMALL_EVENTS, 0, NULL, NULL};

	for (int i = 0; i < SMALL_EVENTS; i++) {
		int id_len = snprintf(ids[i], sizeof(ids[i]), "%d", 1000000 + i);
		int len = snprintf(data[i], sizeof(data[i]),
				   "{\"seq\":%d,\"sym\":\"ACME\",\"price\":%d.%02d,"
				   "\"qty\":%d,\"side\":\"buy\",\"venue\":\"XNAS\",\"pad\":\"",
				   1000000 + i, 100 + i % 7, i % 100, 10 * (i % 50 + 1));
		while (len < 98)
			data[i][len++] = 'x';
		memcpy(data[i] + len, "\"}", 3);
		ev[i] = (struct sse_event){ids[i], (size_t)id_len, "price", 5, data[i],
					   (size_t)len + 2, SSE_RETRY_NONE};
	}
	run(&w, g);
}

int main(void)
{
	static const struct goal goal_a = {0.7, 0}, goal_b = {0.4, 0}, goal_c = {0, 20e6};

	printf("libsse %s encoder vs memcpy of the same output bytes "
	       "(best of %d runs, >= %.0f ms each)\n",
	       SSE_VERSION_STRING, RUNS, MIN_RUN_NS / 1e6);
#ifndef SSE_BENCH_BASELINE
	{
		static const char *const level[] = {"base (SSE2 or C)", "AVX2", "AVX-512BW"};

		printf("encoder path: %s, the widest this CPU runs\n", level[sse__scan_level()]);
	}
#endif
	printf("\n");
	printf("%-24s %-21s %9s %8s %8s %6s %9s  %s\n", "case", "api", "out B/ev", "enc GB/s",
	       "cpy GB/s", "ratio", "M ev/s", "goal");
	for (unsigned flags = 0; flags <= SSE_ENCODE_STRICT_UTF8; flags += SSE_ENCODE_STRICT_UTF8) {
		bench_big("(a) 64 KiB one line", 0, flags, &goal_a);
		bench_big("(b) 64 KiB 80-col lines", 80, flags, &goal_b);
		bench_small(flags, &goal_c);
	}
	printf("\nratio = encode throughput / memcpy throughput on the same bytes; /strict:\n"
	       "SSE_ENCODE_STRICT_UTF8. goals (plain mode): (a) >= 0.70, (b) >= 0.40,\n"
	       "(c) >= 20 M events/s (encode into own buffer).\n");
	return 0;
}
