/*
 * The stream: queueing, eager draining, the queue limit, failures and
 * allocation failures. Expected bytes follow the WHATWG event stream format
 * (LF line ends, "name: value", "data:" alone for an empty line, a blank
 * line after each event) as sse.h describes it, never the library's output.
 *
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

/* Refusals a test writer gives before the test unblocks it by hand. */
#define BLOCKED 1000000

static struct sse_event data_event(const char *data)
{
	return (struct sse_event){.data = data, .data_len = strlen(data),
				  .retry = SSE_RETRY_NONE};
}

static struct sse_event id_event(const char *id, size_t id_len)
{
	return (struct sse_event){.id = id, .id_len = id_len, .data = "x", .data_len = 1,
				  .retry = SSE_RETRY_NONE};
}


static void assert_delivered(const struct test_writer *w, const char *expect, size_t len)
{
	ck_assert_uint_eq(w->len, len);
	if (len > 0)
		ck_assert_mem_eq(w->buf, expect, len);
}

#define ASSERT_DELIVERED(w, lit) assert_delivered((w), (lit), sizeof(lit) - 1)

/* Flush until the queue is empty; fails the test if that never happens. */
static int flush_until_done(struct sse_stream *s)
{
	int rounds = 0, rc;

	while ((rc = sse_stream_flush(s)) == SSE_ERR_WOULDBLOCK)
		ck_assert_int_lt(++rounds, 10000000);
	ck_assert_int_eq(rc, 0);
	return rounds;
}

/* A push transport of write and flush; make_stream() sets its context. */
#define PUSH(write, flush) {sizeof(struct sse_transport), write, NULL, flush, NULL, NULL, 0}

/* The test writer as a push transport. */
static const struct sse_transport writer_transport = PUSH(test_writer_write, test_writer_flush);

/* sse_stream_new() with the transport's context set to the user pointer,
 * as the doubles here expect (t NULL is passed on as is). */
static int make_stream(struct sse_stream **out, const struct sse_transport *t, void *user,
		       const struct sse_allocator *alloc)
{
	struct sse_transport copy;

	if (t == NULL)
		return sse_stream_new(out, NULL, user, alloc);
	copy = *t;
	copy.ctx = user;
	return sse_stream_new(out, &copy, user, alloc);
}

static struct sse_stream *new_stream(const struct sse_transport *t, void *user)
{
	struct sse_stream *s = NULL;

	ck_assert_int_eq(make_stream(&s, t, user, NULL), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* ---- doubles beyond test-common: a congested, a broken and a lazy transport */

/* Takes at most w.max_per_call bytes, then refuses the next call, as a
 * congested socket does: only repeated flushes deliver everything. */
struct trickle {
	struct test_writer w;
	int refuse_next;
};

static int trickle_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	struct trickle *t = ctx;

	if (t->refuse_next) {
		t->refuse_next = 0;
		return SSE_ERR_WOULDBLOCK;
	}
	t->refuse_next = 1;
	return test_writer_write(buf, len, taken, &t->w);
}

static int trickle_flush(void *ctx)
{
	return test_writer_flush(&((struct trickle *)ctx)->w);
}

static const struct sse_transport trickle_callbacks = PUSH(trickle_write, trickle_flush);

/* Misbehaving write callbacks; user points to an int counting calls. */
static int overtaking_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	(void)buf;
	++*(int *)ctx;
	*taken = len + 1;
	return 0;
}

static int positive_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	(void)buf;
	++*(int *)ctx;
	*taken = len;
	return 1;
}

static int lazy_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	(void)buf;
	(void)len;
	++*(int *)ctx;
	*taken = 0;
	return 0;
}

/* A flush callback that returns a scripted sequence of results, then 0. */
struct scripted_flush {
	struct test_writer w;
	int results[4];
	int n;
};

static int scripted_flush(void *ctx)
{
	struct scripted_flush *f = ctx;
	int i = f->w.flushes++;

	return i < f->n ? f->results[i] : 0;
}

static int scripted_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	return test_writer_write(buf, len, taken, &((struct scripted_flush *)ctx)->w);
}

static const struct sse_transport scripted_callbacks = PUSH(scripted_write, scripted_flush);

/* ---- new, free, NULL */

