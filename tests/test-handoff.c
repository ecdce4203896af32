/*
 * The handoff: events pushed from any thread reach the hub in order,
 * once each; a full queue refuses without blocking; an invalid event is
 * refused at push; and a wake-up is asked for exactly when one is owed.
 * The concurrent case is meant to run under ThreadSanitizer too.
 *
 * SPDX-License-Identifier: MIT
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"

static int drops;

static void on_drop(struct sse_stream *s, int err, void *user)
{
	(void)s;
	(void)err;
	(void)user;
	drops++;
}

static struct sse_hub *new_hub(size_t events, int app_ids)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = events,
					      .max_bytes = 1 << 20, .epoch = "", .app_ids = app_ids},
				     .no_heartbeat = 1};
	struct sse_hub *h;

	drops = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	return h;
}

static struct sse_event data_event(const char *data)
{
	return (struct sse_event){.data = data, .data_len = strlen(data), .retry = SSE_RETRY_NONE};
}

static void expect_output(const struct test_writer *w, const char *lit)
{
	ck_assert_uint_eq(w->len, strlen(lit));
	ck_assert_mem_eq(w->buf, lit, w->len);
}

START_TEST(test_handoff_order_and_wake)
{
	struct sse_hub *h = new_hub(16, 0);
	struct test_writer w;
	struct sse_stream *s;
	struct sse_handoff *q;
	struct sse_event ev;
	size_t n;
	int wake;

	test_writer_init(&w);
	s = test_stream_new(&w, false, NULL);
	ck_assert_int_eq(sse_hub_subscribe(h, s, NULL, 0, NULL), 0);
	ck_assert_int_eq(sse_handoff_new(&q, 4, 64, 0, NULL), 0);

	ev = data_event("a");
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	ck_assert_int_eq(wake, 1); /* first since the last drain: wake the loop */
	ev = (struct sse_event){.type = "t", .type_len = 1, .data = "b\nc", .data_len = 3,
				.retry = 500};
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	ck_assert_int_eq(wake, 0); /* a wake-up is already on its way */
	ck_assert_uint_eq(sse_handoff_count(q), 2);

	ck_assert_int_eq(sse_handoff_drain(q, h, 0, 0, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(sse_handoff_count(q), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	expect_output(&w, ":\nid: 1\ndata: a\n\nid: 2\nevent: t\nretry: 500\ndata: b\ndata: c\n\n");

	/* after a drain, the next push asks for a wake-up again */
	ev = data_event("");
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	ck_assert_int_eq(wake, 1);
	/* an empty queue drained leaves the next push owing a wake-up */
	ck_assert_int_eq(sse_handoff_drain(q, h, 0, 0, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(sse_handoff_drain(q, h, 0, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	ev = (struct sse_event){.retry = SSE_RETRY_NONE}; /* no field: an empty block */
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	ck_assert_int_eq(wake, 1);
	ck_assert_int_eq(sse_handoff_drain(q, h, 0, 0, &n), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	expect_output(&w, ":\nid: 1\ndata: a\n\nid: 2\nevent: t\nretry: 500\ndata: b\ndata: c\n\n"
			  "id: 3\ndata:\n\nid: 4\n\n");

	sse_handoff_free(q);
	sse_hub_free(h);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_handoff_full_and_max)
{
	struct sse_hub *h = new_hub(64, 0);
	struct sse_handoff *q;
	struct sse_event ev = data_event("x");
	size_t n;
	int wake;

	/* 3 rounds up to 4 slots */
	ck_assert_int_eq(sse_handoff_new(&q, 3, 8, 0, NULL), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	wake = -1;
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), SSE_ERR_QUEUE_FULL);
	ck_assert_int_eq(wake, 0);
	ck_assert_uint_eq(sse_handoff_count(q), 4);

	/* a bounded drain: 1 says more is queued */
	ck_assert_int_eq(sse_handoff_drain(q, h, 0, 3, &n), 1);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(sse_handoff_count(q), 1);
	/* room again: the freed slots are reused, around the ring */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), SSE_ERR_QUEUE_FULL);
	ck_assert_int_eq(sse_handoff_drain(q, h, 0, 0, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(sse_replay_count(sse_hub_ring(h)), 7);
	sse_handoff_free(q);
	sse_hub_free(h);
}
END_TEST

START_TEST(test_handoff_refuses_at_push)
{
	struct sse_hub *h = new_hub(8, 0);
	struct sse_handoff *q;
	struct sse_event ev;
	size_t n;
	int wake;

	ck_assert_int_eq(sse_handoff_new(&q, 2, 4, SSE_ENCODE_STRICT_UTF8, NULL), 0);
	ev = (struct sse_event){.id = "a\nb", .id_len = 3, .retry = SSE_RETRY_NONE};
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), SSE_ERR_ID_LINEBREAK);
	ev = (struct sse_event){.type = "a\rb", .type_len = 3, .retry = SSE_RETRY_NONE};
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), SSE_ERR_TYPE_LINEBREAK);
	ev = (struct sse_event){.data = "x", .data_len = 1, .retry = -2};
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), SSE_ERR_RETRY);
	ev = data_event("\xff");
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), SSE_ERR_UTF8);
	ev = data_event("12345"); /* 5 bytes > 4 */
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), SSE_ERR_TOO_LARGE);
	ev = (struct sse_event){.type = "ab", .type_len = 2, .data = "abc", .data_len = 3,
				.retry = SSE_RETRY_NONE};
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), SSE_ERR_TOO_LARGE);
	ck_assert_int_eq(sse_handoff_push(q, NULL, &wake), SSE_ERR_INVALID);
	ev = data_event("1234");
	ck_assert_int_eq(sse_handoff_push(q, &ev, NULL), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_handoff_count(q), 0);

	/* the hub's own refusal (an id where the ring assigns them) drops that
	 * event only; the next one still goes through */
	ev = (struct sse_event){.id = "7", .id_len = 1, .data = "x", .data_len = 1,
				.retry = SSE_RETRY_NONE};
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	ev = data_event("ok");
	ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	ck_assert_int_eq(sse_handoff_drain(q, h, 0, 0, &n), SSE_ERR_INVALID);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(sse_handoff_drain(q, h, 0, 0, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(sse_replay_count(sse_hub_ring(h)), 1);

	sse_handoff_free(q);
	q = NULL;
	ck_assert_int_eq(sse_handoff_new(&q, 0, 4, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_handoff_new(&q, 4, 0, 0, NULL), SSE_ERR_INVALID);
	ck_assert_ptr_null(q);
	sse_handoff_free(NULL);
	sse_hub_free(h);
}
END_TEST

START_TEST(test_handoff_allocates_once)
{
	struct test_alloc ta;
	struct sse_handoff *q = NULL;
	struct sse_event ev = data_event("x");
	int wake;

	test_alloc_init(&ta, 1);
	ck_assert_int_eq(sse_handoff_new(&q, 8, 16, 0, &ta.hooks), SSE_ERR_NOMEM);
	ck_assert_ptr_null(q);
	test_alloc_init(&ta, 0);
	ck_assert_int_eq(sse_handoff_new(&q, 8, 16, 0, &ta.hooks), 0);
	ck_assert_int_eq(ta.calls, 1);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(sse_handoff_push(q, &ev, &wake), 0);
	ck_assert_int_eq(ta.calls, 1);
	sse_handoff_free(q);
	ck_assert_int_eq(ta.live_blocks, 0);
	ck_assert_int_eq(sse_handoff_new(&q, 8, SIZE_MAX - 8, 0, NULL), SSE_ERR_TOO_LARGE);
	ck_assert_int_eq(sse_handoff_new(&q, SIZE_MAX, 8, 0, NULL), SSE_ERR_TOO_LARGE);
}
END_TEST

/* The concurrent case: PRODUCERS threads push EVENTS events each, with
 * id and data "<producer>-<seq>", into a small queue, retrying when it is
 * full; the test thread is the loop: it waits on a pipe for a wake-up
 * (or 1 ms), drains into a hub with SUBS subscribers and flushes. Every
 * subscriber must get every event once, each producer's in order. */
enum { PRODUCERS = 4, EVENTS = 5000, SUBS = 3, SLOTS = 64 };

struct shared {
	struct sse_handoff *q;
	int wake_fd;
	atomic_int finished;
	atomic_long full; /* pushes refused with SSE_ERR_QUEUE_FULL */
};

struct producer {
	struct shared *sh;
	int id;
	pthread_t thread;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	char buf[32];

	for (int i = 0; i < EVENTS; i++) {
		int len = snprintf(buf, sizeof(buf), "%d-%d", p->id, i);
		struct sse_event ev = {.id = buf, .id_len = (size_t)len, .data = buf,
				       .data_len = (size_t)len, .retry = SSE_RETRY_NONE};
		int wake, rc;

		while ((rc = sse_handoff_push(p->sh->q, &ev, &wake)) == SSE_ERR_QUEUE_FULL) {
			atomic_fetch_add(&p->sh->full, 1);
			sched_yield();
		}
		ck_assert_int_eq(rc, 0);
		if (wake) {
			char c = 1;
			ck_assert_int_eq(write(p->sh->wake_fd, &c, 1), 1);
		}
	}
	atomic_fetch_add_explicit(&p->sh->finished, 1, memory_order_release);
	return NULL;
}

/* Read "<name><P>-<S>\n" at *p (the buffer is not NUL-terminated). */
static void read_line(const char **p, const char *end, const char *name, int *prod, int *seq)
{
	size_t n = strlen(name);
	int v[2] = {0, 0};
	const char *q = *p;

	ck_assert_int_ge(end - q, (long)n);
	ck_assert_mem_eq(q, name, n);
	q += n;
	for (int i = 0; i < 2; i++) {
		ck_assert(q < end && *q >= '0' && *q <= '9');
		while (q < end && *q >= '0' && *q <= '9')
			v[i] = v[i] * 10 + (*q++ - '0');
		ck_assert(q < end && *q == (i == 0 ? '-' : '\n'));
		q++;
	}
	*prod = v[0];
	*seq = v[1];
	*p = q;
}

/* Walk a subscriber's bytes: every "id: P-S" must match its data line
 * and come in order per producer; returns the events seen. */
static long check_subscriber(const struct test_writer *w)
{
	int next[PRODUCERS] = {0};
	long seen = 0;
	const char *p = w->buf, *end = w->buf + w->len;

	ck_assert_uint_ge(w->len, 2);
	ck_assert_mem_eq(p, ":\n", 2);
	p += 2;
	while (p < end) {
		int prod, seq, prod2, seq2;

		read_line(&p, end, "id: ", &prod, &seq);
		read_line(&p, end, "data: ", &prod2, &seq2);
		ck_assert(p < end && *p == '\n');
		p++;
		ck_assert_int_eq(prod, prod2);
		ck_assert_int_eq(seq, seq2);
		ck_assert_int_lt(prod, PRODUCERS);
		ck_assert_int_eq(seq, next[prod]);
		next[prod]++;
		seen++;
	}
	for (int i = 0; i < PRODUCERS; i++)
		ck_assert_int_eq(next[i], EVENTS);
	return seen;
}

START_TEST(test_handoff_threads)
{
	struct sse_hub *h = new_hub(4 * SLOTS, 1);
	struct test_writer ws[SUBS];
	struct sse_stream *ss[SUBS];
	struct producer prods[PRODUCERS];
	struct shared sh = {.wake_fd = -1};
	int fds[2];
	long total = 0, wakes = 0, drains = 0;

	for (int i = 0; i < SUBS; i++) {
		test_writer_init(&ws[i]);
		ss[i] = test_stream_new(&ws[i], i % 2 == 0, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, ss[i], NULL, 0, NULL), 0);
	}
	ck_assert_int_eq(pipe(fds), 0);
	sh.wake_fd = fds[1];
	atomic_init(&sh.finished, 0);
	atomic_init(&sh.full, 0);
	ck_assert_int_eq(sse_handoff_new(&sh.q, SLOTS, 32, 0, NULL), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		prods[i] = (struct producer){.sh = &sh, .id = i};
		ck_assert_int_eq(pthread_create(&prods[i].thread, NULL, produce, &prods[i]), 0);
	}

	for (;;) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int done = atomic_load_explicit(&sh.finished, memory_order_acquire) == PRODUCERS;
		size_t n;
		int rc;

		/* a 1 ms timeout: some drains run without the pipe's ordering */
		if (poll(&pfd, 1, 1) > 0) {
			char buf[256];
			ssize_t got = read(fds[0], buf, sizeof(buf));
			ck_assert_int_gt(got, 0);
			wakes += got;
		}
		do {
			rc = sse_handoff_drain(sh.q, h, 0, 0, &n);
			ck_assert_int_ge(rc, 0);
			total += (long)n;
			drains++;
			ck_assert_int_eq(sse_hub_flush(h), 0);
		} while (rc == 1);
		/* every producer finished before this drain began: all is in */
		if (done)
			break;
	}
	for (int i = 0; i < PRODUCERS; i++)
		ck_assert_int_eq(pthread_join(prods[i].thread, NULL), 0);

	ck_assert_int_eq(total, (long)PRODUCERS * EVENTS);
	ck_assert_uint_eq(sse_handoff_count(sh.q), 0);
	ck_assert_int_eq(drops, 0);
	for (int i = 0; i < SUBS; i++)
		ck_assert_int_eq(check_subscriber(&ws[i]), (long)PRODUCERS * EVENTS);
	printf("handoff threads: %ld events, %ld drains, %ld wake-ups, %ld pushes refused (full)\n",
	       total, drains, wakes, (long)atomic_load(&sh.full));

	sse_handoff_free(sh.q);
	sse_hub_free(h);
	for (int i = 0; i < SUBS; i++) {
		sse_stream_free(ss[i]);
		test_writer_fini(&ws[i]);
	}
	close(fds[0]);
	close(fds[1]);
}
END_TEST

static Suite *handoff_suite(void)
{
	Suite *s = suite_create("handoff");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_handoff_order_and_wake);
	tcase_add_test(tc, test_handoff_full_and_max);
	tcase_add_test(tc, test_handoff_refuses_at_push);
	tcase_add_test(tc, test_handoff_allocates_once);
	tcase_add_test(tc, test_handoff_threads);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(handoff_suite());
}
