/*
 * libsse-libevent against a real event_base and real sockets: an evhttp
 * server on TCP loopback read by a raw client socket that decodes the
 * chunked response itself, and a bufferevent over a socketpair. One
 * thread: each step runs the loop once without blocking, then lets the
 * client read (at most so many bytes: a slow reader). Events are checked
 * with libsse's WHATWG parser, against data regenerated from their index.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sse/libevent.h>

#include "test-common.h"

#define MAX_EVENTS 4096
#define FRAMING_SLACK 64 /* chunk heads and CRLFs on top of the output bound */

/* ---- the events: data regenerated from an index and a size */

static size_t sizes[MAX_EVENTS];
static char ids[MAX_EVENTS][32];

static char data_byte(size_t i, size_t k)
{
	return (char)('a' + (i * 7 + k) % 26);
}

static char *make_data(size_t i, size_t n)
{
	char *d = malloc(n + 1);

	ck_assert_ptr_nonnull(d);
	for (size_t k = 0; k < n; k++)
		d[k] = data_byte(i, k);
	return d;
}

/* ---- the server */

struct fx {
	struct event_base *base;
	struct evhttp *http;
	struct sse_hub *hub;
	struct sse_event_driver *d;
	struct test_alloc ta;
	unsigned short port;
	int sndbuf;              /* > 0: the server side's SO_SNDBUF for streams */
	struct sse_stream *s;    /* the last stream served */
	struct bufferevent *bev; /* its connection's */
	int serve_rc;
	long idle_blocks;        /* the driver's own allocations */
};

static struct fx fx;

static void on_request(struct evhttp_request *req, void *arg)
{
	struct fx *f = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	f->bev = evhttp_connection_get_bufferevent(evcon);
	if (f->sndbuf > 0)
		ck_assert_int_eq(setsockopt(bufferevent_getfd(f->bev), SOL_SOCKET, SO_SNDBUF,
					    &f->sndbuf, sizeof(f->sndbuf)), 0);
	f->s = NULL;
	f->serve_rc = sse_event_serve(f->d, req, &f->s);
}

struct hub_opts {
	size_t max_events, max_bytes;
	uint64_t heartbeat_ms; /* 0: none */
};

static void fx_start(const struct hub_opts *o)
{
	static const struct sse_event reset = {.type = "sse-reset", .type_len = 9, .data = "gap",
					       .data_len = 3, .retry = SSE_RETRY_NONE};
	const struct sse_hub_config cfg = {
		.size = sizeof(cfg),
		.ring = {.size = sizeof(cfg.ring), .max_events = o->max_events,
			 .max_bytes = o->max_bytes, .epoch = "", .reset_event = &reset},
		.heartbeat_ms = o->heartbeat_ms,
		.no_heartbeat = o->heartbeat_ms == 0,
	};
	struct evhttp_bound_socket *sock;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	memset(&fx, 0, sizeof(fx));
	test_alloc_init(&fx.ta, 0);
	fx.base = event_base_new();
	fx.http = evhttp_new(fx.base);
	ck_assert_ptr_nonnull(fx.http);
	sock = evhttp_bind_socket_with_handle(fx.http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(sock);
	ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &sl), 0);
	fx.port = ntohs(sin.sin_port);
	evhttp_set_gencb(fx.http, on_request, &fx);
	ck_assert_int_eq(sse_hub_new(&fx.hub, &cfg, sse_event_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_event_driver_new(&fx.d, fx.base, fx.hub, &fx.ta.hooks), 0);
	fx.idle_blocks = fx.ta.live_blocks;
}

static void fx_default(void)
{
	const struct hub_opts o = {.max_events = MAX_EVENTS, .max_bytes = (size_t)16 << 20};

	fx_start(&o);
}

/* The documented order; every stream, and every byte of the adapter's
 * allocator, must be gone once the base is. */
static void fx_stop(void)
{
	evhttp_free(fx.http);
	sse_event_driver_free(fx.d);
	event_base_free(fx.base);
	ck_assert_int_eq(fx.ta.live_blocks, 0);
	ck_assert_int_eq(fx.ta.live_bytes, 0);
	sse_hub_free(fx.hub);
}