START_TEST(test_stream_new_rejects_bad_arguments)
{
	struct sse_stream *sentinel = (struct sse_stream *)&sentinel, *s = sentinel;
	struct sse_transport no_write = PUSH(NULL, test_writer_flush);
	struct sse_allocator partial = {NULL, NULL, NULL, NULL};
	struct test_writer w;

	test_writer_init(&w);
	ck_assert_int_eq(make_stream(NULL, &writer_transport, &w, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(make_stream(&s, NULL, &w, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(make_stream(&s, &no_write, &w, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(make_stream(&s, &writer_transport, &w, &partial),
			 SSE_ERR_INVALID);
	ck_assert_ptr_eq(s, sentinel);
}
END_TEST

START_TEST(test_stream_null_stream_is_invalid)
{
	struct sse_event ev = data_event("x");

	ck_assert_int_eq(sse_stream_send(NULL, &ev), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_comment(NULL, "x", 1), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_send_raw(NULL, "x", 1), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_flush(NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_set_queue_limit(NULL, 10), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_set_flags(NULL, 0), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_stream_pending(NULL), 0);
	ck_assert_int_eq(sse_stream_error(NULL), 0);
	sse_stream_free(NULL);
}
END_TEST

START_TEST(test_stream_callbacks_are_copied)
{
	struct sse_transport cb = writer_transport;
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = data_event("a");

	test_writer_init(&w);
	s = new_stream(&cb, &w);
	cb.write = NULL;
	cb.flush = NULL;
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ASSERT_DELIVERED(&w, "data: a\n\n");
	ck_assert_int_eq(w.flushes, 1);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_free_calls_no_callback)
{
	struct test_alloc ta;
	struct test_writer w;
	struct sse_stream *s = NULL;
	struct sse_event ev = data_event("queued");

	test_alloc_init(&ta, 0);
	test_writer_init(&w);
	w.wouldblock_left = BLOCKED;
	ck_assert_int_eq(make_stream(&s, &writer_transport, &w, &ta.hooks), 0);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_uint_gt(sse_stream_pending(s), 0);
	ck_assert_int_eq(w.calls, 1);
	sse_stream_free(s);
	ck_assert_int_eq(w.calls, 1);
	ck_assert_int_eq(w.flushes, 0);
	ck_assert_int_eq(ta.live_blocks, 0);
	ck_assert_int_eq(ta.live_bytes, 0);
	test_writer_fini(&w);
}
END_TEST

/* ---- exact bytes */

START_TEST(test_stream_capture_writes_exact_event_bytes)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event full = {.id = "1", .id_len = 1, .type = "greeting", .type_len = 8,
				 .data = "hello", .data_len = 5, .retry = 2500};
	struct sse_event lines = data_event("a\nb\r\nc\rd");
	struct sse_event empty = data_event("");
	struct sse_event trailing = data_event("x\n");
	struct sse_event spaced = data_event(" lead");
	struct sse_event retry_only = {.retry = 3000};
	struct sse_event reset_id = {.id = "", .id_len = 0, .retry = SSE_RETRY_NONE};

	test_writer_init(&w);
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send(s, &full), 0);
	ck_assert_int_eq(sse_stream_send(s, &lines), 0);
	ck_assert_int_eq(sse_stream_send(s, &empty), 0);
	ck_assert_int_eq(sse_stream_send(s, &trailing), 0);
	ck_assert_int_eq(sse_stream_send(s, &spaced), 0);
	ck_assert_int_eq(sse_stream_send(s, &retry_only), 0);
	ck_assert_int_eq(sse_stream_send(s, &reset_id), 0);
	ASSERT_DELIVERED(&w, "id: 1\nevent: greeting\nretry: 2500\ndata: hello\n\n"
			     "data: a\ndata: b\ndata: c\ndata: d\n\n"
			     "data:\n\n"
			     "data: x\ndata:\n\n"
			     "data:  lead\n\n"
			     "retry: 3000\n\n"
			     "id:\n\n");
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_capture_writes_exact_comment_bytes)
{
	struct test_writer w;
	struct sse_stream *s;

	test_writer_init(&w);
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_comment(s, "ping", 4), 0);
	ck_assert_int_eq(sse_stream_comment(s, NULL, 0), 0);
	ck_assert_int_eq(sse_stream_comment(s, "a\nb", 3), 0);
	ASSERT_DELIVERED(&w, ": ping\n"
			     ":\n"
			     ": a\n: b\n");
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_send_raw_writes_bytes_as_is)
{
	static const char frames[] = "id: 7\ndata: from replay\n\n: hb\n";
	struct test_writer w;
	struct sse_stream *s;

	test_writer_init(&w);
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send_raw(s, frames, sizeof(frames) - 1), 0);
	ck_assert_int_eq(sse_stream_send_raw(s, NULL, 0), 0);
	ck_assert_int_eq(sse_stream_send_raw(s, NULL, 1), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_error(s), 0);
	ASSERT_DELIVERED(&w, "id: 7\ndata: from replay\n\n: hb\n");
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_large_event_grows_queue)
{
	enum { N = 200000 };
	char *data = malloc(N + 1), *expect = malloc(N + 8);
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev;

	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(expect);
	for (size_t i = 0; i < N; i++)
		data[i] = (char)('a' + i % 26);
	data[N] = '\0';
	ev = data_event(data);
	memcpy(expect, "data: ", 6);
	memcpy(expect + 6, data, N);
	memcpy(expect + 6 + N, "\n\n", 2);

	test_writer_init(&w);
	w.wouldblock_left = 1;
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_uint_eq(sse_stream_pending(s), N + 8);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	assert_delivered(&w, expect, N + 8);
	sse_stream_free(s);
	test_writer_fini(&w);
	free(data);
	free(expect);
}
END_TEST

/* ---- partial writes and would-block */

START_TEST(test_stream_one_byte_writer_gets_identical_bytes)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = {.id = "42", .id_len = 2, .data = "one\ntwo", .data_len = 7,
			       .retry = SSE_RETRY_NONE};

	test_writer_init(&w);
	w.max_per_call = 1;
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(sse_stream_comment(s, "hb", 2), 0);
	ck_assert_int_eq(flush_until_done(s), 0);
	ASSERT_DELIVERED(&w, "id: 42\ndata: one\ndata: two\n\n: hb\n");
	ck_assert_int_eq(w.calls, (int)w.len);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_one_byte_congested_writer_needs_repeated_flush)
{
	struct trickle t = {.refuse_next = 0};
	struct sse_stream *s;
	struct sse_event ev = {.id = "42", .id_len = 2, .data = "one\ntwo", .data_len = 7,
			       .retry = SSE_RETRY_NONE};
	static const char expect[] = "id: 42\ndata: one\ndata: two\n\n: hb\n";

	test_writer_init(&t.w);
	t.w.max_per_call = 1;
	s = new_stream(&trickle_callbacks, &t);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 28 - 1);
	ck_assert_int_eq(sse_stream_comment(s, "hb", 2), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 27 + 5 - 1);
	/* one byte per flush: 30 flushes leave bytes, the 31st empties the queue */
	ck_assert_int_eq(flush_until_done(s), 30);
	assert_delivered(&t.w, expect, sizeof(expect) - 1);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	test_writer_fini(&t.w);
}
END_TEST

START_TEST(test_stream_wouldblock_keeps_bytes_queued)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = data_event("held");

	test_writer_init(&w);
	w.wouldblock_left = 2;
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 12);
	ck_assert_uint_eq(w.len, 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ck_assert_uint_eq(sse_stream_pending(s), 12);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ASSERT_DELIVERED(&w, "data: held\n\n");
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_int_eq(w.calls, 3);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_interleaved_wouldblock_keeps_order)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event a = data_event("A"), b = data_event("BB"), c = data_event("C"),
			 d = data_event("D");

	test_writer_init(&w);
	s = new_stream(&writer_transport, &w);
	w.wouldblock_left = 1;
	ck_assert_int_eq(sse_stream_send(s, &a), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 9);
	w.wouldblock_left = 1;
	ck_assert_int_eq(sse_stream_comment(s, "mid", 3), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 9 + 6);
	w.wouldblock_left = 1;
	ck_assert_int_eq(sse_stream_send(s, &b), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 9 + 6 + 10);
	ck_assert_uint_eq(w.len, 0);
	ck_assert_int_eq(sse_stream_send(s, &c), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	w.wouldblock_left = 2;
	ck_assert_int_eq(sse_stream_send(s, &d), 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ck_assert_uint_eq(sse_stream_pending(s), 9);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "data: A\n\n: mid\ndata: BB\n\ndata: C\n\ndata: D\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

/* Partial writes leave a head offset; later sends append behind it and the
 * queue compacts or grows without reordering anything. */
START_TEST(test_stream_partial_writes_keep_order)
{
	struct trickle t = {.refuse_next = 0};
	struct sse_stream *s;
	char expect[64 * 200], data[32];
	size_t len = 0;

	test_writer_init(&t.w);
	t.w.max_per_call = 7;
	s = new_stream(&trickle_callbacks, &t);
	for (int i = 0; i < 200; i++) {
		struct sse_event ev;

		snprintf(data, sizeof(data), "event number %d", i);
		ev = data_event(data);
		ck_assert_int_eq(sse_stream_send(s, &ev), 0);
		len += (size_t)snprintf(expect + len, sizeof(expect) - len, "data: %s\n\n", data);
		if (i % 3 == 0)
			(void)sse_stream_flush(s);
	}
	ck_assert_uint_gt(sse_stream_pending(s), 0);
	flush_until_done(s);
	assert_delivered(&t.w, expect, len);
	sse_stream_free(s);
	test_writer_fini(&t.w);
}
END_TEST

START_TEST(test_stream_zero_take_stops_draining)
{
	struct sse_transport cb = PUSH(lazy_write, NULL);
	struct sse_stream *s;
	struct sse_event ev = data_event("x");
	int calls = 0;

	s = new_stream(&cb, &calls);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(calls, 1);
	ck_assert_uint_eq(sse_stream_pending(s), 9);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ck_assert_int_eq(calls, 2);
	ck_assert_int_eq(sse_stream_error(s), 0);
	sse_stream_free(s);
}
END_TEST

/* ---- the queue limit */

START_TEST(test_stream_queue_limit_refuses_whole_events)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ten = data_event("0123456789"); /* 18 bytes */
	struct sse_event two = data_event("ab");         /* 10 bytes */

	test_writer_init(&w);
	w.wouldblock_left = BLOCKED;
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_set_queue_limit(s, 30), 0);
	ck_assert_int_eq(sse_stream_send(s, &ten), 0);
	ck_assert_int_eq(sse_stream_send(s, &ten), SSE_ERR_QUEUE_FULL);
	ck_assert_uint_eq(sse_stream_pending(s), 18);
	ck_assert_int_eq(sse_stream_send(s, &two), 0);
	ck_assert_int_eq(sse_stream_comment(s, "z", 1), SSE_ERR_QUEUE_FULL);
	ck_assert_int_eq(sse_stream_send_raw(s, "xyz", 3), SSE_ERR_QUEUE_FULL);
	ck_assert_int_eq(sse_stream_comment(s, NULL, 0), 0); /* exactly at the limit */
	ck_assert_uint_eq(sse_stream_pending(s), 30);
	ck_assert_int_eq(sse_stream_send_raw(s, "x", 1), SSE_ERR_QUEUE_FULL);
	ck_assert_int_eq(sse_stream_error(s), 0);

	w.wouldblock_left = 0;
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "data: 0123456789\n\ndata: ab\n\n:\n");
	ck_assert_int_eq(sse_stream_send(s, &ten), 0);
	ASSERT_DELIVERED(&w, "data: 0123456789\n\ndata: ab\n\n:\n"
			     "data: 0123456789\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_queue_limit_bounds_one_frame)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event big = data_event("0123456789012345678901234567890123456789");

	test_writer_init(&w);
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_set_queue_limit(s, 30), 0);
	ck_assert_int_eq(sse_stream_send(s, &big), SSE_ERR_QUEUE_FULL);
	ck_assert_int_eq(w.calls, 0);
	ck_assert_int_eq(sse_stream_set_queue_limit(s, 0), 0); /* back to the default */
	ck_assert_int_eq(sse_stream_send(s, &big), 0);
	ASSERT_DELIVERED(&w, "data: 0123456789012345678901234567890123456789\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_lower_limit_affects_only_later_sends)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = data_event("ab");

	test_writer_init(&w);
	w.wouldblock_left = BLOCKED;
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(sse_stream_set_queue_limit(s, 5), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 20);
	ck_assert_int_eq(sse_stream_send(s, &ev), SSE_ERR_QUEUE_FULL);
	w.wouldblock_left = 0;
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "data: ab\n\ndata: ab\n\n");
	ck_assert_int_eq(sse_stream_send_raw(s, "12345", 5), 0);
	ASSERT_DELIVERED(&w, "data: ab\n\ndata: ab\n\n12345");
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

