/*
 * sse-relay --threads N: the default channel fanned out from N loop
 * threads that share its ring.
 *
 * The main thread does all it did alone: it accepts, answers requests,
 * publishes (the ring's one writer: sse_hub_share()), serves named
 * channels, merged streams and /metrics. Each of the N - 1 others is a
 * loop of its own: a struct relay with its own epoll set, connection
 * lists, clock and hub, made with sse_hub_new_shared() on the main hub's
 * ring, so relay-conn.c drives its connections unchanged (c->relay is
 * that thread's). A subscriber of /events about to stream goes to the
 * thread with the fewest subscribers, the main one included: the main
 * thread takes it out of its epoll set and lists (conn_detach()) and, at
 * the end of the turn, queues it, with its Last-Event-ID, to that thread,
 * which adds it to its own set and lists (conn_attach()) and subscribes
 * it (route_stream()) on its hub. From then on it is that thread's alone:
 * writes, slow-consumer drops, heartbeats, lifetime, token expiry, the
 * shutdown drain, closing, the access log line. Resuming works on any
 * thread: the ring is the same.
 *
 * Frames are read in place by every thread's hub, without a lock; the
 * main thread wakes a thread (an eventfd) once per loop turn in which it
 * published, however many events the turn took, and only if no wake is on
 * its way already. What threads share besides the ring: the counts of
 * connections per address (a mutex in relay-conn.c), the count of
 * connections each thread holds (an atomic: --max-conns, the choice of a
 * thread, /metrics), the access log (stdio locks its FILE for each line),
 * the hubs' counters (sse_hub_stats(), readable from any thread), and the
 * options and keys, read only. At shutdown each thread drains its own
 * subscribers; the main one waits for them all (or its grace time), then
 * tells them to close what is left, joins them and frees.
 *
 * --redis restarts the ring when a node joins the log: a shared ring
 * cannot be, so a cluster node runs one thread.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "relay.h"

#define WORKER_EVENTS 64

/* A subscriber on its way to another thread, with its Last-Event-ID. */
struct handoff {
	struct handoff *next;
	struct conn *c;
	size_t id_len;
	char id[];
};

struct handoff_list {
	struct handoff *head, *tail;
};

/* A loop thread other than the main one. */
struct relay_worker {
	struct relay r;              /* its loop; c->relay of its connections */
	struct relay_threads *t;
	unsigned index;              /* 1..n (the main thread is 0) */
	pthread_t thread;
	bool started;
	bool drained_told;           /* its own: said it holds nothing at shutdown */
	int wake_fd;                 /* eventfd: frames, connections, stop, quit */
	atomic_bool woken;           /* a wake is on its way: write no other */
	atomic_bool stop;            /* drain (shutdown) */
	atomic_bool quit;            /* close what is left and end */
	atomic_size_t conns;         /* it holds: the main thread adds, it subtracts */
	atomic_size_t draining;      /* of them, for /metrics */
	pthread_mutex_t lock;        /* of queue */
	struct handoff_list queue;   /* handed to it, not taken yet */
	struct handoff_list pending; /* the main thread's: handed in this turn */
};

struct relay_threads {
	unsigned n;              /* other threads, started or not */
	int done_fd;             /* eventfd: a thread drained at shutdown */
	uint64_t seen_seq;       /* the ring's live end the threads were woken for */
	struct relay_worker *w;  /* n of them */
};

/* ---- options */

/* The CPUs this process may run on. */
static size_t usable_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (size_t)CPU_COUNT(&set);
	return 1;
}

int threads_check(struct relay *r)
{
	if (r->cluster_opt.url != NULL) {
		if (r->lim.threads > 1) {
			fprintf(stderr, "sse-relay: --threads %zu cannot go with --redis: a cluster "
					"node restarts its ring, which threads sharing it cannot "
					"follow (use --threads 1)\n", r->lim.threads);
			return -1;
		}
		r->lim.threads = 1;
	}
	if (r->lim.threads == 0)
		r->lim.threads = usable_cpus();
	if (r->lim.threads > RELAY_THREADS_MAX)
		r->lim.threads = RELAY_THREADS_MAX;
	return 0;
}

/* ---- waking */

static void list_push(struct handoff_list *l, struct handoff *h)
{
	h->next = NULL;
	if (l->tail != NULL)
		l->tail->next = h;
	else
		l->head = h;
	l->tail = h;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		return; /* an eventfd short of overflow: it is readable anyway */
}

/* One write while a wake is on its way: the thread clears `woken` only
 * after it read the eventfd and before it looks at the ring and queue,
 * so what came before a skipped write is seen by the wake in progress. */
static void wake(struct relay_worker *w)
{
	if (!atomic_exchange(&w->woken, true))
		signal_fd(w->wake_fd);
}

