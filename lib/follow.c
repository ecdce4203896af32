/*
 * A stream following a replay ring: the one reader of a ring. The stream
 * keeps a cursor (the next frame it owes) and hands out the frames from
 * there to the live end without copying them, through the source hook of
 * lib/stream.h. Live delivery and replay are the same walk, so a resumed
 * stream can neither miss nor repeat an event published mid-replay.
 *
 * Layering: this file sits above both the stream and the ring; neither
 * of them calls into it except through the hook it installs.
 *
 * SPDX-License-Identifier: MIT
 */
#include "replay.h"
#include "stream.h"

/* Defined at the end: a ring followed, and one let go of while held. */
static const struct sse__source_ops ring_source, stopped_source;

static bool behind(const struct sse__source *src)
{
	return src->cursor < sse_replay_first_seq(src->ring);
}

static uint64_t source_owed(const struct sse__source *src)
{
	if (behind(src))
		return 0; /* its frames are gone: it owes nothing it can send */
	return sse__replay_backlog(src->ring, src->cursor) - src->frame_off;
}

static bool holding(const struct sse__source *src)
{
	return src->pin_seq != src->cursor || src->pin_off != src->frame_off;
}

/* Missed events: the frame at the cursor is gone, or the stream lags past
 * its bound, or its transport still holds frames the ring has dropped (a
 * slow consumer too: it keeps them from being reused). */
static int source_check(const struct sse__source *src)
{
	if (behind(src) || (src->max_lag > 0 && source_owed(src) > src->max_lag) ||
	    (holding(src) && src->pin_seq < sse_replay_first_seq(src->ring)))
		return SSE_ERR_GAP;
	return 0;
}

/* Whole frames from seq on, in runs of frames that lie next to each other
 * in the ring's arena (merged with a piece of the ring right before). */
static void gather_frames(const struct sse__source *src, struct sse__gather *g, uint64_t seq)
{
	uint64_t live = sse_replay_next_seq(src->ring);
	const char *p;
	size_t len, k;

	if (seq < sse_replay_first_seq(src->ring))
		return; /* missed events: the check fails the stream */
	for (; g->n < SSE_IOV_MAX && seq < live; seq += k) {
		size_t last = g->n - 1;

		k = sse__replay_run(src->ring, seq, &p, &len);
		if (g->n > 0 && g->from[last] == SSE__PIECE_SOURCE &&
		    (const char *)g->iov[last].base + g->iov[last].len == p) {
			g->iov[last].len += len;
			g->frames[last] += k;
		} else {
			sse__gather_add(g, SSE__PIECE_SOURCE, p, len, k);
		}
	}
}

static void source_gather(const struct sse__source *src, struct sse__gather *g, bool rest)
{
	const char *p;
	size_t len;

	if (g->n == SSE_IOV_MAX)
		return;
	if (!rest) {
		gather_frames(src, g, src->frame_off > 0 ? src->cursor + 1 : src->cursor);
		return;
	}
	if (src->frame_off > 0 && sse_replay_frame(src->ring, src->cursor, &p, &len) == 1)
		sse__gather_add(g, SSE__PIECE_SOURCE, p + src->frame_off, len - src->frame_off, 1);
}

/* Move a position (seq, off) past n bytes of frames the ring still
 * holds (retained, or pinned). */
static void advance(const struct sse_replay *r, uint64_t *seq, size_t *off, size_t n)
{
	while (n > 0) {
		size_t len = sse__replay_held_len(r, *seq);

		if (n < len - *off) {
			*off += n;
			return;
		}
		n -= len - *off;
		*off = 0;
		++*seq;
	}
}

/* Past n bytes handed out of a piece of len bytes that ends `frames`
 * frames: a piece taken whole moves the cursor by its frames at once. An
 * asynchronous transport holds them: the first pins its frame, and
 * everything after it, in the ring. */
static void source_consume(struct sse__source *src, size_t n, size_t len, size_t frames,
			   bool held)
{
	if (held && !holding(src) && n > 0)
		sse__replay_pin(src->ring, src->cursor);
	if (n == len) {
		src->cursor += frames;
		src->frame_off = 0;
	} else {
		advance(src->ring, &src->cursor, &src->frame_off, n);
	}
	if (!held) {
		src->pin_seq = src->cursor;
		src->pin_off = src->frame_off;
	}
}

/* n bytes held were done: the pin moves to the frame of the oldest byte
 * still held, or goes when none is. */
static void source_complete(struct sse__source *src, size_t n)
{
	uint64_t was = src->pin_seq;

	advance(src->ring, &src->pin_seq, &src->pin_off, n);
	if (src->pin_seq == was && holding(src))
		return;
	if (holding(src))
		sse__replay_pin(src->ring, src->pin_seq);
	sse__replay_unpin(src->ring, was);
	if (src->ops == &stopped_source && !holding(src)) /* unfollowed: now it can let go */
		*src = (struct sse__source){.max_lag = src->max_lag};
}