/* A reader that stopped reading must not make the stream's memory grow. */
START_TEST(test_stream_queue_memory_is_bounded_by_limit)
{
	struct test_alloc ta;
	struct test_writer w;
	struct sse_stream *s = NULL;
	struct sse_event ev = data_event("0123456789");
	long long empty;
	int queued = 0;

	test_alloc_init(&ta, 0);
	test_writer_init(&w);
	w.wouldblock_left = BLOCKED;
	ck_assert_int_eq(make_stream(&s, &writer_transport, &w, &ta.hooks), 0);
	empty = ta.live_bytes; /* the stream itself, before any queue */
	ck_assert_int_eq(sse_stream_set_queue_limit(s, 700), 0);
	while (sse_stream_send(s, &ev) == 0)
		queued++;
	ck_assert_int_eq(queued, 700 / 18);
	ck_assert_int_eq(sse_stream_send(s, &ev), SSE_ERR_QUEUE_FULL);
	/* the queue itself never outgrows the limit */
	ck_assert_int_le(ta.peak_bytes, 700 + empty);
	sse_stream_free(s);
	ck_assert_int_eq(ta.live_blocks, 0);
	test_writer_fini(&w);
}
END_TEST

/* ---- invalid input */

static void assert_refused(struct sse_stream *s, const struct test_writer *w,
			   const struct sse_event *ev, int code)
{
	size_t pending = sse_stream_pending(s);
	int calls = w->calls;

	ck_assert_int_eq(sse_stream_send(s, ev), code);
	ck_assert_uint_eq(sse_stream_pending(s), pending);
	ck_assert_int_eq(w->calls, calls);
	ck_assert_int_eq(sse_stream_error(s), 0);
}

