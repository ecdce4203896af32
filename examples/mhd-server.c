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
 * How libmicrohttpd's model maps onto libsse's pull transport: each
 * subscriber's response is a content reader (MHD_create_response_from_callback)
 * that copies what its stream owes with sse_stream_read(). When nothing is
 * owed, the reader suspends the connection, which then costs nothing; the
 * stream's wake callback resumes it as soon as something is owed again (a
 * publish, a heartbeat). The stream and its bookkeeping belong to the
 * response: its free callback leaves the hub and frees them, however the
 * connection ends (the client left, the hub dropped it, shutdown). A
 * suspended connection is not polled, so a client that vanished while
 * its stream was idle is noticed at the next bytes owed (a heartbeat or
 * an event), when the send fails.
 *
 * One thread: the daemon runs in our own poll() loop (MHD_USE_EPOLL, the
 * daemon's epoll descriptor beside a signalfd), which also ticks the hub
 * and fans out once per turn after the turn's publishes. The hub is
 * touched from this thread only, as it must be.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server.h"

#define NAME "sse-mhd"
/* Bytes one read copies at most: the buffer libmicrohttpd allocates with
 * each subscriber's response, and its largest send. */
#define READ_BLOCK (16 * 1024)
/* Requests that stall (and idle keep-alive connections) are closed after
 * this; event streams never time out this way (the hub's stall time rules). */
#define REQUEST_TIMEOUT_S 10u

struct app {
	struct server_options opt;
	struct MHD_Daemon *daemon;
	struct sse_hub *hub;
	uint64_t now;
	bool published; /* in this loop turn: fan out once at its end */
	bool resumed;   /* a connection was resumed: run the daemon again first */
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

/* One subscriber: its stream and its connection. Owned by its response. */
struct sub {
	struct app *app;
	struct MHD_Connection *conn;
	struct sse_stream *stream;
	bool suspended; /* by its reader, until wake or a drop resumes it */
	int err;        /* the hub dropped it: end the response */
	bool told;      /* its drop was logged */
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

/* ---- GET /events: the stream contract */

/* The hub dropped a subscriber, or its stream failed at a read: one that
 * fell behind says so (its client resumes with Last-Event-ID). */
static void sub_tell(struct sub *sub, int err)
{
	if (sub->told || (err != SSE_ERR_GAP && err != SSE_ERR_STALLED))
		return;
	sub->told = true;
	fprintf(stderr, NAME ": dropped a slow subscriber: %s\n", sse_strerror(err));
}

static void sub_resume(struct sub *sub)
{
	if (!sub->suspended)
		return; /* resuming a connection that is not suspended is undefined */
	sub->suspended = false;
	MHD_resume_connection(sub->conn);
	sub->app->resumed = true; /* no ITC in external polling: tell the loop */
}

/* The stream owes bytes again: libmicrohttpd asks the reader for them. */
static void on_wake(struct sse_stream *s, void *ctx)
{
	(void)s;
	sub_resume(ctx);
}

/* The content reader: copy what the stream owes, or suspend until wake. */
static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sub *sub = cls;
	size_t n = 0;
	int rc = sub->err != 0 ? sub->err : sse_stream_read(sub->stream, buf, max, &n);

	(void)pos;
	if (rc == 0)
		return (ssize_t)n;
	if (rc == SSE_ERR_WOULDBLOCK) {
		sub->suspended = true;
		MHD_suspend_connection(sub->conn);
		return 0;
	}
	sub_tell(sub, rc); /* e.g. fell out of the ring while its socket was full */
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The response is done with, however the connection ended: leave the
 * hub first, so that no fan-out reaches a freed stream. */
static void sub_free(void *cls)
{
	struct sub *sub = cls;

	sse_hub_unsubscribe(sub->app->hub, sub->stream);
	sse_stream_free(sub->stream);
	free(sub);
}

/* The hub let go of a subscriber (missed events, stalled, failed): end
 * its response. A suspended one is resumed and its reader ends it; one
 * whose socket is full is ended at its next read, or closed a second
 * from now if its client takes nothing more. */
static void on_drop(struct sse_stream *s, int err, void *user)
{
	struct sub *sub = sse_stream_user(s);

	(void)user;
	sub->err = err;
	sub_tell(sub, err);
	if (sub->suspended)
		sub_resume(sub);
	else
		MHD_set_connection_option(sub->conn, MHD_CONNECTION_OPTION_TIMEOUT, 1u);
}

static struct sub *sub_new(struct app *a, struct MHD_Connection *conn)
{
	struct sub *sub = calloc(1, sizeof(*sub));
	struct sse_transport t = {.size = sizeof(t), .wake = on_wake, .ctx = sub};

	if (sub == NULL)
		return NULL;
	*sub = (struct sub){.app = a, .conn = conn};
	if (sse_stream_new(&sub->stream, &t, sub, NULL) < 0 ||
	    (a->opt.retry_ms != SSE_RETRY_NONE &&
	     sse_stream_set_retry(sub->stream, a->opt.retry_ms) < 0)) {
		sse_stream_free(sub->stream);
		free(sub);
		return NULL;
	}
	return sub;
}

/* The fields of sse_http_response_head() as response headers: the
 * status line and the connection's framing are libmicrohttpd's. */
static bool add_head_fields(struct MHD_Response *r)
{
	static const struct sse_http_options defaults;
	char head[512];
	size_t len = 0;
	char *line, *end;

	if (sse_http_response_head(&defaults, head, sizeof(head) - 1, &len) < 0)
		return false;
	head[len] = '\0';
	line = strstr(head, "\r\n"); /* the end of the status line */
	if (line == NULL)
		return false;
	for (line += 2; (end = strstr(line, "\r\n")) != NULL && end > line; line = end + 2) {
		char *colon = memchr(line, ':', (size_t)(end - line));

		if (colon == NULL)
			return false;
		*colon = *end = '\0';
		if (MHD_add_response_header(r, line, colon + 1 + strspn(colon + 1, " ")) != MHD_YES)
			return false;
	}
	return true;
}

/* The response that reads from the stream and owns sub (NULL: sub is
 * freed). Close-delimited: an event stream never ends by itself, so
 * chunked framing would only wrap every read in a few more bytes. */
static struct MHD_Response *events_response(struct sub *sub)
{
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READ_BLOCK,
								   read_events, sub, sub_free);

	if (r == NULL) {
		sub_free(sub);
		return NULL;
	}
	if (!add_head_fields(r) ||
	    MHD_set_response_options(r, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END) != MHD_YES) {
		MHD_destroy_response(r); /* frees sub through sub_free() */
		return NULL;
	}
	return r;
}

/* The resume point: the Last-Event-ID header, else ?lastEventId= or
 * ?last_event_id=. 1 and a malloc'd id, 0 for none, or an error
 * (SSE_ERR_HTTP: a malformed escape). */
static int resume_id(struct MHD_Connection *conn, const struct request *rq, char **id,
		     size_t *len)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
	size_t hlen = h != NULL ? strlen(h) : 0;
	int rc;

	*id = malloc(hlen + rq->query_len + 1);
	if (*id == NULL)
		return SSE_ERR_NOMEM;
	rc = sse_http_resume_id(h, hlen, rq->query, rq->query_len, *id, hlen + rq->query_len + 1,
				len);
	if (rc <= 0) {
		free(*id);
		*id = NULL;
	}
	return rc;
}

static enum MHD_Result serve_events(struct app *a, struct MHD_Connection *conn,
				    const struct request *rq)
{
	char *id = NULL;
	size_t id_len = 0;
	struct sub *sub;
	struct MHD_Response *r;
	int rc = resume_id(conn, rq, &id, &id_len);
	enum MHD_Result ok;

	if (rc < 0)
		return reply_status(conn, rc == SSE_ERR_HTTP ? MHD_HTTP_BAD_REQUEST
					  : MHD_HTTP_SERVICE_UNAVAILABLE, NULL, NULL);
	sub = sub_new(a, conn);
	r = sub != NULL ? events_response(sub) : NULL;
	/* Subscribing queues the opening bytes and any replay in the stream;
	 * they leave through the reader once the head is out. */
	rc = r != NULL ? sse_hub_subscribe(a->hub, sub->stream, id, id_len, NULL) : SSE_ERR_NOMEM;
	free(id);
	if (rc < 0) {
		MHD_destroy_response(r); /* and sub with it; NULL: nothing */
		return reply_status(conn, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, NULL);
	}
	/* Its stream is the one timeout that counts (the hub's stall time). */
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r); /* freed, with sub, when the connection is done */
	return ok;
}

