/*
 * The hub: one replay ring, many subscribers following it. An event is
 * encoded once; each subscriber is a stream with a cursor into the ring,
 * so fan-out copies no event bytes and a subscriber's memory does not
 * grow with traffic.
 *
 * The subscriber array is split in two: [0, ready) are streams that were
 * caught up after their last write, [ready, count) wait on their
 * transport (writable again, or a read for pull streams). A publish makes
 * every ready subscriber owe something and no waiting one more able to
 * take it, so a flush writes to the ready ones only, checks the waiting
 * ones for missed events without writing, and does nothing at all when
 * nothing was published since the last pass. The hub is the streams'
 * owner: they tell it through the owner hook when a read caught them up,
 * when their deadline moved, and when they are freed.
 *
 * With a history provider, a subscriber resuming from an id the ring
 * misses is parked: attached, but following nothing, while the provider
 * answers (lib/history.c says what each answer leads to). Answers come
 * from the loop at any time, and a stream tells of a drained queue from
 * inside its own calls, so both only put the parked subscriber on a list
 * of work, done once the hub call in progress is about to return (or at
 * once, when an answer comes while none is). A parked subscriber's owner
 * context (the owner hook) is its question to the provider, so the
 * subscriber array holds streams only, and the hook finds the question
 * in O(1).
 *
 * A hub may share its ring with hubs on other threads (sse_hub_share(),
 * sse_hub_new_shared()): the owner's thread writes, the others read the
 * frames in place. A hub reading a shared ring holds a reader place of
 * the ring, and keeps a floor there during each of its calls, and each
 * call of its subscribers' streams that may read frames (the enter and
 * leave hooks of its owner ops): nothing it may read is reused
 * meanwhile (lib/replay.c). It learns of new frames by looking at the
 * ring's live end when it is called (notice()).
 *
 * The counters (sse_hub_stats()) are written by the hub's thread only
 * and may be read by any other: relaxed atomics, each written with a
 * plain load and store rather than a read-modify-write, so counting
 * costs the hub what an increment does and a reader sees whole values.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdatomic.h>
#include <string.h>

#include "history.h"
#include "replay.h"
#include "timers.h"

/* The counters, by name: STAT_published_events, ... */
enum stat {
#define STAT_INDEX(name, kind, help) STAT_##name,
	SSE_HUB_STATS(STAT_INDEX)
#undef STAT_INDEX
	STAT_COUNT
};

struct sse_hub {
	struct sse_allocator alloc;
	struct sse_replay *ring;
	bool owns_ring;           /* else another thread's, shared (reader) */
	struct sse__ring_reader *reader; /* a hub reading another thread's ring */
	unsigned guard_depth;     /* reader: calls in progress that may read frames */
	uint64_t seen_seq;        /* reader: the live end when it last looked */
	char *id_buf;             /* reader: room for the reset event's id */
	struct sse_timers *timers;
	struct sse_stream **subs; /* dense: [0, ready) ready, [ready, count) waiting */
	size_t count, cap, ready;
	uint64_t flushed_seq;     /* the ring's next_seq at the end of the last pass */
	uint64_t max_lag, stall_ms, heartbeat_ms, jitter_ms;
	uint64_t window_ms;       /* the batching window; 0: none */
	uint64_t now_ms;          /* the latest time the caller gave */
	uint64_t batch_due;       /* when the open batch goes out; SSE_NO_DEADLINE: none */
	size_t ring_events, ring_bytes; /* the ring's bounds: a batch never fills half */
	sse_hub_drop_fn on_drop;
	void *user;
	struct sse_history history; /* fetch NULL: no provider */
	size_t parked;            /* subscribers parked on it */
	struct sse_history_fetch *work, *work_tail; /* parked ones to act on, in order */
	unsigned depth;           /* hub calls (or provider fetches) in progress */
	_Atomic uint64_t stats[STAT_COUNT]; /* written by the hub's thread only */
};

/* Configs of 0.1 end before window_ms: they are read without it. */
#define OLD_CONFIG_SIZE offsetof(struct sse_hub_config, window_ms)

static void visit_failed(struct sse_stream *s, int err, void *user);

