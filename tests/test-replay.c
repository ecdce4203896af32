/*
 * The replay ring: exact frames, the three bounds, Last-Event-ID lookup,
 * ids under a generated epoch, a stream following the ring without loss or
 * duplication (sse_stream_follow(), sse_stream_resume()), the reset event,
 * and allocation failures.
 *
 * Expected bytes follow the WHATWG event stream format as sse.h describes
 * the encoder ("id: <id>\n", "event: <type>\n", "retry: <ms>\n", one
 * "data: <line>\n" per line, "data:\n" for an empty one, then "\n"), written
 * here by hand, never taken from the library's output.
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

/* Refusals a test writer gives before the test unblocks it by hand. */
#define BLOCKED 1000000
#define FRAME_MAX 8192

/* ---- helpers */

/* xorshift32: the same sequence on every platform, unlike rand(). */
static uint32_t next_random(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *state = x;
}

static struct sse_replay_config ring_config(size_t max_events, size_t max_bytes,
					    const char *epoch)
{
	return (struct sse_replay_config){.size = sizeof(struct sse_replay_config),
					  .max_events = max_events, .max_bytes = max_bytes,
					  .epoch = epoch};
}

static struct sse_replay *new_ring(const struct sse_replay_config *cfg)
{
	struct sse_replay *r = NULL;

	ck_assert_int_eq(sse_replay_new(&r, cfg, NULL), 0);
	ck_assert_ptr_nonnull(r);
	return r;
}

static struct sse_event data_event(const char *data)
{
	return (struct sse_event){.data = data, .data_len = strlen(data),
				  .retry = SSE_RETRY_NONE};
}

static struct sse_event app_event(const char *id, const char *data)
{
	struct sse_event ev = data_event(data);

	ev.id = id;
	ev.id_len = strlen(id);
	return ev;
}

static uint64_t publish(struct sse_replay *r, const char *data, uint64_t now_ms)
{
	struct sse_event ev = data_event(data);
	uint64_t seq = 0;

	ck_assert_int_eq(sse_replay_publish(r, &ev, now_ms, &seq), 0);
	return seq;
}

static uint64_t publish_app(struct sse_replay *r, const char *id, const char *data)
{
	struct sse_event ev = app_event(id, data);
	uint64_t seq = 0;

	ck_assert_int_eq(sse_replay_publish(r, &ev, 0, &seq), 0);
	return seq;
}

/* A ring id as text: the epoch, then the decimal sequence number. */
static const char *ring_id(char *buf, size_t cap, const char *epoch, uint64_t seq)
{
	snprintf(buf, cap, "%s%" PRIu64, epoch, seq);
	return buf;
}

/* "id: <id>\n", one data line ("data:" alone when empty), the blank line. */
static size_t expect_frame(char *buf, size_t cap, const char *id, const char *data)
{
	int n;

	if (data[0] == '\0')
		n = snprintf(buf, cap, "id: %s\ndata:\n\n", id);
	else
		n = snprintf(buf, cap, "id: %s\ndata: %s\n\n", id, data);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_lt((size_t)n, cap);
	return (size_t)n;
}

static void assert_frame(const struct sse_replay *r, uint64_t cursor, const char *expect)
{
	const char *bytes = NULL;
	size_t len = 0;

	ck_assert_int_eq(sse_replay_frame(r, cursor, &bytes, &len), 1);
	ck_assert_uint_eq(len, strlen(expect));
	ck_assert_mem_eq(bytes, expect, len);
}

static void assert_seek(const struct sse_replay *r, const char *id, size_t len, int status,
			uint64_t cursor)
{
	uint64_t got = 0;

	ck_assert_int_eq(sse_replay_seek(r, id, len, &got), status);
	ck_assert_uint_eq(got, cursor);
}

#define ASSERT_SEEK(r, lit, status, cursor) assert_seek((r), (lit), sizeof(lit) - 1, (status), (cursor))

static void assert_delivered(const struct test_writer *w, const char *expect, size_t len)
{
	ck_assert_uint_eq(w->len, len);
	if (len > 0)
		ck_assert_mem_eq(w->buf, expect, len);
}

#define ASSERT_DELIVERED(w, lit) assert_delivered((w), (lit), sizeof(lit) - 1)

static struct sse_stream *new_stream(struct test_writer *w)
{
	test_writer_init(w);
	return test_stream_new(w, false, NULL);
}

/* Flush until the stream owes nothing; the writer must not refuse forever. */
static void flush_all(struct sse_stream *s)
{
	int rc, rounds = 0;

	while ((rc = sse_stream_flush(s)) == SSE_ERR_WOULDBLOCK)
		ck_assert_int_lt(++rounds, 1000000);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
}

/* A payload of a length and letters chosen by seq, so a test can write the
 * expected frame again from the sequence number alone. */
static const char *payload_for(char *buf, uint64_t seq, size_t max_len, int bias_large)
{
	uint32_t h = (uint32_t)(seq * 2654435761u) ^ 0x9e3779b9u;
	size_t len;

	next_random(&h);
	if (bias_large && h % 4 == 0)
		len = max_len / 2 + next_random(&h) % (max_len / 2 + 1);
	else
		len = next_random(&h) % (max_len / 16 + 1);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (seq + i) % 26);
	buf[len] = '\0';
	return buf;
}

/* ---- config, new, free */

START_TEST(test_replay_new_rejects_invalid_config)
{
	struct sse_replay *sentinel = (struct sse_replay *)&sentinel, *r = sentinel;
	struct sse_replay_config cfg = ring_config(4, 100, NULL);
	struct sse_allocator partial = {NULL, NULL, NULL, NULL};
	struct sse_event bad_type = data_event("x"), bad_retry = data_event("x");
	struct sse_event null_data = {.data_len = 3, .retry = SSE_RETRY_NONE};

	bad_type.type = "a\nb";
	bad_type.type_len = 3;
	bad_retry.retry = -5;
	ck_assert_int_eq(sse_replay_new(NULL, &cfg, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_new(&r, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_new(&r, &cfg, &partial), SSE_ERR_INVALID);
	cfg.max_events = 0;
	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), SSE_ERR_INVALID);
	cfg = ring_config(4, 0, NULL);
	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), SSE_ERR_INVALID);
	/* An epoch no id line can carry. */
	cfg = ring_config(4, 100, "e\n1");
	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), SSE_ERR_INVALID);
	cfg = ring_config(4, 100, "e\r1");
	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), SSE_ERR_INVALID);
	cfg = ring_config(4, 100, NULL);
	cfg.reset_event = &bad_type;
	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), SSE_ERR_INVALID);
	cfg.reset_event = &bad_retry;
	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), SSE_ERR_INVALID);
	cfg.reset_event = &null_data;
	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), SSE_ERR_INVALID);
	ck_assert_ptr_eq(r, sentinel);
}
END_TEST

START_TEST(test_replay_new_rejects_wrong_config_size)
{
	/* The size field says which fields a caller knows: anything but this
	 * version's size is refused, since nothing smaller or larger exists. */
	static const size_t wrong[] = {0, 1, sizeof(struct sse_replay_config) - 1,
				       sizeof(struct sse_replay_config) + 1,
				       sizeof(struct sse_replay_config) + sizeof(void *), SIZE_MAX};
	struct sse_replay *sentinel = (struct sse_replay *)&sentinel, *r = sentinel;
	struct test_alloc ta;

	test_alloc_init(&ta, 0);
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		struct sse_replay_config cfg = ring_config(4, 100, NULL);

		cfg.size = wrong[i];
		ck_assert_int_eq(sse_replay_new(&r, &cfg, &ta.hooks), SSE_ERR_INVALID);
		cfg.app_ids = 1;
		ck_assert_int_eq(sse_replay_new(&r, &cfg, &ta.hooks), SSE_ERR_INVALID);
	}
	ck_assert_ptr_eq(r, sentinel);
	ck_assert_int_eq(ta.live_blocks, 0);
	/* The right size, for contrast. */
	{
		struct sse_replay_config cfg = ring_config(4, 100, NULL);

		ck_assert_int_eq(sse_replay_new(&r, &cfg, &ta.hooks), 0);
		sse_replay_free(r);
	}
	ck_assert_int_eq(ta.live_blocks, 0);
}
END_TEST

