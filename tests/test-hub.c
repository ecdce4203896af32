/*
 * The hub: one encoding per event, every subscriber gets every event once
 * and in order, slow ones are dropped without hurting the others, and
 * memory does not grow with traffic.
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

enum { SUBS = 50 };

static struct test_writer ws[SUBS];
static struct sse_stream *ss[SUBS];
static int drops;
static int drop_err[SUBS];
static int free_on_drop;

static int index_of(struct sse_stream *s)
{
	for (int i = 0; i < SUBS; i++)
		if (ss[i] == s)
			return i;
	ck_abort_msg("unknown stream dropped");
	return -1;
}

static void on_drop(struct sse_stream *s, int err, void *user)
{
	int i = index_of(s);

	(void)user;
	drops++;
	drop_err[i] = err;
	if (free_on_drop) {
		sse_stream_free(s);
		ss[i] = NULL;
	}
}

static struct sse_hub *new_hub(size_t events, size_t bytes, const struct sse_allocator *a)
{
	static const struct sse_event reset = {.type = "sse-reset", .type_len = 9, .data = "",
					       .retry = SSE_RETRY_NONE};
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = events,
					      .max_bytes = bytes, .epoch = "", .reset_event = &reset},
				     .heartbeat_ms = 1000};
	struct sse_hub *h;

	drops = 0;
	free_on_drop = 0;
	memset(drop_err, 0, sizeof(drop_err));
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, a), 0);
	return h;
}

static void new_sub(int i, const struct sse_allocator *a)
{
	test_writer_init(&ws[i]);
	ss[i] = test_stream_new(&ws[i], true, a);
}

static void free_subs(int n)
{
	for (int i = 0; i < n; i++) {
		sse_stream_free(ss[i]);
		ss[i] = NULL;
		test_writer_fini(&ws[i]);
	}
}

static void publish(struct sse_hub *h, const char *data)
{
	struct sse_event ev = {.data = data, .data_len = strlen(data), .retry = SSE_RETRY_NONE};

	ck_assert_int_eq(sse_hub_publish(h, &ev, 0, NULL), 0);
}

static void expect_output(const struct test_writer *w, const char *lit)
{
	ck_assert_uint_eq(w->len, strlen(lit));
	ck_assert_mem_eq(w->buf, lit, w->len);
}

START_TEST(test_hub_every_subscriber_gets_every_event)
{
	struct sse_hub *h = new_hub(100, 1 << 16, NULL);

	for (int i = 0; i < SUBS; i++) {
		new_sub(i, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
	}
	ck_assert_uint_eq(sse_hub_count(h), SUBS);
	publish(h, "a");
	publish(h, "b\nc");
	ck_assert_int_eq(sse_hub_flush(h), 0);
	for (int i = 0; i < SUBS; i++) {
		expect_output(&ws[i], ":\nid: 1\ndata: a\n\nid: 2\ndata: b\ndata: c\n\n");
		/* subscribe wrote the opening bytes; one call for both events */
		ck_assert_int_eq(ws[i].calls, 2);
	}
	sse_hub_free(h);
	free_subs(SUBS);
}
END_TEST

START_TEST(test_hub_resume_and_reset)
{
	struct sse_hub *h = new_hub(3, 1 << 16, NULL);
	int status;

	for (int i = 0; i < 5; i++)
		publish(h, "x");
	/* ring holds 3..5: "3" resumes with 4 and 5 */
	new_sub(0, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], "3", 1, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_FOUND);
	expect_output(&ws[0], ":\nid: 4\ndata: x\n\nid: 5\ndata: x\n\n");
	/* "1" is gone: the reset event, named after the newest id, then live */
	new_sub(1, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[1], "1", 1, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	publish(h, "y");
	ck_assert_int_eq(sse_hub_flush(h), 0);
	expect_output(&ws[1], ":\nid: 5\nevent: sse-reset\ndata:\n\nid: 6\ndata: y\n\n");
	sse_hub_free(h);
	free_subs(2);
}
END_TEST

START_TEST(test_hub_publishing_allocates_nothing)
{
	/* Warm: after subscribing, any number of publishes and fan-out
	 * passes allocate nothing and the live bytes stay where they are:
	 * memory per subscriber does not grow with traffic. */
	struct test_alloc ta;
	struct sse_hub *h;
	long calls;
	long long live;
	char data[200];

	test_alloc_init(&ta, 0);
	h = new_hub(256, 1 << 16, &ta.hooks);
	for (int i = 0; i < SUBS; i++) {
		new_sub(i, &ta.hooks);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
	}
	calls = ta.calls;
	live = ta.live_bytes;
	for (int k = 0; k < 5000; k++) {
		size_t n = (size_t)(k % 190);

		memset(data, 'a' + k % 26, n);
		data[n] = '\0';
		publish(h, data);
		if (k % 7 == 0)
			ck_assert_int_eq(sse_hub_flush(h), 0);
		ws[k % SUBS].len = 0; /* keep the capture buffers small */
	}
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(ta.calls, calls);
	ck_assert_int_eq(ta.live_bytes, live);
	ck_assert_int_eq(drops, 0);
	sse_hub_free(h);
	free_subs(SUBS);
	ck_assert_int_eq(ta.live_blocks, 0);
}
END_TEST

