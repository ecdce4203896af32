/*
 * libsse-libuv against a real uv_loop and real sockets (TCP loopback, and
 * a socketpair opened as a uv_pipe_t); clients read with plain read().
 *
 * uv_write is wrapped here (the adapter's calls resolve to the program's
 * definition, which passes them on to libuv's uv_write2): the wrapper
 * checks that every buffer given to libuv lies in memory the hub (its
 * ring) or the driver's allocator (streams' queues) handed out, which an
 * adapter copy would not.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* pthread types for uv.h; usleep */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sse/libuv.h>

#include "sse.h"
#include "test-common.h"

#define RING_BYTES ((size_t)16 << 20)
#define BIG ((size_t)4 << 20) /* a multi-MiB event */

/* ---- an allocator that remembers its live blocks */

#define BLOCKS_MAX 4096

struct rec_alloc {
	struct sse_allocator hooks;
	struct {
		const char *p;
		size_t n;
	} live[BLOCKS_MAX];
	size_t count, bytes, peak;
};

static void rec_add(struct rec_alloc *r, void *p, size_t n)
{
	ck_assert_uint_lt(r->count, BLOCKS_MAX);
	r->live[r->count].p = p;
	r->live[r->count].n = n;
	r->count++;
	r->bytes += n;
	if (r->bytes > r->peak)
		r->peak = r->bytes;
}

static void rec_del(struct rec_alloc *r, void *p)
{
	for (size_t i = 0; i < r->count; i++) {
		if (r->live[i].p == p) {
			r->bytes -= r->live[i].n;
			r->live[i] = r->live[--r->count];
			return;
		}
	}
	ck_abort_msg("freed a block it never allocated");
}

static void *rec_alloc_fn(size_t n, void *ctx)
{
	void *p = malloc(n);

	if (p != NULL)
		rec_add(ctx, p, n);
	return p;
}

static void *rec_realloc_fn(void *p, size_t old, size_t n, void *ctx)
{
	void *q = realloc(p, n);

	(void)old;
	if (q != NULL) {
		if (p != NULL)
			rec_del(ctx, p);
		rec_add(ctx, q, n);
	}
	return q;
}

static void rec_free_fn(void *p, size_t n, void *ctx)
{
	(void)n;
	rec_del(ctx, p);
	free(p);
}

static void rec_init(struct rec_alloc *r)
{
	memset(r, 0, sizeof(*r));
	r->hooks = (struct sse_allocator){rec_alloc_fn, rec_realloc_fn, rec_free_fn, r};
}

static bool rec_holds(const struct rec_alloc *r, const char *p, size_t n)
{
	for (size_t i = 0; i < r->count; i++) {
		if (p >= r->live[i].p && p + n <= r->live[i].p + r->live[i].n)
			return true;
	}
	return false;
}

/* ---- the fixture: a loop, a hub, a driver, up to two clients */

struct client {
	int fd;         /* the client's end, read with read() */
	uv_tcp_t tcp;   /* the server's end, or ... */
	uv_pipe_t pipe; /* ... this one, for a socketpair */
	uv_stream_t *handle;
	struct sse_uv_conn *conn;
	bool closed;
	int closed_err;
	char *in; /* what the client read */
	size_t in_len, in_cap;
};

struct fx {
	uv_loop_t loop;
	struct rec_alloc hub_mem, drv_mem;
	struct sse_hub *hub;
	struct sse_uv_hub *d;
	struct client cl[2];
};

static struct fx *fx; /* for the uv_write wrapper */
static size_t spy_writes, spy_ring_bytes, spy_queue_bytes, spy_stray_bytes;

int uv_write(uv_write_t *req, uv_stream_t *handle, const uv_buf_t bufs[], unsigned int nbufs,
	     uv_write_cb cb)
{
	spy_writes++;
	for (unsigned i = 0; fx != NULL && i < nbufs; i++) {
		if (rec_holds(&fx->hub_mem, bufs[i].base, bufs[i].len))
			spy_ring_bytes += bufs[i].len;
		else if (rec_holds(&fx->drv_mem, bufs[i].base, bufs[i].len))
			spy_queue_bytes += bufs[i].len;
		else
			spy_stray_bytes += bufs[i].len;
	}
	return uv_write2(req, handle, bufs, nbufs, NULL, cb);
}