/* Everything but the ring, which h->ring already is. */
static int hub_init(struct sse_hub *h, const struct sse_hub_config *cfg)
{
	int rc = sse_timers_new(&h->timers, visit_failed, h, &h->alloc);

	h->flushed_seq = h->seen_seq = sse_replay_next_seq(h->ring);
	h->max_lag = cfg->max_lag;
	h->stall_ms = cfg->stall_ms ? cfg->stall_ms : SSE_HUB_DEFAULT_STALL_MS;
	if (h->stall_ms == UINT64_MAX)
		h->stall_ms = 0; /* sse_stream_set_stall: never */
	h->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : SSE_HEARTBEAT_DEFAULT_MS;
	h->jitter_ms = cfg->heartbeat_jitter_ms;
	if (rc == 0 && !cfg->no_heartbeat && h->jitter_ms >= h->heartbeat_ms)
		rc = SSE_ERR_INVALID; /* without heartbeats there is nothing to jitter */
	if (cfg->no_heartbeat)
		h->heartbeat_ms = h->jitter_ms = 0; /* sse_stream_set_heartbeat: off */
	if (cfg->size > OLD_CONFIG_SIZE)
		h->window_ms = cfg->window_ms;
	h->batch_due = SSE_NO_DEADLINE;
	sse__replay_bounds(h->ring, &h->ring_events, &h->ring_bytes);
	return rc;
}

/* A hub with nothing in it yet, or NULL (*rc says why). */
static struct sse_hub *hub_alloc(const struct sse_hub_config *cfg, sse_hub_drop_fn on_drop,
				 void *user, const struct sse_allocator *alloc, int *rc)
{
	struct sse_allocator a;
	struct sse_hub *h;

	*rc = SSE_ERR_INVALID;
	if (cfg == NULL || on_drop == NULL ||
	    (cfg->size != sizeof(*cfg) && cfg->size != OLD_CONFIG_SIZE) ||
	    sse__allocator_init(&a, alloc) != 0)
		return NULL;
	*rc = SSE_ERR_NOMEM;
	h = sse__alloc(&a, sizeof(*h));
	if (h == NULL)
		return NULL;
	*h = (struct sse_hub){.alloc = a, .on_drop = on_drop, .user = user};
	for (size_t i = 0; i < STAT_COUNT; i++)
		atomic_init(&h->stats[i], 0);
	*rc = 0;
	return h;
}

