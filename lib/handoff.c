/*
 * The handoff: a bounded multi-producer, single-consumer queue of events,
 * for publishing into a hub from threads other than the loop's.
 *
 * A ring of slots, each with a sequence number (the bounded queue of
 * D. Vyukov, with one consumer). Slot i starts at seq i. A producer
 * claims position pos when its slot's seq equals pos (moving the tail on
 * by compare-and-swap), copies the event in, and releases seq = pos + 1.
 * The consumer reads position head when its slot's seq is head + 1, and
 * hands the slot back to the producers of the next lap with seq = head +
 * n. A slot whose seq is behind pos is still owned by the consumer: the
 * queue is full. The payload bytes are plain memory; the release store
 * of seq and the acquire load that sees it order them.
 *
 * Wake-ups: `pending` is 1 while a wake-up is owed or on its way. A
 * producer exchanges it to 1 after releasing its slot and wakes the loop
 * only if it was 0; a drain exchanges it to 0 before it reads. Both are
 * read-modify-writes, so a drain that reads a producer's 1 sees that
 * producer's event, and a producer that comes after the drain's exchange
 * reads 0 (or the 1 of one that did) and a wake-up follows: none is lost.
 *
 * Nothing here allocates after sse_handoff_new().
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#include "sse-private.h"

enum { HAS_ID = 1, HAS_TYPE = 2, HAS_DATA = 4 };

struct slot {
	atomic_size_t seq;
	size_t id_len, type_len, data_len;
	long retry;
	unsigned has;
	/* then max_event_bytes of id, type and data, in that order */
};

/* Keeps the producers' tail and the consumer's head on separate cache lines. */
#define PAD 64

struct sse_handoff {
	struct sse_allocator alloc;
	size_t mask;          /* slots - 1; slots is a power of two >= 2 */
	size_t stride;        /* bytes from one slot to the next */
	size_t max_event_bytes;
	size_t total;         /* bytes allocated, for the free hook */
	unsigned flags;
	unsigned char *slots;
	char pad0[PAD];
	atomic_size_t tail;   /* next position producers claim */
	char pad1[PAD];
	atomic_size_t head;   /* next position the consumer reads; written by it only */
	atomic_int pending;   /* a wake-up is owed or on its way */
	char pad2[PAD];
};

static struct slot *slot_at(const struct sse_handoff *q, size_t pos)
{
	return (struct slot *)(void *)(q->slots + (pos & q->mask) * q->stride);
}

static unsigned char *slot_bytes(struct slot *s)
{
	return (unsigned char *)(s + 1);
}

