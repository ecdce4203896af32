/*
 * libsse-mhd against a real libmicrohttpd daemon (external epoll polling)
 * on TCP loopback, with a raw client socket: the test is the daemon's
 * loop and the client at once, turning one, then reading the other.
 * Expected bytes are written by hand from the WHATWG event stream format.
 * Every wait is bounded by a deadline.
 *
 * Checked: every event arrives once and in order, one of several MiB
 * read slowly through a small socket buffer; an idle subscriber is
 * suspended and the loop sleeps (few turns while idle), and a publish
 * resumes it; resume by Last-Event-ID and by a query whose id holds '+';
 * a client that leaves mid-event or while idle frees its stream (the
 * valgrind setup checks the rest); a hub drop ends the response, whether
 * the connection was suspended (GAP) or its socket full (STALLED);
 * heartbeats on an idle stream.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* strcasestr() */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sse/mhd.h>

#include "test-common.h"

#define DEADLINE_MS 30000
#define MIB ((size_t)1 << 20)

struct fx {
	struct sse_hub *hub;
	struct MHD_Daemon *daemon;
	struct sse_mhd *mhd;
	int epoll_fd;
	unsigned short port;
	int errors;    /* on_error calls */
	int last_err;  /* and the last error it gave */
	long turns;    /* sse_mhd_run() calls */
};

struct client {
	int fd;
	char *buf;
	size_t len, cap;
	bool eof;     /* the server closed (or reset) the connection */
	size_t chunk; /* bytes one recv() takes at most */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the server */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_len, void **req_cls)
{
	struct fx *f = cls;

	(void)method, (void)version, (void)data, (void)data_len;
	if (*req_cls != NULL && strcmp(url, "/events") == 0)
		return sse_mhd_respond(f->mhd, conn, *req_cls);
	if (strcmp(url, "/pub") == 0) { /* a publish in a handler: inside MHD_run() */
		const struct sse_event ev = {.data = "p", .data_len = 1, .retry = SSE_RETRY_NONE};
		struct MHD_Response *r =
			MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		enum MHD_Result ok;

		ck_assert_int_eq(sse_hub_publish(f->hub, &ev, now_ms(), NULL), 0);
		ok = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, r);
		MHD_destroy_response(r);
		return ok;
	}
	return MHD_NO;
}

static void on_drop(struct sse_stream *s, int err, void *user)
{
	struct fx *f = user;

	sse_mhd_drop(f->mhd, s, err);
}

static void on_error(int err, void *user)
{
	struct fx *f = user;

	f->errors++;
	f->last_err = err;
}

static int listen_loopback(unsigned short *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int sndbuf = 32 * 1024; /* inherited by accepted sockets: backpressure soon */

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void fx_start(struct fx *f, struct sse_hub_config *hc)
{
	struct sse_mhd_config mc = {.size = sizeof(mc), .on_error = on_error, .user = f};
	int lfd = listen_loopback(&f->port);

	hc->size = sizeof(*hc);
	hc->ring.size = sizeof(hc->ring);
	if (hc->ring.max_events == 0)
		hc->ring.max_events = 64;
	if (hc->ring.max_bytes == 0)
		hc->ring.max_bytes = 8 * MIB;
	ck_assert_int_eq(sse_hub_new(&f->hub, hc, on_drop, f, NULL), 0);
	f->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
				     on_request, f, MHD_OPTION_LISTEN_SOCKET, lfd,
				     MHD_OPTION_URI_LOG_CALLBACK, sse_mhd_uri_log, NULL,
				     MHD_OPTION_NOTIFY_COMPLETED, sse_mhd_completed, NULL,
				     MHD_OPTION_END);
	ck_assert_ptr_nonnull(f->daemon);
	f->epoll_fd = MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
	mc.hub = f->hub;
	mc.daemon = f->daemon;
	ck_assert_int_eq(sse_mhd_new(&f->mhd, &mc), 0);
}

