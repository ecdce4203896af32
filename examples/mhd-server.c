/*
 * sse-mhd: the relay's two endpoints on libmicrohttpd.
 *
 *     sse-mhd --port P [--bind ADDR] [--token T] [--replay-events N]
 *             [--replay-bytes B] [--heartbeat MS] [--retry MS]
 *             [--stall MS] [--plain-ids]
 *
 *   GET  /events             a subscriber: the events after its
 *                            Last-Event-ID (or the reset event), then live
 *   POST /publish[?event=T]  the body is one event's data: 202 and its id
 *
 * The event streams are libsse-mhd's (include/sse/mhd.h, doc/libmicrohttpd.md):
 * sse_mhd_respond() answers GET /events with a response whose content
 * reader pulls from a stream of the hub, suspended while nothing is owed.
 * A suspended connection is not polled, so a client that vanished while
 * its stream was idle is noticed at the next bytes owed (a heartbeat or
 * an event), when the send fails.
 *
 * One thread: the daemon runs in our own poll() loop (MHD_USE_EPOLL, the
 * daemon's epoll descriptor beside a signalfd); sse_mhd_run() does one
 * turn of the daemon and the hub (ticks, the fan-out of the turn's
 * publishes). The hub is touched from this thread only, as it must be.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <sse/mhd.h>

#include "server.h"

#define NAME "sse-mhd"
/* Requests that stall (and idle keep-alive connections) are closed after
 * this; event streams never time out this way (the hub's stall time rules). */
#define REQUEST_TIMEOUT_S 10u

struct app {
	struct server_options opt;
	struct MHD_Daemon *daemon;
	struct sse_hub *hub;
	struct sse_mhd *mhd; /* the event streams */
	uint64_t now;
};

/* One request, from its URI on (uri_begin()) to its end (request_done()). */
struct request {
	char *query;             /* the raw query, ours to decode in place */
	size_t query_len;
	bool started;            /* POST: the head was checked, the body follows */
	unsigned refuse;         /* 413: the body passed SERVER_BODY_MAX; 503: no memory */
	const char *event_type;  /* ?event=, decoded into query */
	size_t event_type_len;
	char *body;
	size_t body_len, body_cap;
};

/* ---- plain answers */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text,
			     size_t len, const char *header, const char *value)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (header != NULL)
		MHD_add_response_header(r, header, value);
	ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

/* An error's body is its status line, for people reading curl's output. */
static enum MHD_Result reply_status(struct MHD_Connection *conn, unsigned status,
				    const char *header, const char *value)
{
	char text[64];
	int n = snprintf(text, sizeof(text), "%u %s\n", status, MHD_get_reason_phrase_for(status));

	return reply(conn, status, text, n > 0 ? (size_t)n : 0, header, value);
}

/* ---- requests: the raw query, kept from the URI */

/* libmicrohttpd hands the handler a decoded path and decoded arguments
 * ('+' made a space, bad escapes kept); libsse reads the raw query itself
 * (sse_http_resume_id(), sse_http_query_param()), so keep it from here,
 * the one place that sees the URI as sent. */
static void *uri_begin(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const char *q = strchr(uri, '?');
	size_t len = q != NULL ? strcspn(q + 1, "#") : 0;
	struct request *rq = calloc(1, sizeof(*rq) + len + 1);

	(void)cls, (void)conn;
	if (rq == NULL)
		return NULL; /* the handler answers 503 */
	rq->query = (char *)(rq + 1);
	rq->query_len = len;
	if (len > 0)
		memcpy(rq->query, q + 1, len);
	return rq;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode why)
{
	struct request *rq = *req_cls;

	(void)cls, (void)conn, (void)why;
	if (rq != NULL)
		free(rq->body);
	free(rq);
	*req_cls = NULL;
}

/* ---- GET /events */

/* A subscriber fell behind (its client resumes with Last-Event-ID). */
static void on_error(int err, void *user)
{
	(void)user;
	if (err == SSE_ERR_GAP || err == SSE_ERR_STALLED)
		fprintf(stderr, NAME ": dropped a slow subscriber: %s\n", sse_strerror(err));
}

static int on_stream(struct sse_stream *s, void *user)
{
	const struct app *a = user;

	return a->opt.retry_ms != SSE_RETRY_NONE ? sse_stream_set_retry(s, a->opt.retry_ms) : 0;
}