static void fx_init(struct fx *f, uint64_t heartbeat_ms)
{
	static const struct sse_event reset = {.type = "sse-reset", .type_len = 9,
					       .data = "lost", .data_len = 4,
					       .retry = SSE_RETRY_NONE};
	struct sse_hub_config cfg = {
		.size = sizeof(cfg),
		.ring = {.size = sizeof(cfg.ring), .max_events = 1000, .max_bytes = RING_BYTES,
			 .reset_event = &reset},
		.heartbeat_ms = heartbeat_ms,
		.no_heartbeat = heartbeat_ms == 0,
	};

	memset(f, 0, sizeof(*f));
	fx = f;
	spy_writes = spy_ring_bytes = spy_queue_bytes = spy_stray_bytes = 0;
	rec_init(&f->hub_mem);
	rec_init(&f->drv_mem);
	ck_assert_int_eq(uv_loop_init(&f->loop), 0);
	ck_assert_int_eq(sse_hub_new(&f->hub, &cfg, sse_uv_drop, NULL, &f->hub_mem.hooks), 0);
	ck_assert_int_eq(sse_uv_hub_new(&f->d, &f->loop, f->hub, &f->drv_mem.hooks), 0);
}

/* Close the driver (and any connection left), run the loop out, and
 * check that everything was given back. */
static void fx_fini(struct fx *f)
{
	sse_uv_hub_close(f->d);
	ck_assert_int_eq(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&f->loop), 0);
	ck_assert_uint_eq(f->drv_mem.count, 0);
	sse_hub_free(f->hub);
	ck_assert_uint_eq(f->hub_mem.count, 0);
	for (int i = 0; i < 2; i++) {
		if (f->cl[i].fd > 0)
			close(f->cl[i].fd);
		free(f->cl[i].in);
	}
	fx = NULL;
}

static void set_buf(int fd, int opt, int bytes)
{
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes)), 0);
}

/* A TCP connection on loopback: the client's end stays a plain fd. */
static void tcp_pair(int *server, int *client, int small_bufs)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (small_bufs)
		set_buf(*client, SO_RCVBUF, small_bufs);
	ck_assert_int_eq(connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
	*server = accept(l, NULL, NULL);
	ck_assert_int_ge(*server, 0);
	if (small_bufs)
		set_buf(*server, SO_SNDBUF, small_bufs);
	close(l);
}

static void on_closed(uv_stream_t *handle, int err, void *data)
{
	struct client *c = data;

	ck_assert_ptr_eq(handle, c->handle);
	ck_assert(!c->closed);
	c->closed = true;
	c->closed_err = err;
}

/* Attach client i over TCP (or a socketpair as a pipe) and subscribe. */
static void client_open(struct fx *f, int i, int small_bufs, bool pipe, const char *id)
{
	struct client *c = &f->cl[i];
	int s, sv[2];

	if (pipe) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		s = sv[0];
		c->fd = sv[1];
		ck_assert_int_eq(uv_pipe_init(&f->loop, &c->pipe, 0), 0);
		ck_assert_int_eq(uv_pipe_open(&c->pipe, s), 0);
		c->handle = (uv_stream_t *)&c->pipe;
	} else {
		tcp_pair(&s, &c->fd, small_bufs);
		ck_assert_int_eq(uv_tcp_init(&f->loop, &c->tcp), 0);
		ck_assert_int_eq(uv_tcp_open(&c->tcp, s), 0);
		c->handle = (uv_stream_t *)&c->tcp;
	}
	ck_assert_int_eq(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(sse_uv_conn_new(&c->conn, f->d, c->handle, on_closed, c), 0);
	ck_assert_ptr_eq(sse_uv_conn_of(sse_uv_conn_stream(c->conn)), c->conn);
	ck_assert_int_eq(sse_uv_conn_subscribe(c->conn, NULL, id, id ? strlen(id) : 0, NULL), 0);
}