START_TEST(test_hub_idle_subscriber_holds_only_its_stream)
{
	/* Once its opening bytes and heartbeats have gone out, an idle
	 * subscriber keeps no buffer: its memory is the stream alone. */
	struct test_alloc ta;
	struct sse_hub *h = new_hub(16, 4096, NULL);
	uint64_t next;

	test_alloc_init(&ta, 0);
	new_sub(0, &ta.hooks);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], NULL, 0, NULL), 0);
	ck_assert_int_eq(ta.live_blocks, 1);
	ck_assert_int_eq(sse_hub_tick(h, 1000, &next), 0); /* a heartbeat */
	expect_output(&ws[0], ":\n:\n");
	ck_assert_int_eq(ta.live_blocks, 1);
	sse_hub_free(h);
	free_subs(1);
	ck_assert_int_eq(ta.live_blocks, 0);
}
END_TEST

START_TEST(test_hub_slow_subscriber_dropped_others_unaffected)
{
	struct sse_hub *h = new_hub(8, 1 << 16, NULL);

	for (int i = 0; i < 3; i++) {
		new_sub(i, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
	}
	ws[1].wouldblock_left = 1 << 30; /* stops reading */
	for (int k = 0; k < 20; k++) {
		publish(h, "tick");
		ck_assert_int_eq(sse_hub_flush(h), 0);
	}
	/* Not written to while it waits, but the flush after the publish
	 * that dropped its frame finds it behind the ring. */
	ck_assert_int_eq(drops, 1);
	ck_assert_int_eq(drop_err[1], SSE_ERR_GAP);
	ck_assert_uint_eq(sse_hub_count(h), 2);
	ck_assert_uint_eq(sse_stream_cursor(ss[0]), 21);
	ck_assert_uint_eq(sse_stream_cursor(ss[2]), 21);
	ck_assert_uint_eq(ws[0].len, ws[2].len);
	sse_hub_free(h);
	free_subs(3);
}
END_TEST

static struct sse_hub *new_window_hub(uint64_t window_ms, size_t cfg_size)
{
	struct sse_hub_config cfg = {.size = cfg_size,
				     .ring = {.size = sizeof(cfg.ring), .max_events = 100,
					      .max_bytes = 1 << 16, .epoch = ""},
				     .heartbeat_ms = 1000, .window_ms = window_ms};
	struct sse_hub *h = NULL;

	drops = 0;
	free_on_drop = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	return h;
}

static void publish_at(struct sse_hub *h, const char *data, uint64_t now_ms)
{
	struct sse_event ev = {.data = data, .data_len = strlen(data), .retry = SSE_RETRY_NONE};

	ck_assert_int_eq(sse_hub_publish(h, &ev, now_ms, NULL), 0);
}

/* A window gathers what is published within W ms of the first unsent
 * event into one transport call per subscriber, and holds nothing longer
 * than W: the tick at the deadline delivers, whatever flushes came
 * before. */
START_TEST(test_hub_batching_window)
{
	struct sse_hub *h = new_window_hub(5, sizeof(struct sse_hub_config));
	uint64_t next = 0;

	for (int i = 0; i < 3; i++) {
		new_sub(i, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
		ck_assert_int_eq(ws[i].calls, 1); /* the opening bytes */
	}
	ck_assert_int_eq(sse_hub_tick(h, 100, &next), 0);
	ck_assert_uint_eq(next, 1000); /* the heartbeat only: no batch open */
	publish_at(h, "a", 100);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	publish_at(h, "b", 103);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(sse_hub_tick(h, 104, &next), 0);
	ck_assert_uint_eq(next, 105); /* the first event's publish time + W */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(ws[i].calls, 1); /* held */
	ck_assert_int_eq(sse_hub_tick(h, 105, &next), 0);
	ck_assert_uint_eq(next, 1000); /* the batch is gone */
	for (int i = 0; i < 3; i++) {
		expect_output(&ws[i], ":\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n");
		ck_assert_int_eq(ws[i].calls, 2); /* both events, one call */
	}
	/* The next batch opens with the next event; a flush whose clock
	 * (the latest publish) is past the deadline delivers at once. */
	publish_at(h, "c", 200);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(ws[0].calls, 2);
	publish_at(h, "d", 206);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(ws[i].calls, 3);
	expect_output(&ws[2], ":\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n"
			      "id: 3\ndata: c\n\nid: 4\ndata: d\n\n");
	/* A subscriber writable within the window gets what is there: early
	 * is allowed, late is not. */
	publish_at(h, "e", 300);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(sse_hub_writable(h, ss[1]), 0);
	ck_assert_int_eq(ws[1].calls, 4);
	ck_assert_int_eq(ws[0].calls, 3);
	ck_assert_int_eq(sse_hub_tick(h, 305, NULL), 0);
	ck_assert_int_eq(ws[0].calls, 4);
	ck_assert_int_eq(ws[1].calls, 4); /* nothing more owed */
	ck_assert_int_eq(drops, 0);
	sse_hub_free(h);
	free_subs(3);
}
END_TEST

/* More published within one window than the ring holds: the window gives
 * way (a batch never fills half the ring), so a subscriber that keeps up
 * is never dropped for it and gets every event once, in order. */
START_TEST(test_hub_window_gives_way_to_the_ring)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 8,
					      .max_bytes = 1 << 16, .epoch = ""},
				     .heartbeat_ms = 1000, .window_ms = 2};
	struct sse_hub *h = NULL;
	char want[1024];
	size_t n = 0;

	drops = 0;
	free_on_drop = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	new_sub(0, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], NULL, 0, NULL), 0);
	n += (size_t)snprintf(want + n, sizeof(want) - n, ":\n");
	for (int i = 1; i <= 20; i++) {
		publish_at(h, "e", 100); /* all within one window */
		ck_assert_int_eq(sse_hub_flush(h), 0);
		n += (size_t)snprintf(want + n, sizeof(want) - n, "id: %d\ndata: e\n\n", i);
	}
	ck_assert_int_eq(sse_hub_tick(h, 102, NULL), 0);
	ck_assert_int_eq(drops, 0);
	expect_output(&ws[0], want);
	ck_assert_int_lt(ws[0].calls, 20); /* still batched: fewer writes than events */
	sse_hub_free(h);
	free_subs(1);
}
END_TEST

