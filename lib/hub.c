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
 * SPDX-License-Identifier: MIT
 */
#include "timers.h"

struct sse_hub {
	struct sse_allocator alloc;
	struct sse_replay *ring;
	struct sse_timers *timers;
	struct sse_stream **subs; /* dense: [0, ready) ready, [ready, count) waiting */
	size_t count, cap, ready;
	uint64_t flushed_seq;     /* the ring's next_seq at the end of the last pass */
	uint64_t max_lag, stall_ms, heartbeat_ms, jitter_ms;
	uint64_t window_ms;       /* the batching window; 0: none */
	uint64_t now_ms;          /* the latest time the caller gave */
	uint64_t batch_due;       /* when the open batch goes out; SSE_NO_DEADLINE: none */
	sse_hub_drop_fn on_drop;
	void *user;
};

/* Configs of 0.1 end before window_ms: they are read without it. */
#define OLD_CONFIG_SIZE offsetof(struct sse_hub_config, window_ms)

static void visit_failed(struct sse_stream *s, int err, void *user);

static int hub_init(struct sse_hub *h, const struct sse_hub_config *cfg)
{
	int rc = sse_replay_new(&h->ring, &cfg->ring, &h->alloc);

	if (rc == 0)
		rc = sse_timers_new(&h->timers, visit_failed, h, &h->alloc);
	h->flushed_seq = sse_replay_next_seq(h->ring);
	h->max_lag = cfg->max_lag;
	h->stall_ms = cfg->stall_ms ? cfg->stall_ms : SSE_HUB_DEFAULT_STALL_MS;
	if (h->stall_ms == UINT64_MAX)
		h->stall_ms = 0; /* sse_stream_set_stall: never */
	h->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : SSE_HEARTBEAT_DEFAULT_MS;
	h->jitter_ms = cfg->heartbeat_jitter_ms;
	if (rc == 0 && h->jitter_ms >= h->heartbeat_ms)
		rc = SSE_ERR_INVALID;
	if (cfg->no_heartbeat)
		h->heartbeat_ms = h->jitter_ms = 0; /* sse_stream_set_heartbeat: off */
	if (cfg->size > OLD_CONFIG_SIZE)
		h->window_ms = cfg->window_ms;
	h->batch_due = SSE_NO_DEADLINE;
	return rc;
}

