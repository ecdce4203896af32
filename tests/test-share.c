/*
 * One ring, several threads: a writer publishes into a shared ring while
 * hubs on reader threads fan out from it (sse_replay_share(),
 * sse_hub_new_shared()). Every byte a subscriber receives is checked
 * against what was published, so a frame reused under a reader shows as
 * a wrong event, not only as a report of ThreadSanitizer (the tsan step
 * of tests/run-all.sh runs this suite under it).
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memmem */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

#define READERS 3
#define SUBS 8          /* per reader thread: two of each transport */
#define EVENTS 6000
#define RING_EVENTS 64
#define RING_BYTES (24 * 1024)

/* ---- the events: each one's data says what it is, in a length that varies */

static size_t data_len(uint64_t n)
{
	return 8 + (size_t)((n * 2654435761u) % 700);
}

static void make_data(uint64_t n, char *buf, size_t len)
{
	int k = snprintf(buf, len, "e%llu:", (unsigned long long)n);

	for (size_t i = (size_t)k; i < len; i++)
		buf[i] = (char)('a' + (n + i) % 26);
}

/* ---- a subscriber: a transport that keeps what it takes, then a check */

enum mode { PUSH_ALL, PUSH_TRICKLE, PULL, PUSH_SLOW, MODES };

struct sub {
	struct sse_stream *s;
	struct test_writer w;
	enum mode mode;
	bool dropped, woken;
	int drop_err;
	uint64_t resume_from; /* 0: live; else the id number resumed from */
};

static void sub_init(struct sub *u, enum mode mode)
{
	*u = (struct sub){.mode = mode};
	test_writer_init(&u->w);
	u->w.max_per_call = mode == PUSH_TRICKLE ? 97 : 0;
}

/* The pull transport's wake: the reader thread reads at its next turn. */
static void sub_wake(struct sse_stream *s, void *ctx)
{
	(void)s;
	((struct sub *)ctx)->woken = true;
}

static uint64_t sum_of(const void *p, size_t n)
{
	uint64_t h = 14695981039346656037u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211u;
	return h;
}

/* A transport that takes its time inside the call, while the writer goes
 * on: the bytes it was handed must not change before it returns. */
static int slow_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct sub *u = ctx;
	uint64_t before[SSE_IOV_MAX];

	for (size_t i = 0; i < n; i++)
		before[i] = sum_of(iov[i].base, iov[i].len);
	for (int k = 0; k < 3; k++)
		sched_yield();
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(sum_of(iov[i].base, iov[i].len) == before[i],
			      "bytes changed under a transport call");
	return test_writer_writev(iov, n, taken, &u->w);
}

static void sub_stream(struct sub *u)
{
	struct sse_transport t = test_writer_transport(&u->w, true);

	if (u->mode == PUSH_SLOW)
		t = (struct sse_transport){.size = sizeof(t), .writev = slow_writev, .ctx = u};
	if (u->mode == PULL)
		t = (struct sse_transport){.size = sizeof(t), .wake = sub_wake, .ctx = u};
	ck_assert_int_eq(sse_stream_new(&u->s, &t, u, NULL), 0);
}

/* The events u received, by the standard's parsing: exactly the numbers
 * first..last in order, each with its data; returns how many. */
struct seen {
	const char *epoch;
	uint64_t next, count;
	bool bad;
	char why[160];
};

static int on_event(const struct sse_message *m, void *ctx)
{
	struct seen *sn = ctx;
	char want[1024], id[64];
	size_t len = data_len(sn->next);

	if (sn->bad || m->type_len != 7 || memcmp(m->type, "message", 7) != 0)
		return 0; /* the reset event is checked by its own test */
	snprintf(id, sizeof(id), "%s%llu", sn->epoch, (unsigned long long)sn->next);
	make_data(sn->next, want, len);
	if (m->last_id_len != strlen(id) || memcmp(m->last_id, id, m->last_id_len) != 0 ||
	    m->data_len != len || memcmp(m->data, want, len) != 0) {
		sn->bad = true;
		snprintf(sn->why, sizeof(sn->why), "wanted %s, got id %.*s (%zu data bytes)", id,
			 (int)m->last_id_len, m->last_id, m->data_len);
		return 0;
	}
	sn->next++;
	sn->count++;
	return 0;
}

