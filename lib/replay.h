/*
 * What a stream following a ring (lib/follow.c) needs beyond the public
 * replay API.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_REPLAY_H
#define SSE_PRIV_REPLAY_H

#include "sse-private.h"

/* Bytes of the retained frames from cursor to the live end, in O(1);
 * 0 when the cursor is at the end or no longer retained. */
uint64_t sse__replay_backlog(const struct sse_replay *r, uint64_t cursor);

/* Keep the bytes of frame seq and of all after it where they are, even
 * once dropped, until unpinned (a frame an asynchronous transport holds).
 * seq must be held: retained, or pinned already by another stream. */
void sse__replay_pin(const struct sse_replay *r, uint64_t seq);
void sse__replay_unpin(const struct sse_replay *r, uint64_t seq);

/* The frames from seq (retained, before the live end) on that lie back to
 * back in one arena: their bytes, and their count as the return value. */
size_t sse__replay_run(const struct sse_replay *r, uint64_t seq, const char **bytes, size_t *len);

/* The length of a frame still held (retained or pinned). */
size_t sse__replay_held_len(const struct sse_replay *r, uint64_t seq);

#endif
