/*
 * sse-libevent: sse-relay's GET /events and POST /publish on libevent's
 * evhttp, with sse-relay's command line (server.h).
 *
 *     sse-libevent --port 8080 &
 *     curl -N http://127.0.0.1:8080/events &
 *     curl -d 'hello' 'http://127.0.0.1:8080/publish?event=greeting'
 *
 * evhttp parses the requests and answers them; libsse-libevent
 * (include/sse/libevent.h, doc/libevent.md) does the rest: its driver runs
 * the hub on the event_base (the time, one flush per loop turn, a timer at
 * the hub's next deadline), and sse_event_serve() turns a request into an
 * event stream whose chunks are references to the hub's ring, held back
 * while 64 KiB wait in the connection's output buffer.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sse/libevent.h>

#include "server.h"

#define NAME "sse-libevent"
#define HEAD_MAX 8192        /* request line and header fields */
#define REQUEST_TIMEOUT_S 10 /* a request's connection idle this long is closed */

struct app {
	struct server_options opt;
	struct event_base *base;
	struct evhttp *http;
	struct sse_hub *hub;
	struct sse_event_driver *driver; /* runs the hub on base */
	struct event *sigint, *sigterm;
};

static void on_drop(struct sse_stream *s, int err, void *user)
{
	(void)user;
	if (err == SSE_ERR_GAP || err == SSE_ERR_STALLED)
		fprintf(stderr, NAME ": dropped a slow subscriber: %s\n", sse_strerror(err));
	sse_event_close(s);
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

static void serve_events(struct app *a, struct evhttp_request *req)
{
	int rc = sse_event_serve(a->driver, req, NULL); /* answers req whatever happens */

	if (rc < 0 && rc != SSE_ERR_HTTP)
		fprintf(stderr, NAME ": cannot serve a stream: %s\n", sse_strerror(rc));
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
static void serve_publish(struct app *a, struct evhttp_request *req)
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
	rc = sse_event_publish(a->driver, &ev, NULL); /* sent when the loop turn ends */
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

	if (path != NULL && strcmp(path, "/events") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			serve_events(a, req);
		else
			reply_status(req, 405, "GET");
	} else if (path != NULL && strcmp(path, "/publish") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			serve_publish(a, req);
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
	a->sigint = evsignal_new(a->base, SIGINT, on_signal, a);
	a->sigterm = evsignal_new(a->base, SIGTERM, on_signal, a);
	if (!a->sigint || !a->sigterm || evsignal_add(a->sigint, NULL) < 0 ||
	    evsignal_add(a->sigterm, NULL) < 0)
		return -1;
	rc = server_hub_new(&a->opt, on_drop, a, &a->hub);
	if (rc == 0)
		rc = sse_event_driver_new(&a->driver, a->base, a->hub, NULL);
	if (rc == 0)
		rc = sse_event_driver_set_retry(a->driver, a->opt.retry_ms);
	if (rc < 0)
		fprintf(stderr, NAME ": %s\n", sse_strerror(rc));
	return rc < 0 ? -1 : 0;
}

/* evhttp_free() closes every connection; event_base_free() then frees
 * their buffers, and with them the bytes of the ring they still held: the
 * streams go before the hub and its ring. */
static void app_free(struct app *a)
{
	if (a->http != NULL)
		evhttp_free(a->http);
	sse_event_driver_free(a->driver);
	if (a->sigint != NULL)
		event_free(a->sigint);
	if (a->sigterm != NULL)
		event_free(a->sigterm);
	if (a->base != NULL)
		event_base_free(a->base);
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