/* A 0.1 config (no window_ms) is accepted and delivers at once; any
 * other size is refused. */
START_TEST(test_hub_config_sizes)
{
	struct sse_hub_config cfg = {.ring = {.size = sizeof(cfg.ring), .max_events = 10,
					      .max_bytes = 1024},
				     .window_ms = 50};
	struct sse_hub *h = NULL;

	for (size_t size = 0; size <= sizeof(cfg) + 8; size++) {
		int want = size == sizeof(cfg) || size == offsetof(struct sse_hub_config, window_ms)
				   ? 0
				   : SSE_ERR_INVALID;

		cfg.size = size;
		ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), want);
		if (want == 0)
			sse_hub_free(h);
	}
	h = new_window_hub(0, offsetof(struct sse_hub_config, window_ms));
	new_sub(0, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], NULL, 0, NULL), 0);
	publish_at(h, "now", 10);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(ws[0].calls, 2);
	sse_hub_free(h);
	free_subs(1);
}
END_TEST

START_TEST(test_hub_blocked_subscriber_costs_no_calls)
{
	/* Once its transport said would-block, a subscriber is not written
	 * to again until the application says it is writable: each pass
	 * would otherwise cost it one system call for nothing. */
	struct sse_hub *h = new_hub(100, 1 << 16, NULL);
	int calls;

	new_sub(0, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], NULL, 0, NULL), 0);
	ws[0].accept_calls = 0;
	publish(h, "a");
	ck_assert_int_eq(sse_hub_flush(h), 0);
	calls = ws[0].calls;
	for (int k = 0; k < 10; k++) {
		publish(h, "b");
		ck_assert_int_eq(sse_hub_flush(h), 0);
	}
	ck_assert_int_eq(ws[0].calls, calls);
	ws[0].accept_calls = -1;
	ck_assert_int_eq(sse_hub_writable(h, ss[0]), 0);
	ck_assert_int_eq(ws[0].calls, calls + 1); /* all 11 events in one call */
	ck_assert_uint_eq(sse_stream_cursor(ss[0]), 12);
	sse_hub_free(h);
	free_subs(1);
}
END_TEST

START_TEST(test_hub_max_lag_drops_at_next_flush)
{
	/* Events of 24 bytes ("id: N\ndata: 0123456789\n\n"): past 200
	 * bytes behind, a subscriber whose transport refuses is a slow
	 * consumer though the ring still holds everything. */
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 1000,
					      .max_bytes = 1 << 20, .epoch = ""},
				     .max_lag = 200};
	struct sse_hub *h;
	int calls;

	drops = 0;
	free_on_drop = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	new_sub(0, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], NULL, 0, NULL), 0);
	ws[0].wouldblock_left = 1 << 30;
	for (int k = 0; k < 8; k++) /* 8 * 24 = 192: within the bound */
		publish(h, "0123456789");
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(sse_hub_writable(h, ss[0]), SSE_ERR_WOULDBLOCK);
	ck_assert_int_eq(drops, 0);
	calls = ws[0].calls;
	publish(h, "0123456789"); /* 216 */
	ck_assert_int_eq(sse_hub_flush(h), 0); /* checked, not written to */
	ck_assert_int_eq(ws[0].calls, calls);
	ck_assert_int_eq(drops, 1);
	ck_assert_int_eq(drop_err[0], SSE_ERR_GAP);
	sse_hub_free(h);
	free_subs(1);
}
END_TEST

