/*
 * What a stream following a ring needs beyond the public replay API.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_REPLAY_H
#define SSE_REPLAY_H

#include "sse-private.h"

/* Bytes of the retained frames from cursor to the live end, in O(1);
 * 0 when the cursor is at the end or no longer retained. */
uint64_t sse__replay_backlog(const struct sse_replay *r, uint64_t cursor);

#endif