/* ---- POST /publish */

/* The ring assigns the id; subscribers get the event at the turn's fan-out. */
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
	a->published = true;
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
		return serve_events(a, conn, rq);
	}
	if (strcmp(url, "/publish") == 0) {
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return reply_status(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Allow", "POST");
		return serve_publish(a, conn, rq, data, data_len);
	}
	return reply_status(conn, MHD_HTTP_NOT_FOUND, NULL, NULL);
}

/* ---- the loop */

/* Until the hub's next deadline or libmicrohttpd's, whichever is first. */
static int wait_ms(const struct app *a, uint64_t next)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	uint64_t ms = next == SSE_NO_DEADLINE ? UINT64_MAX : next > a->now ? next - a->now : 0;

	if (a->resumed)
		return 0; /* the daemon sees resumed connections when it runs */
	if (MHD_get_timeout(a->daemon, &mhd_ms) == MHD_YES && mhd_ms < ms)
		ms = mhd_ms;
	if (ms == UINT64_MAX)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* One turn: the hub sees the time (due heartbeats and stalls), the daemon
 * does its I/O (readers, publishes, resumed connections), then one fan-out
 * for the turn's publishes, whose wakes resume suspended readers. With
 * external polling libmicrohttpd has no wake-up descriptor: a connection
 * resumed outside MHD_run() is only seen by the next MHD_run(), so the
 * loop then does not sleep. */