static uint64_t check_received(const struct sub *u, const char *epoch, uint64_t first)
{
	struct sse_parser_callbacks cb = {.on_message = on_event};
	struct sse_parser *p;
	struct seen sn = {.epoch = epoch, .next = first};

	ck_assert_int_eq(sse_parser_new(&p, &cb, &sn, NULL), 0);
	ck_assert_int_eq(sse_parser_feed(p, u->w.buf, u->w.len), 0);
	sse_parser_free(p);
	ck_assert_msg(!sn.bad, "%s", sn.why);
	return sn.count;
}

/* ---- a reader thread: its own hub on the shared ring, its subscribers */

struct world;

struct reader {
	struct world *wd;
	int index;
	struct sse_hub *hub;
	struct sub subs[SUBS];
	_Atomic uint64_t done_seq; /* every subscriber took all before it */
	pthread_t thread;
};

struct world {
	struct sse_hub *origin; /* the writer's */
	const struct sse_replay *ring;
	struct reader readers[READERS];
	uint64_t events;
	uint64_t window_ms;
	bool pace;              /* the writer never laps the slowest reader */
	bool late_joiners;      /* half the subscribers join late, resuming */
	atomic_bool stop;
	atomic_int ready;       /* reader threads whose first subscribers are in */
	_Atomic uint64_t published_seq;
};

