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
#define BLOCK_SIZE (RUNS_MAX * sizeof(struct sse__flight_run) + OLD_MAX * sizeof(struct sse__flight_buf))

int sse__flight_reserve(const struct sse_allocator *a, struct sse__flight *f)
{
	if (f->runs == NULL) {
		f->runs = sse__alloc(a, BLOCK_SIZE);
		if (f->runs == NULL)
			return SSE_ERR_NOMEM;
		f->old = (struct sse__flight_buf *)(void *)(f->runs + RUNS_MAX);
	}
	return f->n + SSE__FLIGHT_PER_CALL <= RUNS_MAX ? 0 : SSE_ERR_WOULDBLOCK;
}

int sse__flight_keep(struct sse__flight *f, char *buf, size_t cap, size_t held)
{
	if (f->old == NULL || f->nold == OLD_MAX)
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
	for (size_t i = 0; i < f->nold; i++)
		sse__free(a, f->old[i].buf, f->old[i].cap);
	sse__free(a, f->runs, f->runs ? BLOCK_SIZE : 0);
	*f = (struct sse__flight){0};
}
