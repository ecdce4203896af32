/*
 * What the heartbeat scheduler (lib/timers.c) needs of a stream.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_STREAM_H
#define SSE_PRIV_STREAM_H

#include "sse-private.h"

/* A stream's place in a scheduler's heap. */
struct sse__timer_link {
	struct sse_timers *timers; /* NULL: not attached */
	size_t index;              /* position in the heap */
};

struct sse__timer_link *sse__stream_link(struct sse_stream *s);

/* Point the stream's clock at a scheduler's time, or back at its own
 * (clock NULL), which then starts from the scheduler's last time. */
void sse__stream_use_clock(struct sse_stream *s, const uint64_t *clock);

/* When the stream next needs a visit, by its own clock; SSE_NO_DEADLINE
 * when heartbeats are off. */
uint64_t sse__stream_deadline(const struct sse_stream *s);

/* Send a heartbeat if the stream has been idle for its interval, by its
 * clock. Returns 0 or the stream's error. */
int sse__stream_heartbeat(struct sse_stream *s);

/* A stream's place among a hub's subscribers. */
struct sse__hub_link {
	struct sse_hub *hub; /* NULL: not subscribed */
	size_t index;        /* in the hub's subscriber array */
	int blocked;         /* its transport said would-block: skip until writable */
};

struct sse__hub_link *sse__stream_hub_link(struct sse_stream *s);

/* Stop following a ring, even in the middle of a frame (for a stream that
 * failed, or is being dropped: nothing more will be written from it). */
void sse__stream_unfollow(struct sse_stream *s);

/* A follower that a blocked transport would fail now: behind its ring,
 * or owing more of it than its limit. */
int sse__stream_lagging(const struct sse_stream *s);

/* The scheduler side: re-sort a stream whose deadline moved earlier. */
void sse__timers_update(struct sse_timers *t, struct sse_stream *s);

#endif