START_TEST(test_stream_invalid_event_leaves_stream_usable)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event first = data_event("first"), last = data_event("last");
	struct sse_event id_lf = id_event("a\nb", 3), id_cr = id_event("a\rb", 3);
	struct sse_event id_nul = id_event("a\0b", 3);
	struct sse_event bad_type = {.type = "a\nb", .type_len = 3, .data = "x", .data_len = 1,
				     .retry = SSE_RETRY_NONE};
	struct sse_event bad_retry = data_event("x");
	struct sse_event no_data = {.data = NULL, .data_len = 3, .retry = SSE_RETRY_NONE};

	test_writer_init(&w);
	w.wouldblock_left = 1;
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send(s, &first), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 13);

	assert_refused(s, &w, &id_lf, SSE_ERR_ID_LINEBREAK);
	assert_refused(s, &w, &id_cr, SSE_ERR_ID_LINEBREAK);
	assert_refused(s, &w, &id_nul, SSE_ERR_ID_NUL);
	assert_refused(s, &w, &bad_type, SSE_ERR_TYPE_LINEBREAK);
	bad_retry.retry = -2;
	assert_refused(s, &w, &bad_retry, SSE_ERR_RETRY);
#if LONG_MAX > SSE_RETRY_MAX
	bad_retry.retry = SSE_RETRY_MAX + 1L;
	assert_refused(s, &w, &bad_retry, SSE_ERR_RETRY);