/* The ids of the complete events a client got, in order (parser). */
struct ids {
	unsigned long v[256];
	int n;
};

static int collect(const struct sse_message *m, void *user)
{
	struct ids *ids = user;

	ids->v[ids->n++] = strtoul(m->last_id, NULL, 10);
	return 0;
}

static void parse_ids(const struct test_writer *w, struct ids *ids)
{
	struct sse_parser_callbacks cb = {.on_message = collect};
	struct sse_parser *p;

	ck_assert_int_eq(sse_parser_new(&p, &cb, ids, NULL), 0);
	ck_assert_int_eq(sse_parser_feed(p, w->buf, w->len), 0);
	ck_assert_int_eq(sse_parser_end(p), 0); /* a cut-off event is discarded */
	sse_parser_free(p);
}

START_TEST(test_hub_dropped_client_resumes_without_loss)
{
	/* A client reads a few bytes at a time, then stops reading and is
	 * dropped mid-event for its stall; it reconnects with the id of its
	 * last complete event, which the ring still holds, and from both
	 * connections it has every event exactly once. */
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 64,
					      .max_bytes = 1 << 16, .epoch = ""},
				     .stall_ms = 100, .no_heartbeat = 1};
	struct ids got = {{0}, 0};
	struct sse_hub *h;
	char last[24];

	drops = 0;
	free_on_drop = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	new_sub(0, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], NULL, 0, NULL), 0);
	ws[0].max_per_call = 7;
	ws[0].accept_calls = 0; /* from now on, only what it is allowed */
	for (int k = 0; k < 20; k++) {
		publish(h, "some payload");
		ck_assert_int_eq(sse_hub_flush(h), 0);
		/* the client read a little: writable for one 7-byte write */
		ws[0].accept_calls = 1;
		ck_assert_int_eq(sse_hub_writable(h, ss[0]), SSE_ERR_WOULDBLOCK);
		ck_assert_int_eq(sse_hub_tick(h, 50 * (uint64_t)k, NULL), 0);
	}
	ck_assert_int_eq(drops, 0); /* slow, but reading */
	/* its last read was at the clock of tick 18, 900 */
	ck_assert_int_eq(sse_hub_tick(h, 900 + 99, NULL), 0);
	ck_assert_int_eq(drops, 0);
	ck_assert_int_eq(sse_hub_tick(h, 900 + 100, NULL), 0); /* read nothing for 100 ms */
	ck_assert_int_eq(drop_err[0], SSE_ERR_STALLED);
	ck_assert_int_eq(drops, 1);
	parse_ids(&ws[0], &got);
	ck_assert_int_gt(got.n, 0);
	snprintf(last, sizeof(last), "%lu", got.v[got.n - 1]);
	for (int k = 0; k < 5; k++)
		publish(h, "some payload");
	new_sub(1, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[1], last, strlen(last), NULL), 0);
	parse_ids(&ws[1], &got);
	for (int k = 0; k < got.n; k++)
		ck_assert_uint_eq(got.v[k], (unsigned long)k + 1);
	ck_assert_uint_eq(got.v[got.n - 1], sse_replay_next_seq(sse_hub_ring(h)) - 1);
	sse_hub_free(h);
	free_subs(2);
}
END_TEST