START_TEST(test_replay_epoch_is_ignored_with_app_ids)
{
	struct sse_replay_config cfg = ring_config(4, 100, "bad\nepoch");
	struct sse_replay *r;

	cfg.app_ids = 1;
	r = new_ring(&cfg);
	publish_app(r, "a", "x");
	assert_frame(r, 1, "id: a\ndata: x\n\n");
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_null_ring)
{
	const char *bytes;
	size_t len;
	uint64_t cursor = 0;
	struct sse_event ev = data_event("x");

	sse_replay_free(NULL);
	ck_assert_int_eq(sse_replay_publish(NULL, &ev, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_seek(NULL, "1", 1, &cursor), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_frame(NULL, 1, &bytes, &len), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_replay_next_seq(NULL), 0);
	ck_assert_uint_eq(sse_replay_first_seq(NULL), 0);
	ck_assert_uint_eq(sse_replay_bytes(NULL), 0);
	ck_assert_uint_eq(sse_replay_count(NULL), 0);
}
END_TEST

START_TEST(test_replay_new_ring_is_empty)
{
	struct sse_replay_config cfg = ring_config(4, 100, NULL);
	struct sse_replay *r = new_ring(&cfg);

	ck_assert_uint_eq(sse_replay_next_seq(r), 1);
	ck_assert_uint_eq(sse_replay_first_seq(r), 1);
	ck_assert_uint_eq(sse_replay_count(r), 0);
	ck_assert_uint_eq(sse_replay_bytes(r), 0);
	sse_replay_free(r);
}
END_TEST

/* Every configuration shape, failing at each allocation in turn. */
static void new_fails_cleanly(const struct sse_replay_config *cfg)
{
	struct sse_event ev = data_event("x");
	struct test_alloc ta;
	long failures = 0;

	for (long n = 1;; n++) {
		struct sse_replay *sentinel = (struct sse_replay *)&sentinel, *r = sentinel;
		int rc;

		test_alloc_init(&ta, n);
		rc = sse_replay_new(&r, cfg, &ta.hooks);
		if (rc == 0) {
			if (cfg->app_ids)
				ev = app_event("k", "x");
			ck_assert_int_eq(sse_replay_publish(r, &ev, 0, NULL), 0);
			sse_replay_free(r);
			ck_assert_int_eq(ta.live_blocks, 0);
			ck_assert_int_eq(ta.live_bytes, 0);
			break;
		}
		ck_assert_int_eq(rc, SSE_ERR_NOMEM);
		ck_assert_ptr_eq(r, sentinel);
		ck_assert_int_eq(ta.live_blocks, 0);
		ck_assert_int_eq(ta.live_bytes, 0);
		failures++;
	}
	ck_assert_int_ge(failures, 3); /* the ring, its arena, its index at least */
}

START_TEST(test_replay_new_fails_cleanly_at_every_allocation)
{
	struct sse_event reset = data_event("reload");
	struct sse_event empty_reset = {.type = "", .retry = SSE_RETRY_NONE};
	struct sse_replay_config cfg = ring_config(8, 256, "e1-");

	reset.type = "sse-reset";
	reset.type_len = 9;
	new_fails_cleanly(&cfg);
	cfg.reset_event = &reset;
	new_fails_cleanly(&cfg);
	cfg.reset_event = &empty_reset;
	new_fails_cleanly(&cfg);
	cfg.app_ids = 1;
	new_fails_cleanly(&cfg);
	cfg.reset_event = &reset;
	new_fails_cleanly(&cfg);
	cfg.epoch = NULL; /* a generated epoch */
	cfg.app_ids = 0;
	new_fails_cleanly(&cfg);
	cfg.epoch = ""; /* plain ids */
	new_fails_cleanly(&cfg);
}
END_TEST

START_TEST(test_replay_new_refuses_sizes_beyond_memory)
{
	struct sse_replay_config cfg = ring_config(SIZE_MAX, 16, NULL);
	struct sse_replay *r = NULL;
	struct test_alloc ta;

	test_alloc_init(&ta, 0);
	ck_assert_int_eq(sse_replay_new(&r, &cfg, &ta.hooks), SSE_ERR_NOMEM);
	cfg.app_ids = 1;
	ck_assert_int_eq(sse_replay_new(&r, &cfg, &ta.hooks), SSE_ERR_NOMEM);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(ta.live_blocks, 0);
}
END_TEST

START_TEST(test_replay_warm_ring_allocates_nothing)
{
	struct sse_event reset = data_event("reload");
	struct sse_replay_config cfg = ring_config(4, 64, "e1-");
	struct sse_replay *r = NULL;
	struct sse_stream *s;
	struct test_writer w;
	struct test_alloc ta;
	long calls;
	int status = -1;

	cfg.reset_event = &reset;
	test_alloc_init(&ta, 0);
	ck_assert_int_eq(sse_replay_new(&r, &cfg, &ta.hooks), 0);
	calls = ta.calls;
	s = new_stream(&w);
	for (int i = 0; i < 100; i++)
		publish(r, i % 2 ? "a payload of some size" : "b", (uint64_t)i);
	/* Seek, the reset event, following and delivery: none allocates in the ring. */
	ck_assert_int_eq(sse_stream_resume(s, r, "e1-3", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	publish(r, "c", 200);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), sse_replay_next_seq(r));
	ck_assert_int_eq(ta.calls, calls);
	sse_stream_free(s); /* the ring must outlive its follower */
	sse_replay_free(r);
	ck_assert_int_eq(ta.live_blocks, 0);
	test_writer_fini(&w);
}
END_TEST

/* ---- publish */

START_TEST(test_replay_publish_rejects_ids_the_mode_forbids)
{
	struct sse_replay_config cfg = ring_config(4, 100, NULL);
	struct sse_replay *ring = new_ring(&cfg), *app;
	struct sse_event with_id = app_event("7", "x"), no_id = data_event("x");
	struct sse_event empty_id = app_event("", "x");

	cfg.app_ids = 1;
	app = new_ring(&cfg);
	ck_assert_int_eq(sse_replay_publish(ring, &with_id, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_publish(ring, &empty_id, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_publish(app, &no_id, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_publish(app, &empty_id, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_publish(app, NULL, 0, NULL), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_replay_next_seq(ring), 1);
	ck_assert_uint_eq(sse_replay_next_seq(app), 1);
	ck_assert_uint_eq(sse_replay_count(app), 0);
	sse_replay_free(ring);
	sse_replay_free(app);
}
END_TEST

START_TEST(test_replay_publish_encoder_error_keeps_nothing)
{
	struct sse_replay_config cfg = ring_config(4, 100, "");
	struct sse_replay *r = new_ring(&cfg);
	struct sse_event bad = data_event("x");
	uint64_t seq = 99;

	publish(r, "a", 0);
	bad.type = "t\r";
	bad.type_len = 2;
	ck_assert_int_eq(sse_replay_publish(r, &bad, 0, &seq), SSE_ERR_TYPE_LINEBREAK);
	bad = data_event("x");
	bad.retry = SSE_RETRY_MAX + 1L;
	ck_assert_int_eq(sse_replay_publish(r, &bad, 0, &seq), SSE_ERR_RETRY);
	ck_assert_uint_eq(seq, 99);
	ck_assert_uint_eq(sse_replay_next_seq(r), 2);
	ck_assert_uint_eq(sse_replay_count(r), 1);
	assert_frame(r, 1, "id: 1\ndata: a\n\n");
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_publish_too_large_changes_nothing)
{
	/* "id: 2\ndata: ab\n\n" is 16 bytes: it fits exactly, one more byte not. */
	struct sse_replay_config cfg = ring_config(4, 16, "");
	struct sse_replay *r = new_ring(&cfg);
	struct sse_event big = data_event("abc");

	cfg.max_age_ms = 1;
	publish(r, "a", 0);
	ck_assert_int_eq(sse_replay_publish(r, &big, 1000, NULL), SSE_ERR_TOO_LARGE);
	ck_assert_uint_eq(sse_replay_next_seq(r), 2);
	ck_assert_uint_eq(sse_replay_count(r), 1);
	ck_assert_uint_eq(sse_replay_bytes(r), 15);
	assert_frame(r, 1, "id: 1\ndata: a\n\n");
	ck_assert_uint_eq(publish(r, "ab", 0), 2);
	ck_assert_uint_eq(sse_replay_bytes(r), 16);
	assert_frame(r, 2, "id: 2\ndata: ab\n\n");
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_frames_are_encoded_exactly)
{
	struct sse_replay_config cfg = ring_config(8, 512, "e1-");
	struct sse_replay *r = new_ring(&cfg);
	struct sse_event typed = data_event("line1\nline2\r\nline3\r");
	struct sse_event silent = {.retry = SSE_RETRY_NONE};
	struct sse_event empty = data_event("");
	static const char *const expect[] = {
		"id: e1-1\ndata: a\n\n",
		("id: e1-2\nevent: update\nretry: 2500\n"
		 "data: line1\ndata: line2\ndata: line3\ndata:\n\n"),
		"id: e1-3\n\n",
		"id: e1-4\ndata:\n\n",
	};
	size_t total = 0;

	typed.type = "update";
	typed.type_len = 6;
	typed.retry = 2500;
	ck_assert_uint_eq(publish(r, "a", 0), 1);
	ck_assert_int_eq(sse_replay_publish(r, &typed, 0, NULL), 0);
	ck_assert_int_eq(sse_replay_publish(r, &silent, 0, NULL), 0);
	ck_assert_int_eq(sse_replay_publish(r, &empty, 0, NULL), 0);
	for (uint64_t q = 1; q <= 4; q++) {
		assert_frame(r, q, expect[q - 1]);
		total += strlen(expect[q - 1]);
	}
	ck_assert_uint_eq(sse_replay_bytes(r), total);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_publish_reports_seq)
{
	struct sse_replay_config cfg = ring_config(2, 100, NULL);
	struct sse_replay *r = new_ring(&cfg);
	struct sse_event ev = data_event("x");

	for (uint64_t i = 1; i <= 10; i++) {
		uint64_t seq = 0;

		ck_assert_int_eq(sse_replay_publish(r, &ev, 0, &seq), 0);
		ck_assert_uint_eq(seq, i);
		ck_assert_uint_eq(sse_replay_next_seq(r), i + 1);
	}
	ck_assert_int_eq(sse_replay_publish(r, &ev, 0, NULL), 0);
	sse_replay_free(r);
}
END_TEST

/* ---- seek */

START_TEST(test_replay_seek_finds_each_id)
{
	static const char *const data[] = {"a", "b", "c", "d", "e"};
	struct sse_replay_config cfg = ring_config(8, 512, "e1-");
	struct sse_replay *r = new_ring(&cfg);
	char id[32], expect[64];

	for (int i = 0; i < 5; i++)
		publish(r, data[i], 0);
	for (uint64_t k = 1; k <= 5; k++) {
		uint64_t cursor = 0;

		ring_id(id, sizeof(id), "e1-", k);
		ck_assert_int_eq(sse_replay_seek(r, id, strlen(id), &cursor), SSE_REPLAY_FOUND);
		ck_assert_uint_eq(cursor, k + 1);
		for (uint64_t c = cursor; c <= 5; c++) {
			ring_id(id, sizeof(id), "e1-", c);
			expect_frame(expect, sizeof(expect), id, data[c - 1]);
			assert_frame(r, c, expect);
		}
	}
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_seek_live_for_empty_or_null_id)
{
	struct sse_replay_config cfg = ring_config(8, 512, "e1-");
	struct sse_replay *r = new_ring(&cfg);

	assert_seek(r, NULL, 0, SSE_REPLAY_LIVE, 1);
	publish(r, "a", 0);
	publish(r, "b", 0);
	assert_seek(r, NULL, 0, SSE_REPLAY_LIVE, 3);
	assert_seek(r, "", 0, SSE_REPLAY_LIVE, 3);
	assert_seek(r, "e1-1", 0, SSE_REPLAY_LIVE, 3);
	cfg.app_ids = 1;
	sse_replay_free(r);
	r = new_ring(&cfg);
	publish_app(r, "x", "a");
	assert_seek(r, NULL, 0, SSE_REPLAY_LIVE, 2);
	assert_seek(r, "", 0, SSE_REPLAY_LIVE, 2);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_seek_reports_gap_for_evicted_id)
{
	/* The ring holds 4..6: a client that saw 3 needs only those, one that
	 * saw 2 or less missed a dropped frame. */
	struct sse_replay_config cfg = ring_config(3, 512, "e1-");
	struct sse_replay *r = new_ring(&cfg);

	for (int i = 0; i < 6; i++)
		publish(r, "x", 0);
	ck_assert_uint_eq(sse_replay_first_seq(r), 4);
	ASSERT_SEEK(r, "e1-6", SSE_REPLAY_FOUND, 7);
	ASSERT_SEEK(r, "e1-4", SSE_REPLAY_FOUND, 5);
	ASSERT_SEEK(r, "e1-3", SSE_REPLAY_FOUND, 4);
	ASSERT_SEEK(r, "e1-2", SSE_REPLAY_GAP, 7);
	ASSERT_SEEK(r, "e1-1", SSE_REPLAY_GAP, 7);
	ASSERT_SEEK(r, "e1-0", SSE_REPLAY_GAP, 7);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_seek_unknown_for_foreign_ids)
{
	struct sse_replay_config cfg = ring_config(8, 512, "e1-");
	struct sse_replay *r = new_ring(&cfg);

	for (int i = 0; i < 5; i++)
		publish(r, "x", 0);
	ASSERT_SEEK(r, "garbage", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e2-3", SSE_REPLAY_UNKNOWN, 6);  /* another epoch */
	ASSERT_SEEK(r, "3", SSE_REPLAY_UNKNOWN, 6);     /* no epoch */
	ASSERT_SEEK(r, "e1", SSE_REPLAY_UNKNOWN, 6);    /* shorter than the epoch */
	ASSERT_SEEK(r, "e1-", SSE_REPLAY_UNKNOWN, 6);   /* no number */
	ASSERT_SEEK(r, "e1-6", SSE_REPLAY_UNKNOWN, 6);  /* not published yet */
	ASSERT_SEEK(r, "e1-18446744073709551615", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1-18446744073709551616", SSE_REPLAY_UNKNOWN, 6); /* overflow */
	ASSERT_SEEK(r, "e1-99999999999999999999999", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1-03", SSE_REPLAY_UNKNOWN, 6); /* leading zero */
	ASSERT_SEEK(r, "e1-00", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1-+3", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1--3", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1- 3", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1-3 ", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1-3x", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1-3\0", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "E1-3", SSE_REPLAY_UNKNOWN, 6);
	ASSERT_SEEK(r, "e1-3", SSE_REPLAY_FOUND, 4);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_seek_without_epoch)
{
	struct sse_replay_config cfg = ring_config(8, 512, "");
	struct sse_replay *r = new_ring(&cfg);

	/* Seq 0 names the point before the first frame. */
	ASSERT_SEEK(r, "0", SSE_REPLAY_FOUND, 1);
	ASSERT_SEEK(r, "1", SSE_REPLAY_UNKNOWN, 1);
	publish(r, "a", 0);
	publish(r, "b", 0);
	ASSERT_SEEK(r, "0", SSE_REPLAY_FOUND, 1);
	ASSERT_SEEK(r, "1", SSE_REPLAY_FOUND, 2);
	ASSERT_SEEK(r, "2", SSE_REPLAY_FOUND, 3);
	ASSERT_SEEK(r, "01", SSE_REPLAY_UNKNOWN, 3);
	ASSERT_SEEK(r, "x1", SSE_REPLAY_UNKNOWN, 3);
	assert_frame(r, 1, "id: 1\ndata: a\n\n");
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_seek_rejects_null_cursor)
{
	struct sse_replay_config cfg = ring_config(8, 512, NULL);
	struct sse_replay *r = new_ring(&cfg);

	ck_assert_int_eq(sse_replay_seek(r, "1", 1, NULL), SSE_ERR_INVALID);
	sse_replay_free(r);
}
END_TEST

/* ---- bounds */

/* After a publish: within both bounds, the newest frames only, in order,
 * each exactly the frame written by hand for its sequence number. */
static void assert_ring_holds_newest(const struct sse_replay *r, const struct sse_replay_config *cfg,
				     size_t max_len, int bias_large)
{
	uint64_t next = sse_replay_next_seq(r), first = sse_replay_first_seq(r);
	char data[FRAME_MAX], id[32], expect[FRAME_MAX];
	const char *bytes;
	size_t len, total = 0;

	ck_assert_uint_le(sse_replay_count(r), cfg->max_events);
	ck_assert_uint_le(sse_replay_bytes(r), cfg->max_bytes);
	ck_assert_uint_ge(sse_replay_count(r), 1);
	ck_assert_uint_eq(first + sse_replay_count(r), next);
	if (first > 1)
		ck_assert_int_eq(sse_replay_frame(r, first - 1, &bytes, &len), SSE_ERR_GAP);
	for (uint64_t q = first; q < next; q++) {
		payload_for(data, q, max_len, bias_large);
		ring_id(id, sizeof(id), cfg->epoch ? cfg->epoch : "", q);
		total += expect_frame(expect, sizeof(expect), id, data);
		assert_frame(r, q, expect);
	}
	ck_assert_uint_eq(sse_replay_bytes(r), total);
}

START_TEST(test_replay_bounds_by_count)
{
	struct sse_replay_config cfg = ring_config(5, 1 << 16, "c-");
	struct sse_replay *r = new_ring(&cfg);
	char data[FRAME_MAX];

	for (uint64_t q = 1; q <= 40; q++) {
		publish(r, payload_for(data, q, 64, 0), 0);
		ck_assert_uint_eq(sse_replay_count(r), q < 5 ? q : 5);
		assert_ring_holds_newest(r, &cfg, 64, 0);
	}
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_bounds_by_bytes_with_random_sizes)
{
	/* Payloads from empty to almost max_bytes: a frame's overhead here is
	 * at most 17 bytes ("id: 1999\n", "data: ", "\n\n"), so each fits alone. */
	static const size_t max_bytes[] = {1000, 1001, 257, 4096};

	for (size_t b = 0; b < sizeof(max_bytes) / sizeof(max_bytes[0]); b++) {
		struct sse_replay_config cfg = ring_config(64, max_bytes[b], "");
		struct sse_replay *r = new_ring(&cfg);
		size_t max_len = max_bytes[b] - 17;
		char data[FRAME_MAX];

		for (uint64_t q = 1; q < 2000; q++) {
			ck_assert_uint_eq(publish(r, payload_for(data, q, max_len, 1), 0), q);
			assert_ring_holds_newest(r, &cfg, max_len, 1);
		}
		sse_replay_free(r);
	}
}
END_TEST

START_TEST(test_replay_keeps_equal_frames_that_fit)
{
	/* "id: k07\ndata: z\n\n" is 17 bytes: ten fit in 170 or 171 bytes. */
	static const size_t max_bytes[] = {170, 171, 186};
	char id[8];

	for (size_t b = 0; b < 3; b++) {
		struct sse_replay_config cfg = ring_config(100, max_bytes[b], NULL);
		struct sse_replay *r;

		cfg.app_ids = 1;
		r = new_ring(&cfg);
		for (int i = 0; i < 95; i++) {
			snprintf(id, sizeof(id), "k%02d", i);
			publish_app(r, id, "z");
			ck_assert_uint_eq(sse_replay_count(r), i < 10 ? (size_t)i + 1 : 10);
			ck_assert_uint_eq(sse_replay_bytes(r), 17 * sse_replay_count(r));
		}
		assert_frame(r, 86, "id: k85\ndata: z\n\n");
		assert_frame(r, 95, "id: k94\ndata: z\n\n");
		sse_replay_free(r);
	}
}
END_TEST

START_TEST(test_replay_bounds_by_age)
{
	struct sse_replay_config cfg = ring_config(100, 10000, "t-");
	struct sse_replay *r;

	cfg.max_age_ms = 100;
	r = new_ring(&cfg);
	publish(r, "a", 1000);
	publish(r, "b", 1050);
	publish(r, "c", 1100); /* a is exactly max_age_ms old: kept */
	ck_assert_uint_eq(sse_replay_count(r), 3);
	publish(r, "d", 1151); /* a and b are older than 100 ms now */
	ck_assert_uint_eq(sse_replay_first_seq(r), 3);
	ck_assert_uint_eq(sse_replay_count(r), 2);
	assert_frame(r, 3, "id: t-3\ndata: c\n\n");
	assert_frame(r, 4, "id: t-4\ndata: d\n\n");
	ck_assert_uint_eq(sse_replay_bytes(r), 2 * 17);
	ASSERT_SEEK(r, "t-1", SSE_REPLAY_GAP, 5);
	ASSERT_SEEK(r, "t-2", SSE_REPLAY_FOUND, 3);
	publish(r, "e", 900); /* a clock that went back drops nothing */
	ck_assert_uint_eq(sse_replay_count(r), 3);
	publish(r, "f", 5000); /* all but the new frame are stale */
	ck_assert_uint_eq(sse_replay_first_seq(r), 6);
	ck_assert_uint_eq(sse_replay_count(r), 1);
	assert_frame(r, 6, "id: t-6\ndata: f\n\n");
	ASSERT_SEEK(r, "t-4", SSE_REPLAY_GAP, 7);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_expire_without_publish)
{
	/* A quiet ring drops stale frames when told the time. */
	struct sse_replay_config cfg = ring_config(100, 10000, "t-");
	struct sse_replay *r;

	cfg.max_age_ms = 100;
	r = new_ring(&cfg);
	publish(r, "a", 1000);
	publish(r, "b", 1080);
	ck_assert_int_eq(sse_replay_expire(r, 1100), 0);
	ck_assert_uint_eq(sse_replay_count(r), 2);
	ck_assert_int_eq(sse_replay_expire(r, 1101), 0);
	ck_assert_uint_eq(sse_replay_count(r), 1);
	ck_assert_uint_eq(sse_replay_first_seq(r), 2);
	ck_assert_int_eq(sse_replay_expire(r, 99999), 0);
	ck_assert_uint_eq(sse_replay_count(r), 0);
	ck_assert_uint_eq(sse_replay_bytes(r), 0);
	ASSERT_SEEK(r, "t-1", SSE_REPLAY_GAP, 3);
	ck_assert_int_eq(sse_replay_expire(NULL, 0), SSE_ERR_INVALID);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_strict_utf8_flag)
{
	struct sse_replay_config cfg = ring_config(10, 1000, NULL);
	struct sse_event bad = {.data = "\xc3(", .data_len = 2, .retry = SSE_RETRY_NONE};
	struct sse_replay *r;

	cfg.flags = SSE_ENCODE_STRICT_UTF8;
	r = new_ring(&cfg);
	ck_assert_int_eq(sse_replay_publish(r, &bad, 0, NULL), SSE_ERR_UTF8);
	ck_assert_uint_eq(sse_replay_count(r), 0);
	ck_assert_uint_eq(sse_replay_next_seq(r), 1);
	sse_replay_free(r);
	cfg.flags = 0x80;
	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), SSE_ERR_INVALID);
}
END_TEST

START_TEST(test_replay_no_age_bound_when_zero)
{
	struct sse_replay_config cfg = ring_config(100, 10000, NULL);
	struct sse_replay *r = new_ring(&cfg);

	publish(r, "a", 0);
	publish(r, "b", UINT64_MAX);
	ck_assert_uint_eq(sse_replay_count(r), 2);
	sse_replay_free(r);
}
END_TEST

/* ---- frame */

START_TEST(test_replay_frame_return_codes)
{
	struct sse_replay_config cfg = ring_config(2, 512, "");
	struct sse_replay *r = new_ring(&cfg);
	const char *bytes = NULL;
	size_t len = 0;

	ck_assert_int_eq(sse_replay_frame(r, 1, &bytes, &len), 0);
	ck_assert_int_eq(sse_replay_frame(r, 2, &bytes, &len), SSE_ERR_INVALID);
	publish(r, "a", 0);
	publish(r, "b", 0);
	publish(r, "c", 0); /* drops 1 */
	ck_assert_int_eq(sse_replay_frame(r, 1, &bytes, &len), SSE_ERR_GAP);
	ck_assert_int_eq(sse_replay_frame(r, 0, &bytes, &len), SSE_ERR_GAP);
	assert_frame(r, 2, "id: 2\ndata: b\n\n");
	assert_frame(r, 3, "id: 3\ndata: c\n\n");
	ck_assert_int_eq(sse_replay_frame(r, 4, &bytes, &len), 0);
	ck_assert_int_eq(sse_replay_frame(r, 5, &bytes, &len), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_frame(r, UINT64_MAX, &bytes, &len), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_frame(r, 2, NULL, &len), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_frame(r, 2, &bytes, NULL), SSE_ERR_INVALID);
	sse_replay_free(r);
}
END_TEST

/* ---- application ids */

START_TEST(test_replay_app_ids_frames_exact)
{
	struct sse_replay_config cfg = ring_config(8, 512, NULL);
	struct sse_replay *r;

	cfg.app_ids = 1;
	r = new_ring(&cfg);
	ck_assert_uint_eq(publish_app(r, "order-17", "shipped"), 1);
	ck_assert_uint_eq(publish_app(r, "2024-01-01T00:00:00Z", ""), 2);
	assert_frame(r, 1, "id: order-17\ndata: shipped\n\n");
	assert_frame(r, 2, "id: 2024-01-01T00:00:00Z\ndata:\n\n");
	ASSERT_SEEK(r, "order-17", SSE_REPLAY_FOUND, 2);
	ASSERT_SEEK(r, "2024-01-01T00:00:00Z", SSE_REPLAY_FOUND, 3);
	ASSERT_SEEK(r, "order-18", SSE_REPLAY_UNKNOWN, 3);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_app_ids_found_after_many_evictions)
{
	struct sse_replay_config cfg = ring_config(8, 4096, NULL);
	struct sse_replay *r;
	char id[32];

	cfg.app_ids = 1;
	r = new_ring(&cfg);
	for (int i = 1; i <= 2000; i++) {
		snprintf(id, sizeof(id), "ev-%d", i);
		ck_assert_uint_eq(publish_app(r, id, "x"), (uint64_t)i);
		/* Every held id is found; the eight before them are gone. */
		for (int k = i; k > i - 16 && k > 0; k--) {
			uint64_t cursor = 0;
			int status = k > i - 8 ? SSE_REPLAY_FOUND : SSE_REPLAY_UNKNOWN;

			snprintf(id, sizeof(id), "ev-%d", k);
			ck_assert_int_eq(sse_replay_seek(r, id, strlen(id), &cursor), status);
			ck_assert_uint_eq(cursor, status == SSE_REPLAY_FOUND ? (uint64_t)k + 1
									 : (uint64_t)i + 1);
		}
	}
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_app_ids_duplicate_newest_wins)
{
	struct sse_replay_config cfg = ring_config(3, 512, NULL);
	struct sse_replay *r;

	cfg.app_ids = 1;
	r = new_ring(&cfg);
	publish_app(r, "a", "1");
	publish_app(r, "b", "2");
	publish_app(r, "a", "3");
	ASSERT_SEEK(r, "a", SSE_REPLAY_FOUND, 4);
	publish_app(r, "c", "4");
	publish_app(r, "d", "5"); /* holds 3..5: the older "a" is gone, the newer not */
	ASSERT_SEEK(r, "a", SSE_REPLAY_FOUND, 4);
	ASSERT_SEEK(r, "b", SSE_REPLAY_UNKNOWN, 6);
	publish_app(r, "e", "6");
	ASSERT_SEEK(r, "a", SSE_REPLAY_UNKNOWN, 7);
	ASSERT_SEEK(r, "c", SSE_REPLAY_FOUND, 5);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_app_ids_random_duplicates_and_evictions)
{
	/* A small pool of names reused at random, frames of random sizes so
	 * both bounds drop frames: every name maps to its newest held frame. */
	enum { NAMES = 24 };
	struct sse_replay_config cfg = ring_config(16, 600, NULL);
	uint64_t newest[NAMES] = {0};
	uint32_t rng = 12345;
	char id[16], data[FRAME_MAX];
	struct sse_replay *r;

	cfg.app_ids = 1;
	r = new_ring(&cfg);
	for (int i = 0; i < 3000; i++) {
		unsigned name = next_random(&rng) % NAMES;
		size_t len = next_random(&rng) % 8 == 0 ? 200 + next_random(&rng) % 300
						     : next_random(&rng) % 40;

		memset(data, 'q', len);
		data[len] = '\0';
		snprintf(id, sizeof(id), "name%u", name);
		newest[name] = publish_app(r, id, data);
		ck_assert_uint_le(sse_replay_bytes(r), 600);
		ck_assert_uint_le(sse_replay_count(r), 16);
		for (unsigned n = 0; n < NAMES; n++) {
			int found = newest[n] != 0 && newest[n] >= sse_replay_first_seq(r);
			uint64_t cursor = 0;

			snprintf(id, sizeof(id), "name%u", n);
			ck_assert_int_eq(sse_replay_seek(r, id, strlen(id), &cursor),
					 found ? SSE_REPLAY_FOUND : SSE_REPLAY_UNKNOWN);
			ck_assert_uint_eq(cursor, found ? newest[n] + 1 : sse_replay_next_seq(r));
		}
	}
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_app_ids_match_whole_id_only)
{
	struct sse_replay_config cfg = ring_config(8, 512, NULL);
	struct sse_replay *r;

	cfg.app_ids = 1;
	r = new_ring(&cfg);
	publish_app(r, "ab", "x");
	publish_app(r, "a", "x");
	publish_app(r, "abc", "x");
	ASSERT_SEEK(r, "a", SSE_REPLAY_FOUND, 3);
	ASSERT_SEEK(r, "ab", SSE_REPLAY_FOUND, 2);
	ASSERT_SEEK(r, "abc", SSE_REPLAY_FOUND, 4);
	ASSERT_SEEK(r, "abcd", SSE_REPLAY_UNKNOWN, 4);
	ASSERT_SEEK(r, "b", SSE_REPLAY_UNKNOWN, 4);
	/* The frame "id: a\ndata: x\n\n" holds these bytes, yet no id is them. */
	ASSERT_SEEK(r, "a\ndata: x", SSE_REPLAY_UNKNOWN, 4);
	ASSERT_SEEK(r, "a\ndata: x\n", SSE_REPLAY_UNKNOWN, 4);
	ASSERT_SEEK(r, "ab\0", SSE_REPLAY_UNKNOWN, 4);
	/* Longer than any frame: no read past one. */
	ASSERT_SEEK(r, "a-very-long-id-longer-than-every-frame-in-the-ring",
		    SSE_REPLAY_UNKNOWN, 4);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_app_ids_colliding_hashes_stay_apart)
{
	/* "a" and "akcx0kta" share the low 32 bits of their FNV-1a hashes, so
	 * with FNV-1a they share a bucket and a stored hash: only the bytes can
	 * tell them apart. With another hash this is an ordinary lookup. */
	struct sse_replay_config cfg = ring_config(8, 512, NULL);
	struct sse_replay *r;

	cfg.app_ids = 1;
	r = new_ring(&cfg);
	publish_app(r, "akcx0kta", "x");
	ASSERT_SEEK(r, "a", SSE_REPLAY_UNKNOWN, 2);
	publish_app(r, "a", "y");
	publish_app(r, "akcx0kta", "z");
	ASSERT_SEEK(r, "a", SSE_REPLAY_FOUND, 3);
	ASSERT_SEEK(r, "akcx0kta", SSE_REPLAY_FOUND, 4);
	ASSERT_SEEK(r, "akcx0kt", SSE_REPLAY_UNKNOWN, 4);
	sse_replay_free(r);
}
END_TEST

/* ---- a stream following the ring */

/* The frames of seqs [from, to) of a ring-id ring with epoch, published
 * with payload_for(.., max_len, 0), concatenated. */
static size_t expect_frames(char *out, size_t cap, const char *epoch, uint64_t from, uint64_t to,
			    size_t max_len)
{
	char data[FRAME_MAX], id[32];
	size_t n = 0;

	for (uint64_t q = from; q < to; q++) {
		payload_for(data, q, max_len, 0);
		ring_id(id, sizeof(id), epoch, q);
		ck_assert_uint_lt(n + FRAME_MAX, cap);
		n += expect_frame(out + n, cap - n, id, data);
	}
	return n;
}

START_TEST(test_replay_follow_one_byte_writer)
{
	struct sse_replay_config cfg = ring_config(8, 512, "e1-");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	int status = -1;

	w.max_per_call = 1;
	publish(r, "a", 0);
	publish(r, "b", 0);
	publish(r, "c", 0);
	ck_assert_int_eq(sse_stream_resume(s, r, "e1-1", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_FOUND);
	ck_assert_uint_eq(sse_stream_cursor(s), 2);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), 4);
	ASSERT_DELIVERED(&w, "id: e1-2\ndata: b\n\nid: e1-3\ndata: c\n\n");
	publish(r, "d", 0);
	ck_assert_uint_eq(sse_stream_pending(s), 18);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_int_eq(sse_stream_flush(s), 0); /* caught up: nothing more */
	ASSERT_DELIVERED(&w, "id: e1-2\ndata: b\n\nid: e1-3\ndata: c\n\nid: e1-4\ndata: d\n\n");
	ck_assert_uint_eq(sse_stream_cursor(s), 5);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_follow_delivers_each_event_once_under_random_interleaving)
{
	/* Publishes, partial writes and refusals in random order, with queue
	 * limits below, near and above a frame's size (they bound only the
	 * stream's own bytes, never the ring's frames). At every step the
	 * stream owes exactly the frames published after the resume point
	 * that the writer has not taken yet. */
	enum { PAYLOAD_MAX = 480, CAP = 1 << 20 };
	static const size_t limits[] = {1, 60, 100, 1000};
	char data[FRAME_MAX], id[32], frame[FRAME_MAX];

	for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
		struct sse_replay_config cfg = ring_config(8192, 1 << 20, "e1-");
		struct sse_replay *r = new_ring(&cfg);
		struct test_writer w;
		struct sse_stream *s = new_stream(&w);
		uint32_t rng = 0xC0FFEEu + (uint32_t)l;
		char *expect = malloc(CAP);
		size_t owed_total = 0; /* bytes of frames 8.. published so far */
		int rc, status = -1;

		ck_assert_ptr_nonnull(expect);
		ck_assert_int_eq(sse_stream_set_queue_limit(s, limits[l]), 0);
		for (uint64_t q = 1; q <= 20; q++) {
			publish(r, payload_for(data, q, PAYLOAD_MAX, 0), 0);
			if (q >= 8)
				owed_total += expect_frame(frame, sizeof(frame),
							   ring_id(id, sizeof(id), "e1-", q), data);
		}
		w.wouldblock_left = 2;
		ck_assert_int_eq(sse_stream_resume(s, r, "e1-7", 4, &status), 0);
		ck_assert_int_eq(status, SSE_REPLAY_FOUND);
		for (int step = 0; step < 6000; step++) {
			uint64_t q;

			switch (next_random(&rng) % 4) {
			case 0:
			case 1:
				q = sse_replay_next_seq(r);
				publish(r, payload_for(data, q, PAYLOAD_MAX, 0), 0);
				owed_total += expect_frame(frame, sizeof(frame),
							   ring_id(id, sizeof(id), "e1-", q), data);
				break;
			case 2:
				w.max_per_call = 1 + next_random(&rng) % 40;
				w.wouldblock_left = (int)(next_random(&rng) % 3);
				rc = sse_stream_flush(s);
				ck_assert(rc == 0 || rc == SSE_ERR_WOULDBLOCK);
				break;
			default: /* refused: nothing moves, nothing fails */
				w.wouldblock_left = BLOCKED;
				ck_assert_int_eq(sse_stream_flush(s), owed_total > w.len
									      ? SSE_ERR_WOULDBLOCK
									      : 0);
				w.wouldblock_left = 0;
			}
			ck_assert_int_eq(sse_stream_error(s), 0);
			ck_assert_uint_eq(sse_stream_pending(s), owed_total - w.len);
		}
		/* Unblock the transport and drain everything. */
		w.wouldblock_left = 0;
		w.max_per_call = 0;
		flush_all(s);
		ck_assert_uint_eq(sse_stream_cursor(s), sse_replay_next_seq(r));
		assert_delivered(&w, expect,
				 expect_frames(expect, CAP, "e1-", 8, sse_replay_next_seq(r),
					       PAYLOAD_MAX));
		free(expect);
		sse_stream_free(s);
		test_writer_fini(&w);
		sse_replay_free(r);
	}
}
END_TEST

START_TEST(test_replay_follower_owes_past_its_queue_limit_and_goes_on)
{
	/* Frames "id: N\ndata: x\n\n" of 15 bytes; the queue limit is three
	 * of them. A follower is not a slow consumer for owing more: it owes
	 * all five while its transport refuses, and gets them all after. */
	struct sse_replay_config cfg = ring_config(8, 512, "");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);

	w.wouldblock_left = BLOCKED;
	ck_assert_int_eq(sse_stream_set_queue_limit(s, 45), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	for (int i = 0; i < 5; i++) {
		publish(r, "x", 0);
		ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	}
	ck_assert_uint_eq(sse_stream_cursor(s), 1);
	ck_assert_uint_eq(sse_stream_pending(s), 75);
	ck_assert_int_eq(sse_stream_error(s), 0);
	ASSERT_DELIVERED(&w, "");
	w.wouldblock_left = 0;
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), 6);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ASSERT_DELIVERED(&w, "id: 1\ndata: x\n\nid: 2\ndata: x\n\nid: 3\ndata: x\n\n"
			     "id: 4\ndata: x\n\nid: 5\ndata: x\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_follower_takes_frame_far_beyond_queue_limit)
{
	/* A queue limit of 16 bytes and one frame of about 200 KiB: the frame
	 * is the ring's, so it goes out whole, in small writes, never refused
	 * as too large and never cut. Data of many lines ("data: " each). */
	enum { LINES = 4000, LINE = 50 };
	struct sse_replay_config cfg = ring_config(4, 1 << 20, "");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	char *data = malloc(LINES * (LINE + 1)), *expect = malloc(LINES * (LINE + 8) + 64);
	size_t dlen = 0, elen = 0;
	int rc, rounds = 0;

	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(expect);
	elen += (size_t)sprintf(expect, "id: 1\n");
	for (int i = 0; i < LINES; i++) {
		char *line = data + dlen;

		for (int j = 0; j < LINE; j++)
			line[j] = (char)('a' + (i + j) % 26);
		dlen += LINE;
		elen += (size_t)sprintf(expect + elen, "data: %.*s\n", LINE, line);
		if (i + 1 < LINES)
			data[dlen++] = '\n';
	}
	expect[elen++] = '\n';
	ck_assert_int_eq(sse_stream_set_queue_limit(s, 16), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, sse_replay_next_seq(r)), 0);
	ck_assert_int_eq(sse_replay_publish(r, &(struct sse_event){.data = data, .data_len = dlen,
								    .retry = SSE_RETRY_NONE},
					    0, NULL),
			 0);
	ck_assert_uint_eq(sse_stream_pending(s), elen);
	w.max_per_call = 4096;
	w.accept_calls = 3; /* some of it now, the rest at later flushes */
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ck_assert_uint_eq(w.len, 3 * 4096);
	ck_assert_uint_eq(sse_stream_pending(s), elen - 3 * 4096);
	ck_assert_uint_eq(sse_stream_cursor(s), 1); /* inside frame 1 */
	while ((rc = sse_stream_flush(s)) == SSE_ERR_WOULDBLOCK) {
		ck_assert_int_lt(++rounds, 1000);
		w.accept_calls = 5;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_gt(rounds, 1);
	ck_assert_uint_eq(sse_stream_cursor(s), 2);
	assert_delivered(&w, expect, elen);
	free(data);
	free(expect);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_follow_gathers_frames_into_few_writes)
{
	/* _i: 0 with write only, 1 with writev too. */
	struct sse_replay_config cfg = ring_config(256, 1 << 16, "");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s;
	char *expect = malloc(1 << 16);
	int status = -1;

	test_writer_init(&w);
	s = test_stream_new(&w, _i == 1, NULL);
	ck_assert_ptr_nonnull(expect);
	for (uint64_t q = 1; q <= 100; q++) {
		char data[FRAME_MAX];

		publish(r, payload_for(data, q, 64, 0), 0);
	}
	ck_assert_int_eq(sse_stream_resume(s, r, "0", 1, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_FOUND);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	assert_delivered(&w, expect, expect_frames(expect, 1 << 16, "", 1, 101, 64));
	ck_assert_int_lt(w.calls, 10); /* not one write per frame */
	free(expect);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_follow_slow_consumer_gets_gap)
{
	/* 15-byte frames, a ring of four, a transport that takes nothing:
	 * the fifth publish drops frame 1, the one the stream still owes. */
	struct sse_replay_config cfg = ring_config(4, 512, "");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);

	w.wouldblock_left = BLOCKED;
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	for (uint64_t q = 1; q <= 4; q++) {
		publish(r, "x", 0);
		ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
		ck_assert_uint_eq(sse_stream_cursor(s), 1);
		ck_assert_uint_eq(sse_stream_pending(s), 15 * q);
	}
	publish(r, "x", 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0); /* fell out: nothing it can send */
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP);
	ck_assert_int_eq(sse_stream_error(s), SSE_ERR_GAP);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP);
	ASSERT_DELIVERED(&w, "");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_follow_gap_inside_a_frame_owes_nothing)
{
	/* The stream wrote 5 bytes of frame 1 when the ring drops it: it owes
	 * nothing it could still send (no underflow of the count), and it
	 * fails at its next flush rather than send the rest of another frame. */
	struct sse_replay_config cfg = ring_config(2, 512, "");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);

	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	publish(r, "x", 0);
	w.max_per_call = 5;
	w.accept_calls = 1;
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ASSERT_DELIVERED(&w, "id: 1");
	ck_assert_uint_eq(sse_stream_pending(s), 10);
	publish(r, "y", 0);
	ck_assert_uint_eq(sse_stream_pending(s), 25);
	publish(r, "z", 0); /* drops frame 1 */
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	w.accept_calls = -1;
	w.max_per_call = 0;
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ASSERT_DELIVERED(&w, "id: 1");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_follow_max_lag_fails_a_lagging_follower)
{
	/* 15-byte frames; the ring keeps them all, but the stream may be at
	 * most 40 bytes behind the live end. */
	struct sse_replay_config cfg = ring_config(64, 4096, "");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);

	w.wouldblock_left = BLOCKED;
	ck_assert_int_eq(sse_stream_set_max_lag(s, 40), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	publish(r, "x", 0);
	publish(r, "x", 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	publish(r, "x", 0); /* 45 bytes behind */
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_uint_eq(sse_replay_first_seq(r), 1); /* the ring still holds them */
	ASSERT_DELIVERED(&w, "");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_follow_reports_stream_error)
{
	struct sse_replay_config cfg = ring_config(4, 512, NULL);
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);

	w.fail_after = 0;
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	publish(r, "x", 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_IO);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_IO);
	ck_assert_int_eq(sse_stream_error(s), SSE_ERR_IO);
	ck_assert_uint_eq(sse_stream_pending(s), 0); /* a failed stream owes nothing */
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_follow_rejects_bad_arguments)
{
	struct sse_replay_config cfg = ring_config(4, 512, "");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);

	publish(r, "x", 0);
	ck_assert_int_eq(sse_stream_follow(NULL, r, 1), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_follow(s, r, 3), SSE_ERR_INVALID); /* past the live end */
	ck_assert_int_eq(sse_stream_follow(s, r, UINT64_MAX), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_resume(NULL, r, NULL, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_resume(s, NULL, "1", 1, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_set_max_lag(NULL, 1), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_stream_cursor(NULL), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), 0); /* follows nothing */
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "");
	/* Following, then following nothing again: no more frames. */
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), 1);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: 1\ndata: x\n\n");
	ck_assert_int_eq(sse_stream_follow(s, NULL, 0), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), 0);
	publish(r, "y", 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: 1\ndata: x\n\n"); /* not frame 2 */
	/* Inside a frame: no moving to another cursor (the frame would be
	 * torn); stopping is allowed and hands out nothing more of the ring,
	 * never the rest of a frame without its start. */
	ck_assert_int_eq(sse_stream_follow(s, r, 2), 0);
	w.max_per_call = 3;
	w.accept_calls = 1;
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ASSERT_DELIVERED(&w, "id: 1\ndata: x\n\nid:");
	ck_assert_int_eq(sse_stream_follow(s, r, 3), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_follow(s, r, 2), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_stream_cursor(s), 2);
	ck_assert_int_eq(sse_stream_follow(s, NULL, 0), 0);
	w.max_per_call = 0;
	w.accept_calls = -1;
	publish(r, "z", 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: 1\ndata: x\n\nid:");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

/* ---- resume */

static struct sse_event reset_event(void)
{
	struct sse_event ev = data_event("reload");

	ev.type = "sse-reset";
	ev.type_len = 9;
	return ev;
}

START_TEST(test_replay_resume_too_old_id_writes_reset_then_live)
{
	static const char *const data[] = {"a", "b", "c", "d", "e", "f"};
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(3, 512, "e1-");
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	int status = -1;

	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	for (int i = 0; i < 6; i++)
		publish(r, data[i], 0);
	ck_assert_int_eq(sse_stream_resume(s, r, "e1-2", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	ck_assert_uint_eq(sse_stream_cursor(s), 7);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-6\nevent: sse-reset\ndata: reload\n\n");
	publish(r, "g", 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-6\nevent: sse-reset\ndata: reload\n\n"
			     "id: e1-7\ndata: g\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_reset_goes_before_frames_when_blocked)
{
	/* The transport refuses until both the reset and a new frame are
	 * owed: the reset still goes first. */
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(2, 512, "e1-");
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	int status = -1;

	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	for (int i = 0; i < 4; i++)
		publish(r, "x", 0);
	w.wouldblock_left = BLOCKED;
	ck_assert_int_eq(sse_stream_resume(s, r, "e1-1", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	publish(r, "y", 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ASSERT_DELIVERED(&w, "");
	w.wouldblock_left = 0;
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-4\nevent: sse-reset\ndata: reload\n\n"
			     "id: e1-5\ndata: y\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_unknown_id_writes_reset)
{
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(8, 512, "e1-");
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	int status = -1;

	reset.retry = 1000;
	reset.id = "ignored"; /* the ring sets the id */
	reset.id_len = 7;
	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	publish(r, "a", 0);
	publish(r, "b", 0);
	ck_assert_int_eq(sse_stream_resume(s, r, "e0-1", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_UNKNOWN);
	ck_assert_uint_eq(sse_stream_cursor(s), 3);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-2\nevent: sse-reset\nretry: 1000\ndata: reload\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

/* A resume the stream cannot take (it is inside a frame of its ring)
 * fails and changes nothing: no reset event is queued, the stream goes on
 * from where it was, byte for byte. */
START_TEST(test_replay_resume_that_fails_queues_nothing)
{
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(2, 512, "e1-");
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	int status = -1;

	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	for (int i = 0; i < 4; i++)
		publish(r, i % 2 ? "y" : "x", 0);
	ck_assert_int_eq(sse_stream_follow(s, r, 3), 0);
	w.max_per_call = 3;
	w.accept_calls = 1;
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ASSERT_DELIVERED(&w, "id:");
	/* "e1-1" is a gap (the ring holds 3 and 4): it would queue the reset. */
	ck_assert_int_eq(sse_stream_resume(s, r, "e1-1", 4, &status), SSE_ERR_INVALID);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	ck_assert_uint_eq(sse_stream_cursor(s), 3);
	w.max_per_call = 0;
	w.accept_calls = -1;
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-3\ndata: x\n\nid: e1-4\ndata: y\n\n");
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_found_or_live_sends_no_reset)
{
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(8, 512, "e1-");
	struct sse_replay *r;
	struct test_writer w1, w2, w3;
	struct sse_stream *s1 = new_stream(&w1), *s2 = new_stream(&w2), *s3 = new_stream(&w3);
	int status = -1;

	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	publish(r, "a", 0);
	publish(r, "b", 0);
	ck_assert_int_eq(sse_stream_resume(s1, r, "e1-1", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_FOUND);
	ck_assert_int_eq(sse_stream_flush(s1), 0);
	ASSERT_DELIVERED(&w1, "id: e1-2\ndata: b\n\n");
	ck_assert_int_eq(sse_stream_resume(s2, r, NULL, 0, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_LIVE);
	ck_assert_uint_eq(sse_stream_cursor(s2), 3);
	ck_assert_int_eq(sse_stream_flush(s2), 0);
	ASSERT_DELIVERED(&w2, "");
	ck_assert_int_eq(sse_stream_resume(s3, r, "e1-1", 0, NULL), 0); /* len 0: live */
	ck_assert_uint_eq(sse_stream_cursor(s3), 3);
	publish(r, "c", 0);
	ck_assert_int_eq(sse_stream_flush(s2), 0);
	ck_assert_int_eq(sse_stream_flush(s3), 0);
	ASSERT_DELIVERED(&w2, "id: e1-3\ndata: c\n\n");
	ASSERT_DELIVERED(&w3, "id: e1-3\ndata: c\n\n");
	sse_stream_free(s1);
	sse_stream_free(s2);
	sse_stream_free(s3);
	test_writer_fini(&w1);
	test_writer_fini(&w2);
	test_writer_fini(&w3);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_past_max_lag_resets_and_goes_live)
{
	/* Frames "id: e1-N\ndata: x\n\n" of 18 bytes; a stream may lag 40.
	 * Resuming after e1-3 owes 36 bytes: replayed. After e1-2 it would
	 * owe 54: the client gets the reset (with the newest id) and only
	 * the events from now on, rather than a replay it would fail in. */
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(16, 1024, "e1-");
	struct sse_replay *r;
	struct test_writer w1, w2;
	struct sse_stream *near = new_stream(&w1), *far = new_stream(&w2);

	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	for (int i = 0; i < 5; i++)
		publish(r, "x", 0);
	ck_assert_int_eq(sse_stream_set_max_lag(near, 40), 0);
	ck_assert_int_eq(sse_stream_set_max_lag(far, 40), 0);
	ck_assert_int_eq(sse_stream_resume(near, r, "e1-3", 4, NULL), 0);
	ck_assert_int_eq(sse_stream_resume(far, r, "e1-2", 4, NULL), 0);
	ck_assert_uint_eq(sse_stream_cursor(far), 6);
	ck_assert_int_eq(sse_stream_flush(near), 0);
	ck_assert_int_eq(sse_stream_flush(far), 0);
	publish(r, "y", 0);
	ck_assert_int_eq(sse_stream_flush(near), 0);
	ck_assert_int_eq(sse_stream_flush(far), 0);
	ASSERT_DELIVERED(&w1, "id: e1-4\ndata: x\n\nid: e1-5\ndata: x\n\nid: e1-6\ndata: y\n\n");
	ASSERT_DELIVERED(&w2, "id: e1-5\nevent: sse-reset\ndata: reload\n\nid: e1-6\ndata: y\n\n");
	ck_assert_int_eq(sse_stream_error(near), 0);
	ck_assert_int_eq(sse_stream_error(far), 0);
	sse_stream_free(near);
	sse_stream_free(far);
	test_writer_fini(&w1);
	test_writer_fini(&w2);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_without_reset_event_goes_live)
{
	struct sse_replay_config cfg = ring_config(2, 512, "e1-");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	int status = -1;

	for (int i = 0; i < 5; i++)
		publish(r, "x", 0);
	ck_assert_int_eq(sse_stream_resume(s, r, "e1-1", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	ck_assert_uint_eq(sse_stream_cursor(s), 6);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "");
	publish(r, "y", 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-6\ndata: y\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_on_empty_ring_names_the_start)
{
	/* Told of the reset before anything was published, the client must
	 * still get frame 1 when it comes back: its id is epoch "0", not "". */
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(8, 512, "e1-");
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	int status = -1;

	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	ck_assert_int_eq(sse_stream_resume(s, r, "e0-9", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_UNKNOWN);
	ck_assert_uint_eq(sse_stream_cursor(s), 1);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-0\nevent: sse-reset\ndata: reload\n\n");
	publish(r, "a", 0);
	ASSERT_SEEK(r, "e1-0", SSE_REPLAY_FOUND, 1);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-0\nevent: sse-reset\ndata: reload\n\nid: e1-1\ndata: a\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_app_ids_reset_carries_newest_id)
{
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(8, 512, NULL);
	struct sse_replay *r;
	struct test_writer w1, w2;
	struct sse_stream *s1 = new_stream(&w1), *s2 = new_stream(&w2);
	int status = -1;

	cfg.app_ids = 1;
	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	/* Nothing to name yet: the empty id makes the client forget its own. */
	ck_assert_int_eq(sse_stream_resume(s1, r, "zzz", 3, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_UNKNOWN);
	ck_assert_int_eq(sse_stream_flush(s1), 0);
	ASSERT_DELIVERED(&w1, "id:\nevent: sse-reset\ndata: reload\n\n");
	publish_app(r, "x-1", "a");
	publish_app(r, "y-2", "b");
	ck_assert_int_eq(sse_stream_resume(s2, r, "zzz", 3, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_UNKNOWN);
	ck_assert_uint_eq(sse_stream_cursor(s2), 3);
	ck_assert_int_eq(sse_stream_flush(s2), 0);
	ASSERT_DELIVERED(&w2, "id: y-2\nevent: sse-reset\ndata: reload\n\n");
	sse_stream_free(s1);
	sse_stream_free(s2);
	test_writer_fini(&w1);
	test_writer_fini(&w2);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_reset_event_is_copied)
{
	char type[] = "sse-reset", data[] = "reload";
	struct sse_event reset = {.type = type, .type_len = 9, .data = data, .data_len = 6,
				  .retry = SSE_RETRY_NONE};
	struct sse_replay_config cfg = ring_config(2, 512, "e1-");
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	char epoch[] = "e1-";

	cfg.epoch = epoch;
	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	memset(type, 'X', 9);
	memset(data, 'Y', 6);
	memset(epoch, 'Z', 3);
	reset.data = NULL;
	ck_assert_str_eq(sse_replay_epoch(r), "e1-");
	for (int i = 0; i < 4; i++)
		publish(r, "x", 0);
	ck_assert_int_eq(sse_stream_resume(s, r, "e1-1", 4, NULL), 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: e1-4\nevent: sse-reset\ndata: reload\n\n");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_reports_queue_full_for_reset)
{
	/* The reset event is the stream's own bytes: its queue limit applies. */
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(2, 512, NULL);
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);

	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	ck_assert_int_eq(sse_stream_set_queue_limit(s, 8), 0);
	ck_assert_int_eq(sse_stream_resume(s, r, "x", 1, NULL), SSE_ERR_QUEUE_FULL);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "");
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_reset_event_query)
{
	struct sse_event reset = reset_event(), got;
	struct sse_replay_config cfg = ring_config(4, 512, "e1-");
	struct sse_replay *r = new_ring(&cfg), *none;

	ck_assert_int_eq(sse_replay_reset_event(r, &got), 0); /* the ring has none */
	cfg.reset_event = &reset;
	none = r;
	r = new_ring(&cfg);
	ck_assert_int_eq(sse_replay_reset_event(r, &got), 1);
	ck_assert_uint_eq(got.id_len, 4);
	ck_assert_mem_eq(got.id, "e1-0", 4);
	ck_assert_uint_eq(got.type_len, 9);
	ck_assert_mem_eq(got.type, "sse-reset", 9);
	ck_assert_uint_eq(got.data_len, 6);
	ck_assert_mem_eq(got.data, "reload", 6);
	publish(r, "a", 0);
	publish(r, "b", 0);
	ck_assert_int_eq(sse_replay_reset_event(r, &got), 1);
	ck_assert_uint_eq(got.id_len, 4);
	ck_assert_mem_eq(got.id, "e1-2", 4);
	sse_replay_free(none);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_resume_after_all_frames_expired_names_the_newest)
{
	/* Every frame aged out: a client whose id is too old still gets the
	 * reset with the newest id ever published, so when it comes back it
	 * gets what was published meanwhile (an empty id would make it come
	 * back live and miss those events silently). */
	struct sse_event reset = reset_event(), got;
	struct sse_replay_config cfg = ring_config(8, 512, "t-");
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	const char *id;
	size_t len = 0;
	int status = -1;

	cfg.max_age_ms = 100;
	cfg.reset_event = &reset;
	r = new_ring(&cfg);
	publish(r, "a", 1000);
	publish(r, "b", 1000);
	publish(r, "c", 1000);
	ck_assert_int_eq(sse_replay_expire(r, 5000), 0);
	ck_assert_uint_eq(sse_replay_count(r), 0);
	id = sse_replay_newest_id(r, &len);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(id, "t-3", 3);
	ck_assert_int_eq(sse_replay_reset_event(r, &got), 1);
	ck_assert_uint_eq(got.id_len, 3);
	ck_assert_int_eq(sse_stream_resume(s, r, "t-1", 3, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ASSERT_DELIVERED(&w, "id: t-3\nevent: sse-reset\ndata: reload\n\n");
	ASSERT_SEEK(r, "t-3", SSE_REPLAY_FOUND, 4);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(r);
}
END_TEST

/* ---- epochs: ids that another instance cannot mistake for its own */

/* A generated epoch: 8 characters of [0-9a-v], then '-'. */
static void assert_generated_epoch(const char *e)
{
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(strlen(e), 9);
	for (int i = 0; i < 8; i++)
		ck_assert_msg((e[i] >= '0' && e[i] <= '9') || (e[i] >= 'a' && e[i] <= 'v'),
			      "epoch \"%s\": character %d", e, i);
	ck_assert_int_eq(e[8], '-');
}

START_TEST(test_replay_null_epoch_is_generated_per_ring)
{
	struct sse_replay_config cfg = ring_config(8, 512, NULL);
	struct sse_replay *a = new_ring(&cfg), *b = new_ring(&cfg);

	assert_generated_epoch(sse_replay_epoch(a));
	assert_generated_epoch(sse_replay_epoch(b));
	ck_assert_str_ne(sse_replay_epoch(a), sse_replay_epoch(b));
	sse_replay_free(b);
	/* Freed and made again, at the same address perhaps: still new. */
	b = new_ring(&cfg);
	assert_generated_epoch(sse_replay_epoch(b));
	ck_assert_str_ne(sse_replay_epoch(a), sse_replay_epoch(b));
	sse_replay_free(a);
	sse_replay_free(b);
}
END_TEST

START_TEST(test_replay_generated_epoch_prefixes_every_id)
{
	struct sse_replay_config cfg = ring_config(8, 512, NULL);
	struct sse_replay *r = new_ring(&cfg);
	char epoch[16], id[32], expect[64];
	const char *newest;
	size_t len = 0;

	snprintf(epoch, sizeof(epoch), "%s", sse_replay_epoch(r));
	assert_generated_epoch(epoch);
	/* Before frame 1: "<epoch>0". */
	newest = sse_replay_newest_id(r, &len);
	ring_id(id, sizeof(id), epoch, 0);
	ck_assert_uint_eq(len, strlen(id));
	ck_assert_mem_eq(newest, id, len);
	assert_seek(r, id, strlen(id), SSE_REPLAY_FOUND, 1);
	for (uint64_t q = 1; q <= 12; q++) {
		ck_assert_uint_eq(publish(r, q % 2 ? "odd" : "", 0), q);
		ring_id(id, sizeof(id), epoch, q);
		expect_frame(expect, sizeof(expect), id, q % 2 ? "odd" : "");
		assert_frame(r, q, expect);
		newest = sse_replay_newest_id(r, &len);
		ck_assert_uint_eq(len, strlen(id));
		ck_assert_mem_eq(newest, id, len);
	}
	ring_id(id, sizeof(id), epoch, 7);
	assert_seek(r, id, strlen(id), SSE_REPLAY_FOUND, 8);
	ring_id(id, sizeof(id), epoch, 2);
	assert_seek(r, id, strlen(id), SSE_REPLAY_GAP, 13);
	/* The bare number, without the epoch, is not one of its ids. */
	ASSERT_SEEK(r, "7", SSE_REPLAY_UNKNOWN, 13);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_id_of_another_instance_is_unknown_and_resets)
{
	/* Rings A and B both made without an epoch, as two runs of a server.
	 * A's id for frame 2 names a sequence number B holds too, yet it is
	 * not B's: resuming with it gets B's reset event (with B's newest id)
	 * and then only B's new frames, never B's frame 3 as if it followed. */
	struct sse_event reset = reset_event();
	struct sse_replay_config cfg = ring_config(8, 512, NULL);
	struct sse_replay *a, *b;
	struct test_writer w;
	struct sse_stream *s = new_stream(&w);
	char a_id[32], b_newest[32], expect[256];
	const char *newest;
	size_t len = 0, n;
	int status = -1;

	cfg.reset_event = &reset;
	a = new_ring(&cfg);
	b = new_ring(&cfg);
	for (int i = 0; i < 3; i++) {
		publish(a, "from A", 0);
		publish(b, "from B", 0);
	}
	ring_id(a_id, sizeof(a_id), sse_replay_epoch(a), 2);
	assert_seek(a, a_id, strlen(a_id), SSE_REPLAY_FOUND, 3);
	assert_seek(b, a_id, strlen(a_id), SSE_REPLAY_UNKNOWN, 4);
	ring_id(b_newest, sizeof(b_newest), sse_replay_epoch(b), 3);
	newest = sse_replay_newest_id(b, &len);
	ck_assert_uint_eq(len, strlen(b_newest));
	ck_assert_mem_eq(newest, b_newest, len);

	ck_assert_int_eq(sse_stream_resume(s, b, a_id, strlen(a_id), &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_UNKNOWN);
	ck_assert_uint_eq(sse_stream_cursor(s), 4);
	publish(b, "new in B", 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	n = (size_t)snprintf(expect, sizeof(expect),
			     "id: %s\nevent: sse-reset\ndata: reload\n\nid: %s4\ndata: new in B\n\n",
			     b_newest, sse_replay_epoch(b));
	assert_delivered(&w, expect, n);
	/* The id the reset gave brings the client back to B's next frame. */
	assert_seek(b, b_newest, strlen(b_newest), SSE_REPLAY_FOUND, 4);
	sse_stream_free(s);
	test_writer_fini(&w);
	sse_replay_free(a);
	sse_replay_free(b);
}
END_TEST

START_TEST(test_replay_empty_epoch_gives_plain_ids)
{
	struct sse_replay_config cfg = ring_config(8, 512, "");
	struct sse_replay *r = new_ring(&cfg);
	const char *newest;
	size_t len = 0;

	ck_assert_str_eq(sse_replay_epoch(r), "");
	newest = sse_replay_newest_id(r, &len);
	ck_assert_uint_eq(len, 1);
	ck_assert_mem_eq(newest, "0", 1);
	publish(r, "a", 0);
	publish(r, "b", 0);
	assert_frame(r, 1, "id: 1\ndata: a\n\n");
	assert_frame(r, 2, "id: 2\ndata: b\n\n");
	newest = sse_replay_newest_id(r, &len);
	ck_assert_uint_eq(len, 1);
	ck_assert_mem_eq(newest, "2", 1);
	ASSERT_SEEK(r, "1", SSE_REPLAY_FOUND, 2);
	cfg.app_ids = 1;
	sse_replay_free(r);
	r = new_ring(&cfg);
	ck_assert_str_eq(sse_replay_epoch(r), ""); /* app ids have no epoch */
	newest = sse_replay_newest_id(r, &len);
	ck_assert_ptr_nonnull(newest);
	ck_assert_uint_eq(len, 0);
	sse_replay_free(r);
}
END_TEST

/* ---- restart, frames encoded elsewhere, id numbers (0.3) */

static void assert_newest(const struct sse_replay *r, const char *want)
{
	size_t len = 0;
	const char *id = sse_replay_newest_id(r, &len);

	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(id, want, len);
}

#define FRAME_OK(r, lit) sse_replay_publish_frame((r), (lit), sizeof(lit) - 1, 0, NULL)

START_TEST(test_replay_numbers_are_sequence_numbers_by_default)
{
	struct sse_replay_config cfg = ring_config(4, 1024, "k-");
	struct sse_replay *r = new_ring(&cfg);

	ck_assert_uint_eq(sse_replay_next_number(r), 1);
	publish(r, "a", 0);
	ck_assert_uint_eq(sse_replay_next_number(r), sse_replay_next_seq(r));
	ck_assert_uint_eq(sse_replay_next_number(NULL), 0);
	sse_replay_free(r);
	cfg.app_ids = 1;
	r = new_ring(&cfg);
	ck_assert_uint_eq(sse_replay_next_number(r), 0);
	ck_assert_int_eq(sse_replay_restart(r, NULL, 5), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: 1\ndata: a\n\n"), SSE_ERR_INVALID);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_restart_moves_numbers)
{
	struct sse_replay_config cfg = ring_config(4, 1024, "k-");
	struct sse_replay *r = new_ring(&cfg);
	uint64_t seq = 0, before;

	for (int i = 0; i < 3; i++)
		publish(r, "x", 0);
	before = sse_replay_next_seq(r);
	ck_assert_int_eq(sse_replay_restart(r, NULL, 100), 0);
	ck_assert_uint_eq(sse_replay_count(r), 0);
	ck_assert_uint_eq(sse_replay_bytes(r), 0);
	ck_assert_uint_eq(sse_replay_next_number(r), 100);
	/* One sequence number skipped: no cursor of before is in the ring. */
	ck_assert_uint_eq(sse_replay_next_seq(r), before + 1);
	assert_newest(r, "k-99");
	ck_assert_int_eq(sse_replay_publish(r, &(struct sse_event){.data = "y", .data_len = 1,
								  .retry = SSE_RETRY_NONE},
					    0, &seq),
			 0);
	ck_assert_uint_eq(seq, before + 1);
	assert_frame(r, seq, "id: k-100\ndata: y\n\n");
	assert_newest(r, "k-100");
	ASSERT_SEEK(r, "k-99", SSE_REPLAY_FOUND, seq);
	ASSERT_SEEK(r, "k-100", SSE_REPLAY_FOUND, seq + 1);
	ASSERT_SEEK(r, "k-98", SSE_REPLAY_GAP, seq + 1);
	ASSERT_SEEK(r, "k-3", SSE_REPLAY_GAP, seq + 1);
	ASSERT_SEEK(r, "k-101", SSE_REPLAY_UNKNOWN, seq + 1);
	/* Within an epoch a number names one event: never back. */
	ck_assert_int_eq(sse_replay_restart(r, NULL, 100), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_restart(r, "k-", 50), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_restart(r, NULL, 0), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_restart(r, "a\nb", 1), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_restart(NULL, NULL, 1), SSE_ERR_INVALID);
	ck_assert_uint_eq(sse_replay_next_number(r), 101);
	/* Fill past the bounds: the numbers keep counting from the base. */
	for (int i = 0; i < 6; i++)
		publish(r, "z", 0);
	ASSERT_SEEK(r, "k-102", SSE_REPLAY_FOUND, sse_replay_next_seq(r) - 4);
	ASSERT_SEEK(r, "k-101", SSE_REPLAY_GAP, sse_replay_next_seq(r));
	assert_newest(r, "k-106");
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_restart_new_epoch)
{
	struct sse_replay_config cfg = ring_config(4, 1024, "k-");
	struct sse_replay *r = new_ring(&cfg);

	publish(r, "x", 0);
	ck_assert_int_eq(sse_replay_restart(r, "a-much-longer-epoch-", 1), 0);
	ck_assert_str_eq(sse_replay_epoch(r), "a-much-longer-epoch-");
	assert_newest(r, "a-much-longer-epoch-0");
	ASSERT_SEEK(r, "k-1", SSE_REPLAY_UNKNOWN, sse_replay_next_seq(r));
	publish(r, "y", 0);
	assert_frame(r, sse_replay_next_seq(r) - 1, "id: a-much-longer-epoch-1\ndata: y\n\n");
	ck_assert_int_eq(sse_replay_restart(r, "", 7), 0);
	ck_assert_int_eq(FRAME_OK(r, "id: 7\ndata: z\n\n"), 0);
	assert_newest(r, "7");
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_restart_fails_every_follower)
{
	struct sse_replay_config cfg = ring_config(4, 1024, "k-");
	struct sse_replay *r = new_ring(&cfg);
	struct test_writer w1, w2;
	struct sse_stream *live = new_stream(&w1), *behind = new_stream(&w2);

	publish(r, "a", 0);
	publish(r, "b", 0);
	ck_assert_int_eq(sse_stream_follow(live, r, sse_replay_next_seq(r)), 0);
	ck_assert_int_eq(sse_stream_follow(behind, r, sse_replay_first_seq(r)), 0);
	ck_assert_int_eq(sse_replay_restart(r, NULL, 10), 0);
	publish(r, "c", 0);
	/* Even the one at the live end: it would else get 10 after 2. */
	ck_assert_int_eq(sse_stream_flush(live), SSE_ERR_GAP);
	ck_assert_int_eq(sse_stream_flush(behind), SSE_ERR_GAP);
	sse_stream_free(live);
	sse_stream_free(behind);
	test_writer_fini(&w1);
	test_writer_fini(&w2);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_publish_frame_takes_encoder_shape)
{
	static const char f1[] = "id: k-1\nevent: tick\ndata: a\ndata: b\n\n";
	struct sse_replay_config cfg = ring_config(4, 64, "k-");
	struct sse_replay *r = new_ring(&cfg);
	uint64_t seq = 0;

	ck_assert_int_eq(sse_replay_publish_frame(r, f1, sizeof(f1) - 1, 0, &seq), 0);
	ck_assert_uint_eq(seq, 1);
	assert_frame(r, 1, f1);
	assert_newest(r, "k-1");
	ASSERT_SEEK(r, "k-1", SSE_REPLAY_FOUND, 2);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\n\n"), 0); /* an id-only event */
	ck_assert_int_eq(FRAME_OK(r, "id: k-3\nretry: 5\ndata:\n\n"), 0);
	ck_assert_uint_eq(sse_replay_next_number(r), 4);
	sse_replay_free(r);
}
END_TEST

START_TEST(test_replay_publish_frame_rejects_malformed)
{
	struct sse_replay_config cfg = ring_config(4, 64, "k-");
	struct sse_replay *r = new_ring(&cfg);

	publish(r, "a", 0); /* the next id is k-2 */
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\r\ndata: a\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\ndata: a\r\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\ndata: a\n\ndata: b\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-3\ndata: a\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-02\ndata: a\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: j-2\ndata: a\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id:k-2\ndata: a\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "data: a\nid: k-2\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\ndata: a\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\ndata: a"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\nid: k-9\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\nid\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "\n\n"), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, ""), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_replay_publish_frame(r, NULL, 0, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\ndata: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\n"),
			 SSE_ERR_TOO_LARGE);
	/* Nothing was kept: the next id is still k-2. */
	ck_assert_uint_eq(sse_replay_count(r), 1);
	assert_newest(r, "k-1");
	ck_assert_int_eq(FRAME_OK(r, "id: k-2\nidle: not an id field\n\n"), 0);
	sse_replay_free(r);
	cfg.flags = SSE_ENCODE_STRICT_UTF8;
	r = new_ring(&cfg);
	ck_assert_int_eq(FRAME_OK(r, "id: k-1\ndata: \xff\n\n"), SSE_ERR_UTF8);
	sse_replay_free(r);
}
END_TEST

static Suite *replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc;

	tc = tcase_create("config");
	tcase_add_test(tc, test_replay_new_rejects_invalid_config);
	tcase_add_test(tc, test_replay_new_rejects_wrong_config_size);
	tcase_add_test(tc, test_replay_epoch_is_ignored_with_app_ids);
	tcase_add_test(tc, test_replay_null_ring);
	tcase_add_test(tc, test_replay_new_ring_is_empty);
	tcase_add_test(tc, test_replay_new_fails_cleanly_at_every_allocation);
	tcase_add_test(tc, test_replay_new_refuses_sizes_beyond_memory);
	tcase_add_test(tc, test_replay_warm_ring_allocates_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("publish");
	tcase_add_test(tc, test_replay_publish_rejects_ids_the_mode_forbids);
	tcase_add_test(tc, test_replay_publish_encoder_error_keeps_nothing);
	tcase_add_test(tc, test_replay_publish_too_large_changes_nothing);
	tcase_add_test(tc, test_replay_frames_are_encoded_exactly);
	tcase_add_test(tc, test_replay_publish_reports_seq);
	suite_add_tcase(s, tc);

	tc = tcase_create("seek");
	tcase_add_test(tc, test_replay_seek_finds_each_id);
	tcase_add_test(tc, test_replay_seek_live_for_empty_or_null_id);
	tcase_add_test(tc, test_replay_seek_reports_gap_for_evicted_id);
	tcase_add_test(tc, test_replay_seek_unknown_for_foreign_ids);
	tcase_add_test(tc, test_replay_seek_without_epoch);
	tcase_add_test(tc, test_replay_seek_rejects_null_cursor);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_add_test(tc, test_replay_bounds_by_count);
	tcase_add_test(tc, test_replay_bounds_by_bytes_with_random_sizes);
	tcase_add_test(tc, test_replay_keeps_equal_frames_that_fit);
	tcase_add_test(tc, test_replay_bounds_by_age);
	tcase_add_test(tc, test_replay_no_age_bound_when_zero);
	tcase_add_test(tc, test_replay_expire_without_publish);
	tcase_add_test(tc, test_replay_strict_utf8_flag);
	tcase_add_test(tc, test_replay_frame_return_codes);
	suite_add_tcase(s, tc);

	tc = tcase_create("app_ids");
	tcase_add_test(tc, test_replay_app_ids_frames_exact);
	tcase_add_test(tc, test_replay_app_ids_found_after_many_evictions);
	tcase_add_test(tc, test_replay_app_ids_duplicate_newest_wins);
	tcase_add_test(tc, test_replay_app_ids_random_duplicates_and_evictions);
	tcase_add_test(tc, test_replay_app_ids_match_whole_id_only);
	tcase_add_test(tc, test_replay_app_ids_colliding_hashes_stay_apart);
	suite_add_tcase(s, tc);

	tc = tcase_create("epoch");
	tcase_add_test(tc, test_replay_null_epoch_is_generated_per_ring);
	tcase_add_test(tc, test_replay_generated_epoch_prefixes_every_id);
	tcase_add_test(tc, test_replay_id_of_another_instance_is_unknown_and_resets);
	tcase_add_test(tc, test_replay_empty_epoch_gives_plain_ids);
	suite_add_tcase(s, tc);

	tc = tcase_create("follow");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_replay_follow_one_byte_writer);
	tcase_add_test(tc, test_replay_follow_delivers_each_event_once_under_random_interleaving);
	tcase_add_test(tc, test_replay_follower_owes_past_its_queue_limit_and_goes_on);
	tcase_add_test(tc, test_replay_follower_takes_frame_far_beyond_queue_limit);
	tcase_add_loop_test(tc, test_replay_follow_gathers_frames_into_few_writes, 0, 2);
	tcase_add_test(tc, test_replay_follow_slow_consumer_gets_gap);
	tcase_add_test(tc, test_replay_follow_gap_inside_a_frame_owes_nothing);
	tcase_add_test(tc, test_replay_follow_max_lag_fails_a_lagging_follower);
	tcase_add_test(tc, test_replay_follow_reports_stream_error);
	tcase_add_test(tc, test_replay_follow_rejects_bad_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("resume");
	tcase_add_test(tc, test_replay_resume_too_old_id_writes_reset_then_live);
	tcase_add_test(tc, test_replay_resume_reset_goes_before_frames_when_blocked);
	tcase_add_test(tc, test_replay_resume_unknown_id_writes_reset);
	tcase_add_test(tc, test_replay_resume_that_fails_queues_nothing);
	tcase_add_test(tc, test_replay_resume_found_or_live_sends_no_reset);
	tcase_add_test(tc, test_replay_resume_without_reset_event_goes_live);
	tcase_add_test(tc, test_replay_resume_past_max_lag_resets_and_goes_live);
	tcase_add_test(tc, test_replay_resume_on_empty_ring_names_the_start);
	tcase_add_test(tc, test_replay_resume_app_ids_reset_carries_newest_id);
	tcase_add_test(tc, test_replay_reset_event_is_copied);
	tcase_add_test(tc, test_replay_resume_reports_queue_full_for_reset);
	tcase_add_test(tc, test_replay_reset_event_query);
	tcase_add_test(tc, test_replay_resume_after_all_frames_expired_names_the_newest);
	suite_add_tcase(s, tc);
	tc = tcase_create("restart");
	tcase_add_test(tc, test_replay_numbers_are_sequence_numbers_by_default);
	tcase_add_test(tc, test_replay_restart_moves_numbers);
	tcase_add_test(tc, test_replay_restart_new_epoch);
	tcase_add_test(tc, test_replay_restart_fails_every_follower);
	tcase_add_test(tc, test_replay_publish_frame_takes_encoder_shape);
	tcase_add_test(tc, test_replay_publish_frame_rejects_malformed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(replay_suite());
}
