/*
 * libsse-libevent: a hub driven by an event_base, and evhttp requests or
 * bufferevents served as zero-copy event streams.
 *
 * A stream's transport is asynchronous (SSE_TRANSPORT_ASYNC): its writev
 * adds each piece to an evbuffer with evbuffer_add_reference(), and the
 * bytes reach the connection's output buffer by moving chains, never by
 * copying them (evhttp_send_reply_chunk_with_cb() and evbuffer_add_buffer()
 * move chains). libevent frees a chain once its bytes went to the socket,
 * or when the buffer is freed, from the first chain on, so the cleanup
 * callbacks come in the order the bytes were taken: each completes its
 * bytes (sse_stream_complete()). A stream is freed only when its
 * connection is gone and nothing is in flight.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sse/libevent.h"

#define ID_INLINE 256      /* a resume id longer than this is allocated */
#define INPUT_MAX 8192     /* a stream's input is read only to see it close */
#define NAME_MAX_LEN 64    /* a header name of sse_http_response_fields() */

struct sse_event_driver {
	struct event_base *base;
	struct sse_hub *hub;
	struct sse_allocator alloc;
	struct event *timer;     /* the hub's next deadline */
	struct event *turn;      /* the flush, once per loop turn */
	struct evbuffer *pieces; /* one evhttp write's references, on their way into a chunk */
	struct sse_handoff *handoff;
	struct sse_http_field fields[SSE_HTTP_FIELDS_MAX];
	size_t nfields;
	long retry_ms;
	size_t output_max;
	size_t streams;          /* alive: the driver's memory goes with the last */
	bool freed;
};

/* One served stream. Open while bev is set; freed once closed, not in a
 * callback of ours (busy), and with nothing in flight. */
struct conn {
	struct sse_event_driver *d;
	struct sse_stream *s;
	struct evhttp_request *req;      /* evhttp: the started reply */
	struct evhttp_connection *evcon; /* evhttp: its connection */
	struct bufferevent *bev;         /* the connection's; NULL once closed */
	bool blocked;                    /* a write was refused: writable once drained */
	unsigned busy;
};

/* ---- memory */

