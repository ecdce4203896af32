/*
 * What a stream following a ring needs beyond the public replay API.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_REPLAY_H
#define SSE_PRIV_REPLAY_H

#include "sse-private.h"

/* Bytes of the retained frames from cursor to the live end, in O(1);
 * 0 when the cursor is at the end or no longer retained. */
uint64_t sse__replay_backlog(const struct sse_replay *r, uint64_t cursor);

/* Write the ring's reset event to s, its id set to the newest id (see
 * sse_replay_resume()); 0 when the ring has none configured. */
int sse__replay_send_reset(const struct sse_replay *r, struct sse_stream *s);

#endif