static void fx_stop(struct fx *f)
{
	sse_mhd_shutdown(f->mhd);
	MHD_stop_daemon(f->daemon);
	ck_assert_uint_eq(sse_mhd_count(f->mhd), 0);
	ck_assert_uint_eq(sse_hub_count(f->hub), 0);
	sse_mhd_free(f->mhd);
	sse_hub_free(f->hub);
}

/* One turn of the loop; sleeps until the daemon's descriptor is ready,
 * its timeout, or at most max_ms. */
static void turn(struct fx *f, int max_ms)
{
	struct pollfd p = {.fd = f->epoll_fd, .events = POLLIN};
	int timeout = -1;

	ck_assert_int_eq(sse_mhd_run(f->mhd, now_ms(), &timeout), 0);
	f->turns++;
	if (timeout < 0 || timeout > max_ms)
		timeout = max_ms;
	(void)poll(&p, 1, timeout);
}

static void publish(struct fx *f, const char *id, const char *data, size_t len)
{
	const struct sse_event ev = {.id = id, .id_len = id != NULL ? strlen(id) : 0,
				     .data = data, .data_len = len, .retry = SSE_RETRY_NONE};

	ck_assert_int_eq(sse_hub_publish(f->hub, &ev, now_ms(), NULL), 0);
}

/* ---- the client */