int sse_hub_new(struct sse_hub **out, const struct sse_hub_config *cfg, sse_hub_drop_fn on_drop,
		void *user, const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_hub *h;
	int rc;

	if (out == NULL || cfg == NULL || on_drop == NULL ||
	    (cfg->size != sizeof(*cfg) && cfg->size != OLD_CONFIG_SIZE) ||
	    sse__allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	h = sse__alloc(&a, sizeof(*h));
	if (h == NULL)
		return SSE_ERR_NOMEM;
	*h = (struct sse_hub){.alloc = a, .on_drop = on_drop, .user = user};
	rc = hub_init(h, cfg);
	if (rc != 0) {
		sse_hub_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* ---- the subscriber array */

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
	return *sse__stream_owner_slot(s) < h->ready;
}

/* Move s to the end of the ready part, or just past it, by one swap. */
static void mark_waiting(struct sse_hub *h, struct sse_stream *s)
{
	if (is_ready(h, s))
		swap(h, *sse__stream_owner_slot(s), --h->ready);
}

static void mark_ready(struct sse_hub *h, struct sse_stream *s)
{
	if (!is_ready(h, s))
		swap(h, *sse__stream_owner_slot(s), h->ready++);
}

/* Take s out of the array, off the ring and off the scheduler. */
static void detach(struct sse_hub *h, struct sse_stream *s)
{
	mark_waiting(h, s);
	swap(h, *sse__stream_owner_slot(s), --h->count);
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
	sse_replay_free(h->ring);
	sse__free(&h->alloc, h, sizeof(*h));
}

static bool subscribed(const struct sse_hub *h, const struct sse_stream *s)
{
	return h != NULL && s != NULL && sse__stream_owner(s) == h;
}

void sse_hub_unsubscribe(struct sse_hub *h, struct sse_stream *s)
{
	if (subscribed(h, s))
		detach(h, s);
}

/* A subscriber failed: detach it first, so on_drop may free it. */
static void drop(struct sse_hub *h, struct sse_stream *s, int err)
{
	detach(h, s);
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

static void owner_release(void *owner, struct sse_stream *s)
{
	detach(owner, s);
}

static const struct sse__owner_ops hub_owner = {
	.deadline_moved = owner_deadline_moved,
	.drained = owner_drained,
	.release = owner_release,
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
	sse__stream_set_owner(s, &hub_owner, h);
	put(h, h->count++, s); /* waiting until its first write says otherwise */
	return 0;
}

/* Write what s owes: waiting when its transport refused; dropped when it
 * failed. One that caught up told us so itself (owner_drained()). */
static int deliver(struct sse_hub *h, struct sse_stream *s)
{
	int rc = sse_stream_flush(s);

	if (rc == SSE_ERR_WOULDBLOCK)
		mark_waiting(h, s);
	else if (rc != 0)
		drop(h, s, rc);
	return rc;
}

int sse_hub_subscribe(struct sse_hub *h, struct sse_stream *s, const char *last_id, size_t len,
		      int *status)
{
	int rc;

	if (h == NULL || s == NULL || sse__stream_owner(s) != NULL || sse_stream_cursor(s) != 0 ||
	    sse__stream_idle(s) != 0)
		return SSE_ERR_INVALID;
	rc = prepare(h, s);
	if (rc != 0)
		return rc;
	rc = sse_stream_start(s, 0); /* attached: the scheduler's clock counts */
	if (rc == 0)
		rc = sse_stream_resume(s, h->ring, last_id, len, status);
	if (rc == 0)
		rc = sse_stream_flush(s);
	if (rc == 0 || rc == SSE_ERR_WOULDBLOCK)
		return 0; /* a stream that caught up is ready: owner_drained() */
	/* A failure here is the caller's to handle, not on_drop's. */
	detach(h, s);
	return rc;
}

/* The caller's clock, never going back (publish and tick may be given
 * times read at different moments of a loop turn). */
static void set_now(struct sse_hub *h, uint64_t now_ms)
{
	if (now_ms > h->now_ms)
		h->now_ms = now_ms;
}

int sse_hub_publish(struct sse_hub *h, const struct sse_event *ev, uint64_t now_ms,
		    uint64_t *seq)
{
	int rc;

	if (h == NULL)
		return SSE_ERR_INVALID;
	rc = sse_replay_publish(h->ring, ev, now_ms, seq);
	set_now(h, now_ms);
	/* The first event of a batch sets its deadline: no event waits
	 * longer than the window. */
	if (rc == 0 && h->window_ms > 0 && h->batch_due == SSE_NO_DEADLINE)
		h->batch_due = now_ms + h->window_ms;
	return rc;
}

int sse_hub_writable(struct sse_hub *h, struct sse_stream *s)
{
	if (!subscribed(h, s))
		return SSE_ERR_INVALID;
	return deliver(h, s);
}

/*
 * Walking down the ready part keeps the pass right when a subscriber
 * leaves it: the one swapped into its place was visited already. A
 * subscriber made ready during the pass (a drop's callback may read
 * another one dry) has nothing owed up to the live end, so skipping it
 * loses nothing.
 */
int sse_hub_flush(struct sse_hub *h)
{
	uint64_t live;

	if (h == NULL)
		return SSE_ERR_INVALID;
	live = sse_replay_next_seq(h->ring);
	if (live == h->flushed_seq)
		return 0;
	if (h->batch_due != SSE_NO_DEADLINE && h->now_ms < h->batch_due)
		return 0; /* the window is open: sse_hub_tick() at its deadline */
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
	return 0;
}

int sse_hub_tick(struct sse_hub *h, uint64_t now_ms, uint64_t *next_ms)
{
	int rc;

	if (h == NULL)
		return SSE_ERR_INVALID;
	set_now(h, now_ms);
	if (h->batch_due != SSE_NO_DEADLINE && h->now_ms >= h->batch_due)
		sse_hub_flush(h); /* before expiry: the batch's frames are all there */
	sse_replay_expire(h->ring, now_ms);
	rc = sse_timers_run(h->timers, now_ms, next_ms, NULL);
	if (rc == 0 && next_ms != NULL && h->batch_due < *next_ms)
		*next_ms = h->batch_due;
	return rc;
}

int sse_hub_visit(struct sse_hub *h, sse_hub_visit_fn fn, void *ctx)
{
	if (h == NULL || fn == NULL)
		return SSE_ERR_INVALID;
	/* Downward, for the reason of sse_hub_flush(): a subscriber that
	 * leaves is replaced by one visited already. */
	for (size_t i = h->count; i-- > 0;) {
		int rc;

		if (i >= h->count)
			continue;
		rc = fn(h->subs[i], ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}

const struct sse_replay *sse_hub_ring(const struct sse_hub *h)
{
	return h ? h->ring : NULL;
}

size_t sse_hub_count(const struct sse_hub *h)
{
	return h ? h->count : 0;
}