/* Zeroed, from the driver's allocator (the caller's, or libc's). */
static void *mem_alloc(const struct sse_allocator *a, size_t size)
{
	void *p = a->alloc_fn(size, a->ctx);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

static void mem_free(const struct sse_allocator *a, void *p, size_t size)
{
	a->free_fn(p, size, a->ctx);
}

/* ---- the loop turn */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sse_event_driver_now(struct sse_event_driver *d)
{
	uint64_t now = now_ms();

	if (d == NULL || d->freed)
		return now;
	sse_hub_tick(d->hub, now, NULL); /* what streams stamp is fresh */
	event_active(d->turn, EV_TIMEOUT, 0);
	return now;
}

void sse_event_driver_wake(struct sse_event_driver *d)
{
	event_active(d->turn, EV_TIMEOUT, 0);
}

static void arm_timer(struct sse_event_driver *d)
{
	uint64_t now = now_ms(), next = SSE_NO_DEADLINE, ms;
	struct timeval tv;

	sse_hub_tick(d->hub, now, &next);
	if (next == SSE_NO_DEADLINE) {
		evtimer_del(d->timer);
		return;
	}
	ms = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(d->timer, &tv);
}

/* The turn event, and the timer (a flush with nothing published is O(1)). */
static void on_turn(evutil_socket_t fd, short what, void *arg)
{
	struct sse_event_driver *d = arg;

	(void)fd, (void)what;
	if (d->handoff != NULL) {
		/* A queue's worth at a time, each flushed before the next
		 * can push the ring past frames not yet handed out. */
		while (sse_handoff_drain(d->handoff, d->hub, now_ms(), 0, NULL) == 1)
			sse_hub_flush(d->hub);
	}
	sse_hub_flush(d->hub); /* drops go to on_drop */
	arm_timer(d);
}

/* ---- the driver */

int sse_event_driver_new(struct sse_event_driver **out, struct event_base *base,
			 struct sse_hub *hub, const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_event_driver *d;

	if (out == NULL || base == NULL || hub == NULL || sse_allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	d = mem_alloc(&a, sizeof(*d));
	if (d == NULL)
		return SSE_ERR_NOMEM;
	d->alloc = a;
	d->base = base;
	d->hub = hub;
	d->retry_ms = SSE_RETRY_NONE;
	d->output_max = SSE_EVENT_OUTPUT_MAX_DEFAULT;
	d->timer = evtimer_new(base, on_turn, d);
	d->turn = event_new(base, -1, 0, on_turn, d);
	d->pieces = evbuffer_new();
	if (d->timer == NULL || d->turn == NULL || d->pieces == NULL ||
	    sse_event_driver_set_http(d, NULL) < 0) {
		d->streams = 1; /* keeps the free below from releasing twice */
		sse_event_driver_free(d);
		mem_free(&d->alloc, d, sizeof(*d));
		return SSE_ERR_NOMEM;
	}
	*out = d;
	return 0;
}

static void driver_release(struct sse_event_driver *d)
{
	if (d->freed && d->streams == 0)
		mem_free(&d->alloc, d, sizeof(*d));
}

void sse_event_driver_free(struct sse_event_driver *d)
{
	if (d == NULL || d->freed)
		return;
	if (d->timer != NULL)
		event_free(d->timer);
	if (d->turn != NULL)
		event_free(d->turn);
	if (d->pieces != NULL)
		evbuffer_free(d->pieces); /* empty: each write moves its pieces out */
	d->timer = d->turn = NULL;
	d->pieces = NULL;
	d->freed = true;
	driver_release(d);
}

int sse_event_driver_set_retry(struct sse_event_driver *d, long ms)
{
	if (d == NULL)
		return SSE_ERR_INVALID;
	if (ms != SSE_RETRY_NONE && (ms < 0 || ms > SSE_RETRY_MAX))
		return SSE_ERR_RETRY;
	d->retry_ms = ms;
	return 0;
}

int sse_event_driver_set_http(struct sse_event_driver *d, const struct sse_http_options *o)
{
	struct sse_http_field f[SSE_HTTP_FIELDS_MAX];
	int n;

	if (d == NULL || (o != NULL && (o->chunked || o->http2)))
		return SSE_ERR_INVALID;
	n = sse_http_response_fields(o, f, SSE_HTTP_FIELDS_MAX);
	if (n < 0)
		return n;
	memcpy(d->fields, f, sizeof(f));
	d->nfields = (size_t)n;
	return 0;
}

int sse_event_driver_set_output_max(struct sse_event_driver *d, size_t bytes)
{
	if (d == NULL)
		return SSE_ERR_INVALID;
	d->output_max = bytes > 0 ? bytes : SSE_EVENT_OUTPUT_MAX_DEFAULT;
	return 0;
}

int sse_event_driver_set_handoff(struct sse_event_driver *d, struct sse_handoff *q)
{
	if (d == NULL)
		return SSE_ERR_INVALID;
	d->handoff = q;
	return 0;
}

int sse_event_publish(struct sse_event_driver *d, const struct sse_event *ev, uint64_t *seq)
{
	if (d == NULL)
		return SSE_ERR_INVALID;
	return sse_hub_publish(d->hub, ev, sse_event_driver_now(d), seq); /* the turn flushes */
}

/* ---- a stream's transport */

static void conn_release(struct conn *c)
{
	struct sse_event_driver *d = c->d;

	if (c->bev != NULL || c->busy > 0 || sse_stream_inflight(c->s) > 0)
		return;
	sse_stream_free(c->s);
	mem_free(&d->alloc, c, sizeof(*c));
	d->streams--;
	driver_release(d);
}

/* libevent is done with a referenced piece: sent, or its buffer freed. */
static void on_piece_done(const void *data, size_t len, void *arg)
{
	struct conn *c = arg;

	(void)data;
	sse_stream_complete(c->s, len);
	conn_release(c);
}

/* The connection's output buffer has drained: hand out what is owed. */
static void drained(struct conn *c)
{
	if (!c->blocked && sse_stream_pending(c->s) == 0)
		return;
	c->busy++;
	sse_event_driver_now(c->d); /* may drop it; busy keeps it */
	if (c->bev != NULL) {
		c->blocked = false;
		sse_hub_writable(c->d->hub, c->s);
	}
	c->busy--;
	conn_release(c);
}

static void on_chunk_drained(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	drained(arg);
}

static void on_bev_drained(struct bufferevent *bev, void *arg)
{
	(void)bev;
	drained(arg);
}

/* How much of a piece to take with room bytes left: all of it if it fits,
 * else up to its last frame end within room, else (first: nothing taken
 * yet) up to the end of its first frame. Frames end with the only empty
 * lines of the stream ("\n\n"), so every chunk holds whole frames: a peer
 * or proxy that handles the body chunk by chunk sees whole events. */
static size_t whole_frames(const char *p, size_t len, size_t room, bool first)
{
	const char *nl;

	if (len <= room)
		return len;
	for (size_t i = room; i >= 2; i--)
		if (p[i - 1] == '\n' && p[i - 2] == '\n')
			return i;
	if (!first)
		return 0;
	for (size_t i = room > 0 ? room - 1 : 0; i + 1 < len; i = (size_t)(nl - p) + 1) {
		nl = memchr(p + i, '\n', len - 1 - i);
		if (nl == NULL)
			break;
		if (nl[1] == '\n')
			return (size_t)(nl - p) + 2;
	}
	return len;
}

/* Takes whole frames, about as many as fit below the output bound (one
 * larger frame goes alone), and none while the buffer holds the bound:
 * the drained callback comes back for the rest. The bytes are the ring's
 * (referenced); the bound keeps a peer that stopped reading visible to
 * the hub's stall check. */
static int on_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct conn *c = ctx;
	struct evbuffer *dst;
	size_t held, room, total = 0;

	if (c->bev == NULL || c->d->freed)
		return SSE_ERR_IO;
	held = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (held >= c->d->output_max) {
		c->blocked = true;
		return SSE_ERR_WOULDBLOCK;
	}
	room = c->d->output_max - held;
	dst = c->req != NULL ? c->d->pieces : bufferevent_get_output(c->bev);
	for (size_t i = 0; i < n && total < room; i++) {
		size_t len = whole_frames(iov[i].base, iov[i].len, room - total, total == 0);

		if (len == 0 || evbuffer_add_reference(dst, iov[i].base, len, on_piece_done, c) < 0)
			break;
		total += len;
		if (len < iov[i].len)
			break;
	}
	if (total == 0)
		return SSE_ERR_NOMEM;
	if (c->req != NULL) /* frames it as a chunk and moves the chains */
		evhttp_send_reply_chunk_with_cb(c->req, dst, on_chunk_drained, c);
	*taken = total;
	return 0;
}

static int on_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	const struct sse_iovec one = {buf, len};

	return on_writev(&one, 1, taken, ctx);
}