static void on_drop(struct sse_stream *s, int err, void *user)
{
	struct sub *u = sse_stream_user(s);

	(void)user;
	u->dropped = true;
	u->drop_err = err;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void subscribe(struct reader *rd, struct sub *u, uint64_t resume_from)
{
	char id[64];
	const char *epoch = sse_replay_epoch(rd->wd->ring);

	sub_stream(u);
	ck_assert_int_eq(sse_stream_set_queue_limit(u->s, 1 << 20), 0);
	u->resume_from = resume_from;
	snprintf(id, sizeof(id), "%s%llu", epoch, (unsigned long long)resume_from);
	ck_assert_int_eq(sse_hub_subscribe(rd->hub, u->s, resume_from ? id : NULL,
					   resume_from ? strlen(id) : 0, NULL), 0);
}

/* Pull subscribers that were woken are read dry, in small reads. */
static void read_pulls(struct reader *rd)
{
	char buf[333];

	for (int i = 0; i < SUBS; i++) {
		struct sub *u = &rd->subs[i];
		size_t n;

		if (u->mode != PULL || u->s == NULL || u->dropped || !u->woken)
			continue;
		u->woken = false;
		while (sse_stream_read(u->s, buf, sizeof(buf), &n) == 0) {
			if (u->w.len + n > u->w.cap) {
				u->w.cap = 2 * (u->w.len + n);
				u->w.buf = realloc(u->w.buf, u->w.cap);
				ck_assert_ptr_nonnull(u->w.buf);
			}
			memcpy(u->w.buf + u->w.len, buf, n);
			u->w.len += n;
		}
	}
}

/* Trickling subscribers are offered their bytes again, as a loop's
 * "writable" would. */
static void write_trickles(struct reader *rd)
{
	for (int i = 0; i < SUBS; i++) {
		struct sub *u = &rd->subs[i];

		if (u->mode == PUSH_TRICKLE && u->s != NULL && !u->dropped &&
		    sse_stream_pending(u->s) > 0)
			sse_hub_writable(rd->hub, u->s);
	}
}

/* The lowest position any live subscriber of this thread still owes from. */
static uint64_t slowest(struct reader *rd)
{
	uint64_t low = UINT64_MAX;

	for (int i = 0; i < SUBS; i++) {
		struct sub *u = &rd->subs[i];

		if (u->s != NULL && !u->dropped && sse_hub_lag(rd->hub, u->s) > 0) {
			uint64_t at = sse_stream_cursor(u->s);

			if (at < low)
				low = at;
		}
	}
	return low == UINT64_MAX ? sse_replay_next_seq(rd->wd->ring) : low;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct world *wd = rd->wd;
	struct sse_hub_config cfg = {.size = sizeof(cfg), .no_heartbeat = 1,
				     .window_ms = wd->window_ms};
	int joined = 0;

	ck_assert_int_eq(sse_hub_new_shared(&rd->hub, wd->ring, &cfg, on_drop, rd, NULL), 0);
	sse_hub_tick(rd->hub, now_ms(), NULL); /* the hub's clock, before anyone joins */
	for (; joined < (wd->late_joiners ? SUBS / 2 : SUBS); joined++)
		subscribe(rd, &rd->subs[joined], 0);
	atomic_fetch_add(&wd->ready, 1);
	while (!atomic_load(&wd->stop)) {
		uint64_t published = atomic_load(&wd->published_seq);

		sse_hub_tick(rd->hub, now_ms(), NULL);
		sse_hub_flush(rd->hub);
		read_pulls(rd);
		write_trickles(rd);
		/* Late joiners resume from an id a little behind where this
		 * reader's subscribers are. Not behind the live end: the writer
		 * may run up to half a ring past the slowest reader before the
		 * subscribe, and the frames after that id must still be held
		 * (at most 40 frames, about 15 of the ring's 24 KiB). */
		if (joined < SUBS && published > 40 * (uint64_t)(joined + 1)) {
			uint64_t done = atomic_load(&rd->done_seq);

			subscribe(rd, &rd->subs[joined++], done > 8 ? done - 8 : 0);
		}
		atomic_store(&rd->done_seq, slowest(rd));
		sched_yield();
	}
	/* The last turn: everything published is there; a window opened
	 * by this tick ends by the next. */
	sse_hub_tick(rd->hub, now_ms(), NULL);
	sse_hub_tick(rd->hub, now_ms() + wd->window_ms + 1, NULL);
	sse_hub_flush(rd->hub);
	for (int k = 0; k < 50; k++) {
		read_pulls(rd);
		write_trickles(rd);
	}
	return NULL;
}

static void writer_publish(struct world *wd)
{
	char data[1024];

	for (uint64_t n = 1; n <= wd->events; n++) {
		struct sse_event ev = {.data = data, .data_len = data_len(n)};
		uint64_t seq;
		int rc;

		make_data(n, data, ev.data_len);
		/* Pacing: stay within half a ring of the slowest reader. */
		for (int i = 0; wd->pace && i < READERS; i++) {
			while (n > RING_EVENTS / 2 &&
			       atomic_load(&wd->readers[i].done_seq) + RING_EVENTS / 2 < n)
				sched_yield();
		}
		while ((rc = sse_hub_publish(wd->origin, &ev, now_ms(), &seq)) == SSE_ERR_PINNED)
			sched_yield(); /* a reader is still reading what the room needs */
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(seq, n);
		atomic_store(&wd->published_seq, n);
		sse_hub_tick(wd->origin, now_ms(), NULL);
		if (!wd->pace && n % 4 == 0)
			sched_yield(); /* unpaced, but not in one burst */
	}
}

static void world_run(struct world *wd)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg), .no_heartbeat = 1,
				     .ring = {.size = sizeof(cfg.ring), .max_events = RING_EVENTS,
					      .max_bytes = RING_BYTES}};

	ck_assert_int_eq(sse_hub_new(&wd->origin, &cfg, on_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_share(wd->origin, READERS), 0);
	wd->ring = sse_hub_ring(wd->origin);
	atomic_init(&wd->stop, false);
	atomic_init(&wd->published_seq, 0);
	atomic_init(&wd->ready, 0);
	for (int i = 0; i < READERS; i++) {
		struct reader *rd = &wd->readers[i];

		rd->wd = wd;
		rd->index = i;
		atomic_init(&rd->done_seq, 0);
		for (int k = 0; k < SUBS; k++)
			sub_init(&rd->subs[k], (enum mode)(k % MODES));
		ck_assert_int_eq(pthread_create(&rd->thread, NULL, reader_main, rd), 0);
	}
	while (atomic_load(&wd->ready) < READERS)
		sched_yield(); /* live subscribers are there before the first event */
	writer_publish(wd);
	atomic_store(&wd->stop, true);
	for (int i = 0; i < READERS; i++)
		ck_assert_int_eq(pthread_join(wd->readers[i].thread, NULL), 0);
}

static void world_free(struct world *wd)
{
	for (int i = 0; i < READERS; i++) {
		struct reader *rd = &wd->readers[i];

		for (int k = 0; k < SUBS; k++) {
			sse_stream_free(rd->subs[k].s);
			test_writer_fini(&rd->subs[k].w);
		}
		sse_hub_free(rd->hub);
	}
	sse_hub_free(wd->origin);
}

/* Paced, so no subscriber falls out of the ring: each gets every event
 * once, in order, whatever its transport (all at once, 97 bytes a call,
 * or pull), including those that joined late and resumed by id. */