/* Read what is there, at most max bytes (0: all): the bytes read. */
static size_t client_read(struct client *c, size_t max)
{
	size_t total = 0;

	for (;;) {
		size_t want = 65536;
		ssize_t n;

		if (max > 0 && max - total < want)
			want = max - total;
		if (want == 0)
			return total;
		if (c->in_cap - c->in_len < want) {
			c->in_cap = (c->in_cap + want) * 2;
			c->in = realloc(c->in, c->in_cap);
			ck_assert_ptr_nonnull(c->in);
		}
		n = read(c->fd, c->in + c->in_len, want);
		if (n <= 0) {
			ck_assert(n == 0 || errno == EAGAIN);
			return total;
		}
		c->in_len += (size_t)n;
		total += (size_t)n;
	}
}

/* ---- what a client read, parsed as a browser would */

struct got {
	size_t count, comments;
	char *data[512];
	size_t data_len[512];
	char id[512][64];
	char type[512][16];
};

static int on_message(const struct sse_message *m, void *user)
{
	struct got *g = user;

	ck_assert_uint_lt(g->count, 512);
	g->data[g->count] = malloc(m->data_len + 1);
	memcpy(g->data[g->count], m->data, m->data_len);
	g->data_len[g->count] = m->data_len;
	ck_assert_uint_lt(m->last_id_len, 64);
	memcpy(g->id[g->count], m->last_id, m->last_id_len);
	g->id[g->count][m->last_id_len] = '\0';
	snprintf(g->type[g->count], 16, "%.*s", (int)m->type_len, m->type);
	g->count++;
	return 0;
}

static int on_comment(const char *text, size_t len, void *user)
{
	(void)text, (void)len;
	((struct got *)user)->comments++;
	return 0;
}

/* The head, then events: parse all the client read. */
static void parse(const struct client *c, struct got *g)
{
	static const char status[] = "HTTP/1.1 200 OK\r\n";
	const struct sse_parser_callbacks cb = {.on_message = on_message, .on_comment = on_comment};
	struct sse_parser *p;
	const char *end;

	memset(g, 0, sizeof(*g));
	ck_assert_uint_ge(c->in_len, sizeof(status));
	ck_assert_int_eq(memcmp(c->in, status, sizeof(status) - 1), 0);
	end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	ck_assert_ptr_nonnull(end);
	ck_assert_ptr_nonnull(memmem(c->in, (size_t)(end - c->in), "text/event-stream", 17));
	end += 4;
	ck_assert_int_eq(sse_parser_new(&p, &cb, g, NULL), 0);
	ck_assert_int_eq(sse_parser_set_limit(p, RING_BYTES), 0);
	ck_assert_int_eq(sse_parser_feed(p, end, c->in_len - (size_t)(end - c->in)), 0);
	sse_parser_free(p);
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->count; i++)
		free(g->data[i]);
}

/* ---- events */

/* Event k's data: its number, then filler up to len bytes (len >= 16). */
static char *event_data(size_t k, size_t len)
{
	char *d = malloc(len);

	ck_assert_ptr_nonnull(d);
	memset(d, 'a' + (int)(k % 26), len);
	snprintf(d, 16, "event %06zu", k);
	d[12] = '.';
	return d;
}

static void publish(struct fx *f, size_t k, size_t len)
{
	char *d = event_data(k, len);
	const struct sse_event ev = {.data = d, .data_len = len, .retry = SSE_RETRY_NONE};

	ck_assert_int_eq(sse_uv_hub_publish(f->d, &ev, NULL), 0);
	free(d);
}

static void expect_event(const struct got *g, size_t i, size_t k, size_t len)
{
	char *d = event_data(k, len);

	ck_assert_uint_lt(i, g->count);
	ck_assert_uint_eq(g->data_len[i], len);
	ck_assert_msg(memcmp(g->data[i], d, len) == 0, "event %zu: wrong bytes", k);
	free(d);
}

/* Turn the loop and read, chunk bytes a turn (0: all), until the client
 * has `want` bytes or more, or 20 s passed. */
