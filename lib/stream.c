/*
 * One connection: its transport (push callbacks, or pull reads), a bounded
 * queue of the bytes it sends itself, heartbeats and the stall clock.
 * Frames of a ring it follows come through the source hook (lib/follow.c),
 * and a scheduler or hub owns it through the owner hook (lib/stream.h).
 *
 * The queue is one contiguous buffer: bytes [head, tail) are unsent. Frames
 * are encoded straight into its free tail, so an event is queued whole or
 * not at all, and the write callback always sees one contiguous run.
 *
 * Callbacks must not call back into the stream: sse_stream_send(),
 * sse_stream_comment(), sse_stream_send_raw(), sse_stream_flush() and
 * sse_stream_read() return
 * SSE_ERR_INVALID while a callback runs, and sse_stream_free() from a
 * callback is undefined. Only the caller's loop drives the stream, so there
 * is never recursion.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "encode.h"
#include "queue.h"
#include "stream.h"
/* stall_from when the stream is not waiting on its transport. */
#define NOT_STALLING UINT64_MAX

/* The callbacks of struct sse_transport (its size and flags are read
 * once): a push stream calls only the first three, a pull stream only
 * wake, so they share the room. */
struct transport {
	union {
		struct {
			sse_write_fn write;
			sse_writev_fn writev;
			sse_flush_fn flush;
		};
		sse_wake_fn wake; /* a pull stream's (the stream's pull flag) */
	};
	void *ctx;
};

/*
 * Most streams of a server are idle subscribers, so the struct is kept
 * small: what only some streams need is allocated when first needed (the
 * queue's buffer, the asynchronous ledger), a custom allocator is kept
 * only by the streams given one, and the small fields share the last 16 bytes.
 */
struct sse_stream {
	struct transport tr;
	void *user;
	const struct sse_allocator *alloc; /* &sse__libc_allocator, or own_alloc */
	struct sse__queue q; /* the bytes it sends itself */
	/* Time: the last value the caller gave, never read from a clock. */
	union {
		uint64_t own;        /* while not attached to a scheduler */
		const uint64_t *ext; /* the scheduler's time, while attached (ext_clock) */
	} clock;
	uint64_t last_activity;  /* clock when bytes were last queued or taken */
	uint64_t hb_interval;    /* 0: no heartbeats */
	uint64_t hb_jitter;      /* an idle period is cut by up to this */
	uint64_t rng;            /* xorshift state, drawn when a period starts: its cut */
	uint64_t stall_ms;       /* 0: never stalls */
	uint64_t stall_from;     /* owing and refused since then; NOT_STALLING */
	/* The owner (a scheduler or a hub) and the places it keeps us. */
	const struct sse__owner_ops *owner_ops;
	void *owner;
	size_t heap_slot, owner_slot;
	struct sse__source src;  /* the ring followed, if any */
	/* Asynchronous transports: what they hold, and the queue buffers
	 * replaced while some of their bytes were held. */
	struct sse__flight *flight; /* NULL until a first asynchronous write */
	int error;               /* 0, or what failed the stream, forever */
	int32_t retry;           /* SSE_RETRY_NONE, or the delay to tell clients */
	unsigned char flags;     /* encoder flags */
	bool need_flush;  /* bytes were written since the flush callback last succeeded */
	bool busy;        /* a callback is running: refuse re-entry */
	bool started;     /* sse_stream_start() wrote the opening bytes */
	bool woken;       /* wake was called and no read has found nothing owed since */
	bool ext_clock;   /* clock.ext is in use */
	bool pull;        /* a pull stream: tr.wake, and reads */
	bool hold;        /* asynchronous: the transport holds what it took until completed */
	/* A copy of the allocator given to sse_stream_new(), allocated with
	 * the stream only when there was one. */
	struct sse_allocator own_alloc[];
};