static void run_paced(uint64_t window_ms, bool late)
{
	static struct world wd;
	struct sse_hub_stats origin = {.size = sizeof(origin)};
	const char *epoch;

	memset(&wd, 0, sizeof(wd));
	wd.events = EVENTS;
	wd.pace = true;
	wd.window_ms = window_ms;
	wd.late_joiners = late;
	world_run(&wd);
	epoch = sse_replay_epoch(wd.ring);
	ck_assert_int_eq(sse_hub_stats(wd.origin, &origin), 0);
	for (int i = 0; i < READERS; i++) {
		struct sse_hub_stats st = {.size = sizeof(st)};

		for (int k = 0; k < SUBS; k++) {
			struct sub *u = &wd.readers[i].subs[k];
			uint64_t first = u->resume_from + 1;

			ck_assert_msg(!u->dropped, "reader %d sub %d dropped (%d)", i, k, u->drop_err);
			ck_assert_uint_eq(check_received(u, epoch, first), EVENTS - first + 1);
		}
		ck_assert_int_eq(sse_hub_stats(wd.readers[i].hub, &st), 0);
		ck_assert_uint_eq(st.subscribers, SUBS);
		ck_assert_uint_eq(st.drops_gap, 0);
		/* What reached each reader, counted once. Bytes of frames gone
		 * before the reader noticed them are not known (not counted). */
		ck_assert_uint_eq(st.published_events, EVENTS);
		ck_assert_uint_le(st.published_bytes, origin.published_bytes);
	}
	world_free(&wd);
}

START_TEST(test_share_every_subscriber_every_event)
{
	run_paced(0, false);
}
END_TEST

START_TEST(test_share_late_joiners_resume)
{
	run_paced(0, true);
}
END_TEST

START_TEST(test_share_with_window)
{
	run_paced(2, true);
}
END_TEST

/* Unpaced: the writer laps readers that fall behind. A subscriber may
 * then be dropped for missing events, but what it got before is exactly
 * the events in order: no frame was reused under a reader, and the
 * writer never had to stop for good. */
START_TEST(test_share_unpaced_drops_cleanly)
{
	static struct world wd;
	const char *epoch;
	uint64_t got_all = 0, verified = 0;

	memset(&wd, 0, sizeof(wd));
	wd.events = EVENTS;
	world_run(&wd);
	epoch = sse_replay_epoch(wd.ring);
	for (int i = 0; i < READERS; i++) {
		for (int k = 0; k < SUBS; k++) {
			const struct sub *u = &wd.readers[i].subs[k];
			uint64_t n = check_received(u, epoch, 1);

			if (!u->dropped)
				ck_assert_uint_eq(n, EVENTS);
			else
				ck_assert_int_eq(u->drop_err, SSE_ERR_GAP);
			got_all += n == EVENTS;
			verified += n;
		}
	}
	fprintf(stderr, "unpaced: %llu events checked; %llu of %d subscribers got all %d\n",
		(unsigned long long)verified, (unsigned long long)got_all, READERS * SUBS, EVENTS);
	world_free(&wd);
}
END_TEST

/* ---- an asynchronous transport: frames it holds stay as they were */

#define HELD_MAX 64

struct async_sub {
	struct sse_stream *s;
	struct sse_iovec held[HELD_MAX];
	uint64_t sums[HELD_MAX];
	size_t nheld;
	struct test_writer got; /* the bytes, once completed */
	bool dropped;
};

static int async_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct async_sub *a = ctx;

	*taken = 0;
	for (size_t i = 0; i < n && a->nheld < HELD_MAX; i++) {
		a->held[a->nheld] = iov[i];
		a->sums[a->nheld++] = sum_of(iov[i].base, iov[i].len);
		*taken += iov[i].len;
	}
	return *taken > 0 ? 0 : SSE_ERR_WOULDBLOCK;
}

/* Complete what is held, checking first that not a byte changed. */
static void async_complete(struct async_sub *a)
{
	size_t bytes = 0;

	for (size_t i = 0; i < a->nheld; i++) {
		ck_assert_msg(sum_of(a->held[i].base, a->held[i].len) == a->sums[i],
			      "held bytes changed under the transport");
		ck_assert_int_eq(test_writer_write(a->held[i].base, a->held[i].len, &(size_t){0},
						   &a->got),
				 0);
		bytes += a->held[i].len;
	}
	a->nheld = 0;
	if (bytes > 0)
		ck_assert_int_eq(sse_stream_complete(a->s, bytes), 0);
}