/* The hub let go of a subscriber: the adapter ends its response. */
static void on_drop(struct sse_stream *s, int err, void *user)
{
	struct app *a = user;

	sse_mhd_drop(a->mhd, s, err);
}

/* ---- POST /publish */

/* The ring assigns the id; subscribers get the event at the turn's fan-out
 * (sse_mhd_run()). */
static enum MHD_Result publish(struct app *a, struct MHD_Connection *conn, struct request *rq)
{
	const struct sse_event ev = {
		.type = rq->event_type,
		.type_len = rq->event_type_len,
		.data = rq->body != NULL ? rq->body : "", /* NULL would be no data line */
		.data_len = rq->body_len,
		.retry = SSE_RETRY_NONE,
	};
	char text[64];
	size_t len = 0;
	const char *id;
	int rc = sse_hub_publish(a->hub, &ev, a->now, NULL);

	if (rc < 0) {
		if (server_publish_status(rc) == MHD_HTTP_INTERNAL_SERVER_ERROR)
			fprintf(stderr, NAME ": publish: %s\n", sse_strerror(rc));
		return reply_status(conn, (unsigned)server_publish_status(rc), NULL, NULL);
	}
	id = sse_replay_newest_id(sse_hub_ring(a->hub), &len);
	if (len >= sizeof(text))
		len = sizeof(text) - 1; /* not reached: an epoch and 20 digits fit */
	memcpy(text, id, len);
	text[len] = '\n';
	return reply(conn, MHD_HTTP_ACCEPTED, text, len + 1, NULL, NULL);
}

/* "Authorization: Bearer <token>": the scheme without case, the token
 * exactly, compared in time that does not depend on where it differs. */
static bool bearer_ok(struct MHD_Connection *conn, const char *token)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	size_t n = strlen(token), i;
	unsigned char diff = 0;

	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return false;
	v += 7 + strspn(v + 7, " ");
	if (strlen(v) != n)
		return false;
	for (i = 0; i < n; i++)
		diff |= (unsigned char)(v[i] ^ token[i]);
	return diff == 0;
}

/* ?event=NAME, decoded in place over the query: a malformed escape, CR
 * or LF (which would end the field early) is refused. */
static bool take_event_type(struct request *rq)
{
	size_t len = 0;
	int rc = sse_http_query_param(rq->query, rq->query_len, "event", 5, rq->query,
				      rq->query_len, &len);

	if (rc == 0)
		return true;
	if (rc < 0 || memchr(rq->query, '\r', len) != NULL || memchr(rq->query, '\n', len) != NULL)
		return false;
	rq->event_type = len > 0 ? rq->query : NULL;
	rq->event_type_len = len;
	return true;
}

/* The head: refuse early what the body cannot fix. */
static enum MHD_Result check_publish(struct app *a, struct MHD_Connection *conn,
				     struct request *rq)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (a->opt.token != NULL && !bearer_ok(conn, a->opt.token))
		return reply_status(conn, MHD_HTTP_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				    "Bearer");
	if (cl != NULL && strtoull(cl, NULL, 10) > SERVER_BODY_MAX)
		return reply_status(conn, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL);
	if (!take_event_type(rq))
		return reply_status(conn, MHD_HTTP_BAD_REQUEST, NULL, NULL);
	rq->started = true;
	return MHD_YES; /* libmicrohttpd reads the body (and says 100 Continue) */
}

/* A piece of the body (Content-Length or chunked): keep up to the limit;
 * past it, read on and answer 413 at the end (libmicrohttpd 0.9.75 takes
 * no response while a body is coming in). */
static void take_body(struct request *rq, const char *data, size_t len)
{
	if (rq->refuse != 0 || len > SERVER_BODY_MAX - rq->body_len) {
		rq->refuse = rq->refuse != 0 ? rq->refuse : MHD_HTTP_CONTENT_TOO_LARGE;
		return;
	}
	if (rq->body_len + len > rq->body_cap) {
		size_t cap = rq->body_cap ? rq->body_cap : 16 * 1024;
		char *p;

		while (cap < rq->body_len + len)
			cap *= 2;
		p = realloc(rq->body, cap);
		if (p == NULL) {
			rq->refuse = MHD_HTTP_SERVICE_UNAVAILABLE;
			return;
		}
		rq->body = p;
		rq->body_cap = cap;
	}
	memcpy(rq->body + rq->body_len, data, len);
	rq->body_len += len;
}

