/*
 * The scheduler: a binary min-heap of streams by deadline (heartbeat or
 * stall), so a tick visits only the streams that are due.
 *
 * Sends do not touch the heap (they only stamp the stream), so a stream's
 * key may be earlier than its true deadline. Such a stream is visited,
 * found not idle, and re-keyed to its true deadline: at most one early
 * visit per idle interval, and never a missed one, since keys are never
 * later than the truth.
 *
 * SPDX-License-Identifier: MIT
 */
#include "timers.h"

struct timer_entry {
	uint64_t key;
	struct sse_stream *stream;
};

struct sse_timers {
	struct sse_allocator alloc;
	struct timer_entry *heap;
	size_t len, cap;
	uint64_t now; /* the streams' clock while attached */
	sse_stream_failed_fn on_failed;
	void *user;
};

int sse_timers_new(struct sse_timers **out, sse_stream_failed_fn on_failed, void *user,
		   const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_timers *t;

	if (out == NULL || sse__allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	t = sse__alloc(&a, sizeof(*t));
	if (t == NULL)
		return SSE_ERR_NOMEM;
	*t = (struct sse_timers){.alloc = a, .on_failed = on_failed, .user = user};
	*out = t;
	return 0;
}

/* Off the heap: its own clock again. */
static void detach(struct sse_stream *s)
{
	*sse__stream_heap_slot(s) = SIZE_MAX;
	sse__stream_use_clock(s, NULL);
}

/* A stream attached by sse_timers_add() has the scheduler as its owner. */
static bool owned_by(const struct sse_timers *t, const struct sse_stream *s)
{
	return sse__stream_owner(s) == t;
}

void sse_timers_free(struct sse_timers *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->len; i++) {
		struct sse_stream *s = t->heap[i].stream;

		if (owned_by(t, s))
			sse__stream_set_owner(s, NULL, NULL);
		detach(s);
	}
	sse__free(&t->alloc, t->heap, t->cap * sizeof(*t->heap));
	sse__free(&t->alloc, t, sizeof(*t));
}

size_t sse_timers_count(const struct sse_timers *t)
{
	return t ? t->len : 0;
}

static void place(struct sse_timers *t, size_t i, struct timer_entry e)
{
	t->heap[i] = e;
	*sse__stream_heap_slot(e.stream) = i;
}

static void sift_up(struct sse_timers *t, size_t i)
{
	struct timer_entry e = t->heap[i];

	while (i > 0 && t->heap[(i - 1) / 2].key > e.key) {
		place(t, i, t->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(t, i, e);
}

static void sift_down(struct sse_timers *t, size_t i)
{
	struct timer_entry e = t->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= t->len)
			break;
		if (c + 1 < t->len && t->heap[c + 1].key < t->heap[c].key)
			c++;
		if (t->heap[c].key >= e.key)
			break;
		place(t, i, t->heap[c]);
		i = c;
	}
	place(t, i, e);
}

int sse__timers_insert(struct sse_timers *t, struct sse_stream *s)
{
	if (t->len == t->cap && sse__grow(&t->alloc, (void **)&t->heap, &t->cap, sizeof(*t->heap)) != 0)
		return SSE_ERR_NOMEM;
	sse__stream_use_clock(s, &t->now);
	t->heap[t->len] = (struct timer_entry){sse__stream_deadline(s), s};
	sift_up(t, t->len++);
	return 0;
}

/* Take the entry at i out, keeping the heap ordered. */
static void heap_remove(struct sse_timers *t, size_t i)
{
	struct timer_entry last = t->heap[--t->len];

	if (i == t->len)
		return;
	place(t, i, last);
	sift_up(t, i);
	sift_down(t, *sse__stream_heap_slot(last.stream));
}

void sse__timers_erase(struct sse_timers *t, struct sse_stream *s)
{
	size_t i = *sse__stream_heap_slot(s);

	if (i >= t->len || t->heap[i].stream != s)
		return;
	heap_remove(t, i);
	detach(s);
}

void sse__timers_update(struct sse_timers *t, struct sse_stream *s)
{
	size_t i = *sse__stream_heap_slot(s);

	if (i >= t->len || t->heap[i].stream != s)
		return;
	t->heap[i].key = sse__stream_deadline(s);
	sift_up(t, i);
	sift_down(t, *sse__stream_heap_slot(s));
}

static void owner_deadline_moved(void *owner, struct sse_stream *s)
{
	sse__timers_update(owner, s);
}

static void owner_release(void *owner, struct sse_stream *s)
{
	sse_timers_remove(owner, s);
}

static const struct sse__owner_ops timers_owner = {
	.deadline_moved = owner_deadline_moved,
	.release = owner_release,
};

int sse_timers_add(struct sse_timers *t, struct sse_stream *s)
{
	int rc;

	if (t == NULL || s == NULL || sse__stream_owner(s) != NULL || sse__stream_idle(s) != 0)
		return SSE_ERR_INVALID;
	rc = sse__timers_insert(t, s);
	if (rc == 0)
		sse__stream_set_owner(s, &timers_owner, t);
	return rc;
}

void sse_timers_remove(struct sse_timers *t, struct sse_stream *s)
{
	if (t == NULL || s == NULL || !owned_by(t, s))
		return;
	sse__timers_erase(t, s);
	sse__stream_set_owner(s, NULL, NULL);
}

/* Visit the stream at the top: heartbeat if idle, then re-key it; a
 * stream that failed leaves the heap before the application hears of it,
 * so the callback may free it. */
static void visit_top(struct sse_timers *t)
{
	struct sse_stream *s = t->heap[0].stream;
	int rc = sse__stream_visit(s);

	if (rc != 0) {
		heap_remove(t, 0);
		detach(s);
		if (owned_by(t, s))
			sse__stream_set_owner(s, NULL, NULL);
		if (t->on_failed != NULL)
			t->on_failed(s, rc, t->user);
		return;
	}
	t->heap[0].key = sse__stream_deadline(s);
	sift_down(t, 0);
}

int sse_timers_run(struct sse_timers *t, uint64_t now_ms, uint64_t *next_ms, size_t *visited)
{
	size_t n = 0;

	if (t == NULL)
		return SSE_ERR_INVALID;
	t->now = now_ms;
	while (t->len > 0 && t->heap[0].key <= now_ms) {
		visit_top(t);
		n++;
	}
	if (next_ms != NULL)
		*next_ms = t->len > 0 ? t->heap[0].key : SSE_NO_DEADLINE;
	if (visited != NULL)
		*visited = n;
	return 0;
}