struct async_world {
	struct sse_hub *origin, *hub;
	struct async_sub subs[4];
	atomic_bool stop;
	_Atomic uint64_t taken_seq;
};

static void async_drop(struct sse_stream *s, int err, void *user)
{
	(void)err, (void)user;
	((struct async_sub *)sse_stream_user(s))->dropped = true;
}

static void *async_reader(void *arg)
{
	struct async_world *aw = arg;
	struct sse_hub_config cfg = {.size = sizeof(cfg), .no_heartbeat = 1};

	ck_assert_int_eq(sse_hub_new_shared(&aw->hub, sse_hub_ring(aw->origin), &cfg, async_drop,
					    NULL, NULL),
			 0);
	sse_hub_tick(aw->hub, now_ms(), NULL);
	for (int i = 0; i < 4; i++) {
		struct async_sub *a = &aw->subs[i];
		struct sse_transport t = {.size = sizeof(t), .writev = async_writev, .ctx = a,
					  .flags = SSE_TRANSPORT_ASYNC};

		test_writer_init(&a->got);
		ck_assert_int_eq(sse_stream_new(&a->s, &t, a, NULL), 0);
		ck_assert_int_eq(sse_hub_subscribe(aw->hub, a->s, NULL, 0, NULL), 0);
	}
	while (!atomic_load(&aw->stop)) {
		uint64_t low = UINT64_MAX;

		sse_hub_tick(aw->hub, now_ms(), NULL);
		sse_hub_flush(aw->hub);
		sched_yield(); /* hold the frames a while: the writer goes on */
		for (int i = 0; i < 4; i++) {
			struct async_sub *a = &aw->subs[i];

			if (!a->dropped) {
				async_complete(a);
				sse_hub_writable(aw->hub, a->s);
				if (sse_stream_cursor(a->s) < low)
					low = sse_stream_cursor(a->s);
			}
		}
		atomic_store(&aw->taken_seq, low);
	}
	sse_hub_flush(aw->hub);
	for (int k = 0; k < 8; k++) {
		for (int i = 0; i < 4; i++) {
			if (!aw->subs[i].dropped) {
				async_complete(&aw->subs[i]);
				sse_hub_writable(aw->hub, aw->subs[i].s);
			}
		}
	}
	for (int i = 0; i < 4; i++)
		async_complete(&aw->subs[i]);
	return NULL;
}

/* Pins taken on one thread hold frames across its loop turns while a
 * writer on another goes on (paced, so that it does not lap them): the
 * bytes a transport was handed do not change before it completes them,
 * and every subscriber gets every event intact. A publish refused with
 * SSE_ERR_PINNED meanwhile is tried again (counted; not expected here). */
START_TEST(test_share_async_pins_hold)
{
	static struct async_world aw;
	struct sse_hub_config cfg = {.size = sizeof(cfg), .no_heartbeat = 1,
				     .ring = {.size = sizeof(cfg.ring), .max_events = 32,
					      .max_bytes = 16 * 1024}};
	pthread_t th;
	char data[1024];
	long pinned = 0;

	memset(&aw, 0, sizeof(aw));
	atomic_init(&aw.stop, false);
	atomic_init(&aw.taken_seq, 0);
	ck_assert_int_eq(sse_hub_new(&aw.origin, &cfg, async_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_share(aw.origin, 1), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, async_reader, &aw), 0);
	while (atomic_load(&aw.taken_seq) == 0)
		sched_yield();
	for (uint64_t n = 1; n <= 3000; n++) {
		struct sse_event ev = {.data = data, .data_len = data_len(n)};
		int rc;

		make_data(n, data, ev.data_len);
		while (n > 8 && atomic_load(&aw.taken_seq) + 8 < n)
			sched_yield();
		while ((rc = sse_hub_publish(aw.origin, &ev, now_ms(), NULL)) == SSE_ERR_PINNED) {
			pinned++;
			sched_yield();
		}
		ck_assert_int_eq(rc, 0);
	}
	atomic_store(&aw.stop, true);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	for (int i = 0; i < 4; i++) {
		struct sub u = {.w = aw.subs[i].got};

		ck_assert(!aw.subs[i].dropped);
		ck_assert_uint_eq(check_received(&u, sse_replay_epoch(sse_hub_ring(aw.origin)), 1),
				  3000);
		sse_stream_free(aw.subs[i].s);
		test_writer_fini(&aw.subs[i].got);
	}
	fprintf(stderr, "async: publishes refused while pinned: %ld\n", pinned);
	sse_hub_free(aw.hub);
	sse_hub_free(aw.origin);
}
END_TEST

