/*
 * What an asynchronous transport holds, in the order it took it: runs of
 * bytes by origin (the stream's queue, or the ring it follows), so that
 * completions, which come in the same order, release the right bytes.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_FLIGHT_H
#define SSE_PRIV_FLIGHT_H

#include "sse-private.h"

/* Runs one transport call adds at most: the rest of a frame, the queue,
 * whole frames. */
#define SSE__FLIGHT_PER_CALL 3

/* Allocated at a stream's first asynchronous write: streams on other
 * transports never pay for it. */
struct sse__flight;

/* Room for one more transport call's runs, allocating *f at first use: 0,
 * or SSE_ERR_WOULDBLOCK when the transport holds as many calls as we
 * track (wait for completions), or SSE_ERR_NOMEM. */
int sse__flight_reserve(const struct sse_allocator *a, struct sse__flight **f);

/* Bytes held in all (0 for NULL). */
size_t sse__flight_bytes(const struct sse__flight *f);

/* Record len bytes of kind taken; after sse__flight_reserve() for the call. */
void sse__flight_add(struct sse__flight *f, int kind, size_t len);

/* The front run: its kind, and how much of at most max is done from it. */
size_t sse__flight_pop(struct sse__flight *f, size_t max, int *kind);

/* Keep a replaced queue buffer until the held bytes it has are done:
 * 0, or SSE_ERR_QUEUE_FULL when as many are kept as calls can be held. */
int sse__flight_keep(struct sse__flight *f, char *buf, size_t cap, size_t held);

/* n done bytes of the queue: those of kept buffers first, freeing each
 * that holds none any more. Returns how many of n were theirs. */
size_t sse__flight_release(const struct sse_allocator *a, struct sse__flight *f, size_t n);

/* Free f and the buffers it keeps; NULL does nothing. */
void sse__flight_free(const struct sse_allocator *a, struct sse__flight *f);

#endif