static void pump(struct fx *f, struct client *c, size_t want, size_t chunk, size_t *max_queue)
{
	uint64_t start = uv_hrtime();

	while (c->in_len < want && uv_hrtime() - start < 20000000000ull) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (max_queue != NULL && !c->closed) {
			size_t q = uv_stream_get_write_queue_size(c->handle);

			*max_queue = q > *max_queue ? q : *max_queue;
		}
		if (client_read(c, chunk) == 0)
			usleep(200);
	}
}

/* Read until the client has n events, having read at least min_bytes
 * first (parsing everything again at each step is for small tails). */
static void pump_events(struct fx *f, struct client *c, size_t n, size_t min_bytes, size_t chunk,
			size_t *maxq, struct got *g)
{
	uint64_t start = uv_hrtime();

	pump(f, c, min_bytes, chunk, maxq);
	for (;;) {
		parse(c, g);
		if (g->count >= n || uv_hrtime() - start > 20000000000ull)
			return;
		got_free(g);
		pump(f, c, c->in_len + 1, chunk, maxq);
	}
}

START_TEST(test_libuv_every_event_once_in_order)
{
	struct fx f;
	struct got g;
	size_t k = 0;

	fx_init(&f, 0);
	client_open(&f, 0, 0, false, NULL);
	for (; k < 50; k++)
		publish(&f, k, 16 + k);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	publish(&f, k++, BIG);
	for (; k < 101; k++)
		publish(&f, k, 100);
	pump_events(&f, &f.cl[0], 101, BIG, 0, NULL, &g);
	ck_assert_uint_eq(g.count, 101);
	for (size_t i = 0; i < 101; i++)
		expect_event(&g, i, i, i < 50 ? 16 + i : i == 50 ? BIG : 100);
	ck_assert(!f.cl[0].closed);
	got_free(&g);
	fx_fini(&f);
	ck_assert(f.cl[0].closed);
	ck_assert_int_eq(f.cl[0].closed_err, 0);
}
END_TEST

START_TEST(test_libuv_slow_reader_bounded_queue)
{
	struct fx f;
	struct got g;
	size_t maxq = 0, events = 40, len = 100 * 1024;

	fx_init(&f, 0);
	client_open(&f, 0, 16384, false, NULL);
	ck_assert_int_eq(sse_uv_conn_set_water(f.cl[0].conn, 65536, 32768), 0);
	ck_assert_int_eq(sse_uv_conn_set_water(f.cl[0].conn, 100, 100), SSE_ERR_INVALID);
	for (size_t k = 0; k < events; k++)
		publish(&f, k, k == 7 ? BIG / 2 : len);
	/* 4 KiB a turn: libuv's queue fills up to the high mark and no further. */
	pump_events(&f, &f.cl[0], events, events * len + BIG / 2 - len, 4096, &maxq, &g);
	ck_assert_uint_eq(g.count, events);
	for (size_t k = 0; k < events; k++)
		expect_event(&g, k, k, k == 7 ? BIG / 2 : len);
	ck_assert_uint_le(maxq, 65536);
	ck_assert_uint_ge(maxq, 32768); /* it did fill: the bound was tested */
	ck_assert(!f.cl[0].closed);
	got_free(&g);
	fx_fini(&f);
}
END_TEST

START_TEST(test_libuv_zero_copy)
{
	struct fx f;
	struct got g;

	fx_init(&f, 0);
	client_open(&f, 0, 0, false, NULL);
	publish(&f, 1, BIG);
	publish(&f, 2, BIG);
	pump_events(&f, &f.cl[0], 2, 2 * BIG, 0, NULL, &g);
	ck_assert_uint_eq(g.count, 2);
	expect_event(&g, 0, 1, BIG);
	expect_event(&g, 1, 2, BIG);
	/* The wrapper saw the adapter's writes: the frames went from the
	 * ring, the head and opening bytes from the stream's queue, and
	 * nothing from anywhere else. */
	ck_assert_uint_gt(spy_writes, 0);
	ck_assert_uint_eq(spy_stray_bytes, 0);
	ck_assert_uint_ge(spy_ring_bytes, 2 * BIG);
	ck_assert_uint_gt(spy_queue_bytes, 0);
	/* No copy of an event was made through the driver's allocator either. */
	ck_assert_uint_lt(f.drv_mem.peak, BIG / 8);
	got_free(&g);
	fx_fini(&f);
}
END_TEST