static void publish(size_t i, size_t n)
{
	char *data = make_data(i, n);
	const struct sse_event ev = {.data = data, .data_len = n, .retry = SSE_RETRY_NONE};
	const char *id;
	size_t len;

	ck_assert_int_eq(sse_event_publish(fx.d, &ev, NULL), 0);
	free(data);
	sizes[i] = n;
	id = sse_replay_newest_id(sse_hub_ring(fx.hub), &len);
	ck_assert_uint_lt(len, sizeof(ids[i]));
	memcpy(ids[i], id, len);
	ids[i][len] = '\0';
}

static size_t output_len(void)
{
	return evbuffer_get_length(bufferevent_get_output(fx.bev));
}

/* ---- the client: a raw socket, an HTTP/1.1 chunked decoder, a parser */

enum chunk_state { HEAD, SIZE, DATA, CRLF, END, RAW };

struct client {
	int fd;
	char *raw;                 /* everything read */
	size_t raw_len, raw_cap, pos;
	enum chunk_state state;
	size_t chunk_left;
	char head[2048];
	bool eof;
	struct sse_parser *p;
	size_t next;               /* index of the next event expected */
	size_t got, bad, resets, comments;
	size_t body_len;
};

static int on_message(const struct sse_message *m, void *user)
{
	struct client *c = user;
	size_t i = c->next;

	if (m->type_len == 9 && memcmp(m->type, "sse-reset", 9) == 0) {
		c->resets++;
		return 0;
	}
	c->got++;
	if (i >= MAX_EVENTS || m->data_len != sizes[i] || strcmp(m->last_id, ids[i]) != 0) {
		c->bad++;
		return 0;
	}
	for (size_t k = 0; k < m->data_len; k++) {
		if (m->data[k] != data_byte(i, k)) {
			c->bad++;
			return 0;
		}
	}
	c->next++;
	return 0;
}

static int on_comment(const char *text, size_t len, void *user)
{
	(void)text, (void)len;
	((struct client *)user)->comments++;
	return 0;
}

