/*
 * What the modules above a stream need of it: the owner hook through which
 * a scheduler or a hub attaches, and the source hook through which a
 * stream follows a ring (lib/follow.c). The stream calls both only
 * through the function pointers given here, so it never includes or
 * calls a module above it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_STREAM_H
#define SSE_PRIV_STREAM_H

#include <stdbool.h>

#include "sse-private.h"

/* ---- the owner hook: the one scheduler or hub a stream belongs to */

struct sse__owner_ops {
	/* The stream's deadline moved earlier: re-sort it. */
	void (*deadline_moved)(void *owner, struct sse_stream *s);
	/* A read found nothing owed: the stream is caught up again. */
	void (*drained)(void *owner, struct sse_stream *s);
	/* The stream is being freed: let it go. */
	void (*release)(void *owner, struct sse_stream *s);
	/* Optional: around a call of the stream's own that may read its
	 * ring's frames, when the ring is shared with a writer on another
	 * thread (lib/replay.c's floors); calls nest. */
	void (*enter)(void *owner);
	void (*leave)(void *owner);
};

/* Attach the stream to an owner (ops NULL: to none). */
void sse__stream_set_owner(struct sse_stream *s, const struct sse__owner_ops *ops, void *owner);
/* The owner's context, NULL when the stream has none. */
void *sse__stream_owner(const struct sse_stream *s);

/* Positions an owner keeps in the stream: in a deadline heap (SIZE_MAX
 * when not in one) and in the owner's own array. */
size_t *sse__stream_heap_slot(struct sse_stream *s);
size_t *sse__stream_owner_slot(struct sse_stream *s);

/* Point the stream's clock at a scheduler's time, or back at its own
 * (clock NULL), which then starts from the scheduler's last time. */
void sse__stream_use_clock(struct sse_stream *s, const uint64_t *clock);

/* When the stream next needs a visit, by its own clock: its heartbeat,
 * or the end of its stall time; SSE_NO_DEADLINE when neither is set. */
uint64_t sse__stream_deadline(const struct sse_stream *s);

/* A visit at the stream's clock: fail it if it stalled or missed events,
 * else send a heartbeat if it was idle. Returns 0 or the stream's error. */
int sse__stream_visit(struct sse_stream *s);

/* ---- the source hook: frames a stream hands out without copying them */

/* Where a piece of output comes from, so taken bytes can be accounted. */
enum sse__piece_kind { SSE__PIECE_QUEUE, SSE__PIECE_SOURCE };

/* The pieces of one transport call, in order, their origin, and for a
 * source piece the frames it ends (a piece always ends at a frame's end),
 * so a piece taken whole is accounted without walking its frames. */
struct sse__gather {
	struct sse_iovec iov[SSE_IOV_MAX];
	unsigned char from[SSE_IOV_MAX]; /* enum sse__piece_kind */
	size_t frames[SSE_IOV_MAX];
	size_t n;
};

/* Append a piece; the caller checks there is room. */
void sse__gather_add(struct sse__gather *g, enum sse__piece_kind kind, const void *base,
		     size_t len, size_t frames);

struct sse__source;

struct sse__source_ops {
	/* Append the owed pieces while g has room: only the rest of the frame
	 * in progress (rest true), or the whole frames after it. */
	void (*gather)(const struct sse__source *src, struct sse__gather *g, bool rest);
	/* n bytes of a gathered piece of len bytes ending `frames` frames
	 * were taken (n <= len); held: an asynchronous transport keeps using
	 * them until it completes them. */
	void (*consume)(struct sse__source *src, size_t n, size_t len, size_t frames, bool held);
	/* Bytes owed from the source; 0 when it missed events. */
	uint64_t (*owed)(const struct sse__source *src);
	/* 0, or SSE_ERR_GAP when the stream missed events or lags too far. */
	int (*check)(const struct sse__source *src);
	/* n bytes in flight were completed (asynchronous transports). */
	void (*complete)(struct sse__source *src, size_t n);
	/* Let go of the pin of the bytes in flight (the stream is freed). */
	void (*release)(struct sse__source *src);
};

/* A stream's position in a ring: frames [cursor, live end) are owed, and
 * the first frame_off bytes of frame cursor are written already. */
struct sse__source {
	/* NULL: follows nothing; lib/follow.c's ops for a ring, or for a
	 * stream unfollowed while its transport held frames (it completes
	 * them and hands out nothing). */
	const struct sse__source_ops *ops;
	const struct sse_replay *ring;
	uint64_t cursor;
	size_t frame_off;
	uint64_t max_lag; /* 0: the ring's bounds only */
	/* Asynchronous transports: bytes before the cursor stay in use until
	 * completed; the oldest of them is at pin_seq + pin_off, and its frame
	 * is pinned in the ring while any is in flight. (Otherwise the pin
	 * moves with the cursor.) */
	uint64_t pin_seq;
	size_t pin_off;
};

struct sse__source *sse__stream_source(struct sse_stream *s);
const struct sse__source *sse__stream_source_c(const struct sse_stream *s);

/* sse_stream_resume(), with the reset event's id written into id_buf
 * (sse__replay_id_room() bytes) when not NULL: for a reader of a ring
 * shared with a writer on another thread. */
int sse__stream_resume(struct sse_stream *s, const struct sse_replay *r, const char *id,
		       size_t len, int *status, char *id_buf);

/* Fail a follower that missed events, writing nothing: 0, or its error. */
int sse__stream_check(struct sse_stream *s);

/* Refuse calls from inside a callback: 0, or SSE_ERR_INVALID. */
int sse__stream_idle(const struct sse_stream *s);

#endif
