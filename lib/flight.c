/*
 * The in-flight ledger of an asynchronous transport (lib/flight.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "flight.h"

#include <string.h>

/* Runs of one kind merge, so the FIFO fills only when the transport holds
 * many calls that alternate the queue and the ring; a stream then waits
 * for completions. Replaced queue buffers kept at once: 16. */
#define CALLS_MAX 16
#define RUNS_MAX (CALLS_MAX * SSE__FLIGHT_PER_CALL)
/* Each kept buffer holds bytes of at least one call still held. */
#define OLD_MAX CALLS_MAX

struct sse__flight_run {
	size_t len;
	int kind; /* enum sse__piece_kind */
};

/* A queue buffer replaced while the transport held some of its bytes. */
struct sse__flight_buf {
	char *buf;
	size_t cap, held;
};

struct sse__flight {
	struct sse__flight_run runs[RUNS_MAX]; /* a circular FIFO */
	size_t head, n;
	size_t bytes;                          /* in flight in all */
	struct sse__flight_buf old[OLD_MAX];   /* oldest first */
	size_t nold;
};

int sse__flight_reserve(const struct sse_allocator *a, struct sse__flight **f)
{
	if (*f == NULL) {
		*f = sse__alloc(a, sizeof(**f));
		if (*f == NULL)
			return SSE_ERR_NOMEM;
		**f = (struct sse__flight){.head = 0};
	}
	return (*f)->n + SSE__FLIGHT_PER_CALL <= RUNS_MAX ? 0 : SSE_ERR_WOULDBLOCK;
}

size_t sse__flight_bytes(const struct sse__flight *f)
{
	return f ? f->bytes : 0;
}

int sse__flight_keep(struct sse__flight *f, char *buf, size_t cap, size_t held)
{
	if (f == NULL || f->nold == OLD_MAX)
		return SSE_ERR_QUEUE_FULL;
	f->old[f->nold++] = (struct sse__flight_buf){buf, cap, held};
	return 0;
}

size_t sse__flight_release(const struct sse_allocator *a, struct sse__flight *f, size_t n)
{
	size_t theirs = 0;

	while (n > 0 && f->nold > 0) {
		struct sse__flight_buf *b = &f->old[0];
		size_t k = n < b->held ? n : b->held;

		b->held -= k;
		theirs += k;
		n -= k;
		if (b->held > 0)
			break;
		sse__free(a, b->buf, b->cap);
		memmove(f->old, f->old + 1, --f->nold * sizeof(*f->old));
	}
	return theirs;
}

void sse__flight_add(struct sse__flight *f, int kind, size_t len)
{
	struct sse__flight_run *last = f->n ? &f->runs[(f->head + f->n - 1) % RUNS_MAX] : NULL;

	f->bytes += len;
	if (last != NULL && last->kind == kind) {
		last->len += len;
		return;
	}
	f->runs[(f->head + f->n) % RUNS_MAX] = (struct sse__flight_run){len, kind};
	f->n++;
}

size_t sse__flight_pop(struct sse__flight *f, size_t max, int *kind)
{
	struct sse__flight_run *front = &f->runs[f->head];
	size_t k = max < front->len ? max : front->len;

	*kind = front->kind;
	front->len -= k;
	f->bytes -= k;
	if (front->len == 0) {
		f->head = (f->head + 1) % RUNS_MAX;
		f->n--;
	}
	return k;
}

void sse__flight_free(const struct sse_allocator *a, struct sse__flight *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->nold; i++)
		sse__free(a, f->old[i].buf, f->old[i].cap);
	sse__free(a, f, sizeof(*f));
}
