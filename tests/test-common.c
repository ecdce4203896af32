/*
 * SPDX-License-Identifier: MIT
 */
#include "test-common.h"

#include <stdlib.h>
#include <string.h>

void test_writer_init(struct test_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->fail_after = -1;
	w->fail_code = SSE_ERR_IO;
	w->accept_calls = -1;
}

void test_writer_fini(struct test_writer *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

static void writer_append(struct test_writer *w, const void *buf, size_t n)
{
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 64;
		while (cap < w->len + n)
			cap *= 2;
		w->buf = realloc(w->buf, cap);
		ck_assert_ptr_nonnull(w->buf);
		w->cap = cap;
	}
	memcpy(w->buf + w->len, buf, n);
	w->len += n;
}

/* Whether this call fails or would block; 0 when it may take bytes. */
static int writer_refuses(struct test_writer *w)
{
	w->calls++;
	if (w->fail_after >= 0 && w->calls > w->fail_after)
		return w->fail_code;
	if (w->wouldblock_left > 0) {
		w->wouldblock_left--;
		return SSE_ERR_WOULDBLOCK;
	}
	if (w->accept_calls == 0)
		return SSE_ERR_WOULDBLOCK;
	if (w->accept_calls > 0)
		w->accept_calls--;
	return 0;
}

int test_writer_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	struct test_writer *w = ctx;
	size_t n = len;
	int rc = writer_refuses(w);

	if (rc != 0)
		return rc;
	if (w->max_per_call && n > w->max_per_call)
		n = w->max_per_call;
	writer_append(w, buf, n);
	*taken = n;
	return 0;
}

int test_writer_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct test_writer *w = ctx;
	size_t budget = w->max_per_call ? w->max_per_call : SIZE_MAX;
	int rc = writer_refuses(w);

	if (rc != 0)
		return rc;
	w->writev_calls++;
	if (n > w->max_pieces)
		w->max_pieces = n;
	*taken = 0;
	for (size_t i = 0; i < n && budget > 0; i++) {
		size_t k = iov[i].len < budget ? iov[i].len : budget;

		writer_append(w, iov[i].base, k);
		*taken += k;
		budget -= k;
	}
	return 0;
}

int test_writer_flush(void *ctx)
{
	struct test_writer *w = ctx;

	w->flushes++;
	return 0;
}

struct sse_transport test_writer_transport(struct test_writer *w, bool writev)
{
	return (struct sse_transport){.size = sizeof(struct sse_transport),
				      .write = test_writer_write,
				      .writev = writev ? test_writer_writev : NULL,
				      .flush = test_writer_flush,
				      .ctx = w};
}

struct sse_stream *test_stream_new(struct test_writer *w, bool writev,
				   const struct sse_allocator *alloc)
{
	struct sse_transport t = test_writer_transport(w, writev);
	struct sse_stream *s = NULL;

	ck_assert_int_eq(sse_stream_new(&s, &t, w, alloc), 0);
	return s;
}

/* Each block carries its size in a header so the counts stay exact even
 * when the library passes a wrong size (which a test then catches). */
struct block_head {
	size_t size;
	max_align_t align;
};

static int alloc_should_fail(struct test_alloc *ta)
{
	ta->calls++;
	return ta->fail_at != 0 && ta->calls == ta->fail_at;
}

static void account(struct test_alloc *ta, long blocks, long long bytes)
{
	ta->live_blocks += blocks;
	ta->live_bytes += bytes;
	if (ta->live_bytes > ta->peak_bytes)
		ta->peak_bytes = ta->live_bytes;
}

static void *ta_alloc(size_t size, void *ctx)
{
	struct test_alloc *ta = ctx;
	struct block_head *h;

	if (alloc_should_fail(ta))
		return NULL;
	h = malloc(sizeof(*h) + size);
	if (h == NULL)
		return NULL;
	h->size = size;
	account(ta, 1, (long long)size);
	return h + 1;
}

static void *ta_realloc(void *ptr, size_t old_size, size_t new_size, void *ctx)
{
	struct test_alloc *ta = ctx;
	struct block_head *h, *n;

	if (ptr == NULL)
		return ta_alloc(new_size, ctx);
	h = (struct block_head *)ptr - 1;
	ck_assert_uint_eq(h->size, old_size);
	if (alloc_should_fail(ta))
		return NULL;
	n = realloc(h, sizeof(*n) + new_size);
	if (n == NULL)
		return NULL;
	n->size = new_size;
	account(ta, 0, (long long)new_size - (long long)old_size);
	return n + 1;
}

static void ta_free(void *ptr, size_t size, void *ctx)
{
	struct test_alloc *ta = ctx;
	struct block_head *h;

	if (ptr == NULL)
		return;
	h = (struct block_head *)ptr - 1;
	ck_assert_uint_eq(h->size, size);
	account(ta, -1, -(long long)h->size);
	free(h);
}

void test_alloc_init(struct test_alloc *ta, long fail_at)
{
	memset(ta, 0, sizeof(*ta));
	ta->fail_at = fail_at;
	ta->hooks = (struct sse_allocator){ta_alloc, ta_realloc, ta_free, ta};
}

int test_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
