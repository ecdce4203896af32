/*
 * The nghttp2 adapter (lib/adapters/nghttp2.c) between a real nghttp2
 * server session and a real nghttp2 client session, in one process. The
 * "wire" between them is a queue: the server's own frames are copied
 * into it, DATA payloads are kept by reference (as NO_COPY asks) and
 * completed as the client takes them, a bounded number of bytes per
 * round, so frames arrive in pieces. The client consumes its windows by
 * hand (no automatic WINDOW_UPDATE), so flow control bites.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memmem */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sse/nghttp2.h>

#include "test-common.h"

#define MAX_STREAMS 8
#define BIG ((size_t)3 << 20)

/* One piece on the wire: a copy (own) or a stream's bytes by reference. */
struct piece {
	const uint8_t *p;
	size_t len;
	struct sse_h2_stream *st;
	uint8_t *own;
};

/* The server's side of one request. */
struct srv_stream {
	int32_t id;
	char path[256];
	size_t path_len;
	char lid[256];
	size_t lid_len;
	int has_lid;
	struct sse_h2_stream *st;
	int closed;
	size_t in_frame; /* payload bytes handed out that point into the watched frame */
};

/* The client's side of one request. */
struct cli_stream {
	int32_t id;
	char *body;
	size_t len, cap;
	int status;
	int event_stream; /* content-type: text/event-stream */
	int no_cache;
	int forbidden;    /* a connection-specific field came */
	int closed;
	uint32_t code;
	int data_frames;
	int slow;         /* never gives its stream window back */
	size_t unconsumed;
};

struct h2t {
	struct sse_hub *hub;
	nghttp2_session *srv, *cli;
	struct piece *wire;
	size_t wire_head, wire_n, wire_cap;
	struct srv_stream ss[MAX_STREAMS];
	size_t nss;
	struct cli_stream cs[MAX_STREAMS];
	size_t ncs;
	size_t wire_chunk;   /* bytes the client takes per round; 0: all */
	size_t consume_step; /* window given back per stream per round; 0: all */
	int wakes, drops, drop_err, send_calls, max_data_pieces;
	const char *frame; /* a published frame whose bytes must not be copied */
	size_t frame_len;
};

static struct h2t T;

/* ---- the wire */

static void wire_push(struct h2t *t, struct piece p)
{
	if (t->wire_n == t->wire_cap) {
		t->wire_cap = t->wire_cap ? t->wire_cap * 2 : 256;
		t->wire = realloc(t->wire, t->wire_cap * sizeof(*t->wire));
		ck_assert_ptr_nonnull(t->wire);
	}
	t->wire[t->wire_n++] = p;
}

static void wire_copy(struct h2t *t, const void *p, size_t len)
{
	uint8_t *own = malloc(len);

	ck_assert_ptr_nonnull(own);
	memcpy(own, p, len);
	wire_push(t, (struct piece){.p = own, .len = len, .own = own});
}

static struct srv_stream *ss_of(struct h2t *t, const struct sse_h2_stream *st)
{
	for (size_t i = 0; i < t->nss; i++)
		if (t->ss[i].st == st)
			return &t->ss[i];
	return NULL;
}

/* The application's send function: the header is copied, the payload kept. */
static int wire_send(struct sse_h2_stream *st, const struct sse_h2_frame *f, void *ctx)
{
	static const uint8_t zeros[256];
	struct h2t *t = ctx;
	struct srv_stream *x = ss_of(t, st);
	size_t sum = 0;

	ck_assert_ptr_nonnull(x);
	t->send_calls++;
	if ((int)f->n > t->max_data_pieces)
		t->max_data_pieces = (int)f->n;
	wire_copy(t, f->head, f->head_len);
	for (size_t i = 0; i < f->n; i++) {
		const char *b = f->data[i].base;

		if (t->frame != NULL && b >= t->frame && b + f->data[i].len <= t->frame + t->frame_len)
			x->in_frame += f->data[i].len;
		wire_push(t, (struct piece){.p = f->data[i].base, .len = f->data[i].len, .st = st});
		sum += f->data[i].len;
	}
	ck_assert_uint_eq(sum, f->len);
	if (f->pad > 0)
		wire_copy(t, zeros, f->pad);
	return 0;
}