START_TEST(test_hub_heartbeats_from_one_tick)
{
	struct sse_hub *h = new_hub(8, 4096, NULL);
	uint64_t next;

	for (int i = 0; i < 3; i++) {
		new_sub(i, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
	}
	ck_assert_int_eq(sse_hub_tick(h, 999, &next), 0);
	ck_assert_uint_eq(next, 1000);
	ws[2].fail_after = ws[2].calls; /* its peer is gone */
	ck_assert_int_eq(sse_hub_tick(h, 1000, &next), 0);
	expect_output(&ws[0], ":\n:\n");
	expect_output(&ws[1], ":\n:\n");
	ck_assert_int_eq(drops, 1);
	ck_assert_int_eq(drop_err[2], SSE_ERR_IO);
	ck_assert_uint_eq(sse_hub_count(h), 2);
	sse_hub_free(h);
	free_subs(3);
}
END_TEST

START_TEST(test_hub_drop_callback_may_free_streams)
{
	/* Every other subscriber fails during one pass and is freed in
	 * on_drop; the rest still get the event. */
	struct sse_hub *h = new_hub(8, 4096, NULL);

	for (int i = 0; i < SUBS; i++) {
		new_sub(i, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
		if (i % 2)
			ws[i].fail_after = ws[i].calls;
	}
	free_on_drop = 1;
	publish(h, "z");
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(drops, SUBS / 2);
	ck_assert_uint_eq(sse_hub_count(h), SUBS / 2);
	for (int i = 0; i < SUBS; i += 2)
		expect_output(&ws[i], ":\nid: 1\ndata: z\n\n");
	sse_hub_free(h);
	free_subs(SUBS); /* the freed ones are NULL */
}
END_TEST

START_TEST(test_hub_unsubscribe_and_free)
{
	struct sse_hub *h = new_hub(8, 4096, NULL);

	for (int i = 0; i < 4; i++) {
		new_sub(i, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
	}
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], NULL, 0, NULL), SSE_ERR_INVALID);
	sse_hub_unsubscribe(h, ss[1]);
	sse_stream_free(ss[2]); /* freeing a subscriber detaches it */
	ss[2] = NULL;
	ck_assert_uint_eq(sse_hub_count(h), 2);
	publish(h, "q");
	ck_assert_int_eq(sse_hub_flush(h), 0);
	expect_output(&ws[1], ":\n");
	expect_output(&ws[3], ":\nid: 1\ndata: q\n\n");
	/* an unsubscribed stream can join again, resuming where it was */
	ck_assert_int_eq(sse_hub_subscribe(h, ss[1], NULL, 0, NULL), 0);
	sse_hub_free(h);
	ck_assert_int_eq(sse_stream_comment(ss[0], "still usable", 12), 0);
	free_subs(4);
}
END_TEST

START_TEST(test_hub_nomem)
{
	for (long n = 1; n < 40; n++) {
		struct test_alloc ta;
		struct sse_hub *h = NULL;
		struct sse_hub_config cfg = {.size = sizeof(cfg),
					     .ring = {.size = sizeof(cfg.ring), .max_events = 8,
						      .max_bytes = 1024}};
		int rc;

		/* The hub's own allocations fail in turn; the stream's are libc. */
		test_alloc_init(&ta, n);
		drops = 0;
		rc = sse_hub_new(&h, &cfg, on_drop, NULL, &ta.hooks);
		if (rc == 0) {
			new_sub(0, NULL);
			rc = sse_hub_subscribe(h, ss[0], NULL, 0, NULL);
			ck_assert(rc == 0 || rc == SSE_ERR_NOMEM);
			ck_assert_uint_eq(sse_hub_count(h), rc == 0 ? 1 : 0);
			sse_hub_free(h);
			free_subs(1);
		} else {
			ck_assert_int_eq(rc, SSE_ERR_NOMEM);
		}
		ck_assert_int_eq(ta.live_blocks, 0);
	}
}
END_TEST

/* ---- counters and lag */

static struct sse_hub_stats stats_of(const struct sse_hub *h)
{
	struct sse_hub_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(sse_hub_stats(h, &st), 0);
	return st;
}

/* The bytes of "id: <id>\ndata: <data>\n\n", as the SSE format has it. */
static uint64_t frame_len(uint64_t id, size_t data_len)
{
	char digits[24];

	return (uint64_t)snprintf(digits, sizeof(digits), "%" PRIu64, id) + data_len +
	       strlen("id: \ndata: \n\n");
}

/* What the test expects, kept from what it did. */
struct expect {
	uint64_t events, bytes, deliveries, delivery_bytes;
	uint64_t attached; /* subscribers following the ring */
};

/* Publish event number `id` with `len` bytes of data. */
static void publish_counted(struct sse_hub *h, struct expect *x, uint64_t id, size_t len)
{
	char data[64];

	ck_assert_uint_lt(len, sizeof(data));
	memset(data, 'a' + (int)(id % 26), len);
	data[len] = '\0';
	publish(h, data);
	x->events++;
	x->bytes += frame_len(id, len);
	x->deliveries += x->attached;
	x->delivery_bytes += x->attached * frame_len(id, len);
}

static void expect_published(const struct sse_hub *h, const struct expect *x)
{
	struct sse_hub_stats st = stats_of(h);

	ck_assert_uint_eq(st.published_events, x->events);
	ck_assert_uint_eq(st.published_bytes, x->bytes);
	ck_assert_uint_eq(st.deliveries, x->deliveries);
	ck_assert_uint_eq(st.delivery_bytes, x->delivery_bytes);
	ck_assert_uint_eq(st.subscribers, x->attached);
}

static int count_event(const struct sse_message *m, void *user)
{
	if (!(m->type_len == 9 && memcmp(m->type, "sse-reset", 9) == 0))
		++*(uint64_t *)user;
	return 0;
}

