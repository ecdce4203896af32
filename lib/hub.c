/*
 * The hub: one replay ring, many subscribers following it. An event is
 * encoded once; each subscriber is a stream with a cursor into the ring,
 * so fan-out copies no event bytes and a subscriber's memory does not
 * grow with traffic.
 *
 * SPDX-License-Identifier: MIT
 */
#include "replay.h"
#include "stream.h"

#define DEFAULT_BACKLOG ((size_t)256 * 1024)

struct sse_hub {
	struct sse_allocator alloc;
	struct sse_replay *ring;
	struct sse_timers *timers;
	struct sse_stream **subs; /* dense: [0, count) */
	size_t count, cap;
	size_t max_backlog;
	uint64_t heartbeat_ms, jitter_ms;
	sse_hub_drop_fn on_drop;
	void *user;
};

static void heartbeat_failed(struct sse_stream *s, int err, void *user);

static int hub_init(struct sse_hub *h, const struct sse_hub_config *cfg)
{
	int rc = sse_replay_new(&h->ring, &cfg->ring, &h->alloc);

	if (rc == 0)
		rc = sse_timers_new(&h->timers, heartbeat_failed, h, &h->alloc);
	h->max_backlog = cfg->max_backlog ? cfg->max_backlog : DEFAULT_BACKLOG;
	h->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : SSE_HEARTBEAT_DEFAULT_MS;
	h->jitter_ms = cfg->heartbeat_jitter_ms;
	if (rc == 0 && h->jitter_ms >= h->heartbeat_ms)
		rc = SSE_ERR_INVALID;
	if (cfg->no_heartbeat)
		h->heartbeat_ms = h->jitter_ms = 0; /* sse_stream_set_heartbeat: off */
	return rc;
}