static enum MHD_Result serve_publish(struct app *a, struct MHD_Connection *conn,
				     struct request *rq, const char *data, size_t *data_len)
{
	if (!rq->started)
		return check_publish(a, conn, rq);
	if (*data_len > 0) {
		take_body(rq, data, *data_len);
		*data_len = 0;
		return MHD_YES;
	}
	if (rq->refuse != 0)
		return reply_status(conn, rq->refuse, NULL, NULL);
	return publish(a, conn, rq);
}

/* ---- routing */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_len, void **req_cls)
{
	struct app *a = cls;
	struct request *rq = *req_cls;

	(void)version;
	if (rq == NULL)
		return reply_status(conn, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, NULL);
	if (strcmp(url, "/events") == 0) {
		if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
			return reply_status(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Allow", "GET");
		return sse_mhd_respond(a->mhd, conn, rq->query);
	}
	if (strcmp(url, "/publish") == 0) {
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return reply_status(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Allow", "POST");
		return serve_publish(a, conn, rq, data, data_len);
	}
	return reply_status(conn, MHD_HTTP_NOT_FOUND, NULL, NULL);
}


/* ---- the loop */

/* One turn of the daemon and the hub, then sleep until the next deadline
 * (the hub's or libmicrohttpd's), a request or a signal. */
static int run(struct app *a, int sig_fd)
{
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd fds[2] = {{.fd = info->epoll_fd, .events = POLLIN},
				{.fd = sig_fd, .events = POLLIN}};

	for (;;) {
		int timeout = -1;

		a->now = server_now_ms();
		(void)sse_mhd_run(a->mhd, a->now, &timeout); /* a failed MHD_run() is retried */
		if (fds[1].revents & POLLIN)
			return 0;
		if (poll(fds, 2, timeout) < 0 && errno != EINTR) {
			fprintf(stderr, NAME ": poll: %s\n", strerror(errno));
			return -1;
		}
	}
}

static struct MHD_Daemon *start_daemon(struct app *a, int listen_fd)
{
	return MHD_start_daemon(
		MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, a,
		MHD_OPTION_LISTEN_SOCKET, listen_fd,
		MHD_OPTION_URI_LOG_CALLBACK, uri_begin, NULL,
		MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
		MHD_OPTION_CONNECTION_TIMEOUT, REQUEST_TIMEOUT_S,
		MHD_OPTION_END);
}

/* The event streams of this daemon and hub. */
static int start_mhd(struct app *a)
{
	const struct sse_mhd_config cfg = {.size = sizeof(cfg), .hub = a->hub,
					   .daemon = a->daemon, .on_stream = on_stream,
					   .on_error = on_error, .user = a};

	return sse_mhd_new(&a->mhd, &cfg);
}

int main(int argc, char **argv)
{
	struct app a = {0};
	int listen_fd, sig_fd = -1, rc = server_options(argc, argv, &a.opt);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	listen_fd = server_listen(NAME, &a.opt);
	if (listen_fd < 0)
		return 1;
	rc = server_hub_new(&a.opt, on_drop, &a, &a.hub);
	if (rc < 0)
		fprintf(stderr, NAME ": setup: %s\n", sse_strerror(rc));
	sig_fd = rc == 0 ? server_signals() : -1;
	a.daemon = sig_fd >= 0 ? start_daemon(&a, listen_fd) : NULL;
	if (a.daemon == NULL) {
		if (rc == 0)
			fprintf(stderr, NAME ": setup: cannot start the daemon: %s\n", strerror(errno));
		close(listen_fd);
		rc = -1;
	}
	if (rc == 0 && (rc = start_mhd(&a)) < 0)
		fprintf(stderr, NAME ": setup: %s\n", sse_strerror(rc));
	if (rc == 0)
		rc = server_announce(NAME, listen_fd);
	if (rc == 0)
		rc = run(&a, sig_fd);
	sse_mhd_shutdown(a.mhd); /* no suspended connection when the daemon stops */
	if (a.daemon != NULL)
		MHD_stop_daemon(a.daemon); /* frees every subscriber; closes the listening socket */
	sse_mhd_free(a.mhd);
	sse_hub_free(a.hub);
	if (sig_fd >= 0)
		close(sig_fd);
	if (rc == 0)
		fprintf(stderr, NAME ": stopped\n");
	return rc == 0 ? 0 : 1;
}
