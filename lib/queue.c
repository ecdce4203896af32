/*
 * A stream's own byte queue (lib/queue.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "queue.h"

/* Small enough for a heartbeat-only stream, large enough that a typical
 * event does not regrow the buffer at once. */
#define QUEUE_MIN_CAP 256

/* Bytes the tail can take without passing the limit. */
static size_t room(const struct sse__queue *q)
{
	size_t pending = q->tail - q->head;
	size_t free_tail = q->cap - q->tail;
	size_t allowed = q->limit > pending ? q->limit - pending : 0;

	return free_tail < allowed ? free_tail : allowed;
}

/* Where the next frame goes; NULL (not NULL + 0) before the first use. */
static char *end(const struct sse__queue *q)
{
	return q->buf ? q->buf + q->tail : NULL;
}

/* Move the unsent bytes to the front, so the free space is all at the tail. */
static void compact(struct sse__queue *q)
{
	size_t pending = q->tail - q->head;

	if (q->head == 0 || q->done < q->head)
		return; /* a transport holds bytes before head: they stay put */
	if (pending > 0)
		memmove(q->buf, q->buf + q->head, pending);
	q->done = q->head = 0;
	q->tail = pending;
}

/* A capacity of at least total: doubling, but never past the limit when
 * total fits under it, so the limit also bounds the memory. */
static size_t grown_cap(const struct sse__queue *q, size_t total)
{
	size_t cap = q->cap ? q->cap : QUEUE_MIN_CAP;

	while (cap < total && cap <= SIZE_MAX / 2)
		cap *= 2;
	if (cap < total)
		cap = total;
	if (cap > q->limit && total <= q->limit)
		cap = q->limit;
	return cap;
}

/* A new buffer while a transport holds bytes of this one: the unsent
 * bytes move, the held ones stay in the old buffer until completed. */
static int replace(struct sse__queue *q, const struct sse_allocator *a, struct sse__flight *f,
		   size_t cap)
{
	size_t pending = q->tail - q->head;
	char *buf = sse__alloc(a, cap);

	if (buf == NULL)
		return SSE_ERR_NOMEM;
	if (sse__flight_keep(f, q->buf, q->cap, q->head - q->done) != 0) {
		sse__free(a, buf, cap);
		return SSE_ERR_QUEUE_FULL; /* until the transport completes */
	}
	if (pending > 0)
		memcpy(buf, q->buf + q->head, pending);
	q->buf = buf;
	q->cap = cap;
	q->done = q->head = 0;
	q->tail = pending;
	return 0;
}

/* Make room for n more bytes at the tail. Fails, changing no queued byte,
 * with SSE_ERR_QUEUE_FULL past the limit or SSE_ERR_NOMEM. */
static int reserve(struct sse__queue *q, const struct sse_allocator *a, struct sse__flight *f,
		   size_t n)
{
	size_t pending = q->tail - q->head;
	size_t cap;
	char *buf;

	if (pending > q->limit || n > q->limit - pending)
		return SSE_ERR_QUEUE_FULL;
	if (n <= q->cap - q->tail)
		return 0;
	compact(q);
	if (n <= q->cap - q->tail)
		return 0;
	cap = grown_cap(q, pending + n);
	if (q->done < q->head)
		return replace(q, a, f, cap);
	buf = sse__realloc(a, q->buf, q->cap, cap);
	if (buf == NULL)
		return SSE_ERR_NOMEM;
	q->buf = buf;
	q->cap = cap;
	return 0;
}

/* Encode into the room there is, and on SSE_ERR_BUFFER reserve the exact
 * size reported and write it there: the frame is checked once either way.
 * On any error the tail is not advanced. */
int sse__queue_frame(struct sse__queue *q, const struct sse_allocator *a, struct sse__flight *f,
		     const struct sse__frame_ops *ops, const void *src, unsigned flags)
{
	size_t n = 0;
	int rc = ops->encode(src, flags, end(q), room(q), &n);

	if (rc == SSE_ERR_BUFFER) {
		rc = reserve(q, a, f, n);
		if (rc != 0)
			return rc;
		rc = ops->write(src, end(q), n);
	}
	if (rc == 0)
		q->tail += n;
	return rc;
}

void sse__queue_took(struct sse__queue *q, size_t n, bool held)
{
	q->head += n;
	if (!held)
		q->done = q->head;
}

void sse__queue_done(struct sse__queue *q, const struct sse_allocator *a, struct sse__flight *f,
		     size_t n)
{
	q->done += n - sse__flight_release(a, f, n);
}

void sse__queue_rewind(struct sse__queue *q)
{
	if (q->done == q->head && q->head == q->tail)
		q->done = q->head = q->tail = 0;
}

void sse__queue_drop(struct sse__queue *q, const struct sse_allocator *a, bool held)
{
	if (held)
		return;
	sse__free(a, q->buf, q->cap);
	q->buf = NULL;
	q->cap = q->done = q->head = q->tail = 0;
}