static void client_open(struct fx *f, struct client *c, const char *target, const char *header,
			int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(f->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n%s%s\r\n", target,
			 header != NULL ? header : "", header != NULL ? "\r\n" : "");

	*c = (struct client){.fd = socket(AF_INET, SOCK_STREAM, 0), .chunk = 64 * 1024};
	ck_assert_int_ge(c->fd, 0);
	if (rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(send(c->fd, req, (size_t)n, 0), n);
	ck_assert_int_eq(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
}

static void client_close(struct client *c, bool reset)
{
	const struct linger rst = {.l_onoff = 1, .l_linger = 0};

	if (reset)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	close(c->fd);
	free(c->buf);
}

/* Take what one recv() gives (up to c->chunk). */
static void client_recv(struct client *c)
{
	ssize_t n;

	if (c->cap - c->len < c->chunk) {
		c->cap = c->cap * 2 > c->len + c->chunk ? c->cap * 2 : c->len + c->chunk;
		c->buf = realloc(c->buf, c->cap + 1);
		ck_assert_ptr_nonnull(c->buf);
	}
	n = recv(c->fd, c->buf + c->len, c->chunk, 0);
	if (n > 0)
		c->len += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		c->eof = true;
	c->buf[c->len] = '\0';
}

/* The body: what follows the response head. */
static const char *body(const struct client *c)
{
	const char *end = c->buf != NULL ? strstr(c->buf, "\r\n\r\n") : NULL;

	return end != NULL ? end + 4 : "";
}

/* Run the loop and read until the body holds want bytes (0: until EOF). */
static void client_wait(struct fx *f, struct client *c, size_t want)
{
	uint64_t end = now_ms() + DEADLINE_MS;

	while (!c->eof && (want == 0 || strlen(body(c)) < want)) {
		ck_assert_msg(now_ms() < end, "deadline: body %zu of %zu bytes", strlen(body(c)),
			      want);
		turn(f, 5);
		client_recv(c);
	}
}

/* The opening bytes (an empty comment) after a 200 event-stream head. */
static void expect_open(struct fx *f, struct client *c)
{
	client_wait(f, c, 2);
	ck_assert_msg(strncmp(c->buf, "HTTP/1.1 200", 12) == 0, "%.40s", c->buf);
	ck_assert_ptr_nonnull(strcasestr(c->buf, "\r\ncontent-type: text/event-stream\r\n"));
	ck_assert_ptr_nonnull(strcasestr(c->buf, "\r\ncache-control: no-cache"));
	ck_assert_ptr_null(strcasestr(c->buf, "\r\ncontent-length:"));
	ck_assert_ptr_null(strcasestr(c->buf, "\r\ntransfer-encoding:"));
	ck_assert_str_eq(body(c), ":\n");
}

static struct sse_hub_config quiet(void)
{
	return (struct sse_hub_config){.ring.epoch = "", .no_heartbeat = 1};
}

/* ---- delivery */

/* Lines of 1000 letters joined by LF: each line is one "data: " line. */
static char *big_payload(size_t len)
{
	char *p = malloc(len);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++)
		p[i] = i % 1001 == 1000 ? '\n' : (char)('a' + i % 26);
	p[len - 1] = 'z'; /* no trailing LF, which would add an empty data line */
	return p;
}

static char *big_frame(const char *id, const char *p, size_t len, size_t *flen)
{
	char *f = malloc(len + len / 1000 * 6 + 64), *o = f;

	ck_assert_ptr_nonnull(f);
	o += sprintf(o, "id: %s\ndata: ", id);
	for (size_t i = 0; i < len; i++) {
		*o++ = p[i];
		if (p[i] == '\n')
			o += sprintf(o, "data: ");
	}
	o += sprintf(o, "\n\n");
	*flen = (size_t)(o - f);
	return f;
}

START_TEST(test_mhd_every_event_once_in_order)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;
	size_t big_len = 3 * MIB + 123, flen, head;
	char *big = big_payload(big_len), *frame = big_frame("2", big, big_len, &flen);
	const char *before = ":\nid: 1\ndata: one\n\n", *after = "id: 3\ndata: three\n\n";
	char *want;

	fx_start(&f, &hc);
	client_open(&f, &c, "/events", NULL, 16 * 1024);
	expect_open(&f, &c);
	publish(&f, NULL, "one", 3);
	publish(&f, NULL, big, big_len);
	publish(&f, NULL, "three", 5);
	head = strlen(before) + flen + strlen(after);
	want = malloc(head);
	ck_assert_ptr_nonnull(want);
	memcpy(want, before, strlen(before));
	memcpy(want + strlen(before), frame, flen);
	memcpy(want + strlen(before) + flen, after, strlen(after));
	/* Read slowly: a small socket buffer, 4 KiB at a time. */
	c.chunk = 4096;
	client_wait(&f, &c, head);
	ck_assert_uint_eq(strlen(body(&c)), head);
	ck_assert_msg(memcmp(body(&c), want, head) == 0, "bytes differ");
	ck_assert_int_eq(f.errors, 0);
	ck_assert_uint_eq(sse_hub_count(f.hub), 1);
	client_close(&c, false);
	fx_stop(&f);
	free(want);
	free(frame);
	free(big);
}
END_TEST

/* ---- suspend and resume */

START_TEST(test_mhd_idle_suspends_publish_resumes)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;
	uint64_t end;

	fx_start(&f, &hc);
	client_open(&f, &c, "/events", NULL, 0);
	expect_open(&f, &c);
	/* Idle for 300 ms: suspended, and the loop sleeps (a connection whose
	 * reader kept returning 0 would have it turn without end). */
	f.turns = 0;
	for (end = now_ms() + 300; now_ms() < end;)
		turn(&f, (int)(end - now_ms()));
	ck_assert_msg(f.turns <= 10, "%ld turns while idle", f.turns);
	ck_assert_uint_eq(sse_mhd_suspended(f.mhd), 1);
	publish(&f, NULL, "wake", 4);
	client_wait(&f, &c, strlen(":\nid: 1\ndata: wake\n\n"));
	ck_assert_str_eq(body(&c), ":\nid: 1\ndata: wake\n\n");
	turn(&f, 50);
	ck_assert_uint_eq(sse_mhd_suspended(f.mhd), 1); /* caught up again */
	client_close(&c, false);
	fx_stop(&f);
}
END_TEST

/* A publish made outside sse_mhd_run() (a handoff drain, a timer) wakes a
 * suspended subscriber through the next turn, without sleeping first. */