int sse_hub_new(struct sse_hub **out, const struct sse_hub_config *cfg, sse_hub_drop_fn on_drop,
		void *user, const struct sse_allocator *alloc)
{
	struct sse_hub *h;
	int rc;

	if (out == NULL)
		return SSE_ERR_INVALID;
	h = hub_alloc(cfg, on_drop, user, alloc, &rc);
	if (h == NULL)
		return rc;
	rc = sse_replay_new(&h->ring, &cfg->ring, &h->alloc);
	h->owns_ring = rc == 0;
	if (rc == 0)
		rc = hub_init(h, cfg);
	if (rc != 0) {
		sse_hub_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

int sse_hub_new_shared(struct sse_hub **out, const struct sse_replay *ring,
		       const struct sse_hub_config *cfg, sse_hub_drop_fn on_drop, void *user,
		       const struct sse_allocator *alloc)
{
	struct sse_hub *h;
	int rc;

	if (out == NULL || ring == NULL || !sse__replay_shared(ring))
		return SSE_ERR_INVALID;
	h = hub_alloc(cfg, on_drop, user, alloc, &rc);
	if (h == NULL)
		return rc;
	/* Only read through it: the writer's thread owns the ring. */
	h->ring = (struct sse_replay *)ring;
	h->reader = sse__replay_reader_claim(ring);
	h->id_buf = sse__alloc(&h->alloc, sse__replay_id_room(ring));
	rc = h->reader == NULL ? SSE_ERR_BUSY : h->id_buf == NULL ? SSE_ERR_NOMEM : hub_init(h, cfg);
	if (rc != 0) {
		sse_hub_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

int sse_hub_share(struct sse_hub *h, unsigned readers)
{
	if (h == NULL || !h->owns_ring || h->history.fetch != NULL)
		return SSE_ERR_INVALID;
	return sse_replay_share(h->ring, readers);
}

/* ---- the counters */

/* Add n: the hub's thread is the only writer, so no read-modify-write. */
static void count(struct sse_hub *h, enum stat i, uint64_t n)
{
	uint64_t v = atomic_load_explicit(&h->stats[i], memory_order_relaxed);

	atomic_store_explicit(&h->stats[i], v + n, memory_order_relaxed);
}

static void gauge(struct sse_hub *h, enum stat i, uint64_t v)
{
	atomic_store_explicit(&h->stats[i], v, memory_order_relaxed);
}

/* A subscriber left: the drop counter of its error. */
static enum stat drop_stat(int err)
{
	switch (err) {
	case SSE_ERR_GAP:
		return STAT_drops_gap;
	case SSE_ERR_STALLED:
		return STAT_drops_stall;
	default:
		return STAT_drops_error;
	}
}

/* The end of what this hub has counted as arrived: a reader's is what it
 * last noticed (the writer may have gone on since). */
static uint64_t counted_end(const struct sse_hub *h)
{
	return h->reader != NULL ? h->seen_seq : sse_replay_next_seq(h->ring);
}

/* s starts following the ring: the events the ring holds after its
 * position are owed to it (later ones are counted as they arrive). */
static void count_follow(struct sse_hub *h, struct sse_stream *s)
{
	uint64_t cursor = sse_stream_cursor(s), end = counted_end(h);

	if (cursor == 0 || cursor >= end)
		return;
	count(h, STAT_deliveries, end - cursor);
	count(h, STAT_delivery_bytes, sse__replay_bytes_between(h->ring, cursor, end));
}

/* n new frames of `bytes` bytes in all reached this hub at now_ms: they
 * are owed to every subscriber following the ring (all but the parked
 * ones), and the first of a batch sets its deadline: no event waits
 * longer than the window. */
static void arrived(struct sse_hub *h, uint64_t n, uint64_t bytes, uint64_t now_ms)
{
	uint64_t followers = h->count - h->parked;

	count(h, STAT_published_events, n);
	count(h, STAT_published_bytes, bytes);
	count(h, STAT_deliveries, followers * n);
	count(h, STAT_delivery_bytes, followers * bytes);
	if (h->window_ms > 0 && h->batch_due == SSE_NO_DEADLINE)
		h->batch_due = now_ms + h->window_ms;
}

/* A reader of a shared ring learns of frames published since it last
 * looked, as of the time it was last given. */
static void notice(struct sse_hub *h)
{
	uint64_t live = sse_replay_next_seq(h->ring);

	if (h->reader == NULL || live == h->seen_seq)
		return;
	/* Their bytes from the ring: 0 when they are gone already (not known). */
	arrived(h, live - h->seen_seq, sse__replay_bytes_between(h->ring, h->seen_seq, live),
		h->now_ms);
	h->seen_seq = live;
}

/* ---- the subscriber array */

/* Only read: const streams are looked up too (sse_hub_lag()). */
static size_t slot(const struct sse_stream *s)
{
	return *sse__stream_owner_slot((struct sse_stream *)s);
}

static void put(struct sse_hub *h, size_t i, struct sse_stream *s)
{
	h->subs[i] = s;
	*sse__stream_owner_slot(s) = i;
}

static void swap(struct sse_hub *h, size_t i, size_t j)
{
	struct sse_stream *a = h->subs[i];

	put(h, i, h->subs[j]);
	put(h, j, a);
}

static bool is_ready(const struct sse_hub *h, struct sse_stream *s)
{
	return slot(s) < h->ready;
}

/* Move s to the end of the ready part, or just past it, by one swap. */
static void mark_waiting(struct sse_hub *h, struct sse_stream *s)
{
	if (is_ready(h, s))
		swap(h, slot(s), --h->ready);
}

static void mark_ready(struct sse_hub *h, struct sse_stream *s)
{
	if (!is_ready(h, s))
		swap(h, slot(s), h->ready++);
}

/* Whether s is one of h's subscribers: its slot, whatever it holds,
 * names s in h's array. */
static bool subscribed(const struct sse_hub *h, const struct sse_stream *s)
{
	return h != NULL && s != NULL && slot(s) < h->count && h->subs[slot(s)] == s;
}

/* The question a subscriber of h is parked on (its owner context), or
 * NULL: it follows the ring. */
static struct sse_history_fetch *park_of(const struct sse_hub *h, const struct sse_stream *s)
{
	void *owner = h->parked > 0 ? sse__stream_owner(s) : NULL;

	return owner != h ? owner : NULL;
}

static const struct sse__owner_ops *owner_ops(const struct sse_hub *h);
static const struct sse__owner_ops parked_owner;

/* ---- the list of work on parked subscribers */

static void enqueue(struct sse_hub *h, struct sse_history_fetch *p)
{
	if (p->queued)
		return;
	p->queued = true;
	p->prev = h->work_tail;
	p->next = NULL;
	if (h->work_tail != NULL)
		h->work_tail->next = p;
	else
		h->work = p;
	h->work_tail = p;
}

static void dequeue(struct sse_hub *h, struct sse_history_fetch *p)
{
	if (!p->queued)
		return;
	p->queued = false;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		h->work = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	else
		h->work_tail = p->prev;
}

/* s leaves the history behind (it follows the ring, or leaves the hub):
 * a question still out is cancelled, so no answer can come for it. */
static void unpark(struct sse_hub *h, struct sse_stream *s)
{
	struct sse_history_fetch *p = park_of(h, s);

	if (p == NULL)
		return;
	if (p->state == SSE__PARK_ASKING)
		h->history.cancel(h->history.ctx, p);
	dequeue(h, p);
	sse__stream_set_owner(s, owner_ops(h), h);
	gauge(h, STAT_parked, --h->parked);
	sse__free(&h->alloc, p, sizeof(*p));
}

/* Take s out of the array, off the ring, the history and the scheduler. */
static void detach(struct sse_hub *h, struct sse_stream *s)
{
	unpark(h, s);
	mark_waiting(h, s);
	swap(h, slot(s), --h->count);
	gauge(h, STAT_subscribers, h->count);
	sse__timers_erase(h->timers, s);
	sse__stream_set_owner(s, NULL, NULL);
	sse_stream_follow(s, NULL, 0);
}

void sse_hub_free(struct sse_hub *h)
{
	if (h == NULL)
		return;
	while (h->count > 0)
		detach(h, h->subs[h->count - 1]);
	sse__free(&h->alloc, h->subs, h->cap * sizeof(*h->subs));
	sse_timers_free(h->timers);
	if (h->reader != NULL)
		sse__replay_reader_release(h->reader);
	if (h->owns_ring)
		sse_replay_free(h->ring);
	if (h->id_buf != NULL)
		sse__free(&h->alloc, h->id_buf, sse__replay_id_room(h->ring));
	sse__free(&h->alloc, h, sizeof(*h));
}

int sse_hub_unsubscribe_reason(struct sse_hub *h, struct sse_stream *s, int reason)
{
	/* Not from within one of s's own transport calls: the call in
	 * progress would go on following the ring without the hub, and a
	 * reader's floor taken for it would never be given back. */
	if (!subscribed(h, s) || (reason != SSE_HUB_CLOSED && reason != SSE_HUB_LIFETIME) ||
	    sse__stream_idle(s) != 0)
		return SSE_ERR_INVALID;
	detach(h, s);
	count(h, reason == SSE_HUB_LIFETIME ? STAT_drops_lifetime : STAT_unsubscribes, 1);
	return 0;
}

void sse_hub_unsubscribe(struct sse_hub *h, struct sse_stream *s)
{
	sse_hub_unsubscribe_reason(h, s, SSE_HUB_CLOSED);
}

/* A subscriber failed: detach it first, so on_drop may free it. */
static void drop(struct sse_hub *h, struct sse_stream *s, int err)
{
	detach(h, s);
	count(h, drop_stat(err), 1);
	h->on_drop(s, err, h->user);
}

static void visit_failed(struct sse_stream *s, int err, void *user)
{
	/* The scheduler has let it go already; detach() leaves that alone. */
	drop(user, s, err);
}

/* ---- the owner hook */

static void owner_deadline_moved(void *owner, struct sse_stream *s)
{
	struct sse_hub *h = owner;

	sse__timers_update(h->timers, s);
}

static void owner_drained(void *owner, struct sse_stream *s)
{
	mark_ready(owner, s);
}

/* Freeing a subscriber unsubscribes it. */
static void owner_release(void *owner, struct sse_stream *s)
{
	detach(owner, s);
	count(owner, STAT_unsubscribes, 1);
}

static const struct sse__owner_ops hub_owner = {
	.deadline_moved = owner_deadline_moved,
	.drained = owner_drained,
	.release = owner_release,
};

/* A reader of a shared ring: its floor is kept during every call, its
 * own or its subscribers', that may read frames. */
static void guard_on(void *owner)
{
	struct sse_hub *h = owner;

	if (h->reader != NULL && h->guard_depth++ == 0)
		sse__replay_reader_enter(h->ring, h->reader);
}

static void guard_off(void *owner)
{
	struct sse_hub *h = owner;

	if (h->reader != NULL && --h->guard_depth == 0)
		sse__replay_reader_leave(h->reader);
}

static const struct sse__owner_ops reader_owner = {
	.deadline_moved = owner_deadline_moved,
	.drained = owner_drained,
	.release = owner_release,
	.enter = guard_on,
	.leave = guard_off,
};

static const struct sse__owner_ops *owner_ops(const struct sse_hub *h)
{
	return h->reader != NULL ? &reader_owner : &hub_owner;
}

/* The same for a parked subscriber, whose owner context is its question. */
static void parked_deadline_moved(void *owner, struct sse_stream *s)
{
	struct sse_history_fetch *p = owner;

	owner_deadline_moved(p->owner, s);
}

/* A parked subscriber that drained may take the next page: not from
 * inside the stream's call, but once the hub call returns. */
static void parked_drained(void *owner, struct sse_stream *s)
{
	struct sse_history_fetch *p = owner;

	mark_ready(p->owner, s);
	if (p->state == SSE__PARK_IDLE)
		enqueue(p->owner, p);
}

static void parked_release(void *owner, struct sse_stream *s)
{
	struct sse_history_fetch *p = owner;

	owner_release(p->owner, s);
}

static const struct sse__owner_ops parked_owner = {
	.deadline_moved = parked_deadline_moved,
	.drained = parked_drained,
	.release = parked_release,
};

/* ---- subscribing */

/* Heartbeat, stall, lag, a place in the array and on the scheduler. */
static int prepare(struct sse_hub *h, struct sse_stream *s)
{
	int rc = sse_stream_set_heartbeat(s, h->heartbeat_ms, h->jitter_ms);

	if (rc == 0)
		rc = sse_stream_set_stall(s, h->stall_ms);
	if (rc == 0)
		rc = sse_stream_set_max_lag(s, h->max_lag);
	if (rc == 0 && h->count == h->cap)
		rc = sse__grow(&h->alloc, (void **)&h->subs, &h->cap, sizeof(*h->subs));
	if (rc == 0)
		rc = sse__timers_insert(h->timers, s);
	if (rc != 0)
		return rc;
	sse__stream_set_owner(s, owner_ops(h), h);
	/* waiting until its first write says otherwise */
	put(h, h->count++, s);
	gauge(h, STAT_subscribers, h->count);
	return 0;
}

/* Write what s owes: waiting when its transport refused; dropped when it
 * failed. One that caught up told us so itself (owner_drained()). */
static int deliver(struct sse_hub *h, struct sse_stream *s)
{
	int rc = sse_stream_flush(s);

	count(h, STAT_writes, 1);
	if (rc == SSE_ERR_WOULDBLOCK)
		mark_waiting(h, s);
	else if (rc != 0)
		drop(h, s, rc);
	return rc;
}

/* ---- parked subscribers: resuming from the history provider */

/* Ask the provider for the page from p's position on. An answer given
 * within fetch is only listed (the hub call is in progress). */
static int ask(struct sse_hub *h, struct sse_history_fetch *p)
{
	int rc;

	p->state = SSE__PARK_ASKING;
	p->got = 0;
	p->full = false;
	count(h, STAT_history_fetches, 1);
	h->depth++;
	rc = h->history.fetch(h->history.ctx, p, p->position, SSE_HISTORY_PAGE_BYTES);
	h->depth--;
	if (rc < 0 && p->state == SSE__PARK_ASKING) {
		p->state = SSE__PARK_IDLE; /* it will not answer */
		return rc;
	}
	return 0;
}

/* Leave the history for the ring: from cursor on, or, after the reset
 * event, live. Frames queued from the history go out first. */
static int to_ring(struct sse_hub *h, struct sse_stream *s, uint64_t cursor, bool reset)
{
	struct sse_event ev;
	int rc = 0;

	unpark(h, s);
	if (reset) {
		cursor = sse_replay_next_seq(h->ring);
		if (sse_replay_reset_event(h->ring, &ev))
			rc = sse_stream_send(s, &ev);
	}
	if (rc == 0)
		rc = sse_stream_follow(s, h->ring, cursor);
	if (rc == 0)
		count_follow(h, s);
	return rc;
}

/* Take p's next step: 0, or the error to drop its subscriber with. */
static int act(struct sse_hub *h, struct sse_history_fetch *p)
{
	struct sse_stream *s = p->s;
	uint64_t cursor = 0;
	int err = 0;

	if (p->state == SSE__PARK_ANSWERED)
		count(h, STAT_history_frames, p->got);
	switch (sse__park_next(p, sse_stream_pending(s), &cursor, &err)) {
	case SSE__PARK_ASK:
		return ask(h, p);
	case SSE__PARK_FOLLOW:
		return to_ring(h, s, cursor, false);
	case SSE__PARK_RESET:
		count(h, STAT_history_resets, 1);
		return to_ring(h, s, 0, true);
	case SSE__PARK_FAIL:
		return err;
	case SSE__PARK_WAIT:
	default:
		return 0;
	}
}

/* Work through the list of parked subscribers to act on; those that
 * reached the ring write at once. Not while a hub call is in progress:
 * that one does it before it returns. */
static void run_work(struct sse_hub *h)
{
	if (h->depth > 0)
		return;
	h->depth++;
	while (h->work != NULL) {
		struct sse_history_fetch *p = h->work;
		struct sse_stream *s = p->s;
		int rc;

		dequeue(h, p);
		rc = act(h, p);
		if (rc != 0)
			drop(h, s, rc);
		else if (park_of(h, s) == NULL)
			deliver(h, s);
	}
	h->depth--;
}

/* Around every hub call: parked work waits for its end, and a reader of
 * a shared ring keeps its floor meanwhile. */
static void enter(struct sse_hub *h)
{
	guard_on(h);
	h->depth++;
}

static void leave(struct sse_hub *h)
{
	h->depth--;
	run_work(h);
	guard_off(h);
}

/* The provider answered (sse_history_done()). */
static void park_answered(struct sse_history_fetch *p)
{
	struct sse_hub *h = p->owner;

	enqueue(h, p);
	run_work(h);
}

/* Whether a resume from id needs the provider: an id of the ring's
 * epoch the ring no longer holds (GAP), or has not reached (UNKNOWN:
 * past its newest); then the id number to ask from. */
static bool wants_history(const struct sse_hub *h, const char *id, size_t len, uint64_t *from)
{
	uint64_t cursor, number;
	int st;

	if (h->history.fetch == NULL)
		return false;
	st = sse_replay_seek(h->ring, id, len, &cursor);
	if ((st != SSE_REPLAY_GAP && st != SSE_REPLAY_UNKNOWN) ||
	    !sse__replay_parse_id(h->ring, id, len, &number) || number == UINT64_MAX)
		return false;
	*from = number + 1;
	return true;
}

/* Park s at position `from` and ask for its first page. */
static int park(struct sse_hub *h, struct sse_stream *s, uint64_t from)
{
	struct sse_history_fetch *p = sse__alloc(&h->alloc, sizeof(*p));

	if (p == NULL)
		return SSE_ERR_NOMEM;
	*p = (struct sse_history_fetch){.answered = park_answered, .owner = h, .ring = h->ring,
					.s = s, .position = from};
	sse__stream_set_owner(s, &parked_owner, p);
	gauge(h, STAT_parked, ++h->parked);
	return ask(h, p);
}

/* Answers given within the first fetch are acted on here, so that their
 * failure is the subscriber's, not on_drop's: its caller still holds it. */
static int settle_new(struct sse_hub *h, struct sse_stream *s)
{
	struct sse_history_fetch *p;
	int rc = 0;

	while (rc == 0 && (p = park_of(h, s)) != NULL && p->queued) {
		dequeue(h, p);
		rc = act(h, p);
	}
	return rc;
}

static int start(struct sse_hub *h, struct sse_stream *s, const char *last_id, size_t len,
		 int *status)
{
	uint64_t from;
	int rc = sse_stream_start(s, 0); /* attached: the scheduler's clock counts */

	if (rc != 0)
		return rc;
	if (!wants_history(h, last_id, len, &from))
		return sse__stream_resume(s, h->ring, last_id, len, status, h->id_buf);
	*status = SSE_REPLAY_HISTORY;
	rc = park(h, s, from);
	return rc != 0 ? rc : settle_new(h, s);
}

/* A subscription was accepted, with the status of its resume. */
static void count_subscribe(struct sse_hub *h, int status)
{
	static const enum stat by_status[] = {
		[SSE_REPLAY_FOUND] = STAT_replay_found,     [SSE_REPLAY_GAP] = STAT_replay_gap,
		[SSE_REPLAY_UNKNOWN] = STAT_replay_unknown, [SSE_REPLAY_HISTORY] = STAT_replay_history,
		[SSE_REPLAY_LIVE] = STAT_COUNT, /* counted in subscribes only */
	};

	count(h, STAT_subscribes, 1);
	if (status >= 0 && (size_t)status < sizeof(by_status) / sizeof(by_status[0]) &&
	    by_status[status] != STAT_COUNT)
		count(h, by_status[status], 1);
}

int sse_hub_subscribe(struct sse_hub *h, struct sse_stream *s, const char *last_id, size_t len,
		      int *status)
{
	int st = -1, rc;

	if (h == NULL || s == NULL || sse__stream_owner(s) != NULL || sse_stream_cursor(s) != 0 ||
	    sse__stream_idle(s) != 0)
		return SSE_ERR_INVALID;
	enter(h);
	/* A reader counts what reached it before s: s counts from its cursor. */
	notice(h);
	rc = prepare(h, s);
	if (rc != 0) {
		leave(h);
		return rc;
	}
	rc = start(h, s, last_id, len, &st);
	if (rc == 0 && st != SSE_REPLAY_HISTORY)
		count_follow(h, s);
	if (rc == 0) {
		rc = sse_stream_flush(s);
		count(h, STAT_writes, 1);
	}
	if (rc == SSE_ERR_WOULDBLOCK)
		rc = 0; /* a stream that caught up is ready: owner_drained() */
	if (rc == 0)
		rc = settle_new(h, s);
	/* A failure here is the caller's to handle, not on_drop's. */
	if (rc != 0)
		detach(h, s);
	else
		count_subscribe(h, st);
	if (status != NULL && st != -1)
		*status = st;
	leave(h);
	return rc;
}

/* The provider goes away: whoever is parked on it, with a question out
 * or waiting to ask the next one, can no longer be served. Downward, as
 * in fan_out(): on_drop may free other subscribers. */
static void drop_parked(struct sse_hub *h)
{
	for (size_t i = h->count; i-- > 0 && h->parked > 0;) {
		if (i < h->count && park_of(h, h->subs[i]) != NULL)
			drop(h, h->subs[i], SSE_ERR_IO);
	}
}

int sse_hub_set_history(struct sse_hub *h, const struct sse_history *provider)
{
	if (h == NULL)
		return SSE_ERR_INVALID;
	if (provider == NULL) {
		drop_parked(h);
		h->history = (struct sse_history){0};
		return 0;
	}
	if (h->parked > 0)
		return SSE_ERR_INVALID;
	/* Numbers are what a log and the ring share: ring ids only. */
	if (provider->size != sizeof(*provider) || provider->fetch == NULL ||
	    provider->cancel == NULL || sse_replay_next_number(h->ring) == 0 ||
	    sse__replay_shared(h->ring))
		return SSE_ERR_INVALID; /* a provider restarts the ring */
	h->history = *provider;
	return 0;
}

/* The caller's clock, never going back (publish and tick may be given
 * times read at different moments of a loop turn). */
static void set_now(struct sse_hub *h, uint64_t now_ms)
{
	if (now_ms > h->now_ms)
		h->now_ms = now_ms;
}

/* A publish at now_ms gave rc. */
static int published(struct sse_hub *h, int rc, uint64_t now_ms)
{
	set_now(h, now_ms);
	if (rc == 0)
		arrived(h, 1, sse__replay_held_len(h->ring, sse_replay_next_seq(h->ring) - 1),
			now_ms);
	return rc;
}

int sse_hub_publish(struct sse_hub *h, const struct sse_event *ev, uint64_t now_ms,
		    uint64_t *seq)
{
	if (h == NULL || !h->owns_ring)
		return SSE_ERR_INVALID;
	return published(h, sse_replay_publish(h->ring, ev, now_ms, seq), now_ms);
}

int sse_hub_publish_frame(struct sse_hub *h, const char *frame, size_t len, uint64_t now_ms,
			  uint64_t *seq)
{
	if (h == NULL || !h->owns_ring)
		return SSE_ERR_INVALID;
	return published(h, sse_replay_publish_frame(h->ring, frame, len, now_ms, seq), now_ms);
}

/*
 * Followers fail with SSE_ERR_GAP at the next pass (the ring skipped a
 * sequence number). Parked subscribers keep their place when the epoch
 * stays (their numbers still name the same events); with a new epoch
 * their numbers mean nothing any more, and they fail the same way.
 */
int sse_hub_restart(struct sse_hub *h, const char *epoch, uint64_t next_number)
{
	bool new_epoch;
	int rc;

	if (h == NULL || !h->owns_ring)
		return SSE_ERR_INVALID;
	new_epoch = epoch != NULL && strcmp(epoch, sse_replay_epoch(h->ring)) != 0;
	rc = sse_replay_restart(h->ring, epoch, next_number);
	if (rc != 0 || h->parked == 0)
		return rc;
	enter(h);
	for (size_t i = h->count; i-- > 0;) {
		struct sse_history_fetch *p;

		if (i >= h->count || (p = park_of(h, h->subs[i])) == NULL)
			continue;
		if (new_epoch)
			drop(h, h->subs[i], SSE_ERR_GAP);
		else if (p->state == SSE__PARK_IDLE)
			enqueue(h, p);
	}
	leave(h);
	return 0;
}

int sse_hub_writable(struct sse_hub *h, struct sse_stream *s)
{
	int rc;

	if (!subscribed(h, s))
		return SSE_ERR_INVALID;
	enter(h);
	rc = deliver(h, s);
	leave(h);
	return rc;
}

/*
 * Walking down the ready part keeps the pass right when a subscriber
 * leaves it: the one swapped into its place was visited already. A
 * subscriber made ready during the pass (a drop's callback may read
 * another one dry) has nothing owed up to the live end, so skipping it
 * loses nothing.
 */
/*
 * Whether the batching window still holds what was published since the
 * last pass. Early is allowed, late is not: a batch that fills half of
 * the ring goes at once, or subscribers that kept up would fall out of
 * the ring before the window ends.
 */
static bool window_holds(const struct sse_hub *h, uint64_t live)
{
	if (h->batch_due == SSE_NO_DEADLINE || h->now_ms >= h->batch_due)
		return false;
	if (live - h->flushed_seq >= (h->ring_events + 1) / 2 ||
	    h->flushed_seq < sse_replay_first_seq(h->ring))
		return false;
	return sse__replay_backlog(h->ring, h->flushed_seq) < h->ring_bytes / 2;
}

static void fan_out(struct sse_hub *h)
{
	uint64_t live = sse_replay_next_seq(h->ring);

	if (live == h->flushed_seq)
		return;
	if (window_holds(h, live))
		return; /* the window is open: sse_hub_tick() at its deadline */
	h->flushed_seq = live;
	h->batch_due = SSE_NO_DEADLINE;
	for (size_t i = h->ready; i-- > 0;) {
		if (i < h->ready)
			deliver(h, h->subs[i]);
	}
	/* Those waiting on their transport are not written to, but the
	 * publishes may have made them miss events (or, with an
	 * asynchronous transport, dropped frames it still holds, which
	 * would block the ring): they are dropped now, not at a writable
	 * that a peer that stopped reading never brings. */
	for (size_t i = h->count; i-- > h->ready;) {
		int rc;

		if (i >= h->count || i < h->ready)
			continue;
		rc = sse__stream_check(h->subs[i]);
		if (rc != 0)
			drop(h, h->subs[i], rc);
	}
}

/* Parked subscribers that drained since the last call (a read of their
 * own, say) are acted on here too; the ready ones a publish reached
 * tell so by draining in the pass. */
int sse_hub_flush(struct sse_hub *h)
{
	if (h == NULL)
		return SSE_ERR_INVALID;
	enter(h);
	notice(h);
	fan_out(h);
	leave(h);
	return 0;
}

int sse_hub_tick(struct sse_hub *h, uint64_t now_ms, uint64_t *next_ms)
{
	int rc;

	if (h == NULL)
		return SSE_ERR_INVALID;
	set_now(h, now_ms);
	enter(h);
	notice(h);
	if (h->batch_due != SSE_NO_DEADLINE && h->now_ms >= h->batch_due)
		fan_out(h); /* before expiry: the batch's frames are all there */
	if (h->owns_ring)
		sse_replay_expire(h->ring, now_ms); /* the writer's */
	rc = sse_timers_run(h->timers, now_ms, next_ms, NULL);
	leave(h);
	if (rc == 0 && next_ms != NULL && h->batch_due < *next_ms)
		*next_ms = h->batch_due;
	return rc;
}

int sse_hub_visit(struct sse_hub *h, sse_hub_visit_fn fn, void *ctx)
{
	int rc = 0;

	if (h == NULL || fn == NULL)
		return SSE_ERR_INVALID;
	/* Downward, for the reason of sse_hub_flush(): a subscriber that
	 * leaves is replaced by one visited already. */
	guard_on(h);
	for (size_t i = h->count; rc == 0 && i-- > 0;) {
		if (i < h->count)
			rc = fn(h->subs[i], ctx);
	}
	guard_off(h);
	return rc;
}

const struct sse_replay *sse_hub_ring(const struct sse_hub *h)
{
	return h ? h->ring : NULL;
}

size_t sse_hub_count(const struct sse_hub *h)
{
	return h ? h->count : 0;
}

/* Another thread may call this: h is only read, through the atomics. */
static uint64_t load(const struct sse_hub *h, enum stat i)
{
	/* C11 atomic_load takes a non-const pointer; the hub is not const. */
	return atomic_load_explicit((_Atomic uint64_t *)&h->stats[i], memory_order_relaxed);
}

int sse_hub_stats(const struct sse_hub *h, struct sse_hub_stats *out)
{
	size_t size;

	if (h == NULL || out == NULL || out->size < sizeof(out->size))
		return SSE_ERR_INVALID;
	size = out->size;
	/* Each field the caller's struct has room for, from its offset. */
#define STAT_FILL(name, kind, help)                                                \
	if (offsetof(struct sse_hub_stats, name) + sizeof(out->name) <= size)      \
		out->name = load(h, STAT_##name);
	SSE_HUB_STATS(STAT_FILL)
#undef STAT_FILL
	return 0;
}

uint64_t sse_hub_lag(const struct sse_hub *h, const struct sse_stream *s)
{
	const struct sse_history_fetch *p;
	uint64_t live, cursor;

	if (!subscribed(h, s))
		return 0;
	p = park_of(h, s);
	if (p != NULL) {
		live = sse_replay_next_number(h->ring);
		return p->position < live ? live - p->position : 0;
	}
	live = sse_replay_next_seq(h->ring);
	cursor = sse_stream_cursor(s);
	return cursor != 0 && cursor < live ? live - cursor : 0; /* 0: failed, let go */
}