static void client_init(struct client *c, int fd, size_t first, bool http)
{
	const struct sse_parser_callbacks cb = {.on_message = on_message, .on_comment = on_comment};

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->next = first;
	c->state = http ? HEAD : RAW;
	ck_assert_int_eq(sse_parser_new(&c->p, &cb, c, NULL), 0);
	ck_assert_int_eq(sse_parser_set_limit(c->p, (size_t)16 << 20), 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
}

static void client_free(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	sse_parser_free(c->p);
	free(c->raw);
}

/* A TCP connection to the server, with a small receive buffer when asked. */
static int dial(int rcvbuf)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(fx.port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	if (rcvbuf > 0)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void client_get(struct client *c, int rcvbuf, const char *target, const char *extra,
		       size_t first)
{
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", target, extra);

	client_init(c, dial(rcvbuf), first, true);
	ck_assert_int_eq(write(c->fd, req, (size_t)n), n);
}

static void body(struct client *c, const char *p, size_t n)
{
	c->body_len += n;
	ck_assert_int_eq(sse_parser_feed(c->p, p, n), 0);
}

/* One step of the decoder over raw[pos..); false when it needs more. */
static bool decode_step(struct client *c)
{
	const char *p = c->raw + c->pos, *e = c->raw + c->raw_len, *nl;
	size_t n;

	switch (c->state) {
	case RAW:
		body(c, p, (size_t)(e - p));
		c->pos = c->raw_len;
		return false;
	case HEAD:
		for (nl = p; nl + 3 < e && memcmp(nl, "\r\n\r\n", 4) != 0; nl++)
			;
		if (nl + 3 >= e)
			return false;
		n = (size_t)(nl - p) + 4;
		ck_assert_uint_lt(n, sizeof(c->head));
		for (size_t k = 0; k < n; k++) /* lowercase, to compare */
			c->head[k] = (char)(p[k] >= 'A' && p[k] <= 'Z' ? p[k] - 'A' + 'a' : p[k]);
		c->pos += n;
		c->state = strstr(c->head, "transfer-encoding: chunked") ? SIZE : RAW;
		return true;
	case SIZE:
		nl = memchr(p, '\n', (size_t)(e - p));
		if (nl == NULL)
			return false;
		c->chunk_left = strtoul(p, NULL, 16);
		c->pos += (size_t)(nl - p) + 1;
		c->state = c->chunk_left > 0 ? DATA : END;
		return true;
	case DATA:
		n = (size_t)(e - p) < c->chunk_left ? (size_t)(e - p) : c->chunk_left;
		body(c, p, n);
		c->pos += n;
		c->chunk_left -= n;
		if (c->chunk_left == 0)
			c->state = CRLF;
		return n > 0;
	case CRLF:
		if (e - p < 2)
			return false;
		ck_assert(p[0] == '\r' && p[1] == '\n');
		c->pos += 2;
		c->state = SIZE;
		return true;
	case END:
		return false;
	}
	return false;
}

/* Read at most max bytes (0: all there is) and decode them. */
static size_t client_read(struct client *c, size_t max)
{
	size_t total = 0;

	while (!c->eof && (max == 0 || total < max)) {
		size_t want = max == 0 || max - total > 65536 ? 65536 : max - total;
		ssize_t n;

		if (c->raw_cap - c->raw_len < want) {
			c->raw_cap = (c->raw_cap + want) * 2;
			c->raw = realloc(c->raw, c->raw_cap);
			ck_assert_ptr_nonnull(c->raw);
		}
		n = read(c->fd, c->raw + c->raw_len, want);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->eof = true;
			break;
		}
		c->raw_len += (size_t)n;
		total += (size_t)n;
	}
	while (decode_step(c))
		;
	return total;
}

static uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef bool (*until_fn)(struct client *c);

/* Run the loop and the client (reading at most read_max bytes a step; 0:
 * everything; -1: not at all) until done(c) or ms pass. Also checks the
 * output bound, when given, at every step. */
static bool pump(struct client *c, long read_max, until_fn done, unsigned ms, size_t bound)
{
	uint64_t end = clock_ms() + ms;

	for (;;) {
		size_t n = 0;

		event_base_loop(fx.base, EVLOOP_NONBLOCK);
		if (bound > 0 && fx.bev != NULL)
			ck_assert_uint_le(output_len(), bound + FRAMING_SLACK);
		if (c != NULL && read_max >= 0)
			n = client_read(c, (size_t)read_max);
		if (done != NULL && done(c))
			return true;
		if (clock_ms() >= end)
			return false;
		if (n == 0) {
			struct pollfd pfd = {.fd = c ? c->fd : -1, .events = POLLIN};

			(void)poll(&pfd, 1, 1);
		}
	}
}

/* A fixed number of steps, 2 ms apart, reading at most read_max bytes each. */
static void pump_steps(struct client *c, size_t read_max, int steps)
{
	for (int i = 0; i < steps; i++) {
		event_base_loop(fx.base, EVLOOP_NONBLOCK);
		client_read(c, read_max);
		(void)poll(NULL, 0, 2);
	}
}

static size_t want_events;

static bool got_all(struct client *c)
{
	return c->next >= want_events || c->bad > 0;
}

static bool opened(struct client *c)
{
	return c->state != HEAD && c->comments > 0;
}

static bool has_body(struct client *c)
{
	return c->body_len > 0;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

static bool at_eof(struct client *c)
{
	return c->eof;
}

static bool streams_gone(struct client *c)
{
	(void)c;
	return fx.ta.live_blocks == fx.idle_blocks;
}

/* ---- every event once and in order */

START_TEST(test_libevent_every_event_in_order)
{
	struct client c;
	size_t n = 300;

	fx_default();
	client_get(&c, 16 << 10, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	ck_assert_int_eq(fx.serve_rc, 0);
	ck_assert_ptr_nonnull(strstr(c.head, "http/1.1 200"));
	ck_assert_ptr_nonnull(strstr(c.head, "\r\ncontent-type: text/event-stream\r\n"));
	ck_assert_ptr_nonnull(strstr(c.head, "\r\ncache-control: no-cache"));
	ck_assert_ptr_null(strstr(c.head, "content-length"));
	ck_assert(c.state != RAW); /* chunked */
	for (size_t i = 0; i < n; i++)
		publish(i, i == n / 2 ? (size_t)3 << 20 : 1 + (i * 37) % 3000);
	want_events = n;
	/* A slow reader: 4 KiB a step through a 16 KiB receive buffer. */
	ck_assert(pump(&c, 4096, got_all, 30000, 0));
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(c.got, n);
	ck_assert_uint_eq(c.next, n);
	ck_assert_uint_eq(c.resets, 0);
	/* Live events after it, and nothing twice. */
	publish(n, 10);
	want_events = n + 1;
	ck_assert(pump(&c, 0, got_all, 2000, 0));
	ck_assert_uint_eq(c.got, n + 1);
	ck_assert_uint_eq(c.bad, 0);
	client_free(&c);
	fx_stop();
}
END_TEST

/* ---- backpressure */

/* The output bound holds but for one frame larger than the room left. */
#define FRAME_1000 1100

START_TEST(test_libevent_backpressure_bounds_output)
{
	size_t bound = 16 << 10;
	struct client c;
	size_t n = 4000;

	fx_default();
	ck_assert_int_eq(sse_event_driver_set_output_max(fx.d, bound), 0);
	fx.sndbuf = 4096;
	client_get(&c, 4096, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, bound));
	for (size_t i = 0; i < n; i++)
		publish(i, 1000);
	bound += FRAME_1000;
	/* The client reads nothing: the output buffer fills to the bound
	 * and no further; the rest stays owed in the ring, not copied. */
	pump(&c, -1, NULL, 300, bound);
	ck_assert_uint_gt(output_len(), 0);
	ck_assert_uint_gt(sse_stream_pending(fx.s), (size_t)3 << 20);
	/* Reading again: the drained callbacks hand out the rest. */
	want_events = n;
	ck_assert(pump(&c, 8192, got_all, 30000, bound));
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(c.got, n);
	client_free(&c);
	fx_stop();
}
END_TEST

/* ---- zero copy */

/* Bytes of the output buffer that lie inside [lo, lo + len). */
static size_t bytes_within(struct evbuffer *out, const char *lo, size_t len)
{
	struct evbuffer_iovec v[256];
	int n = evbuffer_peek(out, -1, NULL, v, 256);
	size_t in = 0;

	ck_assert_int_le(n, 256);
	for (int i = 0; i < n; i++) {
		const char *b = v[i].iov_base;

		if (b >= lo && b + v[i].iov_len <= lo + len)
			in += v[i].iov_len;
	}
	return in;
}

START_TEST(test_libevent_zero_copy)
{
	const size_t big = (size_t)1 << 20;
	struct client c;
	const char *frame;
	size_t frame_len, held;

	fx_default();
	fx.sndbuf = 4096;
	client_get(&c, 4096, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	publish(0, big);
	pump(&c, -1, NULL, 200, 0);
	/* What waits in the output buffer is the ring's frame itself,
	 * referenced: only the chunk framing is libevent's own. */
	ck_assert_int_eq(sse_replay_frame(sse_hub_ring(fx.hub), sse_replay_next_seq(sse_hub_ring(fx.hub)) - 1,
					  &frame, &frame_len), 1);
	ck_assert_uint_gt(frame_len, big);
	held = output_len();
	ck_assert_uint_gt(held, 1024);
	ck_assert_uint_ge(bytes_within(bufferevent_get_output(fx.bev), frame, frame_len),
			  held - FRAMING_SLACK);
	/* Nor did the adapter or its stream copy it anywhere of theirs. */
	ck_assert_int_lt(fx.ta.peak_bytes, 16 << 10);
	want_events = 1;
	ck_assert(pump(&c, 0, got_all, 10000, 0));
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(c.got, 1);
	client_free(&c);
	fx_stop();
}
END_TEST

/* ---- a client that leaves */

START_TEST(test_libevent_disconnect_frees_everything)
{
	const struct hub_opts o = {.max_events = 64, .max_bytes = (size_t)4 << 20};
	const struct linger hard = {.l_onoff = 1, .l_linger = 0};
	struct client c;

	fx_start(&o);
	fx.sndbuf = 4096;
	client_get(&c, 4096, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	publish(0, (size_t)2 << 20);
	pump_steps(&c, 1024, 20); /* part of it read, part held by libevent */
	ck_assert_uint_gt(sse_stream_inflight(fx.s), 0);
	ck_assert_uint_gt(c.body_len, 1024);
	ck_assert_uint_eq(c.got, 0);
	/* A reset, not a polite close. */
	ck_assert_int_eq(setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard)), 0);
	close(c.fd);
	c.fd = -1;
	ck_assert(pump(NULL, -1, streams_gone, 3000, 0));
	ck_assert_uint_eq(sse_hub_count(fx.hub), 0);
	/* Nothing pins the ring any more: it can be filled over and over. */
	for (size_t i = 1; i < 8; i++)
		publish(i, (size_t)1 << 20);
	client_free(&c);
	fx_stop();
}
END_TEST

/* The hub drops a subscriber that fell out of the ring: its connection
 * closes, and its memory goes once libevent lets go of its bytes. */
START_TEST(test_libevent_drop_closes_connection)
{
	const struct hub_opts o = {.max_events = 16, .max_bytes = (size_t)1 << 20};
	struct client c;

	fx_start(&o);
	fx.sndbuf = 4096;
	client_get(&c, 4096, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	for (size_t i = 0; i < 200; i++) {
		publish(i, 4096);
		pump(&c, -1, NULL, 1, 0);
	}
	ck_assert(pump(&c, -1, streams_gone, 3000, 0));
	ck_assert_uint_eq(sse_hub_count(fx.hub), 0);
	ck_assert(pump(&c, 0, at_eof, 3000, 0)); /* what was sent, then the end */
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_lt(c.got, 200);
	client_free(&c);
	fx_stop();
}
END_TEST

/* Shutting down with a stream open and bytes in flight: fx_stop() checks
 * that the adapter's allocator holds nothing after event_base_free(). */
START_TEST(test_libevent_shutdown_with_stream_open)
{
	struct client c;

	fx_default();
	fx.sndbuf = 4096;
	client_get(&c, 4096, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	publish(0, (size_t)1 << 20);
	pump(&c, -1, NULL, 100, 0);
	ck_assert_uint_gt(sse_stream_inflight(fx.s), 0);
	fx_stop();
	client_free(&c);
}
END_TEST

/* ---- resume */

static void check_resume(const char *target, const char *extra)
{
	struct client c;

	fx_default();
	for (size_t i = 0; i < 10; i++)
		publish(i, 100 + i);
	ck_assert_str_eq(ids[3], "4");
	client_get(&c, 0, target, extra, 4); /* missed 4..9 */
	want_events = 10;
	ck_assert(pump(&c, 0, got_all, 2000, 0));
	publish(10, 5);
	publish(11, 6);
	want_events = 12;
	ck_assert(pump(&c, 0, got_all, 2000, 0));
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(c.got, 8);
	ck_assert_uint_eq(c.resets, 0);
	client_free(&c);
	fx_stop();
}

/* ids[3] is the ring's plain id "4": the client resumes after it. */
START_TEST(test_libevent_resume_by_header)
{
	check_resume("/events", "Last-Event-ID: 4\r\n");
}
END_TEST

START_TEST(test_libevent_resume_by_query)
{
	check_resume("/events?x=1&lastEventId=%34", ""); /* "%34" is "4" */
}
END_TEST

START_TEST(test_libevent_resume_bad_escape_is_400)
{
	struct client c;

	fx_default();
	client_get(&c, 0, "/events?lastEventId=%zz", "", 0);
	ck_assert(pump(&c, 0, at_eof, 2000, 0) || c.state != HEAD);
	ck_assert_int_eq(fx.serve_rc, SSE_ERR_HTTP);
	ck_assert_ptr_nonnull(strstr(c.head, "http/1.1 400"));
	ck_assert_int_eq(fx.ta.live_blocks, fx.idle_blocks);
	client_free(&c);
	fx_stop();
}
END_TEST

/* A HEAD has no body, so it gets no stream (405), and nothing of it can
 * end up on another connection: the GET after it gets each event once. */
START_TEST(test_libevent_head_gets_no_stream)
{
	static const char head[] = "HEAD /events HTTP/1.1\r\nHost: t\r\n\r\n";
	struct client h, c;

	fx_default();
	client_init(&h, dial(0), 0, true);
	ck_assert_int_eq(write(h.fd, head, sizeof(head) - 1), (ssize_t)(sizeof(head) - 1));
	ck_assert(pump(&h, 0, at_eof, 2000, 0) || h.state != HEAD);
	ck_assert_int_eq(fx.serve_rc, SSE_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(h.head, "http/1.1 405"));
	ck_assert_uint_eq(sse_hub_count(fx.hub), 0);
	client_get(&c, 0, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	for (size_t i = 0; i < 3; i++)
		publish(i, 10 + i);
	want_events = 3;
	ck_assert(pump(&c, 0, got_all, 2000, 0));
	ck_assert_uint_eq(c.got, 3);
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(c.comments, 1); /* its own opening comment only */
	client_free(&h);
	client_free(&c);
	fx_stop();
}
END_TEST

/* An id of the ring's epoch it no longer holds: the reset event, then live. */
START_TEST(test_libevent_resume_lost_id_gets_reset)
{
	struct client c;

	fx_default();
	publish(0, 10);
	client_get(&c, 0, "/events", "Last-Event-ID: 999\r\n", 1);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	publish(1, 11);
	want_events = 2;
	ck_assert(pump(&c, 0, got_all, 2000, 0));
	ck_assert_uint_eq(c.resets, 1);
	ck_assert_uint_eq(c.got, 1);
	ck_assert_uint_eq(c.bad, 0);
	client_free(&c);
	fx_stop();
}
END_TEST

/* ---- heartbeats: the driver's timer, with nothing published */

static bool three_beats(struct client *c)
{
	return c->comments >= 4; /* the opening comment, then heartbeats */
}

START_TEST(test_libevent_heartbeat_on_idle)
{
	const struct hub_opts o = {.max_events = 16, .max_bytes = 1 << 16, .heartbeat_ms = 100};
	struct client c;
	uint64_t t0;

	fx_start(&o);
	client_get(&c, 0, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	ck_assert_uint_eq(c.comments, 1);
	t0 = clock_ms();
	ck_assert(pump(&c, 0, three_beats, 2000, 0));
	ck_assert_uint_ge(clock_ms() - t0, 250);
	ck_assert_uint_eq(c.got, 0);
	client_free(&c);
	fx_stop();
}
END_TEST

/* ---- workers publish through a handoff; the driver drains it */

START_TEST(test_libevent_handoff_drained_at_wake)
{
	struct sse_handoff *q;
	struct client c;
	int wake = 0;

	fx_default();
	ck_assert_int_eq(sse_handoff_new(&q, 8, 256, 0, NULL), 0);
	ck_assert_int_eq(sse_event_driver_set_handoff(fx.d, q), 0);
	client_get(&c, 0, "/events", "", 0);
	ck_assert(pump(&c, 0, opened, 2000, 0));
	for (size_t i = 0; i < 5; i++) {
		char *data = make_data(i, 50 + i);
		const struct sse_event ev = {.data = data, .data_len = 50 + i, .retry = SSE_RETRY_NONE};
		int w;

		ck_assert_int_eq(sse_handoff_push(q, &ev, &w), 0);
		wake |= w;
		sizes[i] = 50 + i;
		snprintf(ids[i], sizeof(ids[i]), "%zu", i + 1); /* plain ring ids */
		free(data);
	}
	ck_assert_int_eq(wake, 1);
	pump(&c, 0, NULL, 50, 0);
	ck_assert_uint_eq(c.got, 0); /* nobody woke the loop */
	sse_event_driver_wake(fx.d);
	want_events = 5;
	ck_assert(pump(&c, 0, got_all, 2000, 0));
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(sse_handoff_count(q), 0);
	client_free(&c);
	fx_stop();
	sse_handoff_free(q);
}
END_TEST

/* ---- a plain bufferevent over a socketpair */

START_TEST(test_libevent_bufferevent_stream)
{
	const size_t bound = 16 << 10;
	int sv[2], buf = 4096;
	struct bufferevent *bev;
	struct client c;
	char head[256];
	size_t head_len, n = 200;

	fx_default();
	ck_assert_int_eq(sse_event_driver_set_output_max(fx.d, bound), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)), 0);
	ck_assert_int_eq(evutil_make_socket_nonblocking(sv[0]), 0);
	bev = bufferevent_socket_new(fx.base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(bev);
	ck_assert_int_eq(sse_http_response_head(NULL, head, sizeof(head), &head_len), 0);
	ck_assert_int_eq(bufferevent_write(bev, head, head_len), 0);
	for (size_t i = 0; i < 3; i++) /* missed by a client that saw none */
		publish(i, 20);
	ck_assert_int_eq(sse_event_serve_bufferevent(fx.d, bev, "0", 1, &fx.s), 0);
	fx.bev = bev;
	client_init(&c, sv[1], 0, true);
	for (size_t i = 3; i < n; i++)
		publish(i, i == n / 2 ? (size_t)2 << 20 : 1 + i * 13 % 2000);
	want_events = n;
	ck_assert(pump(&c, 2048, got_all, 30000, bound + (2u << 20) + 64));
	ck_assert(c.state == RAW); /* no chunks on a bufferevent */
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(c.got, n);
	/* The peer leaves: everything goes, once libevent lets go. */
	publish(n, (size_t)1 << 20);
	pump(&c, -1, NULL, 50, bound + (1u << 20) + 64);
	close(c.fd);
	c.fd = -1;
	fx.bev = NULL;
	ck_assert(pump(NULL, -1, streams_gone, 3000, 0));
	ck_assert_uint_eq(sse_hub_count(fx.hub), 0);
	client_free(&c);
	fx_stop();
}
END_TEST

/* ---- arguments */

START_TEST(test_libevent_arguments)
{
	const struct sse_http_options chunked = {.chunked = 1};
	const struct sse_http_options cors = {.cors_origin = "https://a.example"};
	struct sse_event_driver *d = NULL;
	struct client c;

	fx_default();
	ck_assert_int_eq(sse_event_driver_new(NULL, fx.base, fx.hub, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_event_driver_new(&d, NULL, fx.hub, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_event_driver_new(&d, fx.base, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(sse_event_driver_set_retry(fx.d, -5), SSE_ERR_RETRY);
	ck_assert_int_eq(sse_event_driver_set_retry(fx.d, 1500), 0);
	ck_assert_int_eq(sse_event_driver_set_http(fx.d, &chunked), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_event_driver_set_http(fx.d, &cors), 0);
	ck_assert_int_eq(sse_event_serve(NULL, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_event_serve_bufferevent(fx.d, NULL, NULL, 0, NULL), SSE_ERR_INVALID);
	sse_event_close(NULL);
	sse_event_driver_free(NULL);
	/* A stream served now has the CORS field and starts with the retry. */
	client_get(&c, 0, "/events", "", 0);
	ck_assert(pump(&c, 0, has_body, 2000, 0));
	ck_assert_ptr_nonnull(strstr(c.head, "\r\naccess-control-allow-origin: https://a.example\r\n"));
	ck_assert(contains(c.raw, c.raw_len, "retry: 1500\n"));
	client_free(&c);
	fx_stop();
}
END_TEST

static Suite *libevent_suite(void)
{
	Suite *s = suite_create("adapt-libevent");
	TCase *tc = tcase_create("delivery");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_libevent_every_event_in_order);
	tcase_add_test(tc, test_libevent_backpressure_bounds_output);
	tcase_add_test(tc, test_libevent_zero_copy);
	tcase_add_test(tc, test_libevent_heartbeat_on_idle);
	tcase_add_test(tc, test_libevent_handoff_drained_at_wake);
	tcase_add_test(tc, test_libevent_bufferevent_stream);
	suite_add_tcase(s, tc);
	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_libevent_disconnect_frees_everything);
	tcase_add_test(tc, test_libevent_drop_closes_connection);
	tcase_add_test(tc, test_libevent_shutdown_with_stream_open);
	suite_add_tcase(s, tc);
	tc = tcase_create("resume");
	tcase_add_test(tc, test_libevent_resume_by_header);
	tcase_add_test(tc, test_libevent_resume_by_query);
	tcase_add_test(tc, test_libevent_resume_bad_escape_is_400);
	tcase_add_test(tc, test_libevent_head_gets_no_stream);
	tcase_add_test(tc, test_libevent_resume_lost_id_gets_reset);
	tcase_add_test(tc, test_libevent_arguments);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error, not a signal */
	return test_run_suite(libevent_suite());
}
