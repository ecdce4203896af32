/*
 * A subscriber parked on a history provider (lib/history.c) and what the
 * hub needs of it. The hub allocates the state, asks the provider and
 * acts; this module takes the provider's answers and says what comes
 * next, so it never calls up into the hub except through `answered`.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_HISTORY_H
#define SSE_PRIV_HISTORY_H

#include <stdbool.h>

#include "sse-private.h"

enum sse__park_state {
	SSE__PARK_IDLE,     /* no question out */
	SSE__PARK_ASKING,   /* the provider owes an answer */
	SSE__PARK_ANSWERED  /* sse_history_done() came; not acted on yet */
};

/* What a parked subscriber does next (sse__park_next()). */
enum sse__park_step {
	SSE__PARK_WAIT,   /* for an answer, its queue to drain, or the ring to reach it */
	SSE__PARK_ASK,    /* ask for the page from position on */
	SSE__PARK_FOLLOW, /* follow the ring from the cursor given */
	SSE__PARK_RESET,  /* send the reset event, then follow the ring live */
	SSE__PARK_FAIL    /* drop it with the error given */
};

struct sse_history_fetch {
	void (*answered)(struct sse_history_fetch *f); /* sse_history_done() came */
	void *owner;                   /* the hub */
	const struct sse_replay *ring; /* the hub's, ring ids */
	struct sse_stream *s;
	uint64_t position;    /* id number of the next frame the subscriber needs */
	size_t got;           /* frames taken from the current answer */
	int status;           /* the answer's, once answered */
	int failed;           /* 0, or why the subscriber must be dropped */
	unsigned char state;  /* enum sse__park_state */
	bool full;            /* a frame found no room: the rest of the page waits */
	bool reset;           /* the answer was gap or unknown */
	bool queued;          /* on the owner's list of work */
	struct sse_history_fetch *prev, *next; /* that list */
};

/* The next step of p, given the bytes its stream still owes; for FOLLOW
 * *cursor is where in the ring, for FAIL *err is why. Takes an answer in. */
enum sse__park_step sse__park_next(struct sse_history_fetch *p, uint64_t pending, uint64_t *cursor,
				    int *err);

#endif
