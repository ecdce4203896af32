/*
 * What a hub's flush costs as subscribers pile up: the documented cost is
 * O(subscribers owed something), so a flush with nothing new published
 * must cost the same at 100 000 idle subscribers as at 1 000, while a
 * flush after a publish visits every caught-up subscriber once. Printed:
 * median nanoseconds per flush over rounds, and the ratios between sizes
 * measured in the same run.
 *
 *   bench-hub [ROUNDS]
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include <sse.h>

#include "bench-common.h"

/* Takes everything and keeps nothing: the cost measured is the hub's. */
static int sink(const void *buf, size_t len, size_t *taken, void *ctx)
{
	(void)buf;
	(void)ctx;
	*taken = len;
	return 0;
}

static void dropped(struct sse_stream *s, int err, void *user)
{
	(void)s;
	(void)err;
	(void)user;
}

struct hub_set {
	struct sse_hub *hub;
	struct sse_stream **subs;
	size_t n;
};

static void setup(struct hub_set *hs, size_t n)
{
	const struct sse_hub_config cfg = {.size = sizeof(cfg),
					   .ring = {.size = sizeof(cfg.ring), .max_events = 1024,
						    .max_bytes = 1 << 20},
					   .no_heartbeat = 1};
	const struct sse_transport t = {.size = sizeof(t), .write = sink};

	hs->n = n;
	hs->subs = xmalloc(n * sizeof(*hs->subs));
	if (sse_hub_new(&hs->hub, &cfg, dropped, NULL, NULL) != 0)
		exit(0);
	for (size_t i = 0; i < n; i++)
		if (sse_stream_new(&hs->subs[i], &t, NULL, NULL) != 0 ||
		    sse_hub_subscribe(hs->hub, hs->subs[i], NULL, 0, NULL) != 0)
			exit(0);
}

static void teardown(struct hub_set *hs)
{
	for (size_t i = 0; i < hs->n; i++)
		sse_stream_free(hs->subs[i]);
	sse_hub_free(hs->hub);
	free(hs->subs);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median ns per idle flush (nothing published since the last one). */
static double idle_flush(struct hub_set *hs, int rounds)
{
	enum { FLUSHES = 10000 };
	double t[64];

	for (int r = 0; r < rounds; r++) {
		double t0 = now_ns();

		for (int k = 0; k < FLUSHES; k++)
			sse_hub_flush(hs->hub);
		t[r] = (now_ns() - t0) / FLUSHES;
	}
	qsort(t, (size_t)rounds, sizeof(t[0]), cmp);
	return t[rounds / 2];
}

/* Median ns per publish + flush reaching every subscriber. */
static double live_flush(struct hub_set *hs, int rounds)
{
	const struct sse_event ev = {.data = "tick", .data_len = 4, .retry = SSE_RETRY_NONE};
	double t[64];

	for (int r = 0; r < rounds; r++) {
		double t0 = now_ns();

		sse_hub_publish(hs->hub, &ev, 0, NULL);
		sse_hub_flush(hs->hub);
		t[r] = now_ns() - t0;
	}
	qsort(t, (size_t)rounds, sizeof(t[0]), cmp);
	return t[rounds / 2];
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 15;
	struct hub_set small, large;
	double idle_s, idle_l, live_s, live_l;

	if (rounds < 1 || rounds > 64)
		rounds = 15;
	setup(&small, 1000);
	setup(&large, 100000);
	/* interleaved, so both sizes see the same machine */
	idle_s = idle_flush(&small, rounds);
	idle_l = idle_flush(&large, rounds);
	live_s = live_flush(&small, rounds);
	live_l = live_flush(&large, rounds);
	printf("hub flush, nothing new published (median of %d rounds):\n", rounds);
	printf("  1 000 idle subscribers:   %8.1f ns/flush\n", idle_s);
	printf("  100 000 idle subscribers: %8.1f ns/flush   ratio %.2f (O(1): ~1)\n", idle_l,
	       idle_l / idle_s);
	printf("hub publish + flush to every subscriber (median of %d rounds):\n", rounds);
	printf("  1 000 subscribers:        %10.0f ns   %6.1f ns/subscriber\n", live_s,
	       live_s / 1000);
	printf("  100 000 subscribers:      %10.0f ns   %6.1f ns/subscriber   ratio %.1f (O(n): ~100)\n",
	       live_l, live_l / 100000, live_l / live_s);
	printf("idle flush at 100 000 is %.0fx cheaper than one pass over them\n", live_l / idle_l);
	teardown(&small);
	teardown(&large);
	return 0;
}
