/*
 * The scheduler's heap, for an owner that keeps its streams on one
 * (lib/hub.c). Public sse_timers_add() also makes the scheduler the
 * stream's owner; these leave the owner alone.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_TIMERS_H
#define SSE_PRIV_TIMERS_H

#include "stream.h"

/* Put s on the heap and set its clock to the scheduler's: 0 or NOMEM. */
int sse__timers_insert(struct sse_timers *t, struct sse_stream *s);
/* Take s off the heap (if it is on it) and give it its own clock back. */
void sse__timers_erase(struct sse_timers *t, struct sse_stream *s);
/* Re-sort s after its deadline moved. */
void sse__timers_update(struct sse_timers *t, struct sse_stream *s);

#endif
