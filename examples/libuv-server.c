/*
 * sse-libuv: libsse's hub served from a libuv loop.
 *
 *     sse-libuv --port P [--bind ADDR] [--token T] [--replay-events N]
 *               [--replay-bytes B] [--heartbeat MS] [--retry MS]
 *               [--stall MS] [--plain-ids]
 *
 * The same endpoints and options as sse-relay (server.h): GET /events
 * subscribes (Last-Event-ID header or lastEventId query resumes), POST
 * /publish[?event=NAME] publishes its body and answers 202 with the id.
 *
 * How libuv meets the stream contract: libsse-libuv (sse/libuv.h) does
 * it. A driver runs the hub on the loop (a flush at the end of each loop
 * phase that may have published, sse_hub_tick() from a timer at the
 * hub's next deadline), and each subscriber is an sse_uv_conn: its
 * stream's writev is one uv_write pointing at libsse's bytes, completed
 * from the write callback, with backpressure on libuv's write queue. A
 * subscriber that the hub drops (sse_uv_drop), or whose peer vanished,
 * is closed by the adapter, which hands its handle back (on_sub_closed)
 * once libuv is done with every buffer. This file parses HTTP and
 * answers the other requests. SIGINT/SIGTERM close the driver and every
 * other handle (uv_walk); the loop ends when the last close callback has
 * run, and uv_loop_close() then succeeds.
 *
 * Copies: none of event bytes per subscriber (frames are encoded once
 * into the ring by sse_hub_publish(), and uv_write points into it); the
 * response head and heartbeats are written once into the stream's queue
 * by libsse; a request body is read into a buffer of its own (the bytes
 * that came with the head are copied there); generic answers are
 * formatted into a small buffer.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memmem, strncasecmp */

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include <sse/libuv.h>

#include "server.h"

#define NAME "sse-libuv"
#define HEAD_MAX ((size_t)8 * 1024)       /* a request head; past it: 431 */
#define HEAD_FIELDS 64                    /* its header fields; past them: 431 */
#define REQUEST_TIMEOUT_MS 10000u         /* from accept to a complete request */
#define LINGER_MS 1000u                   /* for a client to read our answer and close */

enum conn_state {
	READING_HEAD,
	READING_BODY,
	LINGERING, /* answered, write side shut down: reading until the client closes */
	STREAMING, /* a subscriber: its socket is the adapter's until on_sub_closed() */
};

struct server {
	uv_loop_t loop; /* loop.data: this struct; every handle's data: NULL */
	uv_tcp_t listener;
	uv_signal_t sigint, sigterm;
	struct server_options opt;
	struct sse_hub *hub;
	struct sse_uv_hub *driver; /* flushes and ticks the hub */
};

struct conn {
	uv_tcp_t tcp;     /* tcp.data and timer.data: this struct */
	uv_timer_t timer; /* the request timeout, then the linger */
	uv_shutdown_t shutdown;
	uv_write_t continue_req;
	struct server *srv;
	enum conn_state state;
	int handles; /* open: the struct is freed when both have closed */
	bool closing;
	char *head; /* HEAD_MAX bytes until the request is answered */
	size_t head_len;
	char *body;
	size_t body_len, body_want;
	const char *event_type; /* ?event=, decoded in place in head */
	size_t event_type_len;
	struct sse_uv_conn *sub; /* a subscriber's stream on tcp */
};

/* A generic answer, copied into its own buffer. */
struct reply {
	uv_write_t req;
	char buf[512];
};

/* Input nobody needs (subscribers, lingering clients) is read into this:
 * one loop, one thread, and libuv reads right after it asks for a buffer. */
static char scratch[64 * 1024];

static void conn_close(struct conn *c);

/* ---- connections */

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles > 0)
		return;
	free(c->head);
	free(c->body);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->sub != NULL)
		sse_uv_conn_close(c->sub, 0); /* on_sub_closed() follows */
	else
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, on_closed);
}

/* The adapter is done with the socket: the hub dropped the subscriber
 * (err: SSE_ERR_GAP, it missed events; SSE_ERR_STALLED, its peer took
 * nothing for the stall time), its peer left, or we closed it. Its
 * client resumes with Last-Event-ID. */
static void on_sub_closed(uv_stream_t *tcp, int err, void *data)
{
	struct conn *c = data;

	if (err == SSE_ERR_GAP || err == SSE_ERR_STALLED)
		fprintf(stderr, NAME ": dropped a slow subscriber: %s\n", sse_strerror(err));
	c->closing = true;
	on_closed((uv_handle_t *)tcp);
}

static void on_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

/* ---- answers */