/* The narrow fields hold every value the API lets in. */
_Static_assert(SSE_RETRY_NONE >= INT32_MIN && SSE_RETRY_MAX <= INT32_MAX, "retry fits int32_t");
_Static_assert((SSE_ENCODE_STRICT_UTF8 & ~0xffu) == 0, "encoder flags fit a byte");

/* Bytes of a stream's allocation: with a copy of its allocator, or not. */
static size_t stream_size(bool own_alloc)
{
	return sizeof(struct sse_stream) + (own_alloc ? sizeof(struct sse_allocator) : 0);
}

static uint64_t now_of(const struct sse_stream *s)
{
	return s->ext_clock ? *s->clock.ext : s->clock.own;
}


/* The fields of struct sse_transport a caller compiled against 0.2 has. */
#define TRANSPORT_MIN_SIZE (offsetof(struct sse_transport, flags) + sizeof(unsigned))

static int transport_valid(const struct sse_transport *t)
{
	if (t == NULL || t->size < TRANSPORT_MIN_SIZE || t->size > sizeof(*t) ||
	    (t->flags & ~SSE_TRANSPORT_ASYNC) != 0)
		return 0;
	/* A pull stream that cannot say it owes bytes would never be read,
	 * and reads copy, so it has nothing to hold. */
	if (t->write == NULL && t->writev == NULL)
		return t->wake != NULL && t->flags == 0;
	return 1;
}

/* A push stream writes through write or writev; a pull stream is read. */
static bool pushes(const struct sse_stream *s)
{
	return !s->pull;
}

static struct transport transport_of(const struct sse_transport *t, bool pull)
{
	struct transport tr = {.ctx = t->ctx};

	if (pull) {
		tr.wake = t->wake;
	} else {
		tr.write = t->write;
		tr.writev = t->writev;
		tr.flush = t->flush;
	}
	return tr;
}

static bool in_flight(const struct sse_stream *s)
{
	return sse__flight_bytes(s->flight) > 0;
}

