/*
 * sse-libevent: sse-relay's GET /events and POST /publish on libevent's
 * evhttp, with sse-relay's command line (server.h).
 *
 *     sse-libevent --port 8080 &
 *     curl -N http://127.0.0.1:8080/events &
 *     curl -d 'hello' 'http://127.0.0.1:8080/publish?event=greeting'
 *
 * evhttp parses the requests and answers them. An event stream is its
 * documented streaming reply: evhttp_send_reply_start(), then one
 * evhttp_send_reply_chunk_with_cb() per write of the stream (HTTP/1.1
 * chunked encoding). Nothing of an event is copied on its way out: the
 * stream is asynchronous (SSE_TRANSPORT_ASYNC), its writev puts each piece
 * into an evbuffer with evbuffer_add_reference(), and evhttp moves those
 * chains into the connection's output buffer (evbuffer_add_buffer() moves
 * chains, it does not copy them). libevent frees a chain once its bytes
 * went to the socket, or when the buffer is freed, from the first chain
 * on, so the cleanup callbacks come in the order the bytes were taken:
 * each reports its bytes done with sse_stream_complete(). Only the chunk
 * framing ("<hex>\r\n" and "\r\n") is copied.
 *
 * Backpressure: a write takes nothing while the connection's output
 * buffer holds OUTPUT_MAX bytes or more (SSE_ERR_WOULDBLOCK); the callback
 * of evhttp_send_reply_chunk_with_cb(), which evhttp runs when that buffer
 * has drained, calls sse_hub_writable(). A write takes whole pieces only
 * (a piece may be a run of frames: referenced, so held, not copied), so
 * every chunk ends at a frame boundary: what passes chunks on one by one
 * passes whole events.
 *
 * One loop turn: every callback first tells the hub the time
 * (sse_hub_tick(), so that what streams stamp is fresh) and activates the
 * turn event, which libevent runs after the callbacks already active in
 * this turn: it flushes the hub once for all of the turn's publishes and
 * re-arms the timer for the hub's next deadline (heartbeats, stalls).
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

#define NAME "sse-libevent"
#define HEAD_MAX 8192                /* request line and header fields */
#define OUTPUT_MAX ((size_t)64 << 10) /* queued in the output buffer before writes wait */
#define REQUEST_TIMEOUT_S 10         /* a request's connection idle this long is closed */

struct app {
	struct server_options opt;
	struct event_base *base;
	struct evhttp *http;
	struct sse_hub *hub;
	struct event *timer;     /* the hub's next deadline */
	struct event *turn;      /* the hub's flush and the timer, once a turn */
	struct event *sigint, *sigterm;
	struct evbuffer *pieces; /* one write's references, on their way into a chunk */
};

/* A subscriber. It lives until its connection is gone (evcon NULL) and
 * libevent let go of every byte its stream handed out (the stream's
 * memory and the ring's pins go only then). */
struct sub {
	struct app *app;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct sse_stream *s;
	bool blocked;  /* a write was refused: sse_hub_writable() once drained */
	unsigned busy; /* a callback uses it after calling into the hub */
};

/* ---- the loop turn */

/* Tell the hub the time; the turn event runs after this turn's callbacks. */
static uint64_t hub_time(struct app *a)
{
	uint64_t now = server_now_ms();

	sse_hub_tick(a->hub, now, NULL);
	event_active(a->turn, EV_TIMEOUT, 0);
	return now;
}

static void arm_timer(struct app *a)
{
	uint64_t now = server_now_ms(), next = SSE_NO_DEADLINE, ms;
	struct timeval tv;

	sse_hub_tick(a->hub, now, &next);
	if (next == SSE_NO_DEADLINE) {
		evtimer_del(a->timer);
		return;
	}
	ms = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(a->timer, &tv);
}

/* The turn event, and the timer (a flush with nothing published is O(1)). */
static void on_turn(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;

	(void)fd, (void)what;
	sse_hub_flush(a->hub); /* drops go to on_drop() */
	arm_timer(a);
}