/* Events (not the reset event) a client read from w. */
static uint64_t events_read(const struct test_writer *w)
{
	struct sse_parser_callbacks cb = {.on_message = count_event};
	struct sse_parser *p;
	uint64_t n = 0;

	ck_assert_int_eq(sse_parser_new(&p, &cb, &n, NULL), 0);
	ck_assert_int_eq(sse_parser_feed(p, w->buf, w->len), 0);
	sse_parser_free(p);
	return n;
}

/* Every counter against what the test did: publishes of known sizes,
 * live subscribers and resumes found, gap and unknown, then a drop of
 * each kind and both ways of leaving. */
START_TEST(test_hub_stats_count_what_happened)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 3,
					      .max_bytes = 1 << 16, .epoch = ""},
				     .heartbeat_ms = 1000, .stall_ms = 100};
	struct expect x = {0};
	struct sse_hub_stats st;
	struct sse_hub *h;
	uint64_t id = 0, read = 0;
	int status;

	drops = 0;
	free_on_drop = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	st = stats_of(h);
	ck_assert_uint_eq(st.subscribes + st.writes + st.published_events, 0);
	for (size_t len = 1; len <= 5; len++) /* nobody listens: owed to none */
		publish_counted(h, &x, ++id, len);
	expect_published(h, &x);

	/* Three live, one found ("3": 4 and 5 owed), one gap, one unknown. */
	for (int i = 0; i < 3; i++) {
		new_sub(i, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, &status), 0);
		ck_assert_int_eq(status, SSE_REPLAY_LIVE);
	}
	new_sub(3, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[3], "3", 1, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_FOUND);
	x.deliveries += 2;
	x.delivery_bytes += frame_len(4, 4) + frame_len(5, 5);
	new_sub(4, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[4], "1", 1, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	new_sub(5, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[5], "x9", 2, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_UNKNOWN);
	x.attached = 6;
	expect_published(h, &x);
	st = stats_of(h);
	ck_assert_uint_eq(st.subscribes, 6);
	ck_assert_uint_eq(st.replay_found, 1);
	ck_assert_uint_eq(st.replay_gap, 1);
	ck_assert_uint_eq(st.replay_unknown, 1);
	ck_assert_uint_eq(st.replay_history, 0);
	ck_assert_uint_eq(st.writes, 6); /* each subscribe wrote once */

	/* Two events, one pass: one write per subscriber for both. */
	publish_counted(h, &x, ++id, 10);
	publish_counted(h, &x, ++id, 20);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	expect_published(h, &x);
	ck_assert_uint_eq(stats_of(h).writes, 12);
	/* Owed is delivered: every client read exactly the deliveries. */
	for (int i = 0; i < 6; i++)
		read += events_read(&ws[i]);
	ck_assert_uint_eq(read, x.deliveries);

	/* A stall: 2 stops reading while it owes; 100 ms later it is dropped. */
	ck_assert_int_eq(sse_hub_tick(h, 0, NULL), 0);
	ws[2].wouldblock_left = 1 << 30;
	publish_counted(h, &x, ++id, 3);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_uint_eq(sse_hub_lag(h, ss[2]), 1);
	ck_assert_uint_eq(sse_stream_pending(ss[2]), frame_len(id, 3));
	ck_assert_uint_eq(sse_hub_lag(h, ss[0]), 0);
	ck_assert_int_eq(sse_hub_tick(h, 100, NULL), 0);
	ck_assert_int_eq(drop_err[2], SSE_ERR_STALLED);
	x.attached--;
	/* A gap: 1 stops reading; three more events push its frame out of
	 * the ring (3 events), and the flush after finds it behind. */
	ws[1].wouldblock_left = 1 << 30;
	for (int k = 0; k < 3; k++) {
		publish_counted(h, &x, ++id, 3);
		ck_assert_uint_eq(sse_hub_lag(h, ss[1]), (uint64_t)k + 1);
		ck_assert_int_eq(sse_hub_flush(h), 0);
	}
	publish_counted(h, &x, ++id, 3);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(drop_err[1], SSE_ERR_GAP);
	x.attached--;
	/* A transport error. */
	ws[0].fail_after = ws[0].calls;
	publish_counted(h, &x, ++id, 3);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(drop_err[0], SSE_ERR_IO);
	x.attached--;
	ck_assert_int_eq(drops, 3);
	expect_published(h, &x);

	/* The application: a lifetime, an unsubscribe, a freed stream. */
	ck_assert_int_eq(sse_hub_unsubscribe_reason(h, ss[3], 7), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_hub_unsubscribe_reason(h, ss[0], SSE_HUB_LIFETIME),
			 SSE_ERR_INVALID); /* dropped already: not a subscriber */
	ck_assert_int_eq(sse_hub_unsubscribe_reason(h, ss[3], SSE_HUB_LIFETIME), 0);
	ck_assert_int_eq(sse_hub_unsubscribe_reason(h, ss[3], SSE_HUB_LIFETIME), SSE_ERR_INVALID);
	sse_hub_unsubscribe(h, ss[4]);
	sse_stream_free(ss[5]);
	ss[5] = NULL;
	x.attached = 0;
	publish_counted(h, &x, ++id, 3);
	expect_published(h, &x);
	st = stats_of(h);
	ck_assert_uint_eq(st.drops_gap, 1);
	ck_assert_uint_eq(st.drops_stall, 1);
	ck_assert_uint_eq(st.drops_error, 1);
	ck_assert_uint_eq(st.drops_lifetime, 1);
	ck_assert_uint_eq(st.unsubscribes, 2);
	ck_assert_uint_eq(st.subscribers, 0);
	ck_assert_uint_eq(st.parked, 0);
	ck_assert_uint_eq(st.subscribes, st.subscribers + st.unsubscribes + st.drops_gap +
						 st.drops_stall + st.drops_error + st.drops_lifetime);
	ck_assert_uint_eq(st.history_fetches + st.history_frames + st.history_resets, 0);
	sse_hub_free(h);
	free_subs(6);
}
END_TEST