static void on_reply_written(uv_write_t *req, int status)
{
	(void)status;
	free(req); /* the first member of its struct reply */
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)req, (void)status; /* lingering: the client's EOF or the timer closes */
}

/* A complete answer, then the write side shut down; the client's input
 * is read and dropped until it closes, so that closing with unread input
 * does not reset the connection before it has read the answer. */
static void reply(struct conn *c, int status, const char *extra_headers, const char *body,
		  size_t len)
{
	struct reply *r = malloc(sizeof(*r));
	int n = r == NULL ? -1
			  : snprintf(r->buf, sizeof(r->buf),
				     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
				     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%.*s",
				     status, server_reason(status), len,
				     extra_headers != NULL ? extra_headers : "", (int)len, body);
	uv_buf_t buf;

	if (n < 0 || (size_t)n >= sizeof(r->buf)) {
		free(r);
		conn_close(c);
		return;
	}
	buf = uv_buf_init(r->buf, (unsigned)n);
	c->state = LINGERING;
	uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
	if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &buf, 1, on_reply_written) != 0) {
		free(r);
		conn_close(c);
		return;
	}
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
		conn_close(c);
}

/* An error's body is its status line, for people reading curl's output. */
static void reply_status(struct conn *c, int status, const char *extra_headers)
{
	char text[64];
	int n = snprintf(text, sizeof(text), "%d %s\n", status, server_reason(status));

	reply(c, status, extra_headers, text, n > 0 ? (size_t)n : 0);
}

/* ---- GET /events */

/* The socket goes to the adapter, which writes the head, the opening
 * bytes, the reset event if the client's id is lost, and the events
 * after it. */
static int subscribe(struct conn *c, const char *id, size_t id_len)
{
	int rc = 0;

	if (c->srv->opt.retry_ms != SSE_RETRY_NONE)
		rc = sse_stream_set_retry(sse_uv_conn_stream(c->sub), c->srv->opt.retry_ms);
	if (rc == 0)
		rc = sse_uv_conn_subscribe(c->sub, NULL, id, id_len, NULL);
	return rc;
}

static void serve_events(struct conn *c, const struct sse_http_request *req)
{
	char id[HEAD_MAX]; /* never longer than the head it came in */
	size_t id_len = 0;
	int rc = sse_http_last_event_id(req, id, sizeof(id), &id_len);

	if (rc < 0) {
		reply_status(c, 400, NULL); /* a malformed %-escape */
		return;
	}
	if (rc == 0)
		id_len = 0; /* a first connection: live events only */
	if (sse_uv_conn_new(&c->sub, c->srv->driver, (uv_stream_t *)&c->tcp, on_sub_closed, c) < 0) {
		reply_status(c, 503, NULL);
		return;
	}
	c->state = STREAMING;
	uv_close((uv_handle_t *)&c->timer, on_closed); /* no timeout while streaming */
	free(c->head);
	c->head = NULL;
	rc = subscribe(c, id, id_len);
	if (rc < 0) {
		fprintf(stderr, NAME ": cannot subscribe: %s\n", sse_strerror(rc));
		conn_close(c); /* bytes may have gone out: no other answer fits */
	}
}

/* ---- POST /publish */

/* The whole body is here: publish it; the driver flushes the hub. */
static void publish(struct conn *c)
{
	struct server *srv = c->srv;
	const struct sse_event ev = {.type = c->event_type, .type_len = c->event_type_len,
				     .data = c->body, .data_len = c->body_len,
				     .retry = SSE_RETRY_NONE};
	char text[128];
	const char *id;
	size_t id_len = 0;
	int rc = sse_uv_hub_publish(srv->driver, &ev, NULL); /* written at the turn's end */

	if (rc < 0) {
		reply_status(c, server_publish_status(rc), NULL);
		return;
	}
	id = sse_replay_newest_id(sse_hub_ring(srv->hub), &id_len);
	if (id_len >= sizeof(text))
		id_len = sizeof(text) - 1; /* not reached: an epoch and 20 digits fit */
	memcpy(text, id, id_len);
	text[id_len] = '\n';
	reply(c, 202, NULL, text, id_len + 1);
}