int sse_stream_new(struct sse_stream **out, const struct sse_transport *t, void *user,
		   const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_stream *s;
	bool own;

	if (out == NULL || !transport_valid(t))
		return SSE_ERR_INVALID;
	if (sse__allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	own = !sse__allocator_is_libc(alloc); /* libc's hooks are shared, not copied */
	s = sse__alloc(&a, stream_size(own));
	if (s == NULL)
		return SSE_ERR_NOMEM;
	*s = (struct sse_stream){.user = user, .alloc = &sse__libc_allocator,
				 .q.limit = SSE_STREAM_DEFAULT_QUEUE_LIMIT,
				 .retry = SSE_RETRY_NONE,
				 .hb_interval = SSE_HEARTBEAT_DEFAULT_MS,
				 .rng = (uint64_t)(uintptr_t)s | 1,
				 .stall_from = NOT_STALLING, .heap_slot = SIZE_MAX};
	s->pull = t->write == NULL && t->writev == NULL;
	s->tr = transport_of(t, s->pull);
	s->hold = (t->flags & SSE_TRANSPORT_ASYNC) != 0;
	if (own) {
		s->own_alloc[0] = a;
		s->alloc = &s->own_alloc[0];
	}
	*out = s;
	return 0;
}

/* Let the queue's memory go; never bytes a transport still holds. */
static void queue_drop(struct sse_stream *s)
{
	sse__queue_drop(&s->q, s->alloc, in_flight(s));
}

void sse_stream_free(struct sse_stream *s)
{
	struct sse_allocator a;

	if (s == NULL)
		return;
	if (s->owner_ops != NULL)
		s->owner_ops->release(s->owner, s);
	if (s->src.ops != NULL)
		s->src.ops->release(&s->src);
	sse__flight_free(s->alloc, s->flight); /* freeing: nothing is held any more */
	s->flight = NULL;
	queue_drop(s);
	a = *s->alloc; /* it may be part of the block it frees */
	sse__free(&a, s, stream_size(s->alloc != &sse__libc_allocator));
}

int sse_stream_set_queue_limit(struct sse_stream *s, size_t bytes)
{
	if (s == NULL)
		return SSE_ERR_INVALID;
	s->q.limit = bytes ? bytes : SSE_STREAM_DEFAULT_QUEUE_LIMIT;
	return 0;
}

int sse_stream_set_flags(struct sse_stream *s, unsigned flags)
{
	/* Refuse unknown bits now rather than fail every later send. */
	if (s == NULL || (flags & ~SSE_ENCODE_STRICT_UTF8) != 0)
		return SSE_ERR_INVALID;
	s->flags = (unsigned char)flags;
	return 0;
}

static bool following(const struct sse_stream *s)
{
	return s->src.ops != NULL;
}

/* Around a call that may read the frames of a ring shared with a writer
 * on another thread: the owner (a hub) keeps them in place meanwhile.
 * Calls nest; the owner cannot change within one. */
static void reading(const struct sse_stream *s, bool on)
{
	const struct sse__owner_ops *ops = s->owner_ops;

	if (ops != NULL && ops->enter != NULL)
		(on ? ops->enter : ops->leave)(s->owner);
}

/* Bytes owed: the queue's, and the ring's from the stream's position. */
static uint64_t owed(const struct sse_stream *s)
{
	uint64_t n = s->q.tail - s->q.head;

	return following(s) ? n + s->src.ops->owed(&s->src) : n;
}

size_t sse_stream_pending(const struct sse_stream *s)
{
	uint64_t n = 0;

	if (s != NULL && s->error == 0) {
		reading(s, true);
		n = owed(s);
		reading(s, false);
	}
	return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

int sse_stream_error(const struct sse_stream *s)
{
	return s ? s->error : 0;
}

/* A failed stream lets its queue and its ring go, once its transport
 * holds none of their bytes. */
static void forget(struct sse_stream *s)
{
	if (in_flight(s))
		return;
	queue_drop(s);
	s->src = (struct sse__source){.ops = NULL};
}

/* The stream is dead: keep the code for every later call, and let the
 * memory go now, since no byte of it can be sent any more. */
static int stream_fail(struct sse_stream *s, int code)
{
	s->error = code;
	s->stall_from = NOT_STALLING;
	forget(s);
	return code;
}

/* Call the flush callback once the queue is empty and something was written
 * since it last succeeded; on WOULDBLOCK it is called again next time. */
static int transport_flush(struct sse_stream *s)
{
	int rc;

	if (!s->need_flush || s->tr.flush == NULL) {
		s->need_flush = false;
		return 0;
	}
	rc = s->tr.flush(s->tr.ctx);
	if (rc == SSE_ERR_WOULDBLOCK)
		return rc;
	if (rc != 0) /* a positive return is a broken callback */
		return stream_fail(s, rc < 0 ? rc : SSE_ERR_IO);
	s->need_flush = false;
	return 0;
}

void sse__gather_add(struct sse__gather *g, enum sse__piece_kind kind, const void *base,
		     size_t len, size_t frames)
{
	g->iov[g->n] = (struct sse_iovec){base, len};
	g->from[g->n] = (unsigned char)kind;
	g->frames[g->n] = frames;
	g->n++;
}

/*
 * What to hand out next, in order: the rest of a ring frame written in
 * part (a frame is never interrupted), then the stream's own queued bytes
 * (opening bytes, heartbeats, direct sends), then the ring's frames.
 */
static void gather(const struct sse_stream *s, struct sse__gather *g)
{
	g->n = 0;
	if (following(s))
		s->src.ops->gather(&s->src, g, true);
	if (s->q.head < s->q.tail)
		sse__gather_add(g, SSE__PIECE_QUEUE, s->q.buf + s->q.head, s->q.tail - s->q.head, 0);
	if (following(s))
		s->src.ops->gather(&s->src, g, false);
}

/* Account `taken` bytes against the pieces they came from, in order; an
 * asynchronous transport holds them until it completes them. */
static void consume(struct sse_stream *s, const struct sse__gather *g, size_t taken)
{
	for (size_t i = 0; i < g->n && taken > 0; i++) {
		size_t n = taken < g->iov[i].len ? taken : g->iov[i].len;

		if (g->from[i] == SSE__PIECE_QUEUE)
			sse__queue_took(&s->q, n, s->hold);
		else
			s->src.ops->consume(&s->src, n, g->iov[i].len, g->frames[i], s->hold);
		if (s->hold)
			sse__flight_add(s->flight, g->from[i], n);
		taken -= n;
	}
}

/* Hand the pieces to the transport: writev when there are several or
 * there is no write, else write with the first. *offered is the most
 * the call may report taken. */
static int transport_call(struct sse_stream *s, const struct sse__gather *g, size_t *offered,
			  size_t *taken)
{
	if (s->tr.writev != NULL && (g->n > 1 || s->tr.write == NULL)) {
		*offered = 0;
		for (size_t i = 0; i < g->n; i++)
			*offered += g->iov[i].len;
		return s->tr.writev(g->iov, g->n, taken, s->tr.ctx);
	}
	*offered = g->iov[0].len;
	return s->tr.write(g->iov[0].base, g->iov[0].len, taken, s->tr.ctx);
}

/* Bytes left the stream (taken by a transport or read): progress. */
static void took(struct sse_stream *s, const struct sse__gather *g, size_t n)
{
	consume(s, g, n);
	s->need_flush = true;
	s->last_activity = now_of(s);
	s->stall_from = NOT_STALLING;
}

/* One transport call. 0: bytes were taken; WOULDBLOCK: stop for now (also
 * when nothing was taken, so a lazy transport cannot make us spin); any
 * other value has failed the stream. */
static int transport_write(struct sse_stream *s, const struct sse__gather *g)
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
	took(s, g, taken);
	/* Even after a short write, go on until the transport says
	 * would-block: a callback may take less for reasons of its own (a
	 * record size), and stopping early would stall a stream whose loop
	 * waits for an edge-triggered "writable" that never comes. On a
	 * full socket this costs one EAGAIN per congested flush. */
	return 0;
}

/* A follower that missed events (its ring dropped them, or it lags past
 * its bound) fails rather than skip them. */
static int check_source(struct sse_stream *s)
{
	int rc = following(s) ? s->src.ops->check(&s->src) : 0;

	return rc != 0 ? stream_fail(s, rc) : 0;
}

/* The stream still owes bytes its transport refused: the stall clock
 * runs from the first refusal after the last progress. Re-sorts the
 * stream with its owner when that brings its deadline forward. */
static void waiting(struct sse_stream *s)
{
	uint64_t before;

	if (s->stall_from != NOT_STALLING)
		return;
	before = sse__stream_deadline(s);
	s->stall_from = now_of(s);
	if (s->owner_ops != NULL && sse__stream_deadline(s) < before)
		s->owner_ops->deadline_moved(s->owner, s);
}

/* Nothing more is owed: a follower lets its queue buffer go, since its
 * own bytes are rare (opening bytes, heartbeats, a reset) and an idle
 * subscriber should not keep memory for them. */
static void drained(struct sse_stream *s)
{
	sse__queue_rewind(&s->q);
	if (following(s))
		queue_drop(s);
	s->stall_from = NOT_STALLING;
}

/* Push: write until nothing is owed, then flush. Returns 0, WOULDBLOCK
 * while bytes or a flush remain, or the error that failed the stream. */
static int push(struct sse_stream *s)
{
	struct sse__gather g;
	int rc = 0;

	s->busy = true;
	while (rc == 0) {
		gather(s, &g);
		if (g.n == 0)
			break;
		if (s->hold)
			rc = sse__flight_reserve(s->alloc, &s->flight);
		if (rc == 0)
			rc = transport_write(s, &g);
	}
	if (rc == SSE_ERR_NOMEM)
		rc = stream_fail(s, rc); /* the bytes it held could never be told done */
	if (rc == 0) {
		drained(s);
		rc = transport_flush(s);
	}
	s->busy = false;
	return rc;
}

/* Pull: tell the transport once that bytes are owed; they wait for reads. */
static int pull(struct sse_stream *s)
{
	if (owed(s) == 0)
		return 0;
	if (!s->woken) {
		s->woken = true;
		s->busy = true;
		s->tr.wake(s, s->tr.ctx);
		s->busy = false;
	}
	return SSE_ERR_WOULDBLOCK;
}

/* Hand out what is owed. An owner (a hub) hears when the stream is
 * caught up, however that came about (a send, a heartbeat, a visit), so
 * it never waits for a "writable" that an edge-triggered loop may not
 * report again. */
static int drain(struct sse_stream *s)
{
	int rc;

	reading(s, true);
	rc = check_source(s);
	if (rc == 0)
		rc = pushes(s) ? push(s) : pull(s);
	if (rc == SSE_ERR_WOULDBLOCK)
		waiting(s);
	else if (rc == 0 && s->owner_ops != NULL && s->owner_ops->drained != NULL)
		s->owner_ops->drained(s->owner, s);
	reading(s, false);
	return rc;
}

/* What a send, flush or read must return before doing anything, or 0. */
static int stream_check(const struct sse_stream *s)
{
	if (s == NULL || s->busy)
		return SSE_ERR_INVALID;
	return s->error;
}

int sse__stream_check(struct sse_stream *s)
{
	int rc;

	if (s->error != 0)
		return s->error;
	reading(s, true);
	rc = check_source(s);
	reading(s, false);
	return rc;
}

int sse__stream_idle(const struct sse_stream *s)
{
	return s->busy ? SSE_ERR_INVALID : 0;
}

/* Copy gathered pieces into buf, up to cap bytes; returns the count. */
static size_t copy_out(const struct sse__gather *g, char *buf, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n && n < cap; i++) {
		size_t k = g->iov[i].len < cap - n ? g->iov[i].len : cap - n;

		memcpy(buf + n, g->iov[i].base, k);
		n += k;
	}
	return n;
}

