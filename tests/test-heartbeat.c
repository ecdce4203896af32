/*
 * Heartbeats, retry and the opening bytes, driven by a fake clock: the
 * tests pass times in by hand, as a caller's event loop would.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "test-common.h"

static struct test_writer w;
static struct sse_stream *s;

static void setup(void)
{
	test_writer_init(&w);
	s = test_stream_new(&w, false, NULL);
}

static void teardown(void)
{
	sse_stream_free(s);
	test_writer_fini(&w);
}

static void expect_output(const char *lit)
{
	ck_assert_uint_eq(w.len, strlen(lit));
	ck_assert_mem_eq(w.buf, lit, w.len);
}

static void send_data(const char *text)
{
	struct sse_event ev = {.data = text, .data_len = strlen(text), .retry = SSE_RETRY_NONE};

	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
}

START_TEST(test_heartbeat_start_writes_comment)
{
	/* With no retry set, the opening bytes are an empty comment: bytes
	 * right after the head, which clients ignore. */
	ck_assert_int_eq(sse_stream_start(s, 1000), 0);
	expect_output(":\n");
	ck_assert_int_eq(sse_stream_start(s, 2000), 0);
	expect_output(":\n");
}
END_TEST

START_TEST(test_heartbeat_start_writes_retry)
{
	ck_assert_int_eq(sse_stream_set_retry(s, 2500), 0);
	ck_assert_uint_eq(w.len, 0); /* not started: nothing yet */
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	expect_output("retry: 2500\n\n");
}
END_TEST

START_TEST(test_heartbeat_retry_change_is_written)
{
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	ck_assert_int_eq(sse_stream_set_retry(s, 1000), 0);
	ck_assert_int_eq(sse_stream_set_retry(s, 1000), 0); /* unchanged: nothing */
	ck_assert_int_eq(sse_stream_set_retry(s, 0), 0);
	ck_assert_int_eq(sse_stream_set_retry(s, SSE_RETRY_NONE), 0);
	expect_output(":\nretry: 1000\n\nretry: 0\n\n");
	ck_assert_int_eq(sse_stream_set_retry(s, -5), SSE_ERR_RETRY);
	ck_assert_int_eq(sse_stream_set_retry(s, SSE_RETRY_MAX + 1L), SSE_ERR_RETRY);
}
END_TEST

START_TEST(test_heartbeat_default_interval)
{
	uint64_t next;

	ck_assert_int_eq(sse_stream_start(s, 10000), 0);
	ck_assert_int_eq(sse_stream_tick(s, 10000, &next), 0);
	ck_assert_uint_eq(next, 10000 + SSE_HEARTBEAT_DEFAULT_MS);
	ck_assert_int_eq(sse_stream_tick(s, 10000 + SSE_HEARTBEAT_DEFAULT_MS - 1, &next), 0);
	expect_output(":\n");
	ck_assert_int_eq(sse_stream_tick(s, 10000 + SSE_HEARTBEAT_DEFAULT_MS, &next), 0);
	expect_output(":\n:\n");
	ck_assert_uint_eq(next, 10000 + 2 * SSE_HEARTBEAT_DEFAULT_MS);
}
END_TEST

START_TEST(test_heartbeat_traffic_resets_idle_time)
{
	uint64_t next;

	ck_assert_int_eq(sse_stream_set_heartbeat(s, 1000, 0), 0);
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	ck_assert_int_eq(sse_stream_tick(s, 600, &next), 0);
	ck_assert_uint_eq(next, 1000);
	send_data("x"); /* stamped at 600, the last time the stream was told */
	ck_assert_int_eq(sse_stream_tick(s, 1000, &next), 0);
	ck_assert_uint_eq(next, 1600);
	expect_output(":\ndata: x\n\n");
	ck_assert_int_eq(sse_stream_tick(s, 1600, &next), 0);
	expect_output(":\ndata: x\n\n:\n");
	ck_assert_uint_eq(next, 2600);
}
END_TEST

