/*
 * sse-relay: what each endpoint does.
 *
 *   GET  /                   the page (relay-page.c)
 *   GET  /events             a subscriber: the events after its
 *                            Last-Event-ID (or the reset event), then live
 *   POST /publish[?event=T]  the body is one event's data: 202 and its id
 *   GET  /events/NAME, POST /publish/NAME: the same in channel NAME
 *                            (relay-channels.c); the two above are the
 *                            default channel
 *   GET  /metrics, /healthz, /readyz (and /ready, its old name): relay-metrics.c
 *
 * This is where the relay uses libsse: one hub, whose replay ring holds
 * every published event, encoded once; each subscriber is a stream that
 * follows the ring with a cursor, so publishing copies nothing per
 * subscriber and replay and live delivery are the same walk.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"

/* ---- GET / */

static void serve_page(struct conn *c, const struct sse_http_request *req, const char *query,
		       size_t query_len)
{
	(void)req, (void)query, (void)query_len;
	conn_reply(c, 200, NULL, "text/html; charset=utf-8", relay_page, relay_page_len);
}

/* ---- GET /events */

/* Connections kept for requests other than /events: RELAY_PUBLISH_RESERVE,
 * or a quarter of a small --max-conns. */
static size_t publish_reserve(const struct relay *r)
{
	size_t q = r->lim.max_conns / 4;

	return q < RELAY_PUBLISH_RESERVE ? q : RELAY_PUBLISH_RESERVE;
}

/* A stream on the connection's socket (conn_transport(): a socket
 * writev that notes event boundaries, to close on one); the stream's user
 * pointer is the connection (see conn_of_stream()). Its writev sends
 * everything owed (our own bytes and the ring's frames) in one call. The
 * hub sets its heartbeat, stall time and lag bound when it subscribes it. */
