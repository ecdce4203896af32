/*
 * Streams that follow a replay ring: frames leave straight from the ring,
 * in order, exactly once, with the stream's own bytes only between frames.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

static struct sse_replay *new_ring(size_t events, size_t bytes)
{
	struct sse_replay_config cfg = {.size = sizeof(cfg), .max_events = events,
					.max_bytes = bytes, .epoch = ""};
	struct sse_replay *r;

	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), 0);
	return r;
}

static void publish(struct sse_replay *r, const char *data)
{
	struct sse_event ev = {.data = data, .data_len = strlen(data), .retry = SSE_RETRY_NONE};

	ck_assert_int_eq(sse_replay_publish(r, &ev, 0, NULL), 0);
}

static struct sse_stream *new_stream(struct test_writer *w, int with_writev)
{
	struct sse_stream *s;

	test_writer_init(w);
	s = test_stream_new(w, with_writev, NULL);
	return s;
}

static void expect_output(const struct test_writer *w, const char *lit)
{
	ck_assert_uint_eq(w->len, strlen(lit));
	ck_assert_mem_eq(w->buf, lit, w->len);
}

START_TEST(test_follow_sends_frames_from_cursor)
{
	struct sse_replay *r = new_ring(16, 4096);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w, 0);

	publish(r, "a");
	publish(r, "b");
	publish(r, "c");
	ck_assert_int_eq(sse_stream_follow(s, r, 2), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 2 * strlen("id: 2\ndata: b\n\n"));
	ck_assert_int_eq(sse_stream_flush(s), 0);
	expect_output(&w, "id: 2\ndata: b\n\nid: 3\ndata: c\n\n");
	ck_assert_uint_eq(sse_stream_cursor(s), 4);
	publish(r, "d");
	ck_assert_int_eq(sse_stream_flush(s), 0);
	expect_output(&w, "id: 2\ndata: b\n\nid: 3\ndata: c\n\nid: 4\ndata: d\n\n");
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_follow_own_bytes_first_then_frames_in_one_writev)
{
	struct sse_replay *r = new_ring(16, 4096);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w, 1);

	publish(r, "a");
	publish(r, "b");
	w.wouldblock_left = 1; /* the opening bytes stay queued */
	ck_assert_int_eq(sse_stream_set_retry(s, 500), 0);
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	expect_output(&w, "retry: 500\n\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n");
	/* Adjacent frames are one piece: opening bytes + frames = 2. */
	ck_assert_int_eq(w.writev_calls, 1);
	ck_assert_uint_eq(w.max_pieces, 2);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

/* A transport that allows stingy_calls more calls, then would-block. */
static int stingy_calls;
static int stingy_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	struct test_writer *w = ctx;

	if (stingy_calls-- <= 0)
		return SSE_ERR_WOULDBLOCK;
	return test_writer_write(buf, len, taken, w);
}

static int stingy_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	if (stingy_calls-- <= 0)
		return SSE_ERR_WOULDBLOCK;
	return test_writer_writev(iov, n, taken, ctx);
}

static struct sse_transport stingy(struct test_writer *w)
{
	return (struct sse_transport){.size = sizeof(struct sse_transport), .write = stingy_write,
				      .writev = stingy_writev, .ctx = w};
}