START_TEST(test_heartbeat_stale_clock_beats_early_not_late)
{
	/* Bytes sent long after the last tick are stamped with that tick's
	 * time: the next heartbeat comes early, so the gap between bytes
	 * never exceeds the interval. */
	uint64_t next;

	ck_assert_int_eq(sse_stream_set_heartbeat(s, 1000, 0), 0);
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	send_data("late"); /* really at 900, but the stream last heard 0 */
	ck_assert_int_eq(sse_stream_tick(s, 1000, &next), 0);
	expect_output(":\ndata: late\n\n:\n");
}
END_TEST

START_TEST(test_heartbeat_off)
{
	uint64_t next;

	ck_assert_int_eq(sse_stream_set_heartbeat(s, 0, 0), 0);
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	ck_assert_int_eq(sse_stream_tick(s, UINT64_C(1) << 40, &next), 0);
	ck_assert_uint_eq(next, SSE_NO_DEADLINE);
	expect_output(":\n");
}
END_TEST

START_TEST(test_heartbeat_jitter_stays_within_bounds)
{
	/* Every idle period lies in [interval - jitter, interval], and over
	 * many periods the cut varies (streams do not beat in step). */
	uint64_t now = 0, next, lo = UINT64_MAX, hi = 0;

	ck_assert_int_eq(sse_stream_set_heartbeat(s, 1000, 300), 0);
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	ck_assert_int_eq(sse_stream_tick(s, 0, &next), 0);
	for (int i = 0; i < 200; i++) {
		uint64_t period = next - now;

		ck_assert_uint_ge(period, 700);
		ck_assert_uint_le(period, 1000);
		lo = period < lo ? period : lo;
		hi = period > hi ? period : hi;
		now = next;
		ck_assert_int_eq(sse_stream_tick(s, now, &next), 0);
	}
	ck_assert_uint_gt(hi - lo, 100);
	ck_assert_uint_eq(w.len, 2 * 201);
	ck_assert_int_eq(sse_stream_set_heartbeat(s, 1000, 1000), SSE_ERR_INVALID);
}
END_TEST

START_TEST(test_heartbeat_vanished_peer_is_reported)
{
	uint64_t next;

	ck_assert_int_eq(sse_stream_set_heartbeat(s, 1000, 0), 0);
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	w.fail_after = w.calls; /* the peer is gone: every later write fails */
	ck_assert_int_eq(sse_stream_tick(s, 1000, &next), SSE_ERR_IO);
	ck_assert_uint_eq(next, SSE_NO_DEADLINE);
	ck_assert_int_eq(sse_stream_tick(s, 2000, &next), SSE_ERR_IO);
}
END_TEST

/* --- the scheduler --- */

enum { MANY = 1000 };
static struct test_writer ws[MANY];
static struct sse_stream *ss[MANY];
static int failed_count;
static struct sse_stream *failed_last;

static void on_failed(struct sse_stream *st, int err, void *user)
{
	(void)user;
	ck_assert_int_eq(err, SSE_ERR_IO);
	failed_count++;
	failed_last = st;
}

static struct sse_timers *make_streams(int n, uint64_t interval)
{
	struct sse_timers *t;

	failed_count = 0;
	ck_assert_int_eq(sse_timers_new(&t, on_failed, NULL, NULL), 0);
	for (int i = 0; i < n; i++) {
		test_writer_init(&ws[i]);
		ss[i] = test_stream_new(&ws[i], false, NULL);
		ck_assert_int_eq(sse_stream_set_heartbeat(ss[i], interval, 0), 0);
		ck_assert_int_eq(sse_timers_add(t, ss[i]), 0);
	}
	return t;
}

static void free_streams(struct sse_timers *t, int n)
{
	for (int i = 0; i < n; i++) {
		sse_stream_free(ss[i]);
		test_writer_fini(&ws[i]);
	}
	ck_assert_uint_eq(sse_timers_count(t), 0);
	sse_timers_free(t);
}

