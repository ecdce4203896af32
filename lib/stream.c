/*
 * One connection: the write/flush callbacks and a bounded queue of bytes
 * the transport has not taken yet.
 *
 * The queue is one contiguous buffer: bytes [head, tail) are unsent. Frames
 * are encoded straight into its free tail, so an event is queued whole or
 * not at all, and the write callback always sees one contiguous run.
 *
 * Callbacks must not call back into the stream: sse_stream_send(),
 * sse_stream_comment(), sse_stream_send_raw() and sse_stream_flush() return
 * SSE_ERR_INVALID while a callback runs, and sse_stream_free() from a
 * callback is undefined. Only the caller's loop drives the stream, so there
 * is never recursion.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdbool.h>
#include <string.h>

#include "replay.h"
#include "stream.h"

/* Small enough for a heartbeat-only stream, large enough that a typical
 * event does not regrow the buffer at once. */
#define QUEUE_MIN_CAP 256

struct sse_stream {
	struct sse_callbacks cb;
	void *user;
	struct sse_allocator alloc;
	char *buf;        /* queue storage of cap bytes, NULL until first use */
	size_t cap;
	size_t head;      /* first unsent byte */
	size_t tail;      /* end of the unsent bytes */
	size_t limit;     /* bound on tail - head after a send */
	unsigned flags;   /* encoder flags */
	int error;        /* 0, or what failed the stream, forever */
	bool need_flush;  /* bytes were written since the flush callback last succeeded */
	bool busy;        /* a callback is running: refuse re-entry */
	bool started;     /* sse_stream_start() wrote the opening bytes */
	long retry;       /* SSE_RETRY_NONE, or the delay to tell clients */
	/* Time: the last value the caller gave, never read from a clock. */
	uint64_t own_now;        /* the clock while not attached to a scheduler */
	const uint64_t *clock;   /* &own_now, or the scheduler's time */
	uint64_t last_activity;  /* clock when bytes were last queued */
	uint64_t hb_interval;    /* 0: no heartbeats */
	uint64_t hb_jitter;      /* an idle period is cut by up to this */
	uint64_t hb_cut;         /* this period's cut, drawn when it starts */
	uint64_t rng;            /* xorshift state for the jitter */
	struct sse__timer_link link;
	sse_writev_fn writev;    /* optional: gathers pieces in one call */
	/* A followed ring: frames [cursor, live end) are owed, and the
	 * first frame_off bytes of frame cursor are written already. */
	const struct sse_replay *ring;
	uint64_t cursor;
	size_t frame_off;
	struct sse__hub_link hub_link;
};

/* Where a piece of output comes from, so taken bytes can be accounted:
 * the stream's queue, or one or more adjacent ring frames. */
enum piece_kind { PIECE_QUEUE, PIECE_FRAMES };

/* The pieces of one write: what the transport sees, and their origin. */
struct gather {
	struct sse_iovec iov[SSE_IOV_MAX];
	enum piece_kind from[SSE_IOV_MAX];
	size_t n;
};

/* An encoder writing into dst[0..cap), reporting the size as sse_encode(). */
typedef int (*frame_fn)(const void *src, unsigned flags, char *dst, size_t cap,
			size_t *written);