static void on_wake(struct sse_h2_stream *st, void *ctx)
{
	struct h2t *t = ctx;

	(void)st;
	t->wakes++;
}

/* Give the client at most max bytes (0: all); payload is completed as it goes. */
static size_t wire_deliver(struct h2t *t, size_t max)
{
	size_t moved = 0;

	while (t->wire_head < t->wire_n && (max == 0 || moved < max)) {
		struct piece *p = &t->wire[t->wire_head];
		size_t k = max == 0 ? p->len : (p->len < max - moved ? p->len : max - moved);

		ck_assert_int_eq(nghttp2_session_mem_recv(t->cli, p->p, k), (ssize_t)k);
		if (p->st != NULL)
			ck_assert_int_eq(sse_h2_complete(p->st, k), 0);
		p->p += k;
		p->len -= k;
		moved += k;
		if (p->len == 0) {
			free(p->own);
			t->wire_head++;
		}
	}
	if (t->wire_head == t->wire_n)
		t->wire_head = t->wire_n = 0;
	return moved;
}

/* A closing test: what is still on the wire is never sent. */
static void wire_cancel(struct h2t *t)
{
	for (size_t i = t->wire_head; i < t->wire_n; i++) {
		if (t->wire[i].st != NULL)
			sse_h2_complete(t->wire[i].st, t->wire[i].len);
		free(t->wire[i].own);
	}
	free(t->wire);
	t->wire = NULL;
	t->wire_head = t->wire_n = t->wire_cap = 0;
}

/* ---- the server */

static ssize_t srv_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
			void *user)
{
	(void)s, (void)flags;
	wire_copy(user, data, len);
	return (ssize_t)len;
}

static int srv_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct h2t *t = user;
	struct srv_stream *x;

	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	ck_assert_uint_lt(t->nss, MAX_STREAMS);
	x = &t->ss[t->nss++];
	*x = (struct srv_stream){.id = frame->hd.stream_id};
	nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, x);
	return 0;
}

static void keep(char *dst, size_t *dst_len, const uint8_t *v, size_t n)
{
	ck_assert_uint_lt(n, 256);
	memcpy(dst, v, n);
	*dst_len = n;
}

static int srv_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
		      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		      void *user)
{
	struct srv_stream *x = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);

	(void)flags, (void)user;
	if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
		keep(x->path, &x->path_len, value, valuelen);
	} else if (namelen == 13 && memcmp(name, "last-event-id", 13) == 0) {
		keep(x->lid, &x->lid_len, value, valuelen);
		x->has_lid = 1;
	}
	return 0;
}

static const struct sse_h2_config *test_config(void)
{
	static struct sse_h2_config cfg;

	sse_h2_config_init(&cfg);
	cfg.hub = T.hub;
	cfg.send = wire_send;
	cfg.wake = on_wake;
	cfg.ctx = &T;
	return &cfg;
}

/* The request is complete: answer it with an event stream. */
static int srv_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct srv_stream *x;
	struct sse_h2_request rq;

	(void)user;
	if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	x = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
	rq = (struct sse_h2_request){.path = x->path, .path_len = x->path_len,
				     .last_event_id = x->has_lid ? x->lid : NULL,
				     .last_event_id_len = x->lid_len};
	ck_assert_int_eq(sse_h2_respond(&x->st, s, x->id, test_config(), &rq, x), 0);
	return 0;
}

static int srv_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct srv_stream *x = nghttp2_session_get_stream_user_data(s, id);

	(void)code, (void)user;
	if (x != NULL && !x->closed) {
		sse_h2_close(x->st);
		x->closed = 1;
	}
	return 0;
}

static void on_drop(struct sse_stream *s, int err, void *user)
{
	struct h2t *t = user;
	struct srv_stream *x = sse_stream_user(s);

	t->drops++;
	t->drop_err = err;
	ck_assert_int_eq(sse_h2_reset(x->st, NGHTTP2_CANCEL), 0);
}