/* Nothing owed at a read: the stream is caught up, and the next bytes
 * owed wake the transport again. */
static int read_empty(struct sse_stream *s)
{
	drained(s);
	s->woken = false;
	if (s->owner_ops != NULL && s->owner_ops->drained != NULL)
		s->owner_ops->drained(s->owner, s);
	return SSE_ERR_WOULDBLOCK;
}


int sse_stream_complete(struct sse_stream *s, size_t n)
{
	if (s == NULL || s->busy || n > sse__flight_bytes(s->flight))
		return SSE_ERR_INVALID;
	while (n > 0) {
		int kind;
		size_t k = sse__flight_pop(s->flight, n, &kind);

		if (kind == SSE__PIECE_QUEUE)
			sse__queue_done(&s->q, s->alloc, s->flight, k);
		else
			s->src.ops->complete(&s->src, k);
		n -= k;
	}
	if (s->error != 0)
		forget(s); /* a failed stream lets go once nothing is held */
	return 0;
}

size_t sse_stream_inflight(const struct sse_stream *s)
{
	return s ? sse__flight_bytes(s->flight) : 0;
}

/* What sse_stream_read() copies out, its arguments checked. */
static int read_owed(struct sse_stream *s, void *buf, size_t cap, size_t *n)
{
	struct sse__gather g;
	size_t got = 0;
	int rc = check_source(s);

	if (rc != 0)
		return rc;
	/* A gather stops at SSE_IOV_MAX pieces: gather again until full. */
	do {
		size_t k;

		gather(s, &g);
		k = copy_out(&g, (char *)buf + got, cap - got);
		if (k == 0)
			break;
		took(s, &g, k);
		got += k;
	} while (got < cap);
	*n = got;
	if (got == 0)
		return read_empty(s);
	if (owed(s) > 0)
		s->stall_from = now_of(s); /* still owing: stalls count from this read */
	return 0;
}