START_TEST(test_mhd_resume_outside_run_does_not_sleep)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;
	int timeout = -1;

	fx_start(&f, &hc);
	client_open(&f, &c, "/events", NULL, 0);
	expect_open(&f, &c);
	publish(&f, NULL, "x", 1);
	sse_hub_flush(f.hub); /* resumes the connection outside MHD_run() */
	ck_assert_uint_eq(sse_mhd_suspended(f.mhd), 0);
	ck_assert_int_eq(sse_mhd_run(f.mhd, now_ms(), &timeout), 0);
	client_recv(&c);
	for (int i = 0; i < 100 && strlen(body(&c)) < strlen(":\nid: 1\ndata: x\n\n"); i++) {
		usleep(1000);
		client_recv(&c);
	}
	ck_assert_str_eq(body(&c), ":\nid: 1\ndata: x\n\n"); /* sent within that one turn */
	client_close(&c, false);
	fx_stop(&f);
}
END_TEST

/* The publish of a handler is fanned out after MHD_run(), and resumes the
 * subscriber there: the same turn runs the daemon again rather than
 * leaving the loop asleep on a descriptor that will not fire. */
START_TEST(test_mhd_publish_in_handler_reaches_subscriber_at_once)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client a, b;
	uint64_t t0, end;

	fx_start(&f, &hc);
	client_open(&f, &a, "/events", NULL, 0);
	expect_open(&f, &a);
	turn(&f, 10);
	ck_assert_uint_eq(sse_mhd_suspended(f.mhd), 1);
	client_open(&f, &b, "/pub", NULL, 0);
	t0 = now_ms();
	for (end = t0 + DEADLINE_MS; strlen(body(&a)) < strlen(":\nid: 1\ndata: p\n\n");) {
		ck_assert(now_ms() < end);
		turn(&f, 1000); /* sleeps a second if the resume went unseen */
		client_recv(&a);
	}
	ck_assert_str_eq(body(&a), ":\nid: 1\ndata: p\n\n");
	ck_assert_msg(now_ms() - t0 < 500, "took %llu ms", (unsigned long long)(now_ms() - t0));
	client_close(&b, false);
	client_close(&a, false);
	fx_stop(&f);
}
END_TEST

/* ---- resume */

START_TEST(test_mhd_resume_by_last_event_id)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;
	const char *want = ":\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n";

	fx_start(&f, &hc);
	publish(&f, NULL, "a", 1);
	publish(&f, NULL, "b", 1);
	publish(&f, NULL, "c", 1);
	client_open(&f, &c, "/events?lastEventId=2", "Last-Event-ID: 1", 0); /* the header wins */
	client_wait(&f, &c, strlen(want));
	ck_assert_str_eq(body(&c), want);
	client_close(&c, false);
	fx_stop(&f);
}
END_TEST

/* libmicrohttpd would hand the handler "a 1": the raw query keeps '+'. */
START_TEST(test_mhd_resume_by_query_keeps_plus)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;
	const char *want = ":\nid: a+2\ndata: b\n\nid: a+3\ndata: c\n\n";

	hc.ring.app_ids = 1;
	fx_start(&f, &hc);
	publish(&f, "a+1", "a", 1);
	publish(&f, "a+2", "b", 1);
	publish(&f, "a+3", "c", 1);
	client_open(&f, &c, "/events?x=1&lastEventId=a+1#frag", NULL, 0);
	client_wait(&f, &c, strlen(want));
	ck_assert_str_eq(body(&c), want);
	client_close(&c, false);
	fx_stop(&f);
}
END_TEST

START_TEST(test_mhd_bad_escape_is_400)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;

	fx_start(&f, &hc);
	client_open(&f, &c, "/events?lastEventId=%zz", NULL, 0);
	client_wait(&f, &c, strlen("400 Bad Request\n"));
	ck_assert_msg(strncmp(c.buf, "HTTP/1.1 400", 12) == 0, "%.40s", c.buf);
	ck_assert_uint_eq(sse_mhd_count(f.mhd), 0);
	ck_assert_uint_eq(sse_hub_count(f.hub), 0);
	client_close(&c, false);
	fx_stop(&f);
}
END_TEST