/* ---- a subscriber's transport */

static void sub_release(struct sub *sub)
{
	if (sub->evcon != NULL || sub->busy > 0 || sse_stream_inflight(sub->s) > 0)
		return;
	sse_stream_free(sub->s);
	free(sub);
}

/* libevent is done with a referenced piece: sent, or its buffer freed. */
static void on_piece_done(const void *data, size_t len, void *arg)
{
	struct sub *sub = arg;

	(void)data;
	sse_stream_complete(sub->s, len);
	sub_release(sub);
}

/* evhttp's output buffer for this connection has drained. */
static void on_drained(struct evhttp_connection *evcon, void *arg)
{
	struct sub *sub = arg;

	(void)evcon;
	if (!sub->blocked && sse_stream_pending(sub->s) == 0)
		return;
	sub->busy++;
	hub_time(sub->app); /* may drop it; busy keeps it */
	if (sub->evcon != NULL) {
		sub->blocked = false;
		sse_hub_writable(sub->app->hub, sub->s);
	}
	sub->busy--;
	sub_release(sub);
}

static int on_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct sub *sub = ctx;
	struct evbuffer *pieces = sub->app->pieces;
	size_t held, total = 0;

	if (sub->evcon == NULL)
		return SSE_ERR_IO;
	held = evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(sub->evcon)));
	if (held >= OUTPUT_MAX) {
		sub->blocked = true;
		return SSE_ERR_WOULDBLOCK;
	}
	for (size_t i = 0; i < n && held + total < OUTPUT_MAX; i++) {
		if (evbuffer_add_reference(pieces, iov[i].base, iov[i].len, on_piece_done, sub) < 0)
			break;
		total += iov[i].len;
	}
	if (total == 0)
		return SSE_ERR_NOMEM;
	evhttp_send_reply_chunk_with_cb(sub->req, pieces, on_drained, sub); /* moves the chains */
	*taken = total;
	return 0;
}

static int on_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	const struct sse_iovec one = {buf, len};

	return on_writev(&one, 1, taken, ctx);
}

/* ---- closing */

/* evhttp closes the connection: the peer left, or we freed it. */
static void on_closed(struct evhttp_connection *evcon, void *arg)
{
	struct sub *sub = arg;

	(void)evcon;
	sse_hub_unsubscribe(sub->app->hub, sub->s);
	/* After a read error evhttp leaves a started reply to us to free. */
	if (evhttp_request_get_connection(sub->req) == NULL)
		evhttp_send_reply_end(sub->req);
	sub->req = NULL;
	sub->evcon = NULL;
	sub_release(sub);
}

static void sub_close(struct sub *sub)
{
	if (sub->evcon != NULL)
		evhttp_connection_free(sub->evcon); /* calls on_closed() */
}

static void on_drop(struct sse_stream *s, int err, void *user)
{
	(void)user;
	if (err == SSE_ERR_GAP || err == SSE_ERR_STALLED)
		fprintf(stderr, NAME ": dropped a slow subscriber: %s\n", sse_strerror(err));
	sub_close(sse_stream_user(s));
}

/* ---- answers */

static void reply(struct evhttp_request *req, int status, const char *text, size_t len)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	evbuffer_add(evhttp_request_get_output_buffer(req), text, len);
	evhttp_send_reply(req, status, NULL, NULL);
}