START_TEST(test_heartbeat_timers_visit_only_due_streams)
{
	/* Streams started at times 0..999 with a 1000 ms interval: at time
	 * 1000 + k exactly the k + 1 streams started at 0..k are due. */
	struct sse_timers *t = make_streams(MANY, 1000);
	uint64_t next;
	size_t visited;

	for (int i = 0; i < MANY; i++) {
		ck_assert_int_eq(sse_timers_run(t, (uint64_t)i, &next, &visited), 0);
		ck_assert_int_eq(sse_stream_start(ss[i], (uint64_t)i), 0);
		sse_timers_remove(t, ss[i]); /* re-key after the start stamp */
		ck_assert_int_eq(sse_timers_add(t, ss[i]), 0);
	}
	ck_assert_int_eq(sse_timers_run(t, 1009, &next, &visited), 0);
	ck_assert_uint_eq(visited, 10);
	ck_assert_uint_eq(next, 1010);
	for (int i = 0; i < MANY; i++)
		ck_assert_uint_eq(ws[i].len, i < 10 ? 4 : 2);
	ck_assert_int_eq(sse_timers_run(t, 1009, &next, &visited), 0);
	ck_assert_uint_eq(visited, 0);
	free_streams(t, MANY);
}
END_TEST

START_TEST(test_heartbeat_timers_active_stream_gets_no_heartbeat)
{
	struct sse_timers *t = make_streams(2, 1000);
	struct sse_event ev = {.data = "x", .data_len = 1, .retry = SSE_RETRY_NONE};
	size_t visited;

	ck_assert_int_eq(sse_timers_run(t, 0, NULL, NULL), 0);
	for (uint64_t now = 500; now <= 5000; now += 500) {
		ck_assert_int_eq(sse_stream_send(ss[0], &ev), 0);
		ck_assert_int_eq(sse_timers_run(t, now, NULL, &visited), 0);
	}
	/* Stream 0 sent every 500 ms: no heartbeat. Stream 1 was idle:
	 * one at each of 1000, 2000, ... 5000. */
	ck_assert_uint_eq(ws[0].len, 10 * strlen("data: x\n\n"));
	ck_assert_uint_eq(ws[1].len, 5 * 2);
	free_streams(t, 2);
}
END_TEST

START_TEST(test_heartbeat_timers_report_failed_stream)
{
	struct sse_timers *t = make_streams(3, 1000);
	uint64_t next;

	ws[1].fail_after = 0;
	ck_assert_int_eq(sse_timers_run(t, 1000, &next, NULL), 0);
	ck_assert_int_eq(failed_count, 1);
	ck_assert_ptr_eq(failed_last, ss[1]);
	ck_assert_uint_eq(sse_timers_count(t), 2);
	ck_assert_uint_eq(next, 2000);
	free_streams(t, 3);
}
END_TEST

START_TEST(test_heartbeat_timers_remove_and_free)
{
	struct sse_timers *t = make_streams(50, 1000);
	struct sse_timers *t2;

	/* Removing in an arbitrary order keeps the heap consistent. */
	for (int i = 0; i < 50; i += 3)
		sse_timers_remove(t, ss[i]);
	ck_assert_uint_eq(sse_timers_count(t), 50 - 17);
	ck_assert_int_eq(sse_timers_add(t, ss[1]), SSE_ERR_INVALID); /* attached already */
	ck_assert_int_eq(sse_timers_new(&t2, NULL, NULL, NULL), 0);
	sse_timers_remove(t2, ss[1]); /* not attached there: left alone */
	ck_assert_uint_eq(sse_timers_count(t), 50 - 17);
	sse_timers_free(t2);
	/* Freeing the scheduler detaches the rest: they tick on their own. */
	ck_assert_int_eq(sse_timers_run(t, 777, NULL, NULL), 0);
	sse_timers_free(t);
	{
		uint64_t next;

		ck_assert_int_eq(sse_stream_tick(ss[1], 800, &next), 0);
	}
	for (int i = 0; i < 50; i++) {
		sse_stream_free(ss[i]);
		test_writer_fini(&ws[i]);
	}
}
END_TEST

START_TEST(test_heartbeat_timers_nomem)
{
	struct test_alloc ta;
	struct sse_timers *t;

	for (long n = 1; n <= 2; n++) {
		struct sse_stream *st;

		test_alloc_init(&ta, n);
		test_writer_init(&ws[0]);
		ck_assert_int_eq(sse_timers_new(&t, NULL, NULL, &ta.hooks), n == 1 ? SSE_ERR_NOMEM : 0);
		if (n == 2) {
			st = test_stream_new(&ws[0], false, NULL);
			ck_assert_int_eq(sse_timers_add(t, st), SSE_ERR_NOMEM);
			sse_stream_free(st);
			sse_timers_free(t);
		}
		ck_assert_int_eq(ta.live_blocks, 0);
		test_writer_fini(&ws[0]);
	}
}
END_TEST