/* ---- clients that leave */

static void wait_freed(struct fx *f)
{
	uint64_t end = now_ms() + DEADLINE_MS;

	while (sse_mhd_count(f->mhd) > 0) {
		ck_assert_msg(now_ms() < end, "the response was not freed");
		turn(f, 10);
	}
	ck_assert_uint_eq(sse_hub_count(f->hub), 0);
}

START_TEST(test_mhd_client_leaves_mid_event)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;
	size_t len = 2 * MIB;
	char *big = big_payload(len);

	fx_start(&f, &hc);
	client_open(&f, &c, "/events", NULL, 8 * 1024);
	expect_open(&f, &c);
	publish(&f, NULL, big, len);
	c.chunk = 4096;
	client_wait(&f, &c, 64 * 1024); /* some of the event, far from all */
	ck_assert_uint_eq(sse_mhd_suspended(f.mhd), 0);
	client_close(&c, true);
	wait_freed(&f);
	ck_assert_int_eq(f.errors, 0); /* a client that left is no failure to report */
	fx_stop(&f);
	free(big);
}
END_TEST

/* A suspended connection is not polled: the next bytes owed find it gone. */
START_TEST(test_mhd_client_leaves_while_idle)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;

	fx_start(&f, &hc);
	client_open(&f, &c, "/events", NULL, 0);
	expect_open(&f, &c);
	turn(&f, 10);
	ck_assert_uint_eq(sse_mhd_suspended(f.mhd), 1);
	client_close(&c, true);
	turn(&f, 10);
	publish(&f, NULL, "anyone?", 7);
	publish(&f, NULL, "hello?", 6);
	wait_freed(&f);
	fx_stop(&f);
}
END_TEST

/* ---- drops */

/* Caught up and suspended, then more events than the ring holds in one
 * turn: the hub drops it (missed events), and its response ends. */
START_TEST(test_mhd_drop_ends_suspended_response)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;

	hc.ring.max_events = 4;
	fx_start(&f, &hc);
	client_open(&f, &c, "/events", NULL, 0);
	expect_open(&f, &c);
	turn(&f, 10);
	ck_assert_uint_eq(sse_mhd_suspended(f.mhd), 1);
	for (int i = 0; i < 10; i++)
		publish(&f, NULL, "e", 1);
	client_wait(&f, &c, 0); /* until the server closes */
	ck_assert(c.eof);
	ck_assert_str_eq(body(&c), ":\n"); /* nothing of the events it missed */
	wait_freed(&f);
	ck_assert_int_eq(f.errors, 1);
	ck_assert_int_eq(f.last_err, SSE_ERR_GAP);
	client_close(&c, false);
	fx_stop(&f);
}
END_TEST

/* A client that stops reading with bytes owed: its socket is full, its
 * reader is not asked, so it stalls; the drop closes the connection. */
START_TEST(test_mhd_drop_ends_stalled_response)
{
	struct fx f = {0};
	struct sse_hub_config hc = quiet();
	struct client c;
	size_t len = 2 * MIB;
	char *big = big_payload(len);

	hc.stall_ms = 200;
	fx_start(&f, &hc);
	client_open(&f, &c, "/events", NULL, 8 * 1024);
	expect_open(&f, &c);
	publish(&f, NULL, big, len);
	for (int i = 0; i < 20; i++)
		turn(&f, 10);
	ck_assert_uint_eq(sse_mhd_suspended(f.mhd), 0); /* owes bytes, socket full */
	ck_assert_int_eq(f.errors, 0);
	wait_freed(&f); /* without reading */
	ck_assert_int_eq(f.errors, 1);
	ck_assert_int_eq(f.last_err, SSE_ERR_STALLED);
	client_close(&c, false);
	fx_stop(&f);
	free(big);
}
END_TEST