int sse_hub_new(struct sse_hub **out, const struct sse_hub_config *cfg, sse_hub_drop_fn on_drop,
		void *user, const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_hub *h;
	int rc;

	if (out == NULL || cfg == NULL || on_drop == NULL || sse__allocator_init(&a, alloc) != 0)
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

/* Take s out of the subscriber array (the last one fills its place) and
 * off the ring and the scheduler. */
static void detach(struct sse_hub *h, struct sse_stream *s)
{
	struct sse__hub_link *link = sse__stream_hub_link(s);
	struct sse_stream *last = h->subs[--h->count];

	h->subs[link->index] = last;
	sse__stream_hub_link(last)->index = link->index;
	*link = (struct sse__hub_link){0};
	sse_timers_remove(h->timers, s);
	sse__stream_unfollow(s);
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

void sse_hub_unsubscribe(struct sse_hub *h, struct sse_stream *s)
{
	if (h != NULL && s != NULL && sse__stream_hub_link(s)->hub == h)
		detach(h, s);
}

/* A subscriber failed: detach it first, so on_drop may free it. */
static void drop(struct sse_hub *h, struct sse_stream *s, int err)
{
	detach(h, s);
	h->on_drop(s, err, h->user);
}

static void heartbeat_failed(struct sse_stream *s, int err, void *user)
{
	/* The scheduler has let it go already; detach() leaves that alone. */
	drop(user, s, err);
}

/* Heartbeat, backlog bound, scheduler: everything but the bytes. */
static int prepare(struct sse_hub *h, struct sse_stream *s)
{
	int rc = sse_stream_set_heartbeat(s, h->heartbeat_ms, h->jitter_ms);

	if (rc == 0)
		rc = sse_stream_set_queue_limit(s, h->max_backlog);
	if (rc == 0 && h->count == h->cap)
		rc = sse__grow(&h->alloc, (void **)&h->subs, &h->cap, sizeof(*h->subs));
	if (rc == 0)
		rc = sse_timers_add(h->timers, s);
	return rc;
}

/* Opening bytes, then the reset event if the client's id is lost, then
 * follow the ring from the resume point. */
static int resume(struct sse_hub *h, struct sse_stream *s, const char *id, size_t len,
		  int *status)
{
	uint64_t cursor;
	int st = sse_replay_seek(h->ring, id, len, &cursor);
	int rc;

	if (st < 0)
		return st;
	if (status != NULL)
		*status = st;
	rc = sse_stream_start(s, 0); /* attached: the scheduler's clock counts */
	if (rc == 0 && (st == SSE_REPLAY_GAP || st == SSE_REPLAY_UNKNOWN))
		rc = sse__replay_send_reset(h->ring, s);
	if (rc == 0)
		rc = sse_stream_follow(s, h->ring, cursor);
	return rc;
}

int sse_hub_subscribe(struct sse_hub *h, struct sse_stream *s, const char *last_id, size_t len,
		      int *status)
{
	struct sse__hub_link *link;
	int rc;

	if (h == NULL || s == NULL || sse__stream_hub_link(s)->hub != NULL ||
	    sse_stream_cursor(s) != 0 || sse__stream_link(s)->timers != NULL)
		return SSE_ERR_INVALID;
	rc = prepare(h, s);
	if (rc != 0)
		return rc;
	link = sse__stream_hub_link(s);
	*link = (struct sse__hub_link){.hub = h, .index = h->count};
	h->subs[h->count++] = s;
	rc = resume(h, s, last_id, len, status);
	if (rc == 0)
		rc = sse_stream_flush(s);
	link->blocked = rc == SSE_ERR_WOULDBLOCK;
	if (rc == SSE_ERR_WOULDBLOCK)
		return 0;
	/* A failure here is the caller's to handle, not on_drop's. */
	if (rc != 0)
		detach(h, s);
	return rc;
}

int sse_hub_publish(struct sse_hub *h, const struct sse_event *ev, uint64_t now_ms,
		    uint64_t *seq)
{
	if (h == NULL)
		return SSE_ERR_INVALID;
	return sse_replay_publish(h->ring, ev, now_ms, seq);
}

/* Write what s owes. WOULDBLOCK marks it blocked until its transport is
 * writable again; an error drops it. */
static int deliver(struct sse_hub *h, struct sse_stream *s)
{
	int rc = sse_stream_flush(s);

	sse__stream_hub_link(s)->blocked = rc == SSE_ERR_WOULDBLOCK;
	if (rc != 0 && rc != SSE_ERR_WOULDBLOCK)
		drop(h, s, rc);
	return rc;
}

int sse_hub_writable(struct sse_hub *h, struct sse_stream *s)
{
	if (h == NULL || s == NULL || sse__stream_hub_link(s)->hub != h)
		return SSE_ERR_INVALID;
	return deliver(h, s);
}

/*
 * Blocked subscribers are not written to (that would only earn EAGAIN),
 * unless the stream says it lags: then the flush fails it, which is what
 * drops a slow consumer in time. Walking down the array keeps the pass
 * right when a drop moves the last subscriber into the current place.
 */
int sse_hub_flush(struct sse_hub *h)
{
	if (h == NULL)
		return SSE_ERR_INVALID;
	for (size_t i = h->count; i-- > 0;) {
		struct sse_stream *s;

		if (i >= h->count) /* on_drop detached others */
			continue;
		s = h->subs[i];
		if (!sse__stream_hub_link(s)->blocked || sse__stream_lagging(s))
			deliver(h, s);
	}
	return 0;
}

int sse_hub_tick(struct sse_hub *h, uint64_t now_ms, uint64_t *next_ms)
{
	if (h == NULL)
		return SSE_ERR_INVALID;
	return sse_timers_run(h->timers, now_ms, next_ms, NULL);
}

const struct sse_replay *sse_hub_ring(const struct sse_hub *h)
{
	return h ? h->ring : NULL;
}

size_t sse_hub_count(const struct sse_hub *h)
{
	return h ? h->count : 0;
}