#endif
	assert_refused(s, &w, &no_data, SSE_ERR_INVALID);
	assert_refused(s, &w, NULL, SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_comment(s, NULL, 2), SSE_ERR_INVALID);

	ck_assert_int_eq(sse_stream_send(s, &last), 0);
	ASSERT_DELIVERED(&w, "data: first\n\ndata: last\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_flags_reach_the_encoder)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event bad = data_event("\xff");

	test_writer_init(&w);
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_set_flags(s, 0x80u), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_set_flags(s, SSE_ENCODE_STRICT_UTF8), 0);
	assert_refused(s, &w, &bad, SSE_ERR_UTF8);
	ck_assert_int_eq(sse_stream_comment(s, "\xc3", 1), SSE_ERR_UTF8);
	ck_assert_int_eq(sse_stream_comment(s, "\xc3\xa9", 2), 0);
	ck_assert_int_eq(sse_stream_set_flags(s, 0), 0);
	ck_assert_int_eq(sse_stream_send(s, &bad), 0);
	ASSERT_DELIVERED(&w, ": \xc3\xa9\ndata: \xff\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

/* ---- failures */

static void assert_failed_for_good(struct sse_stream *s, int code)
{
	struct sse_event ev = data_event("late");

	ck_assert_int_eq(sse_stream_error(s), code);
	ck_assert_int_eq(sse_stream_send(s, &ev), code);
	ck_assert_int_eq(sse_stream_comment(s, "late", 4), code);
	ck_assert_int_eq(sse_stream_send_raw(s, "late", 4), code);
	ck_assert_int_eq(sse_stream_flush(s), code);
}

START_TEST(test_stream_failing_writer_fails_stream)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = data_event("x");

	test_writer_init(&w);
	w.fail_after = 0;
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send(s, &ev), SSE_ERR_IO);
	assert_failed_for_good(s, SSE_ERR_IO);
	ck_assert_int_eq(w.calls, 1);
	ck_assert_int_eq(w.flushes, 0);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_keeps_the_callbacks_own_code)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = data_event("hello");

	test_writer_init(&w);
	w.fail_after = 1;
	w.fail_code = -100;
	w.max_per_call = 4;
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_send(s, &ev), -100);
	ASSERT_DELIVERED(&w, "data");
	assert_failed_for_good(s, -100);
	ck_assert_int_eq(w.calls, 2);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_failure_during_flush_fails_stream)
{
	struct test_alloc ta;
	struct test_writer w;
	struct sse_stream *s = NULL;
	struct sse_event ev = data_event("x");

	test_alloc_init(&ta, 0);
	test_writer_init(&w);
	w.wouldblock_left = 1;
	ck_assert_int_eq(make_stream(&s, &writer_transport, &w, &ta.hooks), 0);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	w.fail_after = w.calls;
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_IO);
	assert_failed_for_good(s, SSE_ERR_IO);
	ck_assert_int_eq(ta.live_blocks, 1); /* a dead stream keeps no queue */
	sse_stream_free(s);
	ck_assert_int_eq(ta.live_blocks, 0);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_broken_write_callback_fails_with_io)
{
	struct sse_transport over = PUSH(overtaking_write, NULL);
	struct sse_transport pos = PUSH(positive_write, NULL);
	struct sse_event ev = data_event("x");
	struct sse_stream *s;
	int calls = 0;

	s = new_stream(&over, &calls);
	ck_assert_int_eq(sse_stream_send(s, &ev), SSE_ERR_IO);
	assert_failed_for_good(s, SSE_ERR_IO);
	sse_stream_free(s);

	s = new_stream(&pos, &calls);
	ck_assert_int_eq(sse_stream_send(s, &ev), SSE_ERR_IO);
	assert_failed_for_good(s, SSE_ERR_IO);
	sse_stream_free(s);
	ck_assert_int_eq(calls, 2);
}
END_TEST