int sse_handoff_new(struct sse_handoff **out, size_t slots, size_t max_event_bytes,
		    unsigned flags, const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_handoff *q;
	size_t n = 2, align = alignof(max_align_t), stride, total;

	if (!out || slots == 0 || max_event_bytes == 0 || sse__allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	while (n < slots) {
		if (n > SIZE_MAX / 4)
			return SSE_ERR_TOO_LARGE;
		n *= 2;
	}
	if (max_event_bytes > SIZE_MAX - sizeof(struct slot) - align)
		return SSE_ERR_TOO_LARGE;
	stride = (sizeof(struct slot) + max_event_bytes + align - 1) / align * align;
	if (stride > (SIZE_MAX - sizeof(*q) - align) / n)
		return SSE_ERR_TOO_LARGE;
	total = (sizeof(*q) + align - 1) / align * align + n * stride;
	q = sse__alloc(&a, total);
	if (!q)
		return SSE_ERR_NOMEM;
	memset(q, 0, sizeof(*q));
	q->alloc = a;
	q->mask = n - 1;
	q->stride = stride;
	q->max_event_bytes = max_event_bytes;
	q->total = total;
	q->flags = flags;
	q->slots = (unsigned char *)q + (sizeof(*q) + align - 1) / align * align;
	for (size_t i = 0; i < n; i++)
		atomic_init(&slot_at(q, i)->seq, i);
	atomic_init(&q->tail, 0);
	atomic_init(&q->head, 0);
	atomic_init(&q->pending, 0);
	*out = q;
	return 0;
}

void sse_handoff_free(struct sse_handoff *q)
{
	if (q)
		sse__free(&q->alloc, q, q->total);
}

/* The event's text bytes, or SSE_ERR_TOO_LARGE past the slot's room. */
static int event_bytes(const struct sse_handoff *q, const struct sse_event *ev, size_t *len)
{
	size_t n = 0, parts[3] = {ev->id ? ev->id_len : 0, ev->type ? ev->type_len : 0,
				  ev->data ? ev->data_len : 0};

	for (int i = 0; i < 3; i++) {
		if (parts[i] > q->max_event_bytes - n)
			return SSE_ERR_TOO_LARGE;
		n += parts[i];
	}
	*len = n;
	return 0;
}

static void copy_in(struct slot *s, const struct sse_event *ev)
{
	unsigned char *p = slot_bytes(s);

	s->has = (ev->id ? HAS_ID : 0) | (ev->type ? HAS_TYPE : 0) | (ev->data ? HAS_DATA : 0);
	s->id_len = ev->id ? ev->id_len : 0;
	s->type_len = ev->type ? ev->type_len : 0;
	s->data_len = ev->data ? ev->data_len : 0;
	s->retry = ev->retry;
	if (s->id_len)
		memcpy(p, ev->id, s->id_len);
	if (s->type_len)
		memcpy(p + s->id_len, ev->type, s->type_len);
	if (s->data_len)
		memcpy(p + s->id_len + s->type_len, ev->data, s->data_len);
}

static struct sse_event copy_out(struct slot *s)
{
	const char *p = (const char *)slot_bytes(s);

	return (struct sse_event){
		.id = (s->has & HAS_ID) ? p : NULL,
		.id_len = s->id_len,
		.type = (s->has & HAS_TYPE) ? p + s->id_len : NULL,
		.type_len = s->type_len,
		.data = (s->has & HAS_DATA) ? p + s->id_len + s->type_len : NULL,
		.data_len = s->data_len,
		.retry = s->retry,
	};
}

int sse_handoff_push(struct sse_handoff *q, const struct sse_event *ev, int *wake)
{
	size_t size, len, pos;
	struct slot *s;
	int rc;

	if (wake)
		*wake = 0;
	if (!q || !ev || !wake)
		return SSE_ERR_INVALID;
	rc = sse_encode_size(ev, q->flags, &size);
	if (rc == 0)
		rc = event_bytes(q, ev, &len);
	if (rc != 0)
		return rc;

	pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
	for (;;) {
		size_t seq;

		s = slot_at(q, pos);
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (seq == pos) {
			if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
			/* lost the race: pos now holds the current tail */
		} else if (seq - pos > SIZE_MAX / 2) {
			/* seq < pos: the consumer has not handed this slot back */
			return SSE_ERR_QUEUE_FULL;
		} else {
			pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
		}
	}
	copy_in(s, ev);
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
	*wake = atomic_exchange_explicit(&q->pending, 1, memory_order_acq_rel) == 0;
	return 0;
}

int sse_handoff_drain(struct sse_handoff *q, struct sse_hub *h, uint64_t now_ms, size_t max,
		      size_t *published)
{
	size_t done = 0, head;
	int rc = 0;

	if (published)
		*published = 0;
	if (!q || !h)
		return SSE_ERR_INVALID;
	if (max == 0)
		max = q->mask + 1;
	atomic_exchange_explicit(&q->pending, 0, memory_order_acq_rel);
	head = atomic_load_explicit(&q->head, memory_order_relaxed);
	for (;;) {
		struct slot *s = slot_at(q, head);
		struct sse_event ev;

		if (atomic_load_explicit(&s->seq, memory_order_acquire) != head + 1)
			break; /* empty, or its producer is still copying */
		if (done == max) {
			rc = 1;
			break;
		}
		ev = copy_out(s);
		rc = sse_hub_publish(h, &ev, now_ms, NULL);
		if (rc == SSE_ERR_PINNED || rc == SSE_ERR_NOMEM)
			break;
		atomic_store_explicit(&s->seq, head + q->mask + 1, memory_order_release);
		head++;
		atomic_store_explicit(&q->head, head, memory_order_relaxed);
		if (rc != 0)
			break;
		done++;
	}
	if (published)
		*published = done;
	return rc;
}

size_t sse_handoff_count(const struct sse_handoff *q)
{
	size_t head, tail;

	if (!q)
		return 0;
	head = atomic_load_explicit(&q->head, memory_order_relaxed);
	tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	return tail - head > q->mask + 1 ? 0 : tail - head;
}
