/*
 * The bytes a stream queues itself (the opening bytes, heartbeats, direct
 * sends), in one contiguous buffer: [done, head) are held by an
 * asynchronous transport, [head, tail) are unsent. Frames are encoded
 * straight into the free tail, so an event is queued whole or not at all.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_QUEUE_H
#define SSE_PRIV_QUEUE_H

#include <stdbool.h>

#include "flight.h"

struct sse__queue {
	char *buf;   /* cap bytes, NULL until first use */
	size_t cap;
	size_t done; /* first byte a transport still holds */
	size_t head; /* first unsent byte */
	size_t tail; /* end of the unsent bytes */
	size_t limit; /* bound on tail - head after a frame is queued */
};

/* How a frame is made: encode checks it and writes it into dst[0..cap),
 * reporting its size as sse_encode() does (SSE_ERR_BUFFER: too small,
 * *written the size needed); write then writes the frame so checked into
 * exactly size bytes, without checking it again. */
struct sse__frame_ops {
	int (*encode)(const void *src, unsigned flags, char *dst, size_t cap, size_t *written);
	int (*write)(const void *src, char *dst, size_t size);
};

/* Queue one frame, whole, or nothing: 0, the encoder's error,
 * SSE_ERR_QUEUE_FULL past the limit, or SSE_ERR_NOMEM. The buffer grows
 * by doubling up to the limit; bytes a transport holds never move (a new
 * buffer takes the unsent ones, and f keeps the old one). */
int sse__queue_frame(struct sse__queue *q, const struct sse_allocator *a, struct sse__flight *f,
		     const struct sse__frame_ops *ops, const void *src, unsigned flags);

/* n unsent bytes left; held: a transport keeps using them until done. */
void sse__queue_took(struct sse__queue *q, size_t n, bool held);

/* n held bytes are done: those of replaced buffers first. */
void sse__queue_done(struct sse__queue *q, const struct sse_allocator *a, struct sse__flight *f,
		     size_t n);

/* Nothing unsent: reuse the buffer from its start, if nothing is held. */
void sse__queue_rewind(struct sse__queue *q);

/* Let the buffer go; never while a transport holds bytes of it. */
void sse__queue_drop(struct sse__queue *q, const struct sse_allocator *a, bool held);

#endif