int sse_stream_read(struct sse_stream *s, void *buf, size_t cap, size_t *n)
{
	int rc = stream_check(s);

	if (buf == NULL || cap == 0 || n == NULL || (rc == 0 && s->hold))
		rc = SSE_ERR_INVALID; /* reads copy: an asynchronous stream writes */
	if (n != NULL)
		*n = 0;
	if (rc != 0)
		return rc;
	reading(s, true);
	rc = read_owed(s, buf, cap, n);
	reading(s, false);
	return rc;
}

/* The common tail of every send: queue one frame, then write eagerly.
 * A transport that cannot take it all now is not an error for the sender. */
static int stream_send_frame(struct sse_stream *s, const struct sse__frame_ops *ops,
			     const void *src)
{
	int rc = stream_check(s);

	if (rc == 0)
		rc = sse__queue_frame(&s->q, s->alloc, s->flight, ops, src, s->flags);
	if (rc == 0) {
		s->last_activity = now_of(s);
		rc = drain(s);
	}
	return rc == SSE_ERR_WOULDBLOCK ? 0 : rc;
}

static int encode_event(const void *src, unsigned flags, char *dst, size_t cap,
			size_t *written)
{
	return sse_encode(src, flags, dst, cap, written);
}

static int write_event(const void *src, char *dst, size_t size)
{
	return sse__encode_unchecked(src, dst, size);
}