/* ---- the client */

static struct cli_stream *cs_of(struct h2t *t, int32_t id)
{
	for (size_t i = 0; i < t->ncs; i++)
		if (t->cs[i].id == id)
			return &t->cs[i];
	return NULL;
}

static int is(const uint8_t *p, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

static int cli_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
		      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		      void *user)
{
	static const char *const banned[] = {"connection", "keep-alive", "proxy-connection",
					     "transfer-encoding", "upgrade"};
	struct cli_stream *c = cs_of(user, frame->hd.stream_id);

	(void)s, (void)flags;
	if (is(name, namelen, ":status"))
		c->status = atoi((const char *)value);
	if (is(name, namelen, "content-type"))
		c->event_stream = is(value, valuelen, "text/event-stream");
	if (is(name, namelen, "cache-control"))
		c->no_cache = valuelen >= 8 && memcmp(value, "no-cache", 8) == 0;
	for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
		if (is(name, namelen, banned[i]))
			c->forbidden = 1;
	return 0;
}

static int cli_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
		    size_t len, void *user)
{
	struct cli_stream *c = cs_of(user, id);

	(void)flags;
	if (c->len + len > c->cap) {
		c->cap = (c->len + len) * 2;
		c->body = realloc(c->body, c->cap);
		ck_assert_ptr_nonnull(c->body);
	}
	memcpy(c->body + c->len, data, len);
	c->len += len;
	if (c->slow)
		nghttp2_session_consume_connection(s, len); /* the stream's window stays shut */
	else
		c->unconsumed += len;
	return 0;
}

static int cli_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct cli_stream *c = cs_of(user, frame->hd.stream_id);

	(void)s;
	if (c != NULL && frame->hd.type == NGHTTP2_DATA && frame->hd.length > 0)
		c->data_frames++;
	return 0;
}

static int cli_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct cli_stream *c = cs_of(user, id);

	(void)s;
	c->closed = 1;
	c->code = code;
	return 0;
}

