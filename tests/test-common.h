/*
 * Test doubles shared by the Check suites: transports that capture, take
 * one byte at a time, refuse N times, or fail; and an allocator that counts
 * live bytes and fails at the Nth call.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_TEST_COMMON_H
#define SSE_TEST_COMMON_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#include "sse.h"

/* A transport double. What it accepts is appended to buf. */
struct test_writer {
	char *buf;
	size_t len, cap;
	size_t max_per_call;  /* 0: take everything offered; 1: one byte a time */
	int wouldblock_left;  /* refuse this many calls with SSE_ERR_WOULDBLOCK */
	int accept_calls;     /* then take this many calls and refuse the rest; -1 all */
	int fail_after;       /* fail (return fail_code) after this many calls; -1 never */
	int fail_code;        /* what a failing call returns (default SSE_ERR_IO) */
	int calls;            /* write and writev calls seen */
	int writev_calls;     /* of which writev */
	size_t max_pieces;    /* most pieces one writev call got */
	int flushes;          /* flush calls seen */
};

void test_writer_init(struct test_writer *w);
void test_writer_fini(struct test_writer *w);
int test_writer_write(const void *buf, size_t len, size_t *taken, void *ctx);
int test_writer_flush(void *ctx);
/* The same transport through writev: takes up to max_per_call bytes in
 * all, across the pieces, stopping at any byte. */
int test_writer_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx);
/* A push transport over w: write and flush, and writev when asked. */
struct sse_transport test_writer_transport(struct test_writer *w, bool writev);
/* A stream on test_writer_transport(w, writev), whose user pointer is w
 * too; fails the test if it cannot be made. */
struct sse_stream *test_stream_new(struct test_writer *w, bool writev,
				   const struct sse_allocator *alloc);

/* An allocator double: fails the call numbered fail_at (1-based; 0 never),
 * and counts live allocations and bytes so a test can prove no leak. */
struct test_alloc {
	struct sse_allocator hooks; /* pass &ta.hooks to a _new function */
	long calls;
	long fail_at;
	long live_blocks;
	long long live_bytes;
	long long peak_bytes;
};

void test_alloc_init(struct test_alloc *ta, long fail_at);

/* Run a Check suite; CK_RUN_SUITE/CK_RUN_CASE pick a subset as usual. */
int test_run_suite(Suite *s);

#endif