/* A program built with an older, shorter struct gets the fields it
 * knows and nothing written past them. */
START_TEST(test_hub_stats_sizes)
{
	struct sse_hub *h = new_hub(8, 4096, NULL);
	struct sse_hub_stats st;
	size_t old = offsetof(struct sse_hub_stats, deliveries);

	publish(h, "abc");
	memset(&st, 0xab, sizeof(st));
	st.size = old;
	ck_assert_int_eq(sse_hub_stats(h, &st), 0);
	ck_assert_uint_eq(st.published_events, 1);
	ck_assert_uint_eq(st.published_bytes, frame_len(1, 3));
	ck_assert_uint_eq(st.deliveries, 0xababababababababu);
	ck_assert_uint_eq(st.parked, 0xababababababababu);
	st.size = sizeof(st.size);
	ck_assert_int_eq(sse_hub_stats(h, &st), 0);
	st.size = sizeof(st.size) - 1;
	ck_assert_int_eq(sse_hub_stats(h, &st), SSE_ERR_INVALID);
	st.size = sizeof(st);
	ck_assert_int_eq(sse_hub_stats(NULL, &st), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_hub_stats(h, NULL), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_hub_lag(NULL, NULL), 0);
	new_sub(0, NULL);
	ck_assert_uint_eq(sse_hub_lag(h, ss[0]), 0); /* not a subscriber */
	ck_assert_int_eq(sse_hub_unsubscribe_reason(h, ss[0], SSE_HUB_CLOSED), SSE_ERR_INVALID);
	ck_assert_uint_eq(stats_of(h).unsubscribes, 0);
	sse_hub_free(h);
	free_subs(1);
}
END_TEST

/* ---- the counters read from another thread (TSan: tests/run-all.sh tsan) */

struct reader {
	const struct sse_hub *h;
	atomic_int stop, reads;
	int backwards; /* counters that went down between two reads */
	struct sse_hub_stats last;
};

static int went_back(const struct sse_hub_stats *a, const struct sse_hub_stats *b)
{
	int n = 0;

	/* Counters only grow; gauges may do anything. */
#define WENT_BACK(name, kind, help) n += strcmp(#kind, "counter") == 0 && b->name < a->name;
	SSE_HUB_STATS(WENT_BACK)
#undef WENT_BACK
	return n;
}

static void *read_stats(void *arg)
{
	struct reader *r = arg;
	struct sse_hub_stats prev = {.size = sizeof(prev)}, now = {.size = sizeof(now)};

	for (;;) {
		/* A read after seeing stop comes after all the hub's work. */
		int stopping = atomic_load(&r->stop);

		if (sse_hub_stats(r->h, &now) != 0)
			r->backwards++;
		r->backwards += went_back(&prev, &now);
		prev = now;
		atomic_fetch_add(&r->reads, 1);
		if (stopping)
			break;
	}
	r->last = prev;
	return NULL;
}

START_TEST(test_hub_stats_from_another_thread)
{
	enum { ROUNDS = 2000, N = 8 };
	struct sse_hub *h = new_hub(64, 1 << 16, NULL);
	struct reader r = {.h = h};
	struct sse_hub_stats st;
	pthread_t t;

	atomic_init(&r.stop, 0);
	atomic_init(&r.reads, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, read_stats, &r), 0);
	while (atomic_load(&r.reads) == 0)
		; /* it reads while we work */
	for (int i = 0; i < N; i++)
		new_sub(i, NULL);
	for (int k = 0; k < ROUNDS; k++) {
		int i = k % N;

		if (k % 3 == 0)
			ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
		publish(h, "x");
		ck_assert_int_eq(sse_hub_flush(h), 0);
		if (k % 3 == 2)
			sse_hub_unsubscribe(h, ss[i - 2 >= 0 ? i - 2 : i + N - 2]);
		ws[i].len = 0;
	}
	atomic_store(&r.stop, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(r.backwards, 0);
	ck_assert_int_gt(atomic_load(&r.reads), 0);
	st = stats_of(h);
	ck_assert_uint_eq(st.published_events, ROUNDS);
	ck_assert_uint_eq(r.last.published_events, ROUNDS); /* read after the stop */
	ck_assert_uint_eq(r.last.subscribes, st.subscribes);
	ck_assert_uint_eq(st.subscribes, (ROUNDS + 2) / 3);
	ck_assert_uint_eq(st.unsubscribes, (ROUNDS + 0) / 3);
	ck_assert_uint_eq(st.subscribers, st.subscribes - st.unsubscribes);
	ck_assert_int_eq(drops, 0);
	sse_hub_free(h);
	free_subs(N);
}
END_TEST