int sse_stream_new(struct sse_stream **out, const struct sse_callbacks *cb, void *user,
		   const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_stream *s;

	if (out == NULL || cb == NULL || cb->write == NULL)
		return SSE_ERR_INVALID;
	if (sse__allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	s = sse__alloc(&a, sizeof(*s));
	if (s == NULL)
		return SSE_ERR_NOMEM;
	*s = (struct sse_stream){.cb = *cb, .user = user, .alloc = a,
				 .limit = SSE_STREAM_DEFAULT_QUEUE_LIMIT,
				 .retry = SSE_RETRY_NONE,
				 .hb_interval = SSE_HEARTBEAT_DEFAULT_MS,
				 .rng = (uint64_t)(uintptr_t)s | 1};
	s->clock = &s->own_now;
	*out = s;
	return 0;
}

static void queue_drop(struct sse_stream *s)
{
	sse__free(&s->alloc, s->buf, s->cap);
	s->buf = NULL;
	s->cap = s->head = s->tail = 0;
}

void sse_stream_free(struct sse_stream *s)
{
	if (s == NULL)
		return;
	if (s->hub_link.hub != NULL)
		sse_hub_unsubscribe(s->hub_link.hub, s);
	if (s->link.timers != NULL)
		sse_timers_remove(s->link.timers, s);
	queue_drop(s);
	sse__free(&s->alloc, s, sizeof(*s));
}

int sse_stream_set_queue_limit(struct sse_stream *s, size_t bytes)
{
	if (s == NULL)
		return SSE_ERR_INVALID;
	s->limit = bytes ? bytes : SSE_STREAM_DEFAULT_QUEUE_LIMIT;
	return 0;
}

int sse_stream_set_flags(struct sse_stream *s, unsigned flags)
{
	/* Refuse unknown bits now rather than fail every later send. */
	if (s == NULL || (flags & ~SSE_ENCODE_STRICT_UTF8) != 0)
		return SSE_ERR_INVALID;
	s->flags = flags;
	return 0;
}

/* Bytes of the ring the stream still owes. */
static uint64_t ring_owed(const struct sse_stream *s)
{
	return sse__replay_backlog(s->ring, s->cursor) - s->frame_off;
}

static int behind_ring(const struct sse_stream *s)
{
	return s->cursor < sse_replay_first_seq(s->ring);
}

size_t sse_stream_pending(const struct sse_stream *s)
{
	uint64_t owed;

	if (s == NULL)
		return 0;
	owed = s->tail - s->head;
	if (s->ring != NULL)
		owed += ring_owed(s);
	return owed > SIZE_MAX ? SIZE_MAX : (size_t)owed;
}

int sse_stream_error(const struct sse_stream *s)
{
	return s ? s->error : 0;
}

/* The stream is dead: keep the code for every later call, and let the
 * memory go now, since no byte of it can be sent any more. */
static int stream_fail(struct sse_stream *s, int code)
{
	s->error = code;
	queue_drop(s);
	return code;
}

/* Bytes the tail can take without passing the limit. */
static size_t queue_room(const struct sse_stream *s)
{
	size_t pending = s->tail - s->head;
	size_t free_tail = s->cap - s->tail;
	size_t allowed = s->limit > pending ? s->limit - pending : 0;

	return free_tail < allowed ? free_tail : allowed;
}

/* Where the next frame goes; NULL (not NULL + 0) before the first use. */
static char *queue_end(const struct sse_stream *s)
{
	return s->buf ? s->buf + s->tail : NULL;
}

/* Move the unsent bytes to the front, so the free space is all at the tail. */
static void queue_compact(struct sse_stream *s)
{
	size_t pending = s->tail - s->head;

	if (s->head == 0)
		return;
	if (pending > 0)
		memmove(s->buf, s->buf + s->head, pending);
	s->head = 0;
	s->tail = pending;
}

/* A capacity of at least total: doubling, but never past the limit when
 * total fits under it, so the limit also bounds the memory. */
static size_t grown_cap(const struct sse_stream *s, size_t total)
{
	size_t cap = s->cap ? s->cap : QUEUE_MIN_CAP;

	while (cap < total && cap <= SIZE_MAX / 2)
		cap *= 2;
	if (cap < total)
		cap = total;
	if (cap > s->limit && total <= s->limit)
		cap = s->limit;
	return cap;
}

/* Make room for n more bytes at the tail. Fails, changing no queued byte,
 * with SSE_ERR_QUEUE_FULL past the limit or SSE_ERR_NOMEM. */
static int queue_reserve(struct sse_stream *s, size_t n)
{
	size_t pending = s->tail - s->head;
	size_t cap;
	char *buf;

	if (pending > s->limit || n > s->limit - pending)
		return SSE_ERR_QUEUE_FULL;
	if (n <= s->cap - s->tail)
		return 0;
	queue_compact(s);
	if (n <= s->cap - s->tail)
		return 0;
	cap = grown_cap(s, pending + n);
	buf = sse__realloc(&s->alloc, s->buf, s->cap, cap);
	if (buf == NULL)
		return SSE_ERR_NOMEM;
	s->buf = buf;
	s->cap = cap;
	return 0;
}

/* Encode one frame straight into the queue's tail: try the room there is,
 * and on SSE_ERR_BUFFER reserve the exact size reported and encode again.
 * On any error the tail is not advanced, so nothing is queued. */
static int queue_frame(struct sse_stream *s, frame_fn encode, const void *src)
{
	size_t n = 0;
	int rc;

	rc = encode(src, s->flags, queue_end(s), queue_room(s), &n);
	if (rc == SSE_ERR_BUFFER) {
		rc = queue_reserve(s, n);
		if (rc != 0)
			return rc;
		rc = encode(src, s->flags, queue_end(s), n, &n);
	}
	if (rc != 0)
		return rc;
	s->tail += n;
	s->last_activity = *s->clock;
	return 0;
}

/* Call the flush callback once the queue is empty and something was written
 * since it last succeeded; on WOULDBLOCK it is called again next time. */
static int transport_flush(struct sse_stream *s)
{
	int rc;

	if (!s->need_flush || s->cb.flush == NULL) {
		s->need_flush = false;
		return 0;
	}
	rc = s->cb.flush(s->user);
	if (rc == SSE_ERR_WOULDBLOCK)
		return rc;
	if (rc != 0) /* a positive return is a broken callback */
		return stream_fail(s, rc < 0 ? rc : SSE_ERR_IO);
	s->need_flush = false;
	return 0;
}

static void gather_add(struct gather *g, enum piece_kind kind, const void *base, size_t len)
{
	g->iov[g->n] = (struct sse_iovec){base, len};
	g->from[g->n] = kind;
	g->n++;
}

/* Append whole ring frames from `seq` on, merging frames that lie next
 * to each other in the ring's arena into one piece. */
static void gather_frames(const struct sse_stream *s, struct gather *g, uint64_t seq)
{
	const char *p;
	size_t len;

	while (g->n < SSE_IOV_MAX && sse_replay_frame(s->ring, seq, &p, &len) == 1) {
		struct sse_iovec *last = g->n ? &g->iov[g->n - 1] : NULL;

		if (last && g->from[g->n - 1] == PIECE_FRAMES &&
		    (const char *)last->base + last->len == p) {
			last->len += len;
		} else {
			gather_add(g, PIECE_FRAMES, p, len);
		}
		seq++;
	}
}

/*
 * What to write next, in order: the rest of a ring frame written in part
 * (a frame is never interrupted), then the stream's own queued bytes
 * (opening bytes, heartbeats, direct sends), then the ring's frames.
 */
static void gather(const struct sse_stream *s, struct gather *g)
{
	const char *p;
	size_t len;

	g->n = 0;
	if (s->ring && s->frame_off > 0 && sse_replay_frame(s->ring, s->cursor, &p, &len) == 1)
		gather_add(g, PIECE_FRAMES, p + s->frame_off, len - s->frame_off);
	if (s->head < s->tail)
		gather_add(g, PIECE_QUEUE, s->buf + s->head, s->tail - s->head);
	if (s->ring == NULL)
		return;
	gather_frames(s, g, s->frame_off > 0 ? s->cursor + 1 : s->cursor);
}

/* Move a ring position past n written bytes of frames, from cursor on. */
static void advance_frames(struct sse_stream *s, size_t n)
{
	while (n > 0) {
		const char *p;
		size_t len;

		sse_replay_frame(s->ring, s->cursor, &p, &len);
		if (n < len - s->frame_off) {
			s->frame_off += n;
			return;
		}
		n -= len - s->frame_off;
		s->frame_off = 0;
		s->cursor++;
	}
}

/* Account `taken` bytes against the pieces they came from, in order. */
static void consume(struct sse_stream *s, const struct gather *g, size_t taken)
{
	for (size_t i = 0; i < g->n && taken > 0; i++) {
		size_t n = taken < g->iov[i].len ? taken : g->iov[i].len;

		if (g->from[i] == PIECE_QUEUE)
			s->head += n;
		else
			advance_frames(s, n);
		taken -= n;
	}
}

/* Hand the pieces to the transport: writev when there are several and
 * the stream has one, else write with the first. *offered is the most
 * the call may report taken. */
static int transport_call(struct sse_stream *s, const struct gather *g, size_t *offered,
			  size_t *taken)
{
	if (g->n > 1 && s->writev != NULL) {
		*offered = 0;
		for (size_t i = 0; i < g->n; i++)
			*offered += g->iov[i].len;
		return s->writev(g->iov, g->n, taken, s->user);
	}
	*offered = g->iov[0].len;
	return s->cb.write(g->iov[0].base, g->iov[0].len, taken, s->user);
}

/* One transport call. 0: bytes were taken; WOULDBLOCK: stop for now (also
 * when nothing was taken, so a lazy transport cannot make us spin); any
 * other value has failed the stream. */
static int transport_write(struct sse_stream *s, const struct gather *g)
{
	size_t offered = 0, taken = 0;
	int rc = transport_call(s, g, &offered, &taken);

	if (rc == SSE_ERR_WOULDBLOCK)
		return rc;
	if (rc < 0)
		return stream_fail(s, rc);
	if (rc > 0 || taken > offered)
		return stream_fail(s, SSE_ERR_IO); /* a broken callback */
	if (taken == 0)
		return SSE_ERR_WOULDBLOCK;
	consume(s, g, taken);
	s->need_flush = true;
	s->last_activity = *s->clock;
	/* Even after a short write, go on until the transport says
	 * would-block: a callback may take less for reasons of its own (a
	 * record size), and stopping early would stall a stream whose loop
	 * waits for an edge-triggered "writable" that never comes. On a
	 * full socket this costs one EAGAIN per congested flush. */
	return 0;
}

int sse__stream_lagging(const struct sse_stream *s)
{
	return s->ring != NULL && (behind_ring(s) || ring_owed(s) > s->limit);
}

/* A following stream that fell behind its ring has missed frames: it
 * fails rather than skip them. */
static int check_ring(struct sse_stream *s)
{
	if (s->ring != NULL && behind_ring(s))
		return stream_fail(s, SSE_ERR_GAP);
	return 0;
}

/* A follower whose transport takes nothing more while it owes more than
 * its limit is a slow consumer. Judged only after the transport refused:
 * a client resuming with a long backlog, or a large event, is fine as
 * long as its bytes keep flowing. */
static int check_backlog(struct sse_stream *s, int rc)
{
	if (rc == SSE_ERR_WOULDBLOCK && s->ring != NULL && ring_owed(s) > s->limit)
		return stream_fail(s, SSE_ERR_QUEUE_FULL);
	return rc;
}

/* Write until nothing is owed, then flush. Returns 0, WOULDBLOCK while
 * bytes or a flush remain, or the error that failed the stream. */
static int drain(struct sse_stream *s)
{
	struct gather g;
	int rc = check_ring(s);

	s->busy = true;
	while (rc == 0) {
		gather(s, &g);
		if (g.n == 0)
			break;
		rc = transport_write(s, &g);
	}
	if (rc == 0) {
		s->head = s->tail = 0; /* empty: reuse the buffer from its start */
		/* A follower's own bytes are rare (opening bytes, heartbeats, a
		 * reset): an idle subscriber should not keep a buffer for them. */
		if (s->ring != NULL)
			queue_drop(s);
		rc = transport_flush(s);
	}
	s->busy = false;
	return check_backlog(s, rc);
}

/* What a send or flush must return before doing anything, or 0 to go on. */
static int stream_check(const struct sse_stream *s)
{
	if (s == NULL || s->busy)
		return SSE_ERR_INVALID;
	return s->error;
}

/* The common tail of every send: queue one frame, then write eagerly.
 * A transport that cannot take it all now is not an error for the sender. */
static int stream_send_frame(struct sse_stream *s, frame_fn encode, const void *src)
{
	int rc = stream_check(s);

	if (rc == 0)
		rc = queue_frame(s, encode, src);
	if (rc == 0)
		rc = drain(s);
	return rc == SSE_ERR_WOULDBLOCK ? 0 : rc;
}

static int encode_event(const void *src, unsigned flags, char *dst, size_t cap,
			size_t *written)
{
	return sse_encode(src, flags, dst, cap, written);
}

int sse_stream_send(struct sse_stream *s, const struct sse_event *ev)
{
	return stream_send_frame(s, encode_event, ev);
}

/* Text and length of a comment or of raw bytes, as one frame source. */
struct span {
	const char *p;
	size_t len;
};

static int encode_comment(const void *src, unsigned flags, char *dst, size_t cap,
			  size_t *written)
{
	const struct span *c = src;

	return sse_encode_comment(c->p, c->len, flags, dst, cap, written);
}

int sse_stream_comment(struct sse_stream *s, const char *text, size_t len)
{
	struct span c = {text, len};

	return stream_send_frame(s, encode_comment, &c);
}

/* Raw bytes behave as an encoder that copies them, flags ignored. */
static int copy_raw(const void *src, unsigned flags, char *dst, size_t cap, size_t *written)
{
	const struct span *r = src;

	(void)flags;
	if (r->p == NULL && r->len > 0)
		return SSE_ERR_INVALID;
	*written = r->len;
	if (r->len > cap)
		return SSE_ERR_BUFFER;
	if (r->len > 0)
		memcpy(dst, r->p, r->len);
	return 0;
}

int sse_stream_send_raw(struct sse_stream *s, const void *bytes, size_t len)
{
	struct span r = {bytes, len};

	return stream_send_frame(s, copy_raw, &r);
}

int sse_stream_flush(struct sse_stream *s)
{
	int rc = stream_check(s);

	return rc != 0 ? rc : drain(s);
}

int sse_stream_set_retry(struct sse_stream *s, long ms)
{
	struct sse_event ev = {.retry = ms};
	long old;

	if (s == NULL)
		return SSE_ERR_INVALID;
	if (ms != SSE_RETRY_NONE && (ms < 0 || ms > SSE_RETRY_MAX))
		return SSE_ERR_RETRY;
	old = s->retry;
	s->retry = ms;
	/* Clients keep the last retry they saw: "none" has nothing to send. */
	if (!s->started || ms == old || ms == SSE_RETRY_NONE)
		return stream_check(s);
	return sse_stream_send(s, &ev);
}

int sse_stream_start(struct sse_stream *s, uint64_t now_ms)
{
	struct sse_event ev = {.retry = s ? s->retry : SSE_RETRY_NONE};
	int rc = stream_check(s);

	if (rc != 0 || s->started)
		return rc;
	if (s->link.timers == NULL)
		s->own_now = now_ms;
	s->started = true;
	if (s->retry != SSE_RETRY_NONE)
		return sse_stream_send(s, &ev);
	return sse_stream_comment(s, NULL, 0);
}

/* xorshift64: the jitter needs spread, not quality. */
static uint64_t next_random(struct sse_stream *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

static void draw_cut(struct sse_stream *s)
{
	s->hb_cut = s->hb_jitter ? next_random(s) % (s->hb_jitter + 1) : 0;
}

int sse_stream_set_heartbeat(struct sse_stream *s, uint64_t interval_ms, uint64_t jitter_ms)
{
	if (s == NULL || (interval_ms > 0 && jitter_ms >= interval_ms))
		return SSE_ERR_INVALID;
	s->hb_interval = interval_ms;
	s->hb_jitter = interval_ms ? jitter_ms : 0;
	draw_cut(s);
	if (s->link.timers != NULL)
		sse__timers_update(s->link.timers, s);
	return 0;
}

uint64_t sse__stream_deadline(const struct sse_stream *s)
{
	if (s->hb_interval == 0 || s->error != 0)
		return SSE_NO_DEADLINE;
	return s->last_activity + (s->hb_interval - s->hb_cut);
}

int sse__stream_heartbeat(struct sse_stream *s)
{
	uint64_t now = *s->clock;
	int rc;

	if (s->error != 0 || now < sse__stream_deadline(s))
		return s->error;
	rc = sse_stream_comment(s, NULL, 0);
	(void)rc;
	/* A new idle period starts now, whether the comment was queued or
	 * not: a full queue means bytes are waiting already, and retrying at
	 * once would only spin. */
	s->last_activity = now;
	draw_cut(s);
	return s->error;
}

int sse_stream_tick(struct sse_stream *s, uint64_t now_ms, uint64_t *next_ms)
{
	int rc;

	if (s == NULL || next_ms == NULL || s->link.timers != NULL)
		return SSE_ERR_INVALID;
	s->own_now = now_ms;
	rc = sse__stream_heartbeat(s);
	*next_ms = sse__stream_deadline(s);
	return rc;
}

struct sse__timer_link *sse__stream_link(struct sse_stream *s)
{
	return &s->link;
}

void sse__stream_use_clock(struct sse_stream *s, const uint64_t *clock)
{
	if (clock == NULL) {
		s->own_now = *s->clock;
		s->clock = &s->own_now;
		return;
	}
	s->clock = clock;
}

int sse_stream_set_writev(struct sse_stream *s, sse_writev_fn writev)
{
	if (s == NULL)
		return SSE_ERR_INVALID;
	s->writev = writev;
	return 0;
}

int sse_stream_follow(struct sse_stream *s, const struct sse_replay *r, uint64_t cursor)
{
	if (s == NULL || s->busy || s->frame_off > 0)
		return SSE_ERR_INVALID;
	if (r != NULL && cursor > sse_replay_next_seq(r))
		return SSE_ERR_INVALID;
	s->ring = r;
	s->cursor = r ? cursor : 0;
	return 0;
}

uint64_t sse_stream_cursor(const struct sse_stream *s)
{
	return s && s->ring ? s->cursor : 0;
}

struct sse__hub_link *sse__stream_hub_link(struct sse_stream *s)
{
	return &s->hub_link;
}

void sse__stream_unfollow(struct sse_stream *s)
{
	s->ring = NULL;
	s->cursor = 0;
	s->frame_off = 0;
}

void *sse_stream_user(const struct sse_stream *s)
{
	return s ? s->user : NULL;
}