/* ---- a loop thread */

/* Close what it holds now; the count of the main thread follows. */
static void worker_reap(struct relay_worker *w)
{
	size_t gone = w->r.closed.len;

	conn_reap(&w->r);
	if (gone > 0)
		atomic_fetch_sub(&w->conns, gone);
}

/* A subscriber handed over: into this loop, then on its way as the main
 * thread would have sent it (route_stream()). */
static void worker_take(struct relay_worker *w, struct handoff *h)
{
	struct conn *c = h->c;

	if (!conn_attach(&w->r, c))
		return; /* closed */
	if (w->r.stopping)
		conn_close(c); /* not reached: nothing is handed over after the stop */
	else
		route_stream(c, NULL, h->id, h->id_len);
}

static struct handoff *take_queue(struct relay_worker *w)
{
	struct handoff *h;

	pthread_mutex_lock(&w->lock);
	h = w->queue.head;
	w->queue.head = w->queue.tail = NULL;
	pthread_mutex_unlock(&w->lock);
	return h;
}

/* The main thread published, handed over connections, or wants a stop:
 * the connections are subscribed now (the hub notices new frames there
 * and at the flush at the end of the turn). */
static void worker_woken(struct relay_worker *w)
{
	struct relay *r = &w->r;
	struct handoff *h, *next;
	uint64_t v;

	if (read(w->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	(void)atomic_exchange(&w->woken, false); /* an RMW: it sees what came before */
	r->published = true; /* the turn's flush notices the new frames */
	for (h = take_queue(w); h != NULL; h = next) {
		next = h->next;
		worker_take(w, h);
		free(h);
	}
}

/* How long its epoll may sleep: the hub's next heartbeat, stall check or
 * batch, the lists' next deadline. */
static int worker_timeout(struct relay *r)
{
	uint64_t next = SSE_NO_DEADLINE, other = conn_next_deadline(r);

	sse_hub_tick(r->hub, r->now, &next);
	if (other < next)
		next = other;
	if (next == SSE_NO_DEADLINE)
		return -1;
	if (next <= r->now)
		return 0;
	return next - r->now > INT_MAX ? INT_MAX : (int)(next - r->now);
}

/* The end of a turn: the fan-out, a stop, timeouts, freeing. */
static void worker_turn_end(struct relay_worker *w)
{
	struct relay *r = &w->r;

	if (r->published) {
		r->published = false;
		sse_hub_flush(r->hub); /* drops go to conn_subscriber_dropped() */
	}
	if (atomic_load(&w->stop) && !r->stopping) {
		r->stopping = true; /* the main thread keeps the grace time */
		conn_stop_all(r);
	}
	conn_expire(r);
	conn_drain_boundaries(r);
	worker_reap(w);
	atomic_store_explicit(&w->draining, r->draining.len, memory_order_relaxed);
	if (r->stopping && !w->drained_told && conn_count(r) == 0) {
		w->drained_told = true;
		signal_fd(w->t->done_fd); /* the main thread may finish sooner */
	}
}

/* Told to quit: what it holds closes (the grace time is over), its hub
 * goes on its own thread. */
static void worker_end(struct relay_worker *w)
{
	struct handoff *h, *next;

	for (h = take_queue(w); h != NULL; h = next) {
		next = h->next;
		if (conn_attach(&w->r, h->c))
			conn_close(h->c);
		free(h);
	}
	conn_close_all(&w->r);
	worker_reap(w);
	sse_hub_free(w->r.hub);
}

static void *worker_main(void *arg)
{
	struct relay_worker *w = arg;
	struct relay *r = &w->r;
	struct epoll_event events[WORKER_EVENTS];
	int n = 0;

	for (;;) {
		r->now = server_now_ms();
		sse_hub_tick(r->hub, r->now, NULL); /* heartbeats, stalls, a batch due */
		for (int i = 0; i < n; i++) {
			if (events[i].data.ptr == &w->wake_fd)
				worker_woken(w);
			else
				conn_on_event(events[i].data.ptr, events[i].events);
		}
		worker_turn_end(w);
		if (atomic_load(&w->quit))
			break;
		n = epoll_wait(r->epoll_fd, events, WORKER_EVENTS, worker_timeout(r));
		if (n < 0 && errno != EINTR)
			fprintf(stderr, "sse-relay: thread %u: epoll_wait: %s\n", w->index,
				strerror(errno));
		if (n < 0)
			n = 0;
	}
	worker_end(w);
	return NULL;
}

/* ---- starting and stopping */

/* Its loop, a copy of the main one's settings: options and keys are only
 * read; the per-address table is shared under its lock (relay-conn.c). */
static void worker_relay(struct relay_worker *w, const struct relay *m)
{
	struct relay *r = &w->r;

	*r = (struct relay){
		.opt = m->opt,
		.epoll_fd = -1,
		.listen_fd = -1,
		.signal_fd = -1,
		.spare_fd = -1,
		.lim = m->lim,
		.auth = m->auth,
		.ops_opt = m->ops_opt,
		.m = m->m,
		.ch.opt = m->ch.opt,
		.rng = (m->rng ^ (0x9e3779b97f4a7c15ull * w->index)) | 1,
		.peers = m->peers,
		.peer_seed = m->peer_seed,
		.now = m->now,
	};
	r->m.ops_fd = -1;
}

/* A hub on the main hub's ring with the main hub's settings
 * (server_hub_new()), less the ring's, which are the ring's own. */
static int worker_hub(struct relay_worker *w, const struct relay *m)
{
	const struct server_options *o = &m->opt;
	const struct sse_hub_config cfg = {
		.size = sizeof(cfg),
		.ring = {.size = sizeof(cfg.ring)},
		.stall_ms = o->stall_ms,
		.heartbeat_ms = o->heartbeat_ms,
		.heartbeat_jitter_ms = o->heartbeat_ms / 10,
		.no_heartbeat = o->heartbeat_ms == 0,
		.window_ms = o->batch_ms,
	};

	return sse_hub_new_shared(&w->r.hub, sse_hub_ring(m->hub), &cfg, conn_subscriber_dropped,
				  &w->r, NULL);
}

static int worker_start(struct relay *m, struct relay_worker *w)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake_fd};
	int rc;

	w->r.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->r.epoll_fd < 0 || w->wake_fd < 0 ||
	    epoll_ctl(w->r.epoll_fd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0) {
		fprintf(stderr, "sse-relay: --threads: %s\n", strerror(errno));
		return -1;
	}
	rc = worker_hub(w, m);
	if (rc < 0) {
		fprintf(stderr, "sse-relay: --threads: %s\n", sse_strerror(rc));
		return -1;
	}
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc != 0) {
		fprintf(stderr, "sse-relay: --threads: %s\n", strerror(rc));
		return -1;
	}
	w->started = true;
	return 0;
}