/* GET path on a new stream, with a last-event-id field if lid is not NULL. */
static struct cli_stream *cli_get(struct h2t *t, const char *path, const char *lid, int slow)
{
	nghttp2_nv nva[5] = {
		{(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
		{(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		{(uint8_t *)":authority", (uint8_t *)"test", 10, 4, 0},
		{(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
	};
	size_t n = 4;
	struct cli_stream *c;

	if (lid != NULL)
		nva[n++] = (nghttp2_nv){(uint8_t *)"last-event-id", (uint8_t *)lid, 13,
					strlen(lid), 0};
	ck_assert_uint_lt(t->ncs, MAX_STREAMS);
	c = &t->cs[t->ncs++];
	*c = (struct cli_stream){.slow = slow};
	c->id = nghttp2_submit_request(t->cli, NULL, nva, n, NULL, NULL);
	ck_assert_int_gt(c->id, 0);
	return c;
}

/* ---- both */

static size_t client_to_server(struct h2t *t)
{
	const uint8_t *data;
	ssize_t n;
	size_t moved = 0;

	while ((n = nghttp2_session_mem_send(t->cli, &data)) > 0) {
		ck_assert_int_eq(nghttp2_session_mem_recv(t->srv, data, (size_t)n), n);
		moved += (size_t)n;
	}
	ck_assert_int_eq(n, 0);
	return moved;
}

static size_t client_consume(struct h2t *t)
{
	size_t moved = 0;

	for (size_t i = 0; i < t->ncs; i++) {
		struct cli_stream *c = &t->cs[i];
		size_t k = c->unconsumed;

		if (t->consume_step > 0 && k > t->consume_step)
			k = t->consume_step;
		if (k == 0 || c->closed)
			continue;
		ck_assert_int_eq(nghttp2_session_consume(t->cli, c->id, k), 0);
		c->unconsumed -= k;
		moved += k;
	}
	return moved;
}

/* Rounds of: client frames in, server frames out, the wire, windows back;
 * until nothing moves. */
static void pump(struct h2t *t)
{
	for (int round = 0; round < 1000000; round++) {
		size_t moved = client_to_server(t);

		ck_assert_int_eq(nghttp2_session_send(t->srv), 0);
		moved += wire_deliver(t, t->wire_chunk);
		moved += client_consume(t);
		if (moved == 0 && t->wire_n == 0)
			return;
	}
	ck_abort_msg("the sessions never settled");
}

static void publish(struct h2t *t, int i, size_t pad)
{
	char *data = malloc(32 + pad);
	int n = snprintf(data, 32, "ev-%d", i);
	struct sse_event ev = {.data = data, .data_len = (size_t)n + pad, .retry = SSE_RETRY_NONE};

	memset(data + n, 'x', pad);
	ck_assert_int_eq(sse_hub_publish(t->hub, &ev, 0, NULL), 0);
	free(data);
}

/* The "data: ev-N" lines of a body, in order: they must be first, first + 1, ...
 * Returns how many there were. */
static int events_in(const struct cli_stream *c, int first)
{
	const char *p = c->body, *end = c->body + c->len;
	int next = first;

	while (p != NULL && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			break;
		if (nl - p > 9 && memcmp(p, "data: ev-", 9) == 0) {
			ck_assert_int_eq(atoi(p + 9), next);
			next++;
		}
		p = nl + 1;
	}
	return next - first;
}

static void setup_with(size_t ring_bytes, size_t ring_events, uint32_t window)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};
	struct sse_hub_config hc = {.size = sizeof(hc), .no_heartbeat = 1, .stall_ms = UINT64_MAX};

	memset(&T, 0, sizeof(T));
	hc.ring = (struct sse_replay_config){.size = sizeof(hc.ring), .max_events = ring_events,
					     .max_bytes = ring_bytes, .epoch = ""};
	ck_assert_int_eq(sse_hub_new(&T.hub, &hc, on_drop, &T, NULL), 0);

	ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, srv_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, sse_h2_send_data);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, srv_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, srv_stream_close);
	ck_assert_int_eq(nghttp2_session_server_new(&T.srv, cb, &T), 0);
	nghttp2_session_callbacks_del(cb);
	ck_assert_int_eq(nghttp2_submit_settings(T.srv, NGHTTP2_FLAG_NONE, NULL, 0), 0);

	ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, cli_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cli_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, cli_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, cli_stream_close);
	ck_assert_int_eq(nghttp2_option_new(&opt), 0);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	ck_assert_int_eq(nghttp2_session_client_new2(&T.cli, cb, &T, opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	ck_assert_int_eq(nghttp2_submit_settings(T.cli, NGHTTP2_FLAG_NONE, iv, 1), 0);
}

static void setup(void)
{
	setup_with((size_t)1 << 20, 1000, 65535);
}

/* Nothing may leak whatever state the streams are in. */
static void teardown(void)
{
	wire_cancel(&T);
	nghttp2_session_del(T.srv); /* calls no stream close callback */
	nghttp2_session_del(T.cli);
	for (size_t i = 0; i < T.nss; i++)
		if (!T.ss[i].closed)
			sse_h2_close(T.ss[i].st);
	sse_hub_free(T.hub);
	for (size_t i = 0; i < T.ncs; i++)
		free(T.cs[i].body);
}

static void assert_open_event_stream(const struct cli_stream *c)
{
	ck_assert_int_eq(c->status, 200);
	ck_assert(c->event_stream);
	ck_assert(!c->closed);
}

/* ---- tests */

/* An allocator with a hook missing is refused before anything is
 * allocated through it. */
START_TEST(test_h2_respond_refuses_an_incomplete_allocator)
{
	struct sse_h2_config cfg = *test_config();
	struct sse_allocator half = {.alloc_fn = NULL, .realloc_fn = NULL, .free_fn = NULL};
	struct sse_h2_stream *st = NULL;

	cfg.alloc = &half;
	ck_assert_int_eq(sse_h2_respond(&st, T.srv, 1, &cfg, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_ptr_null(st);
}
END_TEST

START_TEST(test_h2_multiplexed_streams_each_get_every_event_once_in_order)
{
	struct cli_stream *c[3];

	for (int i = 0; i < 3; i++)
		c[i] = cli_get(&T, "/events", NULL, 0);
	pump(&T);
	ck_assert_uint_eq(sse_hub_count(T.hub), 3);
	T.wakes = 0;
	for (int i = 0; i < 100; i++) {
		publish(&T, i, (size_t)(i * 37) % 300);
		if (i % 7 == 6) {
			sse_hub_flush(T.hub);
			pump(&T);
		}
	}
	sse_hub_flush(T.hub);
	pump(&T);
	ck_assert_int_gt(T.wakes, 0); /* deferred sources were resumed */
	for (int i = 0; i < 3; i++) {
		assert_open_event_stream(c[i]);
		ck_assert_int_eq(events_in(c[i], 0), 100);
		ck_assert_uint_eq(sse_h2_held(T.ss[i].st), 0);
	}
}
END_TEST

START_TEST(test_h2_head_has_no_connection_specific_fields)
{
	struct cli_stream *c = cli_get(&T, "/events", NULL, 0);

	pump(&T);
	assert_open_event_stream(c);
	ck_assert(c->no_cache);
	ck_assert(!c->forbidden);
}
END_TEST

START_TEST(test_h2_big_event_crosses_frames_and_windows_without_copy)
{
	const char *bytes;
	size_t len = 0;
	struct cli_stream *c[2];
	uint64_t seq;

	teardown();
	setup_with((size_t)8 << 20, 16, 16384);
	T.wire_chunk = 10000; /* frames reach the client in pieces */
	T.consume_step = 4096;
	c[0] = cli_get(&T, "/events", NULL, 0);
	c[1] = cli_get(&T, "/events", NULL, 0);
	pump(&T);
	seq = sse_replay_next_seq(sse_hub_ring(T.hub));
	publish(&T, 0, BIG);
	ck_assert_int_eq(sse_replay_frame(sse_hub_ring(T.hub), seq, &bytes, &len), 1);
	T.frame = bytes;
	T.frame_len = len;
	sse_hub_flush(T.hub);
	pump(&T);
	for (int i = 0; i < 2; i++) {
		const char *p;

		assert_open_event_stream(c[i]);
		ck_assert_int_eq(events_in(c[i], 0), 1);
		ck_assert_int_gt(c[i]->data_frames, (int)(BIG / 16384)); /* many DATA frames */
		p = memmem(c[i]->body, c[i]->len, bytes, len); /* the whole frame, intact */
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(T.ss[i].in_frame, len); /* every byte of it by reference */
	}
}
END_TEST

START_TEST(test_h2_client_rst_stream_ends_only_that_subscriber)
{
	struct cli_stream *c[3];

	for (int i = 0; i < 3; i++)
		c[i] = cli_get(&T, "/events", NULL, 0);
	pump(&T);
	for (int i = 0; i < 5; i++)
		publish(&T, i, 0);
	sse_hub_flush(T.hub);
	pump(&T);
	ck_assert_int_eq(nghttp2_submit_rst_stream(T.cli, NGHTTP2_FLAG_NONE, c[1]->id,
						   NGHTTP2_CANCEL), 0);
	pump(&T);
	ck_assert(T.ss[1].closed);
	ck_assert_uint_eq(sse_hub_count(T.hub), 2);
	for (int i = 5; i < 10; i++)
		publish(&T, i, 100);
	sse_hub_flush(T.hub);
	pump(&T);
	ck_assert_int_eq(events_in(c[0], 0), 10);
	ck_assert_int_eq(events_in(c[1], 0), 5);
	ck_assert_int_eq(events_in(c[2], 0), 10);
	ck_assert(!c[0]->closed && !c[2]->closed);
}
END_TEST

START_TEST(test_h2_hub_drop_resets_only_its_stream_with_cancel)
{
	struct cli_stream *fast, *slow;

	teardown();
	setup_with(16384, 64, 4096);
	fast = cli_get(&T, "/events", NULL, 0);
	slow = cli_get(&T, "/events", NULL, 1);
	pump(&T);
	for (int i = 0; i < 60; i++) {
		publish(&T, i, 1000);
		sse_hub_flush(T.hub);
		pump(&T);
	}
	ck_assert_int_eq(T.drops, 1);
	ck_assert_int_eq(T.drop_err, SSE_ERR_GAP);
	ck_assert(slow->closed);
	ck_assert_uint_eq(slow->code, NGHTTP2_CANCEL);
	ck_assert(T.ss[1].closed);
	assert_open_event_stream(fast);
	ck_assert_int_eq(events_in(fast, 0), 60);
	ck_assert_uint_eq(sse_hub_count(T.hub), 1);
}
END_TEST

START_TEST(test_h2_resumes_from_last_event_id_header_or_query)
{
	char id[64], path[96];
	size_t len = 0;
	const char *newest;
	struct cli_stream *hdr, *query, *live;

	for (int i = 0; i < 10; i++) {
		publish(&T, i, 0);
		if (i == 4) {
			newest = sse_replay_newest_id(sse_hub_ring(T.hub), &len);
			ck_assert_uint_lt(len, sizeof(id));
			memcpy(id, newest, len);
			id[len] = '\0';
		}
	}
	snprintf(path, sizeof(path), "/events?x=1&lastEventId=%s", id);
	hdr = cli_get(&T, "/events", id, 0);
	query = cli_get(&T, path, NULL, 0);
	live = cli_get(&T, "/events", NULL, 0);
	pump(&T);
	ck_assert_int_eq(events_in(hdr, 5), 5);
	ck_assert_int_eq(events_in(query, 5), 5);
	ck_assert_int_eq(events_in(live, 0), 0);
	publish(&T, 10, 0);
	sse_hub_flush(T.hub);
	pump(&T);
	ck_assert_int_eq(events_in(hdr, 5), 6);
	ck_assert_int_eq(events_in(query, 5), 6);
	ck_assert_int_eq(events_in(live, 10), 1);
}
END_TEST

START_TEST(test_h2_end_finishes_the_stream_after_what_it_owes)
{
	struct cli_stream *c = cli_get(&T, "/events", NULL, 0);
	struct cli_stream *other = cli_get(&T, "/events", NULL, 0);

	pump(&T);
	for (int i = 0; i < 3; i++)
		publish(&T, i, 0);
	sse_hub_flush(T.hub);
	sse_h2_end(T.ss[0].st); /* owes all three, none asked for yet */
	pump(&T);
	ck_assert(c->closed);
	ck_assert_uint_eq(c->code, NGHTTP2_NO_ERROR);
	ck_assert_int_eq(events_in(c, 0), 3);
	ck_assert(T.ss[0].closed);
	ck_assert_uint_eq(sse_hub_count(T.hub), 1);
	publish(&T, 3, 0);
	sse_hub_flush(T.hub);
	pump(&T);
	ck_assert(!other->closed);
	ck_assert_int_eq(events_in(other, 0), 4);
}
END_TEST

static Suite *nghttp2_suite(void)
{
	Suite *s = suite_create("adapt-nghttp2");
	TCase *tc = tcase_create("h2");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_h2_multiplexed_streams_each_get_every_event_once_in_order);
	tcase_add_test(tc, test_h2_respond_refuses_an_incomplete_allocator);
	tcase_add_test(tc, test_h2_head_has_no_connection_specific_fields);
	tcase_add_test(tc, test_h2_big_event_crosses_frames_and_windows_without_copy);
	tcase_add_test(tc, test_h2_client_rst_stream_ends_only_that_subscriber);
	tcase_add_test(tc, test_h2_hub_drop_resets_only_its_stream_with_cancel);
	tcase_add_test(tc, test_h2_resumes_from_last_event_id_header_or_query);
	tcase_add_test(tc, test_h2_end_finishes_the_stream_after_what_it_owes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(nghttp2_suite());
}
