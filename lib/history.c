/*
 * A subscriber parked on a history provider: its position in the log (the
 * id number of the next frame it needs), the provider's answers, and what
 * comes next. Frames of an answer go to the stream's own queue, copied,
 * as they come; the position moves past each, so the subscriber's place
 * is always one number, and the switch to the ring happens exactly there:
 * once the ring holds the position (or reaches it), the stream follows
 * the ring from the frame with that number, after the queued ones. So
 * frames the ring covers are never taken twice, and none in between is
 * missed.
 *
 * SPDX-License-Identifier: MIT
 */
#include "history.h"
#include "replay.h"

static uint64_t first_number(const struct sse_replay *r)
{
	return sse_replay_first_seq(r) + sse__replay_base(r);
}

/* Whether the ring holds the position, or will hand it out next. */
static bool in_ring(const struct sse_history_fetch *p)
{
	return first_number(p->ring) <= p->position &&
	       p->position <= sse_replay_next_number(p->ring);
}

/* Queue one frame; a queue without room takes it once drained, unless it
 * can never hold it. */
static int take(struct sse_history_fetch *p, const char *frame, size_t len)
{
	int rc = sse_stream_send_raw(p->s, frame, len);

	if (rc == SSE_ERR_QUEUE_FULL && sse_stream_pending(p->s) > 0) {
		p->full = true;
		return rc;
	}
	if (rc == SSE_ERR_QUEUE_FULL)
		rc = SSE_ERR_TOO_LARGE; /* larger than the stream's queue limit */
	if (rc != 0)
		return p->failed = rc;
	p->position++;
	p->got++;
	return 0;
}

int sse_history_frame(struct sse_history_fetch *f, uint64_t number, const char *frame,
		      size_t len)
{
	int rc;

	if (f == NULL || f->state != SSE__PARK_ASKING)
		return SSE_ERR_INVALID;
	if (f->failed != 0)
		return f->failed;
	if (f->full)
		return SSE_ERR_QUEUE_FULL;
	/* Had already, or the ring's to give: merged by number. */
	if (number < f->position || in_ring(f))
		return 0;
	/* A hole in the answer: the log skipped events. Nothing is skipped
	 * silently: the subscriber fails and its client resumes. */
	rc = number > f->position ? SSE_ERR_INVALID
				  : sse__replay_check_frame(f->ring, number, frame, len);
	if (rc != 0)
		return f->failed = rc;
	return take(f, frame, len);
}

void sse_history_done(struct sse_history_fetch *f, int status)
{
	if (f == NULL || f->state != SSE__PARK_ASKING)
		return;
	f->state = SSE__PARK_ANSWERED;
	f->status = status;
	f->answered(f);
}

/* An answer came: 1 when it decides the step (FAIL, and *err), else 0. */
static int take_answer(struct sse_history_fetch *p, int *err)
{
	p->state = SSE__PARK_IDLE;
	*err = p->failed;
	if (*err == 0 && p->status < 0)
		*err = p->status;
	if (*err == 0 && p->status != SSE_HISTORY_FRAMES && p->status != SSE_HISTORY_GAP &&
	    p->status != SSE_HISTORY_UNKNOWN)
		*err = SSE_ERR_INVALID;
	if (*err != 0)
		return 1;
	/* "Nothing after it" while the ring holds later frames: the log has
	 * lost what lies between, as with a gap. */
	if (p->status != SSE_HISTORY_FRAMES ||
	    (p->got == 0 && !p->full && p->position < first_number(p->ring)))
		p->reset = true;
	return 0;
}

enum sse__park_step sse__park_next(struct sse_history_fetch *p, uint64_t pending, uint64_t *cursor,
				   int *err)
{
	if (p->state == SSE__PARK_ASKING)
		return SSE__PARK_WAIT;
	if (p->state == SSE__PARK_ANSWERED && take_answer(p, err))
		return SSE__PARK_FAIL;
	/* The reset and the next page wait for the queue to drain: the
	 * queue's room is what a page may take. */
	if (p->reset)
		return pending > 0 ? SSE__PARK_WAIT : SSE__PARK_RESET;
	if (in_ring(p)) {
		*cursor = p->position - sse__replay_base(p->ring);
		return SSE__PARK_FOLLOW;
	}
	if (p->position > sse_replay_next_number(p->ring))
		return SSE__PARK_WAIT; /* this node is behind the log: a publish reaches it */
	return pending > 0 ? SSE__PARK_WAIT : SSE__PARK_ASK;
}