/* xorshift64 with a fixed seed: the same run on every machine. */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

START_TEST(test_heartbeat_timers_no_stream_idle_past_interval)
{
	/* Random intervals, random sends, random tick spacing: after every
	 * run, no stream may have been silent for its whole interval. This
	 * is what a proxy's idle timer sees. */
	enum { N = 300, STEPS = 3000 };
	static uint64_t interval[N], last_bytes[N];
	static size_t seen[N];
	struct sse_timers *t = make_streams(N, 1000);
	struct sse_event ev = {.data = "x", .data_len = 1, .retry = SSE_RETRY_NONE};
	uint64_t x = 0x9E3779B97F4A7C15u, now = 0;

	for (int i = 0; i < N; i++) {
		interval[i] = 100 + rnd(&x) % 5000;
		ck_assert_int_eq(sse_stream_set_heartbeat(ss[i], interval[i], rnd(&x) % 50), 0);
	}
	for (int step = 0; step < STEPS; step++) {
		now += rnd(&x) % 40;
		for (int k = 0; k < 5; k++)
			ck_assert_int_eq(sse_stream_send(ss[rnd(&x) % N], &ev), 0);
		for (int k = 0; k < 3; k++) { /* removal from anywhere in the heap */
			struct sse_stream *st = ss[rnd(&x) % N];

			sse_timers_remove(t, st);
			ck_assert_int_eq(sse_timers_add(t, st), 0);
		}
		ck_assert_int_eq(sse_timers_run(t, now, NULL, NULL), 0);
		for (int i = 0; i < N; i++) {
			if (ws[i].len != seen[i]) {
				seen[i] = ws[i].len;
				last_bytes[i] = now;
			}
			/* Not ck_assert: a million of them would dominate the
			 * test's time under the sanitizers. */
			if (now - last_bytes[i] >= interval[i])
				ck_abort_msg("stream %d silent for %llu ms, interval %llu", i,
					     (unsigned long long)(now - last_bytes[i]),
					     (unsigned long long)interval[i]);
		}
	}
	free_streams(t, N);
}
END_TEST

static Suite *heartbeat_suite(void)
{
	Suite *su = suite_create("heartbeat");
	TCase *open = tcase_create("open");
	TCase *beat = tcase_create("beat");
	TCase *timers = tcase_create("timers");

	tcase_add_checked_fixture(open, setup, teardown);
	tcase_add_checked_fixture(beat, setup, teardown);
	tcase_add_test(open, test_heartbeat_start_writes_comment);
	tcase_add_test(open, test_heartbeat_start_writes_retry);
	tcase_add_test(open, test_heartbeat_retry_change_is_written);
	tcase_add_test(beat, test_heartbeat_default_interval);
	tcase_add_test(beat, test_heartbeat_traffic_resets_idle_time);
	tcase_add_test(beat, test_heartbeat_stale_clock_beats_early_not_late);
	tcase_add_test(beat, test_heartbeat_off);
	tcase_add_test(beat, test_heartbeat_jitter_stays_within_bounds);
	tcase_add_test(beat, test_heartbeat_vanished_peer_is_reported);
	tcase_add_test(timers, test_heartbeat_timers_visit_only_due_streams);
	tcase_add_test(timers, test_heartbeat_timers_active_stream_gets_no_heartbeat);
	tcase_add_test(timers, test_heartbeat_timers_report_failed_stream);
	tcase_add_test(timers, test_heartbeat_timers_remove_and_free);
	tcase_add_test(timers, test_heartbeat_timers_nomem);
	tcase_add_test(timers, test_heartbeat_timers_no_stream_idle_past_interval);
	suite_add_tcase(su, open);
	suite_add_tcase(su, beat);
	suite_add_tcase(su, timers);
	return su;
}

int main(void)
{
	return test_run_suite(heartbeat_suite());
}