/* ---- the flush callback */

START_TEST(test_stream_flush_callback_runs_when_queue_empties)
{
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = data_event("x");

	test_writer_init(&w);
	s = new_stream(&writer_transport, &w);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_int_eq(w.flushes, 0); /* nothing was written */
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(w.flushes, 1);
	ck_assert_int_eq(sse_stream_comment(s, "c", 1), 0);
	ck_assert_int_eq(w.flushes, 2);

	w.wouldblock_left = 1;
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(w.flushes, 2); /* bytes remain: not yet */
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_int_eq(w.flushes, 3);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_int_eq(w.flushes, 3); /* nothing new since */
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_stream_flush_wouldblock_is_retried)
{
	struct scripted_flush f = {.results = {SSE_ERR_WOULDBLOCK, SSE_ERR_WOULDBLOCK}, .n = 2};
	struct sse_stream *s;
	struct sse_event ev = data_event("x");

	test_writer_init(&f.w);
	s = new_stream(&scripted_callbacks, &f);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(f.w.flushes, 1);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ck_assert_int_eq(f.w.flushes, 2);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_int_eq(f.w.flushes, 3);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_int_eq(f.w.flushes, 3);
	ASSERT_DELIVERED(&f.w, "data: x\n\n");
	sse_stream_free(s);
	test_writer_fini(&f.w);
}
END_TEST

START_TEST(test_stream_failing_flush_fails_stream)
{
	struct scripted_flush f = {.results = {-77}, .n = 1};
	struct scripted_flush g = {.results = {5}, .n = 1};
	struct sse_stream *s;
	struct sse_event ev = data_event("x");

	test_writer_init(&f.w);
	s = new_stream(&scripted_callbacks, &f);
	ck_assert_int_eq(sse_stream_send(s, &ev), -77);
	assert_failed_for_good(s, -77);
	ck_assert_int_eq(f.w.flushes, 1);
	sse_stream_free(s);
	test_writer_fini(&f.w);

	test_writer_init(&g.w);
	s = new_stream(&scripted_callbacks, &g);
	ck_assert_int_eq(sse_stream_send(s, &ev), SSE_ERR_IO); /* positive: broken */
	assert_failed_for_good(s, SSE_ERR_IO);
	sse_stream_free(s);
	test_writer_fini(&g.w);
}
END_TEST

/* ---- re-entry */

struct reentrant {
	struct test_writer w;
	struct sse_stream *s;
	int results[5];
};

static void call_back_in(struct reentrant *r)
{
	struct sse_event ev = data_event("inner");

	r->results[0] = sse_stream_flush(r->s);
	r->results[1] = sse_stream_send(r->s, &ev);
	r->results[2] = sse_stream_comment(r->s, "inner", 5);
	r->results[3] = sse_stream_send_raw(r->s, "inner", 5);
}

static int reentrant_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	call_back_in(ctx);
	return test_writer_write(buf, len, taken, &((struct reentrant *)ctx)->w);
}

static int reentrant_flush(void *ctx)
{
	struct reentrant *r = ctx;

	r->results[4] = sse_stream_flush(r->s);
	return test_writer_flush(&r->w);
}