/* ---- the API's edges */

static void ignore_drop(struct sse_stream *s, int err, void *user)
{
	(void)s, (void)err, (void)user;
}

START_TEST(test_share_api_edges)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 8,
					      .max_bytes = 4096}};
	struct sse_hub *origin, *a, *b, *c;
	struct sse_replay *r;
	struct sse_replay_config app = {.size = sizeof(app), .max_events = 4, .max_bytes = 512,
					.app_ids = 1};
	struct sse_event ev = {.data = "x", .data_len = 1};
	struct test_alloc ta;

	ck_assert_int_eq(sse_hub_new(&origin, &cfg, ignore_drop, NULL, NULL), 0);
	/* Not shared yet: no reader. */
	ck_assert_int_eq(sse_hub_new_shared(&a, sse_hub_ring(origin), &cfg, ignore_drop, NULL, NULL),
			 SSE_ERR_INVALID);
	ck_assert_int_eq(sse_hub_share(origin, 0), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_hub_share(origin, 2), 0);
	ck_assert_int_eq(sse_hub_share(origin, 2), SSE_ERR_INVALID); /* once */
	ck_assert_int_eq(sse_hub_new_shared(&a, sse_hub_ring(origin), &cfg, ignore_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_new_shared(&b, sse_hub_ring(origin), &cfg, ignore_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_new_shared(&c, sse_hub_ring(origin), &cfg, ignore_drop, NULL, NULL),
			 SSE_ERR_BUSY);
	/* A reader publishes nothing, restarts nothing, takes no provider,
	 * shares nothing; the writer restarts no shared ring. */
	ck_assert_int_eq(sse_hub_publish(a, &ev, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_hub_restart(a, NULL, 100), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_hub_share(a, 1), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_hub_restart(origin, NULL, 100), SSE_ERR_INVALID);
	/* A place given back is taken again. */
	sse_hub_free(b);
	ck_assert_int_eq(sse_hub_new_shared(&b, sse_hub_ring(origin), &cfg, ignore_drop, NULL, NULL), 0);
	/* Out of memory: nothing leaks, the place is given back. */
	for (long k = 1; k <= 3; k++) {
		test_alloc_init(&ta, k);
		ck_assert_int_eq(sse_hub_new_shared(&c, sse_hub_ring(origin), &cfg, ignore_drop, NULL,
						    &ta.hooks),
				 k == 1 ? SSE_ERR_NOMEM : SSE_ERR_BUSY);
		ck_assert_int_eq(ta.live_blocks, 0);
	}
	sse_hub_free(a);
	for (long k = 1; k <= 3; k++) {
		test_alloc_init(&ta, k);
		ck_assert_int_eq(sse_hub_new_shared(&c, sse_hub_ring(origin), &cfg, ignore_drop, NULL,
						    &ta.hooks),
				 SSE_ERR_NOMEM);
		ck_assert_int_eq(ta.live_blocks, 0);
	}
	sse_hub_free(b);
	sse_hub_free(origin);
	/* Application ids cannot be shared: readers resume by number. */
	ck_assert_int_eq(sse_replay_new(&r, &app, NULL), 0);
	ck_assert_int_eq(sse_replay_share(r, 1), SSE_ERR_INVALID);
	sse_replay_free(r);
	ck_assert_int_eq(sse_replay_share(NULL, 1), SSE_ERR_INVALID);
}
END_TEST

/* A reader resuming from an id older than the ring gets the reset event
 * with the newest id, made from what it may see. */
START_TEST(test_share_reset_event_from_reader)
{
	struct sse_event reset = {.type = "sse-reset", .type_len = 9, .data = "", .data_len = 0};
	struct sse_hub_config cfg = {.size = sizeof(cfg), .no_heartbeat = 1,
				     .ring = {.size = sizeof(cfg.ring), .max_events = 4,
					      .max_bytes = 4096, .epoch = "ep-",
					      .reset_event = &reset}};
	struct sse_event ev = {.data = "x", .data_len = 1};
	struct sse_hub *origin, *rd;
	struct sub u;
	int status = -1;

	ck_assert_int_eq(sse_hub_new(&origin, &cfg, ignore_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_share(origin, 1), 0);
	ck_assert_int_eq(sse_hub_new_shared(&rd, sse_hub_ring(origin), &cfg, ignore_drop, NULL, NULL), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(sse_hub_publish(origin, &ev, 0, NULL), 0);
	sub_init(&u, PUSH_ALL);
	sub_stream(&u);
	ck_assert_int_eq(sse_hub_subscribe(rd, u.s, "ep-2", 4, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_GAP);
	ck_assert_ptr_nonnull(memmem(u.w.buf, u.w.len, "id: ep-10\nevent: sse-reset\n", 27));
	sse_stream_free(u.s);
	test_writer_fini(&u.w);
	sse_hub_free(rd);
	sse_hub_free(origin);
}
END_TEST

/* A reader resumes clients whose ids the ring no longer holds while the
 * writer goes on publishing: the reset event's id names the frame before
 * the first one the stream then gets, never one of those (a client that
 * left right after the reset would resume past frames it never got). */
#define RESET_RING 1024

struct ids_after_reset {
	uint64_t reset, first; /* 0: none yet */
	int resets;
};

static int on_id(const struct sse_message *m, void *ctx)
{
	struct ids_after_reset *a = ctx;
	const char *dash = memchr(m->last_id, '-', m->last_id_len);
	uint64_t n = dash ? strtoull(dash + 1, NULL, 10) : 0;

	if (m->type_len == 9 && memcmp(m->type, "sse-reset", 9) == 0) {
		a->reset = n;
		a->resets++;
	} else if (a->first == 0) {
		a->first = n;
	}
	return 0;
}

/* Publishes without pause, but never more than a quarter of the ring
 * past where the reader last looked (its done_seq), so that a reader the
 * system preempts is not lapped. */
static void *keep_publishing(void *arg)
{
	struct world *wd = arg;
	struct sse_event ev = {.data = "x", .data_len = 1};
	uint64_t n = 0;

	while (!atomic_load(&wd->stop)) {
		int rc;

		if (n > atomic_load(&wd->readers[0].done_seq) + RESET_RING / 4) {
			sched_yield();
			continue;
		}
		rc = sse_hub_publish(wd->origin, &ev, 0, NULL);

		ck_assert(rc == 0 || rc == SSE_ERR_PINNED);
		if (rc == 0)
			atomic_store(&wd->published_seq, ++n);
		if (rc != 0)
			sched_yield(); /* the reader is reading what the room needs */
	}
	return NULL;
}

START_TEST(test_share_reset_id_comes_before_what_follows)
{
	static struct world wd;
	struct sse_event reset = {.type = "sse-reset", .type_len = 9, .data = "", .data_len = 0};
	struct sse_hub_config cfg = {.size = sizeof(cfg), .no_heartbeat = 1,
				     .ring = {.size = sizeof(cfg.ring), .max_events = RESET_RING,
					      .max_bytes = 64 * 1024, .epoch = "e-",
					      .reset_event = &reset}};
	struct sse_parser_callbacks cb = {.on_message = on_id};
	struct sse_hub *rd;
	pthread_t th;
	int gaps = 0; /* resumes from a gap, each checked */

	memset(&wd, 0, sizeof(wd));
	atomic_init(&wd.stop, false);
	atomic_init(&wd.published_seq, 0);
	atomic_init(&wd.readers[0].done_seq, 0); /* before the writer starts */
	ck_assert_int_eq(sse_hub_new(&wd.origin, &cfg, ignore_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_share(wd.origin, 1), 0);
	ck_assert_int_eq(sse_hub_new_shared(&rd, sse_hub_ring(wd.origin), &cfg, ignore_drop, NULL,
					    NULL), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, keep_publishing, &wd), 0);
	while (atomic_load(&wd.published_seq) < 2 * RESET_RING) {
		atomic_store(&wd.readers[0].done_seq, sse_replay_next_seq(sse_hub_ring(rd)));
		sched_yield();
	}
	/* The race is narrow: many tries, within a time budget (under
	 * valgrind far fewer fit in it). */
	for (uint64_t end = now_ms() + 2000; gaps < 20000 && now_ms() < end;) {
		struct ids_after_reset a = {0};
		struct sse_parser *p;
		struct sub u;
		int status = -1;

		atomic_store(&wd.readers[0].done_seq, sse_replay_next_seq(sse_hub_ring(rd)));
		sub_init(&u, PUSH_ALL);
		sub_stream(&u);
		ck_assert_int_eq(sse_hub_subscribe(rd, u.s, "e-1", 3, &status), 0);
		ck_assert_int_eq(status, SSE_REPLAY_GAP);
		/* A frame after the cursor, so that the check below has one. */
		while (sse_replay_next_seq(sse_hub_ring(rd)) <= sse_stream_cursor(u.s)) {
			atomic_store(&wd.readers[0].done_seq, sse_stream_cursor(u.s));
			sched_yield();
		}
		ck_assert_int_eq(sse_hub_flush(rd), 0);
		ck_assert_int_eq(sse_parser_new(&p, &cb, &a, NULL), 0);
		ck_assert_int_eq(sse_parser_feed(p, u.w.buf, u.w.len), 0);
		sse_parser_free(p);
		ck_assert_int_eq(a.resets, 1);
		ck_assert_msg(a.first == a.reset + 1, "the reset said %llu, then came frame %llu",
			      (unsigned long long)a.reset, (unsigned long long)a.first);
		gaps++;
		sse_hub_unsubscribe(rd, u.s);
		sse_stream_free(u.s);
		test_writer_fini(&u.w);
	}
	atomic_store(&wd.stop, true);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	fprintf(stderr, "reset ids: %d resumes from a gap, each followed by frames\n", gaps);
	sse_hub_free(rd);
	sse_hub_free(wd.origin);
}
END_TEST

/* A transport that tries to unsubscribe its own stream from within its
 * call (as one that sees its peer gone might): refused, and the reader's
 * floor taken for the call is given back, so the writer goes on. */
struct unsub_in_call {
	struct sse_hub *hub;
	struct sse_stream *s;
	struct test_writer w;
	int rc, calls;
};

static int unsub_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct unsub_in_call *u = ctx;

	if (u->calls++ == 0)
		u->rc = sse_hub_unsubscribe_reason(u->hub, u->s, SSE_HUB_CLOSED);
	return test_writer_writev(iov, n, taken, &u->w);
}

START_TEST(test_share_unsubscribe_inside_a_call_is_refused)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg), .no_heartbeat = 1,
				     .ring = {.size = sizeof(cfg.ring), .max_events = 4,
					      .max_bytes = 4096}};
	struct sse_event ev = {.data = "x", .data_len = 1};
	struct sse_hub *origin;
	struct sse_hub_stats st = {.size = sizeof(st)};
	struct unsub_in_call u = {.rc = 1};
	struct sse_transport t = {.size = sizeof(t), .writev = unsub_writev, .ctx = &u};

	test_writer_init(&u.w);
	ck_assert_int_eq(sse_hub_new(&origin, &cfg, ignore_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_share(origin, 1), 0);
	ck_assert_int_eq(sse_hub_new_shared(&u.hub, sse_hub_ring(origin), &cfg, ignore_drop, NULL,
					    NULL), 0);
	ck_assert_int_eq(sse_stream_new(&u.s, &t, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_subscribe(u.hub, u.s, NULL, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_publish(origin, &ev, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(u.hub), 0);
	ck_assert_int_eq(u.rc, SSE_ERR_INVALID);
	ck_assert_int_eq(sse_hub_stats(u.hub, &st), 0);
	ck_assert_uint_eq(st.subscribers, 1); /* still subscribed */
	/* No floor left behind: the writer reuses the room of a 4-event ring. */
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(sse_hub_publish(origin, &ev, 0, NULL), 0);
	sse_hub_unsubscribe(u.hub, u.s);
	ck_assert_int_eq(sse_hub_stats(u.hub, &st), 0);
	ck_assert_uint_eq(st.subscribers, 0); /* outside a call: done */
	sse_stream_free(u.s);
	test_writer_fini(&u.w);
	sse_hub_free(u.hub);
	sse_hub_free(origin);
}
END_TEST

static Suite *share_suite(void)
{
	Suite *s = suite_create("share");
	TCase *tc = tcase_create("share");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_share_every_subscriber_every_event);
	tcase_add_test(tc, test_share_late_joiners_resume);
	tcase_add_test(tc, test_share_with_window);
	tcase_add_test(tc, test_share_unpaced_drops_cleanly);
	tcase_add_test(tc, test_share_async_pins_hold);
	tcase_add_test(tc, test_share_api_edges);
	tcase_add_test(tc, test_share_reset_event_from_reader);
	tcase_add_test(tc, test_share_reset_id_comes_before_what_follows);
	tcase_add_test(tc, test_share_unsubscribe_inside_a_call_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(share_suite());
}