static int stream_open(struct conn *c, struct sse_stream **out)
{
	const struct sse_transport t = conn_transport(c);
	struct sse_stream *s;
	int rc = sse_stream_new(&s, &t, c, NULL);

	if (rc < 0)
		return rc;
	if (c->relay->opt.retry_ms != SSE_RETRY_NONE)
		rc = sse_stream_set_retry(s, c->relay->opt.retry_ms);
	if (rc < 0) {
		sse_stream_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* The response head goes through the stream, not around it: queued as
 * one unit ahead of all else, it leaves first even when the socket takes
 * only part of it. Then the hub writes the opening bytes (retry, or an
 * empty comment, which make proxies pass the head on), the reset event
 * if the client's Last-Event-ID is lost, and the events after it. */
static int stream_begin(struct conn *c, struct sse_stream *s, struct sse_hub *hub,
			const char *id, size_t id_len)
{
	char head[512];
	size_t head_len = 0;
	int rc = auth_stream_head(c, head, sizeof(head), &head_len); /* with CORS lines */

	if (rc == 0)
		rc = sse_stream_send_raw(s, head, head_len);
	if (rc == 0)
		rc = sse_hub_subscribe(hub, s, id, id_len, NULL);
	return rc == SSE_ERR_WOULDBLOCK ? 0 : rc;
}

/* The channel a request names (AUTH_CHANNEL_DEFAULT for the default). */
static void channel_of(const struct conn *c, const char **name, size_t *len)
{
	*name = c->u.req->channel != NULL ? c->u.req->channel : AUTH_CHANNEL_DEFAULT;
	*len = c->u.req->channel != NULL ? c->u.req->channel_len : strlen(AUTH_CHANNEL_DEFAULT);
}

/* A merged stream's channels, each allowed (else 403 or 401): auth_admit()
 * for each. Too many, a bad name, one twice: 400. */
static bool merge_admit(struct conn *c, const struct sse_http_request *req, const char *query,
			size_t query_len, struct merge_names *names)
{
	if (merge_parse(query, query_len, names) < 0) {
		conn_reply_status(c, 400, NULL);
		return false;
	}
	for (size_t i = 0; i < names->n; i++)
		if (!auth_admit(c, req, query, query_len, AUTH_SUBSCRIBE, names->name[i],
				names->len[i]))
			return false;
	return true;
}

/* The response head, then every channel from its part of the composite id
 * (relay-merge.c); the connection subscribes with m, which owns s. */
static void merge_begin_stream(struct conn *c, struct relay_merge *m, struct sse_stream *s,
			       const char *id, size_t id_len)
{
	char head[512];
	size_t head_len = 0;
	int rc = auth_stream_head(c, head, sizeof(head), &head_len);

	if (rc == 0)
		rc = sse_stream_send_raw(s, head, head_len);
	if (rc == 0 || rc == SSE_ERR_WOULDBLOCK)
		rc = merge_begin(m, c, s, id, id_len);
	if (rc < 0 && rc != SSE_ERR_WOULDBLOCK) {
		merge_free(c->relay, m);
		conn_close(c);
		return;
	}
	conn_subscribe(c, s, NULL);
	merge_attach(c, m); /* closed already (its peer left): frees m */
}

static void serve_events(struct conn *c, const struct sse_http_request *req, const char *query,
			 size_t query_len)
{
	struct merge_names names = {.n = 0};
	bool merged = c->u.req->channel == NULL && merge_wanted(query, query_len);
	struct relay_merge *m = NULL;
	struct relay *r = c->relay;
	char id[RELAY_HEAD_MAX]; /* never longer than the head it came in */
	size_t id_len = 0, chan_len;
	struct sse_stream *s = NULL;
	struct relay_channel *ch = NULL;
	const char *chan;
	int rc;

	rc = sse_http_last_event_id(req, id, sizeof(id), &id_len);
	if (rc < 0) {
		conn_reply_status(c, 400, NULL); /* a malformed %-escape */
		return;
	}
	if (rc == 0)
		id_len = 0; /* a first connection: live events only */
	/* A token (relay-auth.c), whose exp ends the stream: else 401 or 403. */
	channel_of(c, &chan, &chan_len);
	if (merged ? !merge_admit(c, req, query, query_len, &names)
		   : !auth_admit(c, req, query, query_len, AUTH_SUBSCRIBE, chan, chan_len))
		return;
	if ((c->u.req->channel != NULL || merged) && cluster_enabled(r)) {
		conn_reply_status(c, 501, NULL); /* --redis feeds the default channel only */
		return;
	}
	/* --redis: a node that never followed the log yet has ids of its own. */
	if (!cluster_joined(r)) {
		r->m.refused_not_joined++;
		conn_retry_later(c);
		return;
	}
	/* Room for subscribers ends RELAY_PUBLISH_RESERVE short of
	 * --max-conns, so publishers get in while subscribers fill it. */
	if (conn_subscriber_count(r) >= r->lim.max_conns - publish_reserve(r)) {
		r->m.refused_max_conns++;
		conn_retry_later(c);
		return;
	}
	/* A named channel: created on first use, up to --max-channels. */
	if ((c->u.req->channel != NULL && (ch = channel_get(r, chan, chan_len)) == NULL) ||
	    (merged && (m = merge_new(r, &names)) == NULL)) {
		conn_retry_later(c);
		return;
	}
	if (!peers_admit(c)) {
		r->m.refused_per_addr++;
		merge_free(r, m);
		conn_retry_later(c);
		return;
	}
	if (merged) {
		if (stream_open(c, &s) < 0) {
			merge_free(r, m);
			conn_reply_status(c, 503, NULL);
			return;
		}
		merge_begin_stream(c, m, s, id, id_len);
		return;
	}
	/* --threads: the default channel's subscribers go to the loop thread
	 * with the fewest (relay-threads.c), which goes on from here. */
	if (ch == NULL && threads_handoff(c, id, id_len))
		return;
	route_stream(c, ch, id, id_len);
}

/* On the connection's loop thread: the main one, or the one it went to. */
void route_stream(struct conn *c, struct relay_channel *ch, const char *id, size_t id_len)
{
	struct sse_stream *s = NULL;
	int rc;

	if (stream_open(c, &s) < 0) {
		conn_reply_status(c, 503, NULL);
		return;
	}
	rc = stream_begin(c, s, ch != NULL ? channel_hub(ch) : c->relay->hub, id, id_len);
	if (rc < 0) {
		if (rc == SSE_ERR_GAP || rc == SSE_ERR_QUEUE_FULL)
			fprintf(stderr, "sse-relay: cannot resume a subscriber: %s\n",
				sse_strerror(rc));
		sse_stream_free(s);
		conn_close(c); /* bytes may have gone out: no other answer fits */
		return;
	}
	conn_subscribe(c, s, ch);
}

/* ---- POST /publish */

/* Ids are assigned by the ring: "<epoch>-n" for the event with sequence
 * number n ("n" with --plain-ids); the answer carries it. Subscribers are
 * flushed once per loop turn (sse_hub_flush()), for every event published
 * in it. */
static void publish_body(struct conn *c, const char *body, size_t len)
{
	struct relay *r = c->relay;
	struct sse_event ev = {
		.type = c->u.req->event_type,
		.type_len = c->u.req->event_type_len,
		.data = body,
		.data_len = len,
		.retry = SSE_RETRY_NONE,
	};
	char text[64];
	const char *id;
	size_t id_len = 0;
	struct relay_channel *ch = NULL;
	struct sse_hub *hub = r->hub;
	int rc;

	if (cluster_enabled(r)) {
		cluster_publish(c, &ev); /* --redis: answered once Redis is */
		return;
	}
	/* A named channel: created on first use, up to --max-channels. */
	if (c->u.req->channel != NULL) {
		ch = channel_get(r, c->u.req->channel, c->u.req->channel_len);
		if (ch == NULL) {
			conn_reply_status(c, 503, "Retry-After: 5\r\n");
			return;
		}
		hub = channel_hub(ch);
	}
	rc = sse_hub_publish(hub, &ev, r->now, NULL);
	if (rc < 0) {
		if (server_publish_status(rc) == 500)
			fprintf(stderr, "sse-relay: publish: %s\n", sse_strerror(rc));
		conn_reply_status(c, server_publish_status(rc), NULL);
		return;
	}
	r->published = true;
	if (ch != NULL)
		channel_published(r, ch);
	id = sse_replay_newest_id(sse_hub_ring(hub), &id_len);
	if (id_len >= sizeof(text))
		id_len = sizeof(text) - 1; /* not reached: an epoch and 20 digits fit */
	memcpy(text, id, id_len);
	text[id_len] = '\n';
	conn_reply_text(c, 202, text, id_len + 1);
}

/* The event type from ?event=NAME, percent-decoded in place over the
 * query, in the head buffer (decoding never lengthens it, and nothing
 * reads the query after routing). Absent or empty: a plain "message". A
 * malformed escape is refused, and so is a CR or LF, which would end the
 * field early; both before the body is read. */
static bool take_event_type(struct conn *c, const char *query, size_t query_len)
{
	struct conn_request *rq = c->u.req;
	char *value = rq->head + (query - rq->head); /* the same bytes, ours to change */
	size_t len = 0;
	int rc = sse_http_query_param(query, query_len, "event", 5, value, query_len, &len);

	if (rc == 0)
		return true;
	if (rc < 0 || memchr(value, '\r', len) != NULL || memchr(value, '\n', len) != NULL)
		return false;
	rq->event_type = len > 0 ? value : NULL;
	rq->event_type_len = len;
	return true;
}

static void serve_publish(struct conn *c, const struct sse_http_request *req,
			  const char *query, size_t query_len)
{
	size_t len = 0, chan_len;
	const char *chan;

	/* --token, a token, and an Origin of ours or allowed: else 401 or 403. */
	channel_of(c, &chan, &chan_len);
	if (!auth_admit(c, req, query, query_len, AUTH_PUBLISH, chan, chan_len))
		return;
	if (c->u.req->channel != NULL && cluster_enabled(c->relay)) {
		conn_reply_status(c, 501, NULL); /* --redis feeds the default channel only */
		return;
	}
	/* Bodies are framed by Content-Length only: not chunked. */
	if (sse_http_find_header(req, "Transfer-Encoding") != NULL) {
		conn_reply_status(c, 501, NULL);
		return;
	}
	switch (http_content_length(req, SERVER_BODY_MAX, &len)) {
	case HTTP_LENGTH_NONE:
		conn_reply_status(c, 411, NULL);
		return;
	case HTTP_LENGTH_BAD:
		conn_reply_status(c, 400, NULL);
		return;
	case HTTP_LENGTH_TOO_LARGE:
		conn_reply_status(c, 413, NULL);
		return;
	case HTTP_LENGTH_OK:
		break;
	}
	if (!take_event_type(c, query, query_len)) {
		conn_reply_status(c, 400, NULL);
		return;
	}
	/* From here on every answer comes after the whole body: the
	 * connection can carry the publisher's next request. */
	c->u.req->keep_alive = http_keep_alive(req);
	conn_read_body(c, len, http_expects_continue(req), publish_body);
}

/* ---- routing */

typedef void (*route_fn)(struct conn *c, const struct sse_http_request *req, const char *query,
			 size_t query_len);

static const struct route {
	const char *path;
	const char *method;
	const char *allow; /* the header a 405 answer carries */
	route_fn serve;
} routes[] = {
	{"/", "GET", "Allow: GET\r\n", serve_page},
	{"/events", "GET", "Allow: GET\r\n", serve_events},
	{"/publish", "POST", "Allow: POST\r\n", serve_publish},
};

/* /events/NAME, /publish/NAME: note NAME (in the head) as the request's
 * channel. A name out of [A-Za-z0-9._-]{1,64} names nothing: 404. */
static bool channel_path(struct conn *c, const struct route *rt, const char *path,
			 size_t path_len)
{
	size_t len = strlen(rt->path);

	if (rt->serve == serve_page || path_len <= len + 1 || memcmp(path, rt->path, len) != 0 ||
	    path[len] != '/' || !channel_name_ok(path + len + 1, path_len - len - 1))
		return false;
	c->u.req->channel = path + len + 1;
	c->u.req->channel_len = path_len - len - 1;
	return true;
}

void route_request(struct conn *c, const struct sse_http_request *req)
{
	const char *path, *query;
	size_t path_len, query_len;

	if (!http_host_ok(req)) {
		conn_reply_status(c, 400, NULL);
		return;
	}
	http_split_target(req, &path, &path_len, &query, &query_len);
	auth_classify(c, req); /* the Origin, for CORS lines and the publish check */
	if (auth_preflight(c, req, path, path_len))
		return; /* OPTIONS of /events or /publish, with --cors-origin */
	/* Health and metrics first: a load balancer asks most when it is full. */
	if (ops_route(c, req, path, path_len))
		return;
	/* Past --max-conns (a few are let in to hear it): come back later. */
	if (conn_count(c->relay) > c->relay->lim.max_conns) {
		c->relay->m.refused_max_conns++;
		if (path_len >= 7 && memcmp(path, "/events", 7) == 0 &&
		    (path_len == 7 || path[7] == '/')) /* /events/NAME too */
			conn_retry_later(c);
		else
			conn_reply_status(c, 503, "Retry-After: 5\r\n");
		return;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];

		if (!http_span_is(path, path_len, rt->path) && !channel_path(c, rt, path, path_len))
			continue;
		if (http_span_is(req->method, req->method_len, rt->method))
			rt->serve(c, req, query, query_len);
		else
			conn_reply_status(c, 405, rt->allow);
		return;
	}
	conn_reply_status(c, 404, NULL);
}