static bool name_is(const struct sse_http_header *h, const char *name)
{
	return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static bool value_is(const struct sse_http_header *h, const char *value)
{
	return h != NULL && h->value_len == strlen(value) &&
	       strncasecmp(h->value, value, h->value_len) == 0;
}

/* Content-Length, digits only and only one: 0, or the status to answer. */
static int content_length(const struct sse_http_request *req, size_t *len)
{
	const struct sse_http_header *found = NULL;
	size_t v = 0;

	for (size_t i = 0; i < req->header_count; i++) {
		if (!name_is(&req->headers[i], "Content-Length"))
			continue;
		if (found != NULL)
			return 400; /* two: a proxy may have used the other one */
		found = &req->headers[i];
	}
	if (found == NULL || sse_http_find_header(req, "Transfer-Encoding") != NULL)
		return 411; /* bodies are framed by Content-Length only */
	if (found->value_len == 0)
		return 400;
	for (size_t i = 0; i < found->value_len; i++) {
		if (found->value[i] < '0' || found->value[i] > '9')
			return 400;
		if (v <= SERVER_BODY_MAX) /* capped while reading: no overflow */
			v = v * 10 + (size_t)(found->value[i] - '0');
	}
	if (v > SERVER_BODY_MAX)
		return 413;
	*len = v;
	return 0;
}

static bool bearer_ok(const struct sse_http_request *req, const char *token)
{
	const struct sse_http_header *h = sse_http_find_header(req, "Authorization");
	size_t n = strlen(token);

	return h != NULL && h->value_len == 7 + n && strncasecmp(h->value, "Bearer ", 7) == 0 &&
	       memcmp(h->value + 7, token, n) == 0;
}

/* ?event=NAME, decoded in place over the query in our head buffer. */
static bool take_event_type(struct conn *c, const char *query, size_t query_len)
{
	char *value = c->head + (query - c->head);
	size_t len = 0;
	int rc = sse_http_query_param(query, query_len, "event", 5, value, query_len, &len);

	if (rc == 0)
		return true;
	if (rc < 0 || memchr(value, '\r', len) != NULL || memchr(value, '\n', len) != NULL)
		return false;
	c->event_type = len > 0 ? value : NULL;
	c->event_type_len = len;
	return true;
}

static void body_read(struct conn *c, size_t n)
{
	c->body_len += n;
	if (c->body_len == c->body_want)
		publish(c);
}

/* Bytes after the head came with it: they start the body. */
static void body_begin(struct conn *c, const struct sse_http_request *req, size_t len)
{
	static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
	size_t have = c->head_len - req->head_len;
	uv_buf_t buf = uv_buf_init((char *)go_on, sizeof(go_on) - 1);

	c->body = malloc(len > 0 ? len : 1);
	if (c->body == NULL) {
		reply_status(c, 503, NULL);
		return;
	}
	c->body_want = len;
	c->state = READING_BODY;
	if (have > len)
		have = len; /* a pipelined request: dropped, every answer closes */
	memcpy(c->body, c->head + req->head_len, have);
	if (have < len && value_is(sse_http_find_header(req, "Expect"), "100-continue") &&
	    uv_write(&c->continue_req, (uv_stream_t *)&c->tcp, &buf, 1, NULL) != 0) {
		conn_close(c);
		return;
	}
	body_read(c, have);
}

static void serve_publish(struct conn *c, const struct sse_http_request *req, const char *query,
			  size_t query_len)
{
	const char *token = c->srv->opt.token;
	size_t len = 0;
	int status;

	if (token != NULL && !bearer_ok(req, token)) {
		reply_status(c, 401, "WWW-Authenticate: Bearer\r\n");
		return;
	}
	status = content_length(req, &len);
	if (status == 0 && !take_event_type(c, query, query_len))
		status = 400;
	if (status != 0)
		reply_status(c, status, NULL);
	else
		body_begin(c, req, len);
}

/* ---- requests */

static bool span_is(const char *s, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

static void route(struct conn *c, const struct sse_http_request *req)
{
	const char *t = req->target, *hash = memchr(t, '#', req->target_len), *q;
	size_t len = hash != NULL ? (size_t)(hash - t) : req->target_len, path_len;
	bool get = span_is(req->method, req->method_len, "GET");
	bool post = span_is(req->method, req->method_len, "POST");

	q = memchr(t, '?', len);
	path_len = q != NULL ? (size_t)(q - t) : len;
	if (span_is(t, path_len, "/events") && get)
		serve_events(c, req);
	else if (span_is(t, path_len, "/events"))
		reply_status(c, 405, "Allow: GET\r\n");
	else if (span_is(t, path_len, "/publish") && post)
		serve_publish(c, req, q != NULL ? q + 1 : t + len, q != NULL ? len - path_len - 1 : 0);
	else if (span_is(t, path_len, "/publish"))
		reply_status(c, 405, "Allow: POST\r\n");
	else
		reply_status(c, 404, NULL);
}

/* n more bytes of the head. Parsed at the first bytes (what is not HTTP
 * is refused at once) and whenever a blank line may have come, so a head
 * sent a byte at a time is not parsed again at every byte. */
static void head_read(struct conn *c, size_t n)
{
	struct sse_http_header fields[HEAD_FIELDS];
	struct sse_http_request req = {.headers = fields, .header_cap = HEAD_FIELDS};
	size_t from = c->head_len > 2 ? c->head_len - 2 : 0;
	int rc;

	c->head_len += n;
	if (from > 0 && c->head_len < HEAD_MAX &&
	    memmem(c->head + from, c->head_len - from, "\n\n", 2) == NULL &&
	    memmem(c->head + from, c->head_len - from, "\n\r\n", 3) == NULL)
		return;
	rc = sse_http_parse_request(c->head, c->head_len, &req);
	if (rc == SSE_ERR_INCOMPLETE && c->head_len < HEAD_MAX)
		return;
	if (rc == SSE_ERR_INCOMPLETE || rc == SSE_ERR_TOO_LARGE)
		reply_status(c, 431, NULL);
	else if (rc != 0)
		reply_status(c, 400, NULL);
	else
		route(c, &req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	if (c->state == READING_HEAD)
		*buf = uv_buf_init(c->head + c->head_len, (unsigned)(HEAD_MAX - c->head_len));
	else if (c->state == READING_BODY)
		*buf = uv_buf_init(c->body + c->body_len, (unsigned)(c->body_want - c->body_len));
	else
		*buf = uv_buf_init(scratch, sizeof(scratch));
}

/* End of input or an error closes: a subscriber that left (vanished
 * peers show up here), a request cut short, or a client done reading
 * our answer. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (nread < 0)
		conn_close(c);
	else if (c->state == READING_HEAD)
		head_read(c, (size_t)nread);
	else if (c->state == READING_BODY)
		body_read(c, (size_t)nread);
	/* LINGERING: input nobody needs (a subscriber's is the adapter's) */
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return; /* out of memory: libuv pauses accepting until we accept */
	c->srv = listener->loop->data;
	c->head = malloc(HEAD_MAX);
	uv_tcp_init(listener->loop, &c->tcp);
	uv_timer_init(listener->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || c->head == NULL) {
		conn_close(c);
		return;
	}
	/* Frames are written whole: Nagle would only hold one back. */
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, on_timeout, REQUEST_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		conn_close(c);
}

/* ---- the server */

/* Close every handle: connections through conn_close(), which frees them
 * once libuv is done with them; the loop then runs out of work. */
static void close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (uv_is_closing(h))
		return;
	if (h->data != NULL)
		conn_close(h->data);
	else
		uv_close(h, NULL);
}

/* The driver first: it closes its subscribers and its own handles,
 * which uv_walk() then finds closing already. */
static void close_all(struct server *srv)
{
	sse_uv_hub_close(srv->driver);
	uv_walk(&srv->loop, close_handle, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	(void)signum;
	close_all(sig->loop->data);
}

static int setup(struct server *srv, int fd)
{
	uv_loop_t *loop = &srv->loop;
	int rc = server_hub_new(&srv->opt, sse_uv_drop, NULL, &srv->hub);

	if (rc == 0)
		rc = sse_uv_hub_new(&srv->driver, loop, srv->hub, NULL);
	if (rc < 0) {
		fprintf(stderr, NAME ": setup: %s\n", sse_strerror(rc));
		return -1;
	}
	rc = uv_tcp_init(loop, &srv->listener);
	if (rc == 0)
		rc = uv_tcp_open(&srv->listener, fd);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv->listener, SOMAXCONN, on_connection);
	if (rc == 0)
		rc = uv_signal_init(loop, &srv->sigint);
	if (rc == 0)
		rc = uv_signal_start(&srv->sigint, on_signal, SIGINT);
	if (rc == 0)
		rc = uv_signal_init(loop, &srv->sigterm);
	if (rc == 0)
		rc = uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	if (rc < 0)
		fprintf(stderr, NAME ": setup: %s\n", uv_strerror(rc));
	return rc;
}

int main(int argc, char **argv)
{
	static struct server srv;
	int fd, rc = server_options(argc, argv, &srv.opt);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	/* libuv writes to sockets with write(2): a peer that reset must
	 * give EPIPE to the write callback, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	fd = server_listen(NAME, &srv.opt);
	if (fd < 0 || uv_loop_init(&srv.loop) != 0)
		return 1;
	srv.loop.data = &srv;
	rc = setup(&srv, fd);
	if (rc == 0)
		rc = server_announce(NAME, fd);
	if (rc != 0)
		close_all(&srv);
	uv_run(&srv.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&srv.loop) != 0) {
		fprintf(stderr, NAME ": the loop still has handles at exit\n");
		rc = -1;
	}
	sse_hub_free(srv.hub); /* after the streams: the adapter freed them */
	if (rc == 0)
		fprintf(stderr, NAME ": stopped\n");
	return rc == 0 ? 0 : 1;
}