/* ---- heartbeats */

START_TEST(test_mhd_heartbeat_on_idle)
{
	struct fx f = {0};
	struct sse_hub_config hc = {.ring.epoch = "", .heartbeat_ms = 100};
	struct client c;
	uint64_t t0;

	fx_start(&f, &hc);
	client_open(&f, &c, "/events", NULL, 0);
	expect_open(&f, &c);
	t0 = now_ms();
	client_wait(&f, &c, strlen(":\n:\n:\n")); /* two heartbeats */
	ck_assert_str_eq(body(&c), ":\n:\n:\n");
	ck_assert_uint_ge(now_ms() - t0, 150); /* not before they were due */
	ck_assert_int_eq(f.errors, 0);
	client_close(&c, false);
	fx_stop(&f);
}
END_TEST

/* ---- setup */

static enum MHD_Result refuse(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *data_len, void **req_cls)
{
	(void)cls, (void)conn, (void)url, (void)method, (void)version, (void)data;
	(void)data_len, (void)req_cls;
	return MHD_NO;
}

/* A daemon with its own thread would run readers beside the hub's thread. */
START_TEST(test_mhd_refuses_threaded_daemon)
{
	struct sse_hub_config hc = quiet();
	struct sse_hub *hub;
	struct sse_mhd *m = NULL;
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
							MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET,
						0, NULL, NULL, refuse, NULL, MHD_OPTION_END);
	struct MHD_Daemon *no_suspend = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, refuse, NULL,
		MHD_OPTION_END);
	struct sse_mhd_config mc = {.size = sizeof(mc), .daemon = d};

	hc.size = sizeof(hc);
	hc.ring = (struct sse_replay_config){.size = sizeof(hc.ring), .max_events = 4,
					     .max_bytes = 4096, .epoch = ""};
	ck_assert_int_eq(sse_hub_new(&hub, &hc, on_drop, NULL, NULL), 0);
	mc.hub = hub;
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(no_suspend);
	ck_assert_int_eq(sse_mhd_new(&m, &mc), SSE_ERR_INVALID);
	mc.daemon = no_suspend;
	ck_assert_int_eq(sse_mhd_new(&m, &mc), SSE_ERR_INVALID);
	mc.http.cors_origin = "";
	ck_assert_int_eq(sse_mhd_new(&m, &mc), SSE_ERR_INVALID);
	ck_assert_ptr_null(m);
	MHD_stop_daemon(d);
	MHD_stop_daemon(no_suspend);
	sse_hub_free(hub);
}
END_TEST

static Suite *mhd_suite(void)
{
	Suite *s = suite_create("adapt-mhd");
	TCase *tc = tcase_create("delivery");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mhd_every_event_once_in_order);
	tcase_add_test(tc, test_mhd_heartbeat_on_idle);
	suite_add_tcase(s, tc);
	tc = tcase_create("suspend");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mhd_idle_suspends_publish_resumes);
	tcase_add_test(tc, test_mhd_resume_outside_run_does_not_sleep);
	tcase_add_test(tc, test_mhd_publish_in_handler_reaches_subscriber_at_once);
	suite_add_tcase(s, tc);
	tc = tcase_create("resume");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mhd_resume_by_last_event_id);
	tcase_add_test(tc, test_mhd_resume_by_query_keeps_plus);
	tcase_add_test(tc, test_mhd_bad_escape_is_400);
	suite_add_tcase(s, tc);
	tc = tcase_create("end");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mhd_client_leaves_mid_event);
	tcase_add_test(tc, test_mhd_client_leaves_while_idle);
	tcase_add_test(tc, test_mhd_drop_ends_suspended_response);
	tcase_add_test(tc, test_mhd_drop_ends_stalled_response);
	tcase_add_test(tc, test_mhd_refuses_threaded_daemon);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(mhd_suite());
}