static const struct sse__frame_ops event_frame = {encode_event, write_event};

int sse_stream_send(struct sse_stream *s, const struct sse_event *ev)
{
	return stream_send_frame(s, &event_frame, ev);
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

static int write_comment(const void *src, char *dst, size_t size)
{
	const struct span *c = src;

	return sse__encode_comment_unchecked(c->p, c->len, dst, size);
}

static const struct sse__frame_ops comment_frame = {encode_comment, write_comment};

int sse_stream_comment(struct sse_stream *s, const char *text, size_t len)
{
	struct span c = {text, len};

	return stream_send_frame(s, &comment_frame, &c);
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

static int write_raw(const void *src, char *dst, size_t size)
{
	const struct span *r = src;

	memcpy(dst, r->p, size);
	return 0;
}

static const struct sse__frame_ops raw_frame = {copy_raw, write_raw};

int sse_stream_send_raw(struct sse_stream *s, const void *bytes, size_t len)
{
	struct span r = {bytes, len};

	return stream_send_frame(s, &raw_frame, &r);
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
	s->retry = (int32_t)ms;
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
	if (!s->ext_clock)
		s->clock.own = now_ms;
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

/* A new idle period: a new cut, by up to the jitter. The cut is not
 * stored: it is read from the generator's state, which stays put until
 * the next period (hb_jitter + 1 cannot wrap: jitter < interval). */
static void draw_cut(struct sse_stream *s)
{
	(void)next_random(s);
}

static uint64_t hb_cut(const struct sse_stream *s)
{
	return s->hb_jitter ? s->rng % (s->hb_jitter + 1) : 0;
}

int sse_stream_set_heartbeat(struct sse_stream *s, uint64_t interval_ms, uint64_t jitter_ms)
{
	if (s == NULL || (interval_ms > 0 && jitter_ms >= interval_ms))
		return SSE_ERR_INVALID;
	s->hb_interval = interval_ms;
	s->hb_jitter = interval_ms ? jitter_ms : 0;
	draw_cut(s);
	if (s->owner_ops != NULL)
		s->owner_ops->deadline_moved(s->owner, s);
	return 0;
}

int sse_stream_set_stall(struct sse_stream *s, uint64_t ms)
{
	if (s == NULL)
		return SSE_ERR_INVALID;
	s->stall_ms = ms;
	if (s->owner_ops != NULL)
		s->owner_ops->deadline_moved(s->owner, s);
	return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t sse__stream_deadline(const struct sse_stream *s)
{
	uint64_t hb = SSE_NO_DEADLINE, stall = SSE_NO_DEADLINE;

	if (s->error != 0)
		return SSE_NO_DEADLINE;
	if (s->hb_interval > 0)
		hb = s->last_activity + (s->hb_interval - hb_cut(s));
	if (s->stall_ms > 0 && s->stall_from != NOT_STALLING)
		stall = add_sat(s->stall_from, s->stall_ms);
	return hb < stall ? hb : stall;
}

static bool stalled(const struct sse_stream *s, uint64_t now)
{
	return s->stall_ms > 0 && s->stall_from != NOT_STALLING && now >= s->stall_from &&
	       now - s->stall_from >= s->stall_ms;
}

static void heartbeat(struct sse_stream *s, uint64_t now)
{
	uint64_t due = s->last_activity + (s->hb_interval - hb_cut(s));

	if (s->hb_interval == 0 || now < due)
		return;
	(void)sse_stream_comment(s, NULL, 0);
	/* A new idle period starts now, whether the comment was queued or
	 * not: a full queue means bytes are waiting already, and retrying at
	 * once would only spin. */
	s->last_activity = now;
	draw_cut(s);
}

/* A scheduler's visit, once the stream reads its frames safely. */
static int visit(struct sse_stream *s)
{
	uint64_t now = now_of(s);

	if (s->error != 0)
		return s->error;
	/* "Took nothing" is only known by offering bytes: a socket's room
	 * comes back long before the loop hears it is writable (Linux says
	 * so once a third of its buffer is free), so a slow reader is given
	 * a write first. A pull stream's reader is asked by its own server. */
	if (stalled(s, now) && pushes(s))
		(void)drain(s);
	if (s->error == 0 && stalled(s, now))
		return stream_fail(s, SSE_ERR_STALLED);
	if (check_source(s) != 0)
		return s->error;
	heartbeat(s, now);
	return s->error;
}

int sse__stream_visit(struct sse_stream *s)
{
	int rc;

	reading(s, true);
	rc = visit(s);
	reading(s, false);
	return rc;
}

int sse_stream_tick(struct sse_stream *s, uint64_t now_ms, uint64_t *next_ms)
{
	int rc;

	if (s == NULL || next_ms == NULL || s->owner_ops != NULL || s->busy)
		return SSE_ERR_INVALID;
	if (!s->ext_clock) /* as it always is without an owner */
		s->clock.own = now_ms;
	rc = sse__stream_visit(s);
	*next_ms = sse__stream_deadline(s);
	return rc;
}

void sse__stream_set_owner(struct sse_stream *s, const struct sse__owner_ops *ops, void *owner)
{
	s->owner_ops = ops;
	s->owner = ops ? owner : NULL;
}

void *sse__stream_owner(const struct sse_stream *s)
{
	return s->owner;
}

size_t *sse__stream_heap_slot(struct sse_stream *s)
{
	return &s->heap_slot;
}

size_t *sse__stream_owner_slot(struct sse_stream *s)
{
	return &s->owner_slot;
}

void sse__stream_use_clock(struct sse_stream *s, const uint64_t *clock)
{
	if (clock == NULL) {
		uint64_t now = now_of(s);

		s->clock.own = now;
		s->ext_clock = false;
		return;
	}
	/* The stream's own clock may lag the scheduler's (it only moves when
	 * told, and starts at 0): a stall that began before the scheduler's
	 * now is counted from now, so a stream refused before it was
	 * attached is not taken for stalled at its first visit. (An idle
	 * period is kept: a heartbeat may come early, never late.) */
	s->clock.ext = clock;
	s->ext_clock = true;
	if (s->stall_from != NOT_STALLING && s->stall_from < *clock)
		s->stall_from = *clock;
}

struct sse__source *sse__stream_source(struct sse_stream *s)
{
	return &s->src;
}

const struct sse__source *sse__stream_source_c(const struct sse_stream *s)
{
	return &s->src;
}

void *sse_stream_user(const struct sse_stream *s)
{
	return s ? s->user : NULL;
}