static struct conn *conn_new(struct sse_event_driver *d)
{
	struct conn *c = mem_alloc(&d->alloc, sizeof(*c));
	const struct sse_transport t = {.size = sizeof(t), .write = on_write, .writev = on_writev,
					.ctx = c, .flags = SSE_TRANSPORT_ASYNC};

	if (c == NULL)
		return NULL;
	if (sse_stream_new(&c->s, &t, c, &d->alloc) < 0 ||
	    (d->retry_ms != SSE_RETRY_NONE && sse_stream_set_retry(c->s, d->retry_ms) < 0)) {
		sse_stream_free(c->s);
		mem_free(&d->alloc, c, sizeof(*c));
		return NULL;
	}
	c->d = d;
	d->streams++;
	return c;
}

/* ---- closing */

/* evhttp closes the connection: the peer left, or it was freed. */
static void on_evcon_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;

	(void)evcon;
	sse_hub_unsubscribe(c->d->hub, c->s);
	/* After a read error evhttp leaves a started reply to us to free. */
	if (evhttp_request_get_connection(c->req) == NULL)
		evhttp_send_reply_end(c->req);
	c->req = NULL;
	c->evcon = NULL;
	c->bev = NULL;
	conn_release(c);
}

/* Its output buffer goes when libevent finalizes it: then the pieces
 * still in it complete, and the last completion frees the stream. */
static void bev_close(struct conn *c)
{
	struct bufferevent *bev = c->bev;

	sse_hub_unsubscribe(c->d->hub, c->s);
	c->bev = NULL;
	bufferevent_free(bev);
	conn_release(c);
}

void sse_event_close(struct sse_stream *s)
{
	struct conn *c = sse_stream_user(s);

	if (c == NULL || c->bev == NULL)
		return;
	if (c->evcon != NULL)
		evhttp_connection_free(c->evcon); /* calls on_evcon_closed() */
	else
		bev_close(c);
}

void sse_event_drop(struct sse_stream *s, int err, void *user)
{
	(void)err, (void)user;
	sse_event_close(s);
}

/* ---- serving */

/* A stream is idle for as long as it likes (heartbeats and the hub's
 * stall time see to it), its input is only watched for the close, and
 * its frames go out at once: Nagle would only hold one back for an ACK. */