static void source_release(struct sse__source *src)
{
	if (holding(src))
		sse__replay_unpin(src->ring, src->pin_seq);
	src->pin_seq = src->cursor;
	src->pin_off = src->frame_off;
}

static const struct sse__source_ops ring_source = {
	.gather = source_gather,
	.consume = source_consume,
	.owed = source_owed,
	.check = source_check,
	.complete = source_complete,
	.release = source_release,
};

/* Unfollowed while held: nothing more to hand out (so nothing consumed),
 * nothing owed or missed; held bytes still complete. */
static void stopped_gather(const struct sse__source *src, struct sse__gather *g, bool rest)
{
	(void)src, (void)g, (void)rest;
}

static uint64_t stopped_owed(const struct sse__source *src)
{
	(void)src;
	return 0;
}

static int stopped_check(const struct sse__source *src)
{
	(void)src;
	return 0;
}

static const struct sse__source_ops stopped_source = {
	.gather = stopped_gather,
	.consume = source_consume,
	.owed = stopped_owed,
	.check = stopped_check,
	.complete = source_complete,
	.release = source_release,
};

/* Can the stream be moved to the ring r at cursor? Not inside a frame of
 * its ring, nor while the transport holds some of its frames, nor past
 * the live end. */
static int can_follow(const struct sse__source *src, const struct sse_replay *r,
		      uint64_t cursor)
{
	if (src->frame_off > 0 || (src->ops != NULL && holding(src)) ||
	    (r != NULL && cursor > sse_replay_next_seq(r)))
		return SSE_ERR_INVALID;
	return 0;
}

int sse_stream_follow(struct sse_stream *s, const struct sse_replay *r, uint64_t cursor)
{
	struct sse__source *src;

	if (s == NULL || sse__stream_idle(s) != 0)
		return SSE_ERR_INVALID;
	src = sse__stream_source(s);
	if (r == NULL && src->ops != NULL && (holding(src) || src->frame_off > 0)) {
		/* In the middle of a frame, or the transport still holds some:
		 * hand out nothing more (never the rest of a frame, which
		 * would be the end of one without its start), keep any pin
		 * until the held bytes are done. */
		src->ops = &stopped_source;
		if (!holding(src))
			*src = (struct sse__source){.max_lag = src->max_lag};
		return 0;
	}
	if (can_follow(src, r, cursor) != 0)
		return SSE_ERR_INVALID;
	*src = (struct sse__source){.ops = r ? &ring_source : NULL, .ring = r,
				    .cursor = r ? cursor : 0, .max_lag = src->max_lag,
				    .pin_seq = r ? cursor : 0};
	return 0;
}

static bool past_lag(const struct sse__source *src, const struct sse_replay *r, uint64_t cursor)
{
	return src->max_lag > 0 && sse__replay_backlog(r, cursor) > src->max_lag;
}

int sse_stream_resume(struct sse_stream *s, const struct sse_replay *r, const char *id,
		      size_t len, int *status)
{
	return sse__stream_resume(s, r, id, len, status, NULL);
}

int sse__stream_resume(struct sse_stream *s, const struct sse_replay *r, const char *id,
		       size_t len, int *status, char *id_buf)
{
	struct sse_event reset;
	uint64_t cursor;
	int st, rc = 0, has_reset;

	if (s == NULL || r == NULL)
		return SSE_ERR_INVALID;
	st = sse_replay_seek(r, id, len, &cursor);
	if (st < 0)
		return st;
	if (st == SSE_REPLAY_FOUND && past_lag(sse__stream_source_c(s), r, cursor)) {
		/* Further back than the stream may lag: it would fail at once,
		 * and again at every reconnection. Told like any gap instead. */
		st = SSE_REPLAY_GAP;
		cursor = sse_replay_next_seq(r);
	}
	if (status != NULL)
		*status = st;
	/* Fail before the reset is queued, not after: a failed resume
	 * leaves the stream as it was. */
	if (sse__stream_idle(s) != 0 || can_follow(sse__stream_source_c(s), r, cursor) != 0)
		return SSE_ERR_INVALID;
	/* The reset goes first: the client learns it missed events before
	 * the events it gets from now on. */
	if (st == SSE_REPLAY_GAP || st == SSE_REPLAY_UNKNOWN) {
		has_reset = id_buf ? sse__replay_reset_event_in(r, &reset, id_buf, cursor)
				   : sse_replay_reset_event(r, &reset);
		if (has_reset)
			rc = sse_stream_send(s, &reset);
	}
	if (rc == 0)
		rc = sse_stream_follow(s, r, cursor);
	return rc;
}

int sse_stream_set_max_lag(struct sse_stream *s, uint64_t bytes)
{
	if (s == NULL)
		return SSE_ERR_INVALID;
	sse__stream_source(s)->max_lag = bytes;
	return 0;
}

uint64_t sse_stream_cursor(const struct sse_stream *s)
{
	const struct sse__source *src = s ? sse__stream_source_c(s) : NULL;

	return src && src->ops == &ring_source ? src->cursor : 0;
}