static void reply_status(struct evhttp_request *req, int status, const char *allow)
{
	char text[8];
	int n = snprintf(text, sizeof(text), "%d\n", status);

	if (allow != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	reply(req, status, text, (size_t)n);
}

/* ---- GET /events */

static struct sub *sub_new(struct app *a, struct evhttp_request *req)
{
	struct sub *sub = calloc(1, sizeof(*sub));
	const struct sse_transport t = {.size = sizeof(t), .write = on_write, .writev = on_writev,
					.ctx = sub, .flags = SSE_TRANSPORT_ASYNC};

	if (sub == NULL)
		return NULL;
	if (sse_stream_new(&sub->s, &t, sub, NULL) < 0 ||
	    (a->opt.retry_ms != SSE_RETRY_NONE && sse_stream_set_retry(sub->s, a->opt.retry_ms) < 0)) {
		sse_stream_free(sub->s);
		free(sub);
		return NULL;
	}
	sub->app = a;
	sub->req = req;
	sub->evcon = evhttp_request_get_connection(req);
	return sub;
}

/* The head of sse_http_response_head(), as evhttp's fields: evhttp writes
 * the head itself and adds Transfer-Encoding: chunked. */
static void start_reply(struct sub *sub)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(sub->req);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(sub->evcon);
	int on = 1;

	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-cache, no-transform");
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	/* The stream ends with its connection: to an HTTP/1.0 keep-alive
	 * request evhttp would answer "Content-Length: 0". */
	evhttp_remove_header(evhttp_request_get_input_headers(sub->req), "Connection");
	evhttp_send_reply_start(sub->req, 200, NULL);
	evhttp_connection_set_closecb(sub->evcon, on_closed, sub);
	/* A stream is idle for as long as it likes (heartbeats and the hub's
	 * stall time see to it); its input is only watched for the close. */
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, HEAD_MAX);
	/* Frames go whole: Nagle would only hold one back for an ACK. */
	(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static void serve_events(struct app *a, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	char id[HEAD_MAX]; /* never longer than the request head it came in */
	size_t id_len = 0;
	struct sub *sub;
	int rc = sse_http_resume_id(h, h ? strlen(h) : 0, q, q ? strlen(q) : 0, id, sizeof(id),
				    &id_len);

	if (rc < 0) {
		reply_status(req, 400, NULL); /* a malformed %-escape */
		return;
	}
	if (rc == 0)
		id_len = 0; /* a first connection: live events only */
	sub = sub_new(a, req);
	if (sub == NULL) {
		reply_status(req, 503, NULL);
		return;
	}
	start_reply(sub);
	rc = sse_hub_subscribe(a->hub, sub->s, id, id_len, NULL);
	if (rc < 0) {
		fprintf(stderr, NAME ": cannot subscribe: %s\n", sse_strerror(rc));
		sub_close(sub); /* bytes may have gone out: no other answer fits */
	}
}

/* ---- POST /publish */

static bool bearer_ok(const char *value, const char *token)
{
	size_t len = strlen(token);
	unsigned char diff = 0;

	if (value == NULL || strncasecmp(value, "Bearer ", 7) != 0)
		return false;
	for (value += 7; *value == ' '; value++)
		;
	if (strlen(value) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(value[i] ^ token[i]); /* in constant time */
	return diff == 0;
}

/* evhttp has read the whole body (at most SERVER_BODY_MAX, else it
 * answered 413 itself). */
static void serve_publish(struct app *a, struct evhttp_request *req, uint64_t now)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	char type[HEAD_MAX];
	struct sse_event ev = {.data = "", .data_len = evbuffer_get_length(body),
			       .retry = SSE_RETRY_NONE};
	const char *id;
	size_t id_len = 0;
	int rc;

	if (a->opt.token != NULL &&
	    !bearer_ok(evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"),
		       a->opt.token)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
		reply_status(req, 401, NULL);
		return;
	}
	rc = q ? sse_http_query_param(q, strlen(q), "event", 5, type, sizeof(type), &ev.type_len) : 0;
	if (rc < 0 || memchr(type, '\r', ev.type_len) || memchr(type, '\n', ev.type_len)) {
		reply_status(req, 400, NULL);
		return;
	}
	ev.type = ev.type_len > 0 ? type : NULL;
	if (ev.data_len > 0 && (ev.data = (const char *)evbuffer_pullup(body, -1)) == NULL) {
		reply_status(req, 503, NULL);
		return;
	}
	rc = sse_hub_publish(a->hub, &ev, now, NULL); /* the turn event flushes */
	if (rc < 0) {
		reply_status(req, server_publish_status(rc), NULL);
		return;
	}
	id = sse_replay_newest_id(sse_hub_ring(a->hub), &id_len);
	evbuffer_add(evhttp_request_get_output_buffer(req), id, id_len);
	reply(req, 202, "\n", 1);
}

/* ---- routing */

static void on_request(struct evhttp_request *req, void *arg)
{
	struct app *a = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	uint64_t now = hub_time(a);

	if (path != NULL && strcmp(path, "/events") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			serve_events(a, req);
		else
			reply_status(req, 405, "GET");
	} else if (path != NULL && strcmp(path, "/publish") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			serve_publish(a, req, now);
		else
			reply_status(req, 405, "POST");
	} else {
		reply_status(req, 404, NULL);
	}
}

/* ---- setting up and tearing down */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	event_base_loopbreak(((struct app *)arg)->base);
}