/* ---- the subscriber array and the config */

/* What the hub allocates per subscriber: its array entry (one pointer)
 * and its scheduler entry; with room for 1024, nothing else. */
START_TEST(test_hub_memory_per_subscriber)
{
	enum { N = 1024 };
	static struct test_writer w[N];
	static struct sse_stream *s[N];
	struct test_alloc ta;
	struct sse_hub *h;
	long long before;

	test_alloc_init(&ta, 0);
	h = new_hub(16, 4096, &ta.hooks);
	before = ta.live_bytes;
	for (int i = 0; i < N; i++) {
		test_writer_init(&w[i]);
		s[i] = test_stream_new(&w[i], true, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, s[i], NULL, 0, NULL), 0);
	}
	/* 8 B in the array, 16 B in the scheduler's heap (deadline, stream) */
	ck_assert_int_le(ta.live_bytes - before, (long long)N * (sizeof(void *) + 16));
	sse_hub_free(h);
	for (int i = 0; i < N; i++) {
		sse_stream_free(s[i]);
		test_writer_fini(&w[i]);
	}
	ck_assert_int_eq(ta.live_blocks, 0);
}
END_TEST

/* The jitter must be below the interval only when there are heartbeats. */
START_TEST(test_hub_jitter_ignored_without_heartbeats)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 8,
					      .max_bytes = 4096},
				     .heartbeat_ms = 1000, .heartbeat_jitter_ms = 1000};
	struct sse_hub *h = NULL;

	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), SSE_ERR_INVALID);
	cfg.heartbeat_ms = 0; /* the default interval, 15 s */
	cfg.heartbeat_jitter_ms = SSE_HEARTBEAT_DEFAULT_MS;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), SSE_ERR_INVALID);
	cfg.heartbeat_jitter_ms = SSE_HEARTBEAT_DEFAULT_MS - 1;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	sse_hub_free(h);
	cfg.no_heartbeat = 1;
	cfg.heartbeat_jitter_ms = UINT64_MAX;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	/* and there are none */
	drops = 0;
	new_sub(0, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], NULL, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_tick(h, 10 * (uint64_t)SSE_HEARTBEAT_DEFAULT_MS, NULL), 0);
	expect_output(&ws[0], ":\n");
	sse_hub_free(h);
	free_subs(1);
}
END_TEST

static Suite *hub_suite(void)
{
	Suite *su = suite_create("hub");
	TCase *tc = tcase_create("hub");

	tcase_add_test(tc, test_hub_every_subscriber_gets_every_event);
	tcase_add_test(tc, test_hub_resume_and_reset);
	tcase_add_test(tc, test_hub_publishing_allocates_nothing);
	tcase_add_test(tc, test_hub_idle_subscriber_holds_only_its_stream);
	tcase_add_test(tc, test_hub_slow_subscriber_dropped_others_unaffected);
	tcase_add_test(tc, test_hub_blocked_subscriber_costs_no_calls);
	tcase_add_test(tc, test_hub_batching_window);
	tcase_add_test(tc, test_hub_window_gives_way_to_the_ring);
	tcase_add_test(tc, test_hub_config_sizes);
	tcase_add_test(tc, test_hub_max_lag_drops_at_next_flush);
	tcase_add_test(tc, test_hub_dropped_client_resumes_without_loss);
	tcase_add_test(tc, test_hub_heartbeats_from_one_tick);
	tcase_add_test(tc, test_hub_drop_callback_may_free_streams);
	tcase_add_test(tc, test_hub_unsubscribe_and_free);
	tcase_add_test(tc, test_hub_nomem);
	tcase_add_test(tc, test_hub_stats_count_what_happened);
	tcase_add_test(tc, test_hub_stats_sizes);
	tcase_add_test(tc, test_hub_stats_from_another_thread);
	tcase_add_test(tc, test_hub_memory_per_subscriber);
	tcase_add_test(tc, test_hub_jitter_ignored_without_heartbeats);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	return test_run_suite(hub_suite());
}