/* The client reads nothing, so writes pile up in libuv; then it goes. */
static void fill_then(struct fx *f, bool peer_leaves)
{
	struct client *c = &f->cl[0];
	struct sse_stream *s = sse_uv_conn_stream(c->conn);
	uint64_t start = uv_hrtime();

	publish(f, 1, BIG);
	while (uv_stream_get_write_queue_size(c->handle) == 0 && uv_hrtime() - start < 5000000000ull)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	ck_assert_uint_gt(uv_stream_get_write_queue_size(c->handle), 0);
	ck_assert_uint_gt(sse_stream_inflight(s), 0);
	ck_assert_uint_eq(sse_hub_count(f->hub), 1);
	if (peer_leaves) {
		struct linger reset = {.l_onoff = 1, .l_linger = 0};

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(c->fd); /* unread data and a reset */
		c->fd = -1;
	} else {
		sse_uv_conn_close(c->conn, SSE_ERR_CALLBACK);
	}
	start = uv_hrtime();
	while (!c->closed && uv_hrtime() - start < 5000000000ull)
		uv_run(&f->loop, UV_RUN_ONCE);
	ck_assert(c->closed);
	ck_assert_uint_eq(sse_hub_count(f->hub), 0);
	/* Only the driver is left of what the adapter allocated. */
	ck_assert_uint_eq(f->drv_mem.count, 1);
}

START_TEST(test_libuv_peer_vanishes)
{
	struct fx f;

	fx_init(&f, 0);
	client_open(&f, 0, 16384, false, NULL);
	fill_then(&f, true);
	ck_assert_int_eq(f.cl[0].closed_err, SSE_ERR_IO);
	fx_fini(&f);
}
END_TEST

START_TEST(test_libuv_close_cancels_pending_writes)
{
	struct fx f;

	fx_init(&f, 0);
	client_open(&f, 0, 16384, false, NULL);
	fill_then(&f, false);
	ck_assert_int_eq(f.cl[0].closed_err, SSE_ERR_CALLBACK);
	fx_fini(&f);
}
END_TEST

START_TEST(test_libuv_resume_by_last_event_id)
{
	struct fx f;
	struct got a, b;
	char id[64];
	size_t id_len = 0;
	const char *newest;

	fx_init(&f, 0);
	for (size_t k = 0; k < 10; k++) {
		publish(&f, k, 32);
		if (k == 4) {
			newest = sse_replay_newest_id(sse_hub_ring(f.hub), &id_len);
			ck_assert_uint_lt(id_len, sizeof(id));
			memcpy(id, newest, id_len);
			id[id_len] = '\0';
		}
	}
	client_open(&f, 0, 0, false, id);
	client_open(&f, 1, 0, false, "another-run-7");
	publish(&f, 10, 32);
	pump_events(&f, &f.cl[0], 6, 6 * 32, 0, NULL, &a);
	pump_events(&f, &f.cl[1], 2, 32, 0, NULL, &b);
	/* After event 4: 5 to 10, each once. */
	ck_assert_uint_eq(a.count, 6);
	for (size_t i = 0; i < 6; i++)
		expect_event(&a, i, 5 + i, 32);
	ck_assert_str_ne(a.id[0], id);
	/* An id of no run of ours: the reset event, then live events only. */
	ck_assert_uint_eq(b.count, 2);
	ck_assert_str_eq(b.type[0], "sse-reset");
	expect_event(&b, 1, 10, 32);
	got_free(&a);
	got_free(&b);
	fx_fini(&f);
}
END_TEST

START_TEST(test_libuv_heartbeat_on_idle)
{
	struct fx f;
	struct got g;
	uint64_t start;

	fx_init(&f, 50);
	client_open(&f, 0, 0, false, NULL);
	start = uv_hrtime();
	/* Nothing is published: only the driver's timer can write. */
	do {
		uv_run(&f.loop, UV_RUN_ONCE);
		client_read(&f.cl[0], 0);
		parse(&f.cl[0], &g);
		got_free(&g);
	} while (g.comments < 3 && uv_hrtime() - start < 5000000000ull);
	/* The opening comment, then two heartbeats, 50 ms apart. */
	ck_assert_uint_ge(g.comments, 3);
	ck_assert_uint_eq(g.count, 0);
	ck_assert_uint_ge(uv_hrtime() - start, 80000000ull);
	fx_fini(&f);
}
END_TEST