static int app_init(struct app *a, int fd)
{
	int rc;

	a->base = event_base_new();
	a->http = a->base ? evhttp_new(a->base) : NULL;
	if (a->http == NULL || evhttp_accept_socket_with_handle(a->http, fd) == NULL) {
		close(fd);
		return -1;
	}
	evhttp_set_gencb(a->http, on_request, a);
	/* All nine methods evhttp knows (GET .. PATCH), so that ours answer 405. */
	evhttp_set_allowed_methods(a->http, 0x1ff);
	evhttp_set_max_headers_size(a->http, HEAD_MAX);
	evhttp_set_max_body_size(a->http, (ev_ssize_t)SERVER_BODY_MAX);
	evhttp_set_timeout(a->http, REQUEST_TIMEOUT_S);
	a->timer = evtimer_new(a->base, on_turn, a);
	a->turn = event_new(a->base, -1, 0, on_turn, a);
	a->sigint = evsignal_new(a->base, SIGINT, on_signal, a);
	a->sigterm = evsignal_new(a->base, SIGTERM, on_signal, a);
	a->pieces = evbuffer_new();
	if (!a->timer || !a->turn || !a->sigint || !a->sigterm || !a->pieces ||
	    evsignal_add(a->sigint, NULL) < 0 || evsignal_add(a->sigterm, NULL) < 0)
		return -1;
	rc = server_hub_new(&a->opt, on_drop, a, &a->hub);
	if (rc < 0)
		fprintf(stderr, NAME ": %s\n", sse_strerror(rc));
	return rc < 0 ? -1 : 0;
}

/* evhttp_free() closes the listener and every connection (on_closed()
 * for subscribers); event_base_free() then runs the bufferevents'
 * finalizers, which free their buffers: the last completions free the
 * streams, before the hub and its ring go. */
static void app_free(struct app *a)
{
	if (a->http != NULL)
		evhttp_free(a->http);
	if (a->timer != NULL)
		event_free(a->timer);
	if (a->turn != NULL)
		event_free(a->turn);
	if (a->sigint != NULL)
		event_free(a->sigint);
	if (a->sigterm != NULL)
		event_free(a->sigterm);
	if (a->base != NULL)
		event_base_free(a->base);
	if (a->pieces != NULL)
		evbuffer_free(a->pieces);
	sse_hub_free(a->hub);
	libevent_global_shutdown();
}

int main(int argc, char **argv)
{
	struct app a = {.base = NULL};
	int fd, rc = server_options(argc, argv, &a.opt);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error, not a signal */
	fd = server_listen(NAME, &a.opt);
	if (fd < 0)
		return 1;
	rc = app_init(&a, fd);
	if (rc == 0)
		rc = server_announce(NAME, fd);
	if (rc == 0)
		rc = event_base_dispatch(a.base) < 0 ? -1 : 0;
	if (rc == 0)
		fprintf(stderr, NAME ": stopped\n");
	app_free(&a);
	return rc == 0 ? 0 : 1;
}