static void worker_init(struct relay_threads *t, struct relay_worker *w, const struct relay *m,
			unsigned index)
{
	w->t = t;
	w->index = index;
	w->wake_fd = -1;
	atomic_init(&w->woken, false);
	atomic_init(&w->stop, false);
	atomic_init(&w->quit, false);
	atomic_init(&w->conns, 0);
	atomic_init(&w->draining, 0);
	pthread_mutex_init(&w->lock, NULL);
	worker_relay(w, m);
}

int threads_open(struct relay *r)
{
	unsigned n = r->lim.threads > 1 ? (unsigned)r->lim.threads - 1 : 0;
	struct epoll_event ev = {.events = EPOLLIN};
	struct relay_threads *t;
	int rc;

	if (n == 0)
		return 0;
	rc = sse_hub_share(r->hub, n);
	if (rc < 0) {
		fprintf(stderr, "sse-relay: --threads: %s\n", sse_strerror(rc));
		return -1;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->w = calloc(n, sizeof(*t->w))) == NULL) {
		free(t);
		fprintf(stderr, "sse-relay: --threads: %s\n", strerror(ENOMEM));
		return -1;
	}
	r->threads = t;
	t->seen_seq = sse_replay_next_seq(sse_hub_ring(r->hub));
	t->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev.data.ptr = &t->done_fd;
	if (t->done_fd < 0 || epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, t->done_fd, &ev) < 0) {
		fprintf(stderr, "sse-relay: --threads: %s\n", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		worker_init(t, &t->w[i], r, i + 1);
		t->n++; /* threads_free() undoes what was done */
		if (worker_start(r, &t->w[i]) < 0)
			return -1;
	}
	return 0;
}

void threads_free(struct relay *r)
{
	struct relay_threads *t = r->threads;

	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->n; i++) {
		struct relay_worker *w = &t->w[i];

		if (!w->started)
			continue;
		atomic_store(&w->quit, true);
		wake(w);
	}
	for (unsigned i = 0; i < t->n; i++) {
		struct relay_worker *w = &t->w[i];

		if (w->started)
			pthread_join(w->thread, NULL); /* it freed its hub */
		else
			sse_hub_free(w->r.hub); /* never used by another thread */
		if (w->wake_fd >= 0)
			close(w->wake_fd);
		if (w->r.epoll_fd >= 0)
			close(w->r.epoll_fd);
		pthread_mutex_destroy(&w->lock);
	}
	if (t->done_fd >= 0)
		close(t->done_fd); /* also leaves the epoll set */
	free(t->w);
	free(t);
	r->threads = NULL;
}

/* ---- the main thread's side */