struct worker {
	struct sse_uv_hub *d;
	size_t events;
};

static void work(void *arg)
{
	struct worker *w = arg;

	for (size_t k = 0; k < w->events; k++) {
		char *d = event_data(k, 64);
		const struct sse_event ev = {.data = d, .data_len = 64, .retry = SSE_RETRY_NONE};
		int rc;

		while ((rc = sse_uv_hub_push(w->d, &ev)) == SSE_ERR_QUEUE_FULL)
			usleep(100);
		ck_assert_int_eq(rc, 0);
		free(d);
	}
}

START_TEST(test_libuv_handoff_from_a_thread)
{
	struct fx f;
	struct got g;
	struct sse_handoff *q;
	struct worker w;
	uv_thread_t t;

	fx_init(&f, 0);
	ck_assert_int_eq(sse_handoff_new(&q, 16, 256, 0, NULL), 0);
	ck_assert_int_eq(sse_uv_hub_set_handoff(f.d, q), 0);
	ck_assert_int_eq(sse_uv_hub_set_handoff(f.d, q), SSE_ERR_INVALID);
	client_open(&f, 0, 0, true, NULL); /* a socketpair as a uv_pipe_t */
	w = (struct worker){.d = f.d, .events = 300};
	ck_assert_int_eq(uv_thread_create(&t, work, &w), 0);
	pump_events(&f, &f.cl[0], 300, 300 * 64, 0, NULL, &g);
	ck_assert_int_eq(uv_thread_join(&t), 0);
	ck_assert_uint_eq(g.count, 300);
	for (size_t k = 0; k < 300; k++)
		expect_event(&g, k, k, 64);
	got_free(&g);
	fx_fini(&f);
	sse_handoff_free(q);
}
END_TEST

START_TEST(test_libuv_rejects_bad_arguments)
{
	struct fx f;
	struct sse_uv_conn *c = NULL;
	uv_tcp_t tcp;

	fx_init(&f, 0);
	ck_assert_int_eq(sse_uv_hub_new(NULL, &f.loop, f.hub, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(uv_tcp_init(&f.loop, &tcp), 0);
	ck_assert_int_eq(sse_uv_conn_new(&c, f.d, (uv_stream_t *)&tcp, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(sse_uv_hub_push(f.d, &(struct sse_event){.retry = SSE_RETRY_NONE}),
			 SSE_ERR_INVALID); /* no handoff */
	uv_close((uv_handle_t *)&tcp, NULL);
	fx_fini(&f);
}
END_TEST

static Suite *libuv_suite(void)
{
	Suite *s = suite_create("adapt-libuv");
	TCase *deliver = tcase_create("deliver");
	TCase *close = tcase_create("close");
	TCase *drive = tcase_create("drive");

	tcase_set_timeout(deliver, 60);
	tcase_set_timeout(close, 60);
	tcase_set_timeout(drive, 60);
	tcase_add_test(deliver, test_libuv_every_event_once_in_order);
	tcase_add_test(deliver, test_libuv_slow_reader_bounded_queue);
	tcase_add_test(deliver, test_libuv_zero_copy);
	tcase_add_test(deliver, test_libuv_resume_by_last_event_id);
	tcase_add_test(close, test_libuv_peer_vanishes);
	tcase_add_test(close, test_libuv_close_cancels_pending_writes);
	tcase_add_test(drive, test_libuv_heartbeat_on_idle);
	tcase_add_test(drive, test_libuv_handoff_from_a_thread);
	tcase_add_test(drive, test_libuv_rejects_bad_arguments);
	suite_add_tcase(s, deliver);
	suite_add_tcase(s, close);
	suite_add_tcase(s, drive);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* libuv writes with write(2): see sse/libuv.h */
	return test_run_suite(libuv_suite());
}