static void tune(struct bufferevent *bev)
{
	int on = 1;

	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, INPUT_MAX);
	(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* "content-type" as "Content-Type": the fields are lowercase for HTTP/2. */
static void add_field(struct evkeyvalq *h, const struct sse_http_field *f)
{
	char name[NAME_MAX_LEN];
	size_t i;

	for (i = 0; f->name[i] != '\0' && i + 1 < sizeof(name); i++) {
		char ch = f->name[i];

		name[i] = (i == 0 || f->name[i - 1] == '-') && ch >= 'a' && ch <= 'z'
				  ? (char)(ch - 'a' + 'A') : ch;
	}
	name[i] = '\0';
	evhttp_add_header(h, name, f->value);
}

static void start_reply(struct conn *c)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);

	for (size_t i = 0; i < c->d->nfields; i++)
		add_field(h, &c->d->fields[i]);
	/* The stream ends with its connection: to an HTTP/1.0 keep-alive
	 * request evhttp would answer "Content-Length: 0". */
	evhttp_remove_header(evhttp_request_get_input_headers(c->req), "Connection");
	evhttp_send_reply_start(c->req, 200, NULL);
	evhttp_connection_set_closecb(c->evcon, on_evcon_closed, c);
	tune(c->bev);
}

/* Subscribe a stream whose head is on its way; on failure, close it. */
static int subscribe(struct conn *c, const char *id, size_t len, struct sse_stream **out)
{
	int rc = sse_hub_subscribe(c->d->hub, c->s, id, len, NULL);

	if (rc < 0) {
		sse_event_close(c->s); /* bytes may have gone out: no other answer fits */
		return rc;
	}
	if (out != NULL)
		*out = c->s;
	return 0;
}

/* The request's resume id into buf (ID_INLINE bytes) or, when longer,
 * into *heap (*heap_len bytes, the caller frees): 1, 0 (none) or an error. */
static int resume_id(struct sse_event_driver *d, struct evhttp_request *req, char *buf,
		     char **heap, size_t *heap_len, const char **id, size_t *len)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	size_t hl = h ? strlen(h) : 0, ql = q ? strlen(q) : 0;
	int rc = sse_http_resume_id(h, hl, q, ql, buf, ID_INLINE, len);

	*id = buf;
	if (rc != SSE_ERR_BUFFER)
		return rc;
	*heap_len = *len;
	*heap = mem_alloc(&d->alloc, *heap_len);
	if (*heap == NULL)
		return SSE_ERR_NOMEM;
	*id = *heap;
	return sse_http_resume_id(h, hl, q, ql, *heap, *heap_len, len);
}

static int serve(struct sse_event_driver *d, struct evhttp_request *req, const char *id,
		 size_t len, struct sse_stream **out)
{
	struct conn *c = conn_new(d);

	if (c == NULL) {
		evhttp_send_error(req, 503, NULL);
		return SSE_ERR_NOMEM;
	}
	c->req = req;
	c->evcon = evhttp_request_get_connection(req);
	c->bev = evhttp_connection_get_bufferevent(c->evcon);
	start_reply(c);
	return subscribe(c, id, len, out);
}

int sse_event_serve(struct sse_event_driver *d, struct evhttp_request *req,
		    struct sse_stream **out)
{
	char buf[ID_INLINE], *heap = NULL;
	size_t len = 0, heap_len = 0;
	const char *id;
	int rc;

	if (d == NULL || d->freed || req == NULL) {
		if (req != NULL)
			evhttp_send_error(req, 500, NULL);
		return SSE_ERR_INVALID;
	}
	/* Only a GET has a body: evhttp sends nothing of a HEAD's chunks, and
	 * would leave this stream's pieces for the next connection to send. */
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		evhttp_send_error(req, 405, NULL);
		return SSE_ERR_INVALID;
	}
	sse_event_driver_now(d);
	rc = resume_id(d, req, buf, &heap, &heap_len, &id, &len);
	if (rc < 0)
		evhttp_send_error(req, rc == SSE_ERR_NOMEM ? 503 : 400, NULL);
	else
		rc = serve(d, req, id, rc == 1 ? len : 0, out);
	if (heap != NULL)
		mem_free(&d->alloc, heap, heap_len);
	return rc;
}

static void on_bev_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	(void)arg;
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		bev_close(c);
}

int sse_event_serve_bufferevent(struct sse_event_driver *d, struct bufferevent *bev,
				const char *id, size_t len, struct sse_stream **out)
{
	struct conn *c;

	if (d == NULL || d->freed || bev == NULL) {
		if (bev != NULL)
			bufferevent_free(bev);
		return SSE_ERR_INVALID;
	}
	sse_event_driver_now(d);
	c = conn_new(d);
	if (c == NULL) {
		bufferevent_free(bev);
		return SSE_ERR_NOMEM;
	}
	c->bev = bev;
	bufferevent_setcb(bev, on_bev_read, on_bev_drained, on_bev_event, c);
	tune(bev);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) < 0) {
		bev_close(c);
		return SSE_ERR_IO;
	}
	return subscribe(c, id, id != NULL ? len : 0, out);
}