bool threads_owns(const struct relay *r, const void *ptr)
{
	return r->threads != NULL && ptr == &r->threads->done_fd;
}

void threads_on_event(struct relay *r)
{
	uint64_t v;

	if (read(r->threads->done_fd, &v, sizeof(v)) < 0)
		return; /* EAGAIN: read already; finished() looks at the counts */
}

bool threads_handoff(struct conn *c, const char *id, size_t id_len)
{
	struct relay *r = c->relay;
	struct relay_threads *t = r->threads;
	struct relay_worker *to = NULL;
	struct handoff *h;
	size_t least;

	if (t == NULL)
		return false;
	least = SIZE_MAX;
	for (unsigned i = 0; i < t->n; i++) {
		size_t n = atomic_load_explicit(&t->w[i].conns, memory_order_relaxed);

		if (n < least) {
			least = n;
			to = &t->w[i];
		}
	}
	/* A tie goes to the other thread: the main one has requests too. */
	if (conn_local_subscribers(r) < least || (h = malloc(sizeof(*h) + id_len)) == NULL)
		return false;
	h->c = c;
	h->id_len = id_len;
	memcpy(h->id, id, id_len);
	/* Out of this loop now, an event fetched for it already being the
	 * one in progress; queued at the end of the turn, once the code
	 * that routed it no longer looks at it. */
	conn_detach(c);
	atomic_fetch_add(&to->conns, 1);
	list_push(&to->pending, h);
	return true;
}

void threads_turn_end(struct relay *r)
{
	struct relay_threads *t = r->threads;
	uint64_t live;
	bool fresh;

	if (t == NULL)
		return;
	live = sse_replay_next_seq(sse_hub_ring(r->hub));
	fresh = live != t->seen_seq;
	t->seen_seq = live;
	for (unsigned i = 0; i < t->n; i++) {
		struct relay_worker *w = &t->w[i];
		bool handed = w->pending.head != NULL;

		if (handed) {
			pthread_mutex_lock(&w->lock);
			if (w->queue.tail != NULL)
				w->queue.tail->next = w->pending.head;
			else
				w->queue.head = w->pending.head;
			w->queue.tail = w->pending.tail;
			pthread_mutex_unlock(&w->lock);
			w->pending.head = w->pending.tail = NULL;
		}
		if (fresh || handed)
			wake(w);
	}
}

void threads_stop(struct relay *r)
{
	struct relay_threads *t = r->threads;

	for (unsigned i = 0; t != NULL && i < t->n; i++) {
		atomic_store(&t->w[i].stop, true);
		wake(&t->w[i]);
	}
}

size_t threads_conns(const struct relay *r)
{
	const struct relay_threads *t = r->threads;
	size_t n = 0;

	for (unsigned i = 0; t != NULL && i < t->n; i++)
		n += atomic_load_explicit(&t->w[i].conns, memory_order_relaxed);
	return n;
}

size_t threads_draining(const struct relay *r)
{
	const struct relay_threads *t = r->threads;
	size_t n = 0;

	for (unsigned i = 0; t != NULL && i < t->n; i++)
		n += atomic_load_explicit(&t->w[i].draining, memory_order_relaxed);
	return n;
}

void threads_hub_totals(const struct relay *r, struct sse_hub_stats *sum)
{
	const struct relay_threads *t = r->threads;

	for (unsigned i = 0; t != NULL && i < t->n; i++) {
		struct sse_hub_stats st = {.size = sizeof(st)};
		uint64_t events = sum->published_events, bytes = sum->published_bytes;

		if (sse_hub_stats(t->w[i].r.hub, &st) != 0)
			continue;
#define ADD(name, kind, help) sum->name += st.name;
		SSE_HUB_STATS(ADD)
#undef ADD
		sum->published_events = events; /* the same events, seen again */
		sum->published_bytes = bytes;
	}
}

void threads_render(FILE *f, const struct relay *r)
{
	const struct relay_threads *t = r->threads;

	fprintf(f, "# HELP sse_relay_threads Loop threads (--threads)\n"
		   "# TYPE sse_relay_threads gauge\n"
		   "sse_relay_threads %u\n",
		t != NULL ? t->n + 1 : 1u);
	fputs("# HELP sse_relay_thread_connections Connections each loop thread holds, nearly all "
	      "subscribers (thread 0, the main one: its subscribers only)\n"
	      "# TYPE sse_relay_thread_connections gauge\n", f);
	fprintf(f, "sse_relay_thread_connections{thread=\"0\"} %zu\n", conn_local_subscribers(r));
	for (unsigned i = 0; t != NULL && i < t->n; i++)
		fprintf(f, "sse_relay_thread_connections{thread=\"%u\"} %zu\n", i + 1,
			atomic_load_explicit(&t->w[i].conns, memory_order_relaxed));
}