START_TEST(test_stream_reentry_from_callback_is_refused)
{
	struct sse_transport cb = PUSH(reentrant_write, reentrant_flush);
	struct reentrant r = {.results = {1, 1, 1, 1, 1}};
	struct sse_event ev = data_event("outer");

	test_writer_init(&r.w);
	r.s = new_stream(&cb, &r);
	ck_assert_int_eq(sse_stream_send(r.s, &ev), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(r.results[i], SSE_ERR_INVALID);
	ASSERT_DELIVERED(&r.w, "data: outer\n\n");
	ck_assert_int_eq(r.w.flushes, 1);
	ck_assert_int_eq(sse_stream_error(r.s), 0);
	ck_assert_int_eq(sse_stream_flush(r.s), 0);
	sse_stream_free(r.s);
	test_writer_fini(&r.w);
}
END_TEST

/* ---- allocation failures */

/* Payload i of the allocation script: i * 1000 bytes of 'q', so the queue
 * starts empty-handed, then has to grow several times. */
static char big_data[6000];

static const char *script_payload(int i)
{
	return big_data + sizeof(big_data) - 1 - (size_t)i * 1000;
}

/* Step i of the script: events, comments and raw bytes in turn. */
static int script_op(struct sse_stream *s, int i)
{
	struct sse_event ev = data_event(script_payload(i));

	switch (i % 3) {
	case 0:
		return sse_stream_send(s, &ev);
	case 1:
		return sse_stream_comment(s, ev.data, ev.data_len);
	default:
		return sse_stream_send_raw(s, ev.data, ev.data_len);
	}
}

/* What the script delivers, from the format rules: "data: x" / ": x"
 * lines ("data:" / ":" when empty), a blank line after an event. */
static size_t script_expect(char *out, int steps)
{
	static const char *const pre[3] = {"data: ", ": ", ""};
	static const char *const pre_empty[3] = {"data:", ":", ""};
	static const char *const post[3] = {"\n\n", "\n", ""};
	size_t len = 0;

	for (int i = 0; i < steps; i++) {
		const char *d = script_payload(i);

		len += (size_t)sprintf(out + len, "%s%s%s", *d ? pre[i % 3] : pre_empty[i % 3], d,
				       post[i % 3]);
	}
	return len;
}

/* One step under a failing allocator. On SSE_ERR_NOMEM nothing may have
 * been queued and the stream must still work: the same step is retried and
 * succeeds (the allocator fails one call only). Returns 1 on a failure. */
static int script_step(struct sse_stream *s, int i)
{
	size_t pending = sse_stream_pending(s);
	int rc = script_op(s, i);

	if (rc == 0)
		return 0;
	ck_assert_int_eq(rc, SSE_ERR_NOMEM);
	ck_assert_uint_eq(sse_stream_pending(s), pending);
	ck_assert_int_eq(sse_stream_error(s), 0);
	ck_assert_int_eq(script_op(s, i), 0);
	return 1;
}

/* Let one 1500-byte write through a blocked trickle, so the queue's head
 * moves and later frames must compact or grow behind it. */
static void let_one_write_through(struct sse_stream *s, struct trickle *t)
{
	t->w.wouldblock_left = 0;
	t->refuse_next = 0;
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	t->w.wouldblock_left = BLOCKED;
}

/* Runs the script failing allocation number fail_at; returns the failures
 * seen, and sets *done when the script never reached that allocation. */
static int script_run(long fail_at, const char *expect, size_t expect_len, int *done)
{
	enum { STEPS = 6 };
	struct sse_stream *sentinel = (struct sse_stream *)&sentinel, *s = sentinel;
	struct trickle t = {.refuse_next = 0};
	struct test_alloc ta;
	int failures = 0, rc;

	test_alloc_init(&ta, fail_at);
	test_writer_init(&t.w);
	t.w.wouldblock_left = BLOCKED;
	t.w.max_per_call = 1500;
	rc = make_stream(&s, &trickle_callbacks, &t, &ta.hooks);
	if (rc == SSE_ERR_NOMEM) {
		ck_assert_ptr_eq(s, sentinel);
		ck_assert_int_eq(ta.live_blocks, 0);
		return 1;
	}
	ck_assert_int_eq(rc, 0);
	for (int i = 0; i < STEPS; i++) {
		failures += script_step(s, i);
		if (i == 3)
			let_one_write_through(s, &t);
	}
	t.w.wouldblock_left = 0;
	flush_until_done(s);
	assert_delivered(&t.w, expect, expect_len);
	sse_stream_free(s);
	ck_assert_int_eq(ta.live_blocks, 0);
	test_writer_fini(&t.w);
	*done = ta.calls < fail_at;
	return failures;
}

START_TEST(test_stream_nomem_at_every_allocation)
{
	static char expect[6 * 6100];
	size_t expect_len;
	int failures = 0, done = 0;

	memset(big_data, 'q', sizeof(big_data) - 1);
	expect_len = script_expect(expect, 6);
	for (long n = 1; !done; n++) {
		ck_assert_int_lt(n, 100);
		failures += script_run(n, expect, expect_len, &done);
	}
	ck_assert_int_gt(failures, 2);
}

/* What every object does with the allocator it is given, for code built
 * on the library: NULL is libc's hooks, and a missing hook is refused. */
START_TEST(test_allocator_init)
{
	struct sse_allocator a, out;
	struct test_alloc ta;
	void *p;

	ck_assert_int_eq(sse_allocator_init(NULL, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_allocator_init(&out, NULL), 0);
	ck_assert(out.alloc_fn && out.realloc_fn && out.free_fn);
	p = out.alloc_fn(16, out.ctx);
	ck_assert_ptr_nonnull(p);
	p = out.realloc_fn(p, 16, 4096, out.ctx);
	ck_assert_ptr_nonnull(p);
	memset(p, 1, 4096);
	out.free_fn(p, 4096, out.ctx);
	test_alloc_init(&ta, 0);
	a = ta.hooks;
	a.realloc_fn = NULL;
	memset(&out, 7, sizeof(out));
	ck_assert_int_eq(sse_allocator_init(&out, &a), SSE_ERR_INVALID);
	ck_assert_int_eq(((unsigned char *)&out)[0], 7); /* untouched */
	ck_assert_int_eq(sse_allocator_init(&out, &ta.hooks), 0);
	ck_assert(out.alloc_fn == ta.hooks.alloc_fn && out.ctx == ta.hooks.ctx);
}
END_TEST
END_TEST

Suite *stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *life = tcase_create("lifetime");
	TCase *bytes = tcase_create("bytes");
	TCase *partial = tcase_create("partial");
	TCase *limit = tcase_create("limit");
	TCase *invalid = tcase_create("invalid");
	TCase *failure = tcase_create("failure");
	TCase *flush = tcase_create("flush");
	TCase *nomem = tcase_create("nomem");

	tcase_add_test(life, test_stream_new_rejects_bad_arguments);
	tcase_add_test(life, test_allocator_init);
	tcase_add_test(life, test_stream_null_stream_is_invalid);
	tcase_add_test(life, test_stream_callbacks_are_copied);
	tcase_add_test(life, test_stream_free_calls_no_callback);
	tcase_add_test(bytes, test_stream_capture_writes_exact_event_bytes);
	tcase_add_test(bytes, test_stream_capture_writes_exact_comment_bytes);
	tcase_add_test(bytes, test_stream_send_raw_writes_bytes_as_is);
	tcase_add_test(bytes, test_stream_large_event_grows_queue);
	tcase_add_test(partial, test_stream_one_byte_writer_gets_identical_bytes);
	tcase_add_test(partial, test_stream_one_byte_congested_writer_needs_repeated_flush);
	tcase_add_test(partial, test_stream_wouldblock_keeps_bytes_queued);
	tcase_add_test(partial, test_stream_interleaved_wouldblock_keeps_order);
	tcase_add_test(partial, test_stream_partial_writes_keep_order);
	tcase_add_test(partial, test_stream_zero_take_stops_draining);
	tcase_add_test(limit, test_stream_queue_limit_refuses_whole_events);
	tcase_add_test(limit, test_stream_queue_limit_bounds_one_frame);
	tcase_add_test(limit, test_stream_lower_limit_affects_only_later_sends);
	tcase_add_test(limit, test_stream_queue_memory_is_bounded_by_limit);
	tcase_add_test(invalid, test_stream_invalid_event_leaves_stream_usable);
	tcase_add_test(invalid, test_stream_flags_reach_the_encoder);
	tcase_add_test(failure, test_stream_failing_writer_fails_stream);
	tcase_add_test(failure, test_stream_keeps_the_callbacks_own_code);
	tcase_add_test(failure, test_stream_failure_during_flush_fails_stream);
	tcase_add_test(failure, test_stream_broken_write_callback_fails_with_io);
	tcase_add_test(failure, test_stream_reentry_from_callback_is_refused);
	tcase_add_test(flush, test_stream_flush_callback_runs_when_queue_empties);
	tcase_add_test(flush, test_stream_flush_wouldblock_is_retried);
	tcase_add_test(flush, test_stream_failing_flush_fails_stream);
	tcase_add_test(nomem, test_stream_nomem_at_every_allocation);

	suite_add_tcase(s, life);
	suite_add_tcase(s, bytes);
	suite_add_tcase(s, partial);
	suite_add_tcase(s, limit);
	suite_add_tcase(s, invalid);
	suite_add_tcase(s, failure);
	suite_add_tcase(s, flush);
	suite_add_tcase(s, nomem);
	return s;
}

int main(void)
{
	return test_run_suite(stream_suite());
}