START_TEST(test_follow_heartbeat_waits_for_frame_boundary)
{
	struct sse_replay *r = new_ring(16, 4096);
	struct sse_transport t;
	struct test_writer w;
	struct sse_stream *s;
	uint64_t next;

	test_writer_init(&w);
	t = stingy(&w);
	ck_assert_int_eq(sse_stream_new(&s, &t, &w, NULL), 0);
	ck_assert_int_eq(sse_stream_set_heartbeat(s, 1000, 0), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	publish(r, "hello");
	w.max_per_call = 4;
	stingy_calls = 1;
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	expect_output(&w, "id: ");
	stingy_calls = 0;
	ck_assert_int_eq(sse_stream_tick(s, 1000, &next), 0); /* heartbeat queued */
	stingy_calls = 100;
	ck_assert_int_eq(sse_stream_flush(s), 0);
	expect_output(&w, "id: 1\ndata: hello\n\n:\n");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

/* Parse what a writer received and check it holds events 1..n with data
 * "e<id>", each once, in order (comments may sit between them). */
struct seen {
	int count;
	int ok;
};

static int on_message(const struct sse_message *m, void *ctx)
{
	struct seen *seen = ctx;
	char want[32];

	seen->count++;
	snprintf(want, sizeof(want), "%d", seen->count);
	if (m->last_id_len != strlen(want) || memcmp(m->last_id, want, m->last_id_len) != 0)
		seen->ok = 0;
	return 0;
}

static int parse_events(const struct test_writer *w)
{
	struct sse_parser_callbacks cb = {.on_message = on_message};
	struct seen seen = {0, 1};
	struct sse_parser *p;

	ck_assert_int_eq(sse_parser_new(&p, &cb, &seen, NULL), 0);
	ck_assert_int_eq(sse_parser_feed(p, w->buf, w->len), 0);
	sse_parser_free(p);
	ck_assert_int_eq(seen.ok, 1);
	return seen.count;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Random publishes of random sizes, partial and refused writes, and
 * heartbeats: the client sees every event exactly once, in order. */
static void random_run(uint64_t seed, int with_writev)
{
	struct sse_replay *r = new_ring(4096, 1 << 20);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w, with_writev);
	uint64_t x = seed, now = 0, next;
	int published = 0;
	char data[600];

	ck_assert_int_eq(sse_stream_set_heartbeat(s, 50, 0), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	for (int step = 0; step < 3000; step++) {
		switch (rnd(&x) % 4) {
		case 0: {
			size_t n = rnd(&x) % (sizeof(data) - 1);

			memset(data, 'a' + (int)(rnd(&x) % 26), n);
			data[n] = '\0';
			publish(r, data);
			published++;
			break;
		}
		case 1:
			w.max_per_call = 1 + rnd(&x) % 300;
			w.wouldblock_left = (int)(rnd(&x) % 3);
			ck_assert_int_ge(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
			break;
		case 2:
			now += rnd(&x) % 40;
			ck_assert_int_eq(sse_stream_tick(s, now, &next), 0);
			break;
		default:
			w.max_per_call = 0;
			w.wouldblock_left = 0;
			break;
		}
	}
	w.max_per_call = 0;
	w.wouldblock_left = 0;
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_int_eq(parse_events(&w), published);
	ck_assert_uint_eq(sse_stream_cursor(s), (uint64_t)published + 1);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}

START_TEST(test_follow_random_interleavings_lose_nothing)
{
	for (uint64_t seed = 1; seed <= 8; seed++) {
		random_run(seed * 0x9E3779B97F4A7C15u, 0);
		random_run(seed * 0xD1B54A32D192ED03u, 1);
	}
}
END_TEST

START_TEST(test_follow_wraps_around_the_arena)
{
	/* A 300-byte arena: frames wrap to its start over and over, so the
	 * gathered pieces are split at the wrap and writes stop anywhere. */
	struct sse_replay *r = new_ring(64, 300);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w, 1);
	char data[64];

	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	for (int i = 0; i < 500; i++) {
		memset(data, 'x', (size_t)(i % 50));
		data[i % 50] = '\0';
		publish(r, data);
		if (i % 2 == 0)
			publish(r, "y");
		w.max_per_call = (size_t)(1 + i % 97);
		ck_assert_int_eq(sse_stream_flush(s), 0);
	}
	ck_assert_int_eq(parse_events(&w), 750);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_follow_slow_consumer_gets_gap)
{
	struct sse_replay *r = new_ring(4, 4096);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w, 1);

	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	w.wouldblock_left = 1000;
	for (int i = 0; i < 10; i++)
		publish(r, "x");
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP);
	ck_assert_int_eq(sse_stream_error(s), SSE_ERR_GAP);
	ck_assert_int_eq(sse_stream_comment(s, "x", 1), SSE_ERR_GAP);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_follow_backlog_past_queue_limit_keeps_its_place)
{
	/* The queue limit bounds what the stream queues itself, not the ring
	 * frames it owes: a blocked follower owing far more than its limit
	 * is not failed while the ring holds its frames, and gets them all
	 * once its transport takes bytes again. */
	struct sse_replay *r = new_ring(1000, 1 << 16);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w, 1);

	ck_assert_int_eq(sse_stream_set_queue_limit(s, 100), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	w.wouldblock_left = 1000;
	for (int i = 0; i < 50; i++) {
		publish(r, "0123456789");
		ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	}
	ck_assert_uint_eq(sse_stream_pending(s), 9 * 24 + 41 * 25); /* ids 1..9, 10..50 */
	w.wouldblock_left = 0;
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_uint_eq(w.len, 9 * 24 + 41 * 25);
	ck_assert_mem_eq(w.buf, "id: 1\ndata: 0123456789\n\n", 24);
	ck_assert_mem_eq(w.buf + w.len - 25, "id: 50\ndata: 0123456789\n\n", 25);
	ck_assert_uint_eq(sse_stream_cursor(s), 51);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_follow_max_lag_fails_only_past_it)
{
	struct sse_replay *r = new_ring(1000, 1 << 16);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w, 1);

	/* "id: 1\ndata: 0123456789\n\n" is 24 bytes */
	ck_assert_int_eq(sse_stream_set_max_lag(s, 48), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	w.wouldblock_left = 1000;
	publish(r, "0123456789");
	publish(r, "0123456789");
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK); /* 48: at the bound */
	publish(r, "0123456789");
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP); /* 72: past it */
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_follow_arguments)
{
	struct sse_replay *r = new_ring(4, 4096);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w, 0);

	publish(r, "a");
	ck_assert_int_eq(sse_stream_follow(s, r, 3), SSE_ERR_INVALID); /* past the end */
	ck_assert_int_eq(sse_stream_follow(NULL, r, 1), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_stream_cursor(s), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 2), 0); /* live */
	ck_assert_uint_eq(sse_stream_cursor(s), 2);
	ck_assert_int_eq(sse_stream_follow(s, NULL, 0), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), 0);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

static Suite *follow_suite(void)
{
	Suite *su = suite_create("follow");
	TCase *tc = tcase_create("follow");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_follow_sends_frames_from_cursor);
	tcase_add_test(tc, test_follow_own_bytes_first_then_frames_in_one_writev);
	tcase_add_test(tc, test_follow_heartbeat_waits_for_frame_boundary);
	tcase_add_test(tc, test_follow_random_interleavings_lose_nothing);
	tcase_add_test(tc, test_follow_wraps_around_the_arena);
	tcase_add_test(tc, test_follow_slow_consumer_gets_gap);
	tcase_add_test(tc, test_follow_backlog_past_queue_limit_keeps_its_place);
	tcase_add_test(tc, test_follow_max_lag_fails_only_past_it);
	tcase_add_test(tc, test_follow_arguments);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	return test_run_suite(follow_suite());
}