static int run(struct app *a, int sig_fd)
{
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd fds[2] = {{.fd = info->epoll_fd, .events = POLLIN},
				{.fd = sig_fd, .events = POLLIN}};

	for (;;) {
		uint64_t next = SSE_NO_DEADLINE;

		a->now = server_now_ms();
		sse_hub_tick(a->hub, a->now, NULL);
		a->resumed = false;
		MHD_run(a->daemon);
		if (a->published) {
			a->published = false;
			sse_hub_flush(a->hub); /* drops go to on_drop() */
		}
		if (fds[1].revents & POLLIN)
			return 0;
		/* Again for the deadlines of streams that joined this turn. */
		sse_hub_tick(a->hub, a->now, &next);
		if (poll(fds, 2, wait_ms(a, next)) < 0 && errno != EINTR) {
			fprintf(stderr, NAME ": poll: %s\n", strerror(errno));
			return -1;
		}
	}
}

/* Shutdown: libmicrohttpd must have no suspended connection when it
 * stops; closing them frees every subscriber (sub_free()). */
static int resume_one(struct sse_stream *s, void *ctx)
{
	(void)ctx;
	sub_resume(sse_stream_user(s));
	return 0;
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
	if (rc == 0)
		rc = server_announce(NAME, listen_fd);
	if (rc == 0)
		rc = run(&a, sig_fd);
	if (a.daemon != NULL) {
		sse_hub_visit(a.hub, resume_one, NULL);
		MHD_stop_daemon(a.daemon); /* closes the listening socket too */
	}
	sse_hub_free(a.hub);
	if (sig_fd >= 0)
		close(sig_fd);
	if (rc == 0)
		fprintf(stderr, NAME ": stopped\n");
	return rc == 0 ? 0 : 1;
}
