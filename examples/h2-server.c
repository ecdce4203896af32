/*
 * sse-h2: the libsse hub over HTTP/2 (nghttp2), and HTTP/1.1 on the same port.
 *
 *     sse-h2 --port P [sse-relay's options] [--tls-cert FILE --tls-key FILE]
 *
 * GET /events subscribes (Last-Event-ID header, or ?lastEventId=), POST
 * /publish[?event=T] publishes its body, as in sse-relay. One thread, one
 * epoll loop. A connection's first bytes say what it speaks:
 *
 *   "PRI * HTTP/2.0..."  HTTP/2 with prior knowledge (h2c);
 *   a TLS ClientHello    TLS (only with --tls-cert/--tls-key, when built
 *                        with OpenSSL): ALPN picks "h2" or "http/1.1", then
 *                        the bytes inside say which, as here;
 *   anything else        an HTTP/1.1 request: with "Upgrade: h2c" and no
 *                        body it switches to HTTP/2 (101, RFC 7540 3.2) and
 *                        is answered on stream 1; else it is answered over
 *                        HTTP/1.1 (one request per connection).
 *
 * How the stream contract maps onto nghttp2. Every subscriber, on an
 * HTTP/2 stream or an HTTP/1.1 connection, has an ASYNCHRONOUS transport
 * (SSE_TRANSPORT_ASYNC): what it takes are pointers into the ring (or the
 * stream's own queue), never copies. They go to the connection's output
 * queue, a list of pieces that one sendmsg() gathers, and are completed
 * as the kernel accepts them. The transport takes bytes only while the
 * connection is being written ("pumped"):
 *
 *   HTTP/2: the adapter libsse-nghttp2 (sse/nghttp2.h) answers GET /events
 *   with a data source that hands out NGHTTP2_DATA_FLAG_NO_COPY lengths;
 *   nghttp2 frames them and sse_h2_send_data() gives h2_send_frame() the
 *   frame header and the pieces, which it queues; sse_h2_complete() as
 *   they go. The adapter resumes deferred data when the stream has bytes
 *   again and wakes the connection (h2_wake(): a pump at the end of the
 *   loop turn). See doc/nghttp2.md.
 *   HTTP/1.1: the same without nghttp2: the writev queues the pieces, and
 *   sse_stream_complete() as they go.
 *
 * A pull stream would copy every frame once per subscriber (into nghttp2's
 * frame buffer, or ours with NO_COPY); this copies none while the kernel
 * keeps up. When the socket is full, the pieces it did not take are copied
 * into the connection's buffer and completed (at most OUT_MAX bytes and a
 * frame per connection): so no frame stays pinned in the ring past a loop
 * turn, whatever the peer does, and a stalled peer cannot block publishing
 * (SSE_ERR_PINNED). A client's RST_STREAM closes only that stream: its
 * subscriber is unsubscribed and freed once the bytes it has in the output
 * queue are written or cancelled (the async completion rule).
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <sse/nghttp2.h>
#ifdef SSE_H2_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#include "server.h"

#define NAME "sse-h2"
#define HEAD_MAX ((size_t)16 * 1024) /* an HTTP/1.1 head; a kept HTTP/2 field */
#define H1_FIELDS 64                 /* header fields of an HTTP/1.1 request */
#define OUT_MAX ((size_t)256 * 1024) /* queued output before a connection stops taking */
#define IOV_BATCH 64                 /* pieces per sendmsg */
#define H2_STREAMS 100               /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define REQUEST_TIMEOUT_MS 10000u    /* accept to a complete HTTP/1.1 request */
#define LINGER_MS 1000u              /* for a client to read our answer and close */
#define GRACE_MS 1000u               /* for HTTP/2 streams to end at shutdown */
#define SWEEP_MS 250u                /* how often timeouts are checked */
#define EPOLL_BATCH 64
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define ROUTE_EVENTS 1
#define ROUTE_PUBLISH 2

/* ---- types */

struct span {
	const char *p; /* NULL: absent */
	size_t n;
};

/* What routing needs of a request, from HTTP/1.1 or HTTP/2 alike. */
struct request {
	struct span method, path, query, last_id, auth;
};

enum field { F_METHOD, F_PATH, F_LAST_ID, F_AUTH, F_COUNT };

struct conn;

/* One exchange: an HTTP/2 stream, or an HTTP/1.1 connection's subscriber. */
struct strm {
	struct conn *c;
	struct strm *prev, *next;  /* the connection's */
	int32_t id;                /* 0: HTTP/1.1 */
	struct sse_stream *s;      /* HTTP/1.1: a subscriber of /events */
	struct sse_h2_stream *h2;  /* HTTP/2: a subscriber of /events */
	size_t queued;             /* HTTP/1.1: its bytes in the output queue */
	bool closed, answered, too_big;
	char *field[F_COUNT];      /* the HTTP/2 request, copied */
	size_t field_len[F_COUNT];
	char *body;
	size_t body_len, body_cap;
	char text[96];             /* a short answer's body (HTTP/2) */
	size_t text_len, text_off;
};

/* Output: owned bytes (frames, heads) and subscribers' bytes, in order. */
struct seg {
	const char *ref;    /* a subscriber's bytes; NULL: owned, at buf + off */
	size_t off, len;
	struct strm *owner; /* with ref: an HTTP/1.1 subscriber, */
	struct sse_h2_stream *h2; /* or an HTTP/2 one */
};

struct out {
	struct seg *seg;
	size_t head, n, cap; /* seg[head..n) are queued */
	char *buf;
	size_t buf_len, buf_cap;
	size_t bytes;        /* queued */
};

enum state {
	C_TLS,       /* TLS handshake */
	C_SNIFF,     /* first bytes: HTTP/2 preface or an HTTP/1.1 head */
	C_H1_BODY,   /* a publish's body */
	C_H1_REPLY,  /* writing a short answer */
	C_H1_STREAM, /* an HTTP/1.1 subscriber */
	C_LINGER,    /* answered; reading until the client closes */
	C_H2,
	C_CLOSED,    /* freed at the end of the loop turn */
};

struct srv;

struct conn {
	struct srv *srv;
	struct conn *prev, *next, *dirty_next;
	int fd;
	enum state state;
	bool dirty, blocked, pumping, close_after;
	bool hold;            /* upgraded: HTTP/2 output waits for the client's preface */
	uint64_t deadline;    /* C_SNIFF, C_TLS, C_H1_BODY, C_LINGER */
	uint64_t last_write;  /* when the socket last took bytes */
	char *in;             /* the HTTP/1.1 head: HEAD_MAX */
	size_t in_len, head_len;
	struct request rq;    /* spans into in */
	char *body;
	size_t body_len, body_want;
	struct out out;
	size_t produced;      /* bytes ever queued: did a pass add any? */
	nghttp2_session *h2;
	struct strm *streams; /* HTTP/2 streams, or the HTTP/1.1 subscriber */
#ifdef SSE_H2_TLS
	SSL *ssl;
#endif
};

struct srv {
	struct server_options opt;
	int epoll_fd, listen_fd, signal_fd;
	struct sse_hub *hub;
	nghttp2_session_callbacks *cbs;
	struct sse_h2_config h2; /* how /events streams are bound (ctx: the conn) */
	struct conn *conns, *dirty, *closed;
	uint64_t now, next_sweep, stop_deadline;
	bool published, stop_requested, stopping, sweep_wanted;
#ifdef SSE_H2_TLS
	SSL_CTX *tls;
#endif
};

static void conn_close(struct conn *c);
static void mark_dirty(struct conn *c);
static void h2_request(struct strm *t);

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static bool span_is(struct span s, const char *lit)
{
	return s.p != NULL && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Room for need items of size bytes: the (maybe moved) array, or NULL. */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return p;
	while (c < need)
		c *= 2;
	q = realloc(p, c * size);
	if (q != NULL)
		*cap = c;
	return q;
}

/* ---- the output queue */

static const char *seg_bytes(const struct out *q, const struct seg *s)
{
	return s->ref != NULL ? s->ref : q->buf + s->off;
}

static struct seg *out_new_seg(struct out *q)
{
	struct seg *a = grow(q->seg, &q->cap, q->n + 1, sizeof(*a));

	if (a == NULL)
		return NULL;
	q->seg = a;
	return &a[q->n++];
}

static bool out_own(struct conn *c, const void *p, size_t len)
{
	struct out *q = &c->out;
	struct seg *last = q->n > q->head ? &q->seg[q->n - 1] : NULL;
	char *b = grow(q->buf, &q->buf_cap, q->buf_len + len, 1);

	if (b == NULL)
		return false;
	q->buf = b;
	memcpy(b + q->buf_len, p, len);
	if (last == NULL || last->ref != NULL || last->off + last->len != q->buf_len) {
		last = out_new_seg(q);
		if (last == NULL)
			return false;
		*last = (struct seg){.off = q->buf_len};
	}
	last->len += len;
	q->buf_len += len;
	q->bytes += len;
	c->produced += len;
	return true;
}

/* A subscriber's bytes, by reference (t for HTTP/1.1, else h2): they
 * stay valid until completed. */
static bool out_ref(struct conn *c, struct strm *t, struct sse_h2_stream *h2, const char *p,
		    size_t len)
{
	struct out *q = &c->out;
	struct seg *last = q->n > q->head ? &q->seg[q->n - 1] : NULL;

	if (last == NULL || last->owner != t || last->h2 != h2 || last->ref + last->len != p) {
		last = out_new_seg(q);
		if (last == NULL)
			return false;
		*last = (struct seg){.ref = p, .owner = t, .h2 = h2};
	}
	last->len += len;
	q->bytes += len;
	if (t != NULL)
		t->queued += len;
	c->produced += len;
	return true;
}

static void strm_finish(struct strm *t);

/* The transport is done with n bytes of s (sent, copied or cancelled). */
static void seg_done(struct seg *s, size_t n)
{
	struct strm *t = s->owner;

	if (s->h2 != NULL) {
		sse_h2_complete(s->h2, n); /* may free it: s->len is 0 then */
		return;
	}
	sse_stream_complete(t->s, n);
	t->queued -= n;
	if (t->closed && t->queued == 0)
		strm_finish(t);
}

static void out_consume(struct out *q, size_t n)
{
	while (n > 0) {
		struct seg *s = &q->seg[q->head];
		size_t k = min_size(n, s->len);

		s->len -= k;
		q->bytes -= k;
		n -= k;
		if (s->len == 0)
			q->head++;
		if (s->ref == NULL) {
			s->off += k;
			continue;
		}
		s->ref += k;
		seg_done(s, k); /* may free the owner: s->len is 0 then */
	}
}

/* The socket is full: copy what it refused of the subscribers' bytes and
 * complete them, so that no frame stays pinned while the peer is slow. */
static bool out_spill(struct out *q)
{
	for (size_t i = q->head; i < q->n; i++) {
		struct seg *s = &q->seg[i];
		char *b;

		if (s->ref == NULL)
			continue;
		b = grow(q->buf, &q->buf_cap, q->buf_len + s->len, 1);
		if (b == NULL)
			return false;
		q->buf = b;
		memcpy(b + q->buf_len, s->ref, s->len);
		s->ref = NULL;
		s->off = q->buf_len;
		q->buf_len += s->len;
		seg_done(s, s->len);
		s->owner = NULL;
		s->h2 = NULL;
	}
	return true;
}

/* Give back the room of written bytes. */
static void out_compact(struct out *q)
{
	size_t lo = q->buf_len;

	if (q->head == q->n) {
		q->head = q->n = q->buf_len = 0;
		return;
	}
	for (size_t i = q->head; i < q->n; i++)
		if (q->seg[i].ref == NULL && q->seg[i].off < lo)
			lo = q->seg[i].off;
	if (lo > 0 && lo >= q->buf_len / 2) {
		memmove(q->buf, q->buf + lo, q->buf_len - lo);
		q->buf_len -= lo;
		for (size_t i = q->head; i < q->n; i++)
			if (q->seg[i].ref == NULL)
				q->seg[i].off -= lo;
	}
	if (q->head >= q->n / 2) {
		memmove(q->seg, q->seg + q->head, (q->n - q->head) * sizeof(*q->seg));
		q->n -= q->head;
		q->head = 0;
	}
}

/* Closing: the subscribers' bytes will never be sent. */
static void out_cancel(struct out *q)
{
	for (size_t i = q->head; i < q->n; i++)
		if (q->seg[i].ref != NULL)
			seg_done(&q->seg[i], q->seg[i].len);
	q->head = q->n = q->buf_len = q->bytes = 0;
}

static void out_free(struct out *q)
{
	out_cancel(q);
	free(q->seg);
	free(q->buf);
	*q = (struct out){0};
}

/* ---- socket I/O, with or without TLS */

enum io { IO_OK, IO_AGAIN, IO_EOF, IO_ERROR };

#ifdef SSE_H2_TLS
static enum io tls_result(struct conn *c, int rc)
{
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return IO_EOF;
	default:
		ERR_clear_error();
		return IO_ERROR;
	}
}
#endif

static enum io io_read(struct conn *c, void *buf, size_t cap, size_t *n)
{
	ssize_t got;

#ifdef SSE_H2_TLS
	if (c->ssl != NULL) {
		int rc = SSL_read(c->ssl, buf, (int)min_size(cap, INT_MAX));

		*n = rc > 0 ? (size_t)rc : 0;
		return rc > 0 ? IO_OK : tls_result(c, rc);
	}
#endif
	do
		got = read(c->fd, buf, cap);
	while (got < 0 && errno == EINTR);
	*n = got > 0 ? (size_t)got : 0;
	if (got > 0)
		return IO_OK;
	if (got == 0)
		return IO_EOF;
	return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERROR;
}

/* TLS writes the first piece only (SSL_MODE_ENABLE_PARTIAL_WRITE). */
static enum io io_writev(struct conn *c, struct iovec *iov, size_t k, size_t *n)
{
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = k};
	ssize_t w;

#ifdef SSE_H2_TLS
	if (c->ssl != NULL) {
		int rc = SSL_write(c->ssl, iov[0].iov_base, (int)min_size(iov[0].iov_len, INT_MAX));

		*n = rc > 0 ? (size_t)rc : 0;
		return rc > 0 ? IO_OK : tls_result(c, rc);
	}
#endif
	do
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	*n = w > 0 ? (size_t)w : 0;
	if (w >= 0)
		return IO_OK;
	return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERROR;
}

/* Write the queue: 0 all written, 1 the socket is full, -1 failed. */
static int out_write(struct conn *c)
{
	struct out *q = &c->out;

	while (q->head < q->n) {
		struct iovec iov[IOV_BATCH];
		size_t k = 0, w = 0;
		enum io io;

		for (size_t i = q->head; i < q->n && k < IOV_BATCH; i++)
			iov[k++] = (struct iovec){(void *)seg_bytes(q, &q->seg[i]), q->seg[i].len};
		io = io_writev(c, iov, k, &w);
		if (io == IO_AGAIN) {
			c->blocked = true;
			c->srv->sweep_wanted = true; /* a stuck HTTP/2 peer is closed there */
			if (!out_spill(q))
				return -1;
			out_compact(q);
			return 1;
		}
		if (io != IO_OK || w == 0)
			return -1;
		c->last_write = c->srv->now;
		out_consume(q, w);
	}
	out_compact(q);
	return 0;
}

/* ---- TLS */

#ifdef SSE_H2_TLS
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x02h2\x08http/1.1";
	unsigned char *sel = NULL;

	(void)ssl, (void)arg;
	if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *tls_new(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* A first byte of 0x16 is a TLS handshake record: a ClientHello. */
static bool tls_sniff(struct conn *c)
{
	unsigned char b;

	if (c->srv->tls == NULL || c->ssl != NULL || c->in_len > 0 ||
	    recv(c->fd, &b, 1, MSG_PEEK) != 1 || b != 0x16)
		return true;
	c->ssl = SSL_new(c->srv->tls);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return false;
	SSL_set_accept_state(c->ssl);
	c->state = C_TLS;
	return true;
}

/* On to C_SNIFF when the handshake is done. */
static void tls_handshake(struct conn *c)
{
	int rc = SSL_do_handshake(c->ssl);

	if (rc == 1)
		c->state = C_SNIFF;
	else if (tls_result(c, rc) != IO_AGAIN)
		conn_close(c);
}
#endif

/* ---- connections */

static void conn_unlink(struct conn **list, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		*list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void conn_push(struct conn **list, struct conn *c)
{
	c->prev = NULL;
	c->next = *list;
	if (*list != NULL)
		(*list)->prev = c;
	*list = c;
}

static void mark_dirty(struct conn *c)
{
	if (c->dirty || c->state == C_CLOSED)
		return;
	c->dirty = true;
	c->dirty_next = c->srv->dirty;
	c->srv->dirty = c;
}

static struct strm *strm_new(struct conn *c, int32_t id)
{
	struct strm *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->c = c;
	t->id = id;
	t->next = c->streams;
	if (c->streams != NULL)
		c->streams->prev = t;
	c->streams = t;
	return t;
}

static void strm_clear_request(struct strm *t)
{
	for (int i = 0; i < F_COUNT; i++) {
		free(t->field[i]);
		t->field[i] = NULL;
	}
	free(t->body);
	t->body = NULL;
	t->body_len = t->body_cap = 0;
}

/* Free it: its transport holds nothing any more. */
static void strm_finish(struct strm *t)
{
	sse_stream_free(t->s);
	strm_clear_request(t);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		t->c->streams = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	free(t);
}

/* The exchange is over: leave the hub now, free once the output queue
 * holds none of its bytes (the asynchronous completion rule). */
static void strm_close(struct strm *t)
{
	if (t->s != NULL)
		sse_hub_unsubscribe(t->c->srv->hub, t->s);
	sse_h2_close(t->h2); /* freed by the adapter once its bytes are done */
	t->h2 = NULL;
	t->closed = true;
	strm_clear_request(t);
	if (t->queued == 0)
		strm_finish(t);
}

/* The request's buffers, once answered. */
static void conn_free_request(struct conn *c)
{
	free(c->in);
	free(c->body);
	c->in = c->body = NULL;
	c->rq = (struct request){0};
}

static void conn_close(struct conn *c)
{
	struct srv *srv = c->srv;

	if (c->state == C_CLOSED)
		return;
	out_cancel(&c->out);
	while (c->streams != NULL)
		strm_close(c->streams); /* nghttp2_session_del() calls no callback */
	nghttp2_session_del(c->h2);
	c->h2 = NULL;
#ifdef SSE_H2_TLS
	SSL_free(c->ssl);
	c->ssl = NULL;
#endif
	close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	conn_free_request(c);
	out_free(&c->out);
	c->state = C_CLOSED;
	conn_unlink(&srv->conns, c);
	conn_push(&srv->closed, c);
}

static void conn_open(struct srv *srv, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	struct conn *c = calloc(1, sizeof(*c));
	int on = 1;

	if (c == NULL || (c->in = malloc(HEAD_MAX)) == NULL) {
		free(c);
		close(fd);
		return;
	}
	*c = (struct conn){.srv = srv, .fd = fd, .state = C_SNIFF, .in = c->in,
			   .deadline = srv->now + REQUEST_TIMEOUT_MS, .last_write = srv->now};
	ev.data.ptr = c;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c->in);
		free(c);
		close(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	conn_push(&srv->conns, c);
	srv->sweep_wanted = true;
}

static void accept_all(struct srv *srv)
{
	for (int i = 0; i < EPOLL_BATCH && srv->listen_fd >= 0; i++) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0)
			conn_open(srv, fd);
		else if (errno != EINTR && errno != ECONNABORTED)
			return; /* EAGAIN, or out of descriptors: level-triggered, it comes back */
	}
}

/* ---- what every request shares: routing and publishing */

/* Split a request target into path and query (without any '#...'). */
static void split_target(const char *p, size_t n, struct request *rq)
{
	const char *q = memchr(p, '?', n), *h = memchr(p, '#', n);
	const char *end = h != NULL ? h : p + n;

	if (q != NULL && q > end)
		q = NULL;
	rq->path = (struct span){p, (size_t)((q != NULL ? q : end) - p)};
	rq->query = q != NULL ? (struct span){q + 1, (size_t)(end - q - 1)} : (struct span){NULL, 0};
}

/* "Bearer" (any case), spaces, then exactly the token. */
static bool bearer_ok(const struct srv *srv, struct span auth)
{
	const char *tok = srv->opt.token;
	size_t i = 6;

	if (tok == NULL)
		return true;
	if (auth.p == NULL || auth.n < 7 || strncasecmp(auth.p, "Bearer", 6) != 0 ||
	    auth.p[6] != ' ')
		return false;
	while (i < auth.n && auth.p[i] == ' ')
		i++;
	return auth.n - i == strlen(tok) && memcmp(auth.p + i, tok, auth.n - i) == 0;
}

/* ?event=NAME, decoded into buf (len 0: none); false if malformed or CR/LF. */
static bool event_type(struct span query, char *buf, size_t cap, size_t *len)
{
	int rc = sse_http_query_param(query.p, query.n, "event", 5, buf, cap, len);

	if (rc == 0)
		*len = 0;
	return rc >= 0 && memchr(buf, '\r', *len) == NULL && memchr(buf, '\n', *len) == NULL;
}

/* ROUTE_EVENTS, ROUTE_PUBLISH, or the status to answer (405: *allow). */
static int route(const struct srv *srv, const struct request *rq, const char **allow)
{
	char type[HEAD_MAX];
	size_t len = 0;

	if (span_is(rq->path, "/events")) {
		*allow = "GET";
		return span_is(rq->method, "GET") ? ROUTE_EVENTS : 405;
	}
	if (!span_is(rq->path, "/publish"))
		return 404;
	*allow = "POST";
	if (!span_is(rq->method, "POST"))
		return 405;
	if (!bearer_ok(srv, rq->auth))
		return 401;
	return event_type(rq->query, type, sizeof(type), &len) ? ROUTE_PUBLISH : 400;
}

/* The request's Last-Event-ID: 0 and the id in out (len 0: live only),
 * or 400 for a malformed escape. */
static int resume_id(const struct request *rq, char *out, size_t cap, size_t *len)
{
	int rc = sse_http_resume_id(rq->last_id.p, rq->last_id.n, rq->query.p, rq->query.n, out,
				    cap, len);

	if (rc == 0)
		*len = 0;
	return rc < 0 ? 400 : 0;
}

/* Publish a body: 202 with the new id and LF in text, or an error status. */
static int publish(struct srv *srv, const struct request *rq, const char *body, size_t len,
		   char *text, size_t cap, size_t *text_len)
{
	char type[HEAD_MAX];
	size_t type_len = 0, id_len = 0;
	struct sse_event ev = {.data = body != NULL ? body : "", .data_len = len,
			       .retry = SSE_RETRY_NONE};
	const char *id;
	int rc;

	if (!event_type(rq->query, type, sizeof(type), &type_len))
		return 400;
	ev.type = type_len > 0 ? type : NULL;
	ev.type_len = type_len;
	rc = sse_hub_publish(srv->hub, &ev, srv->now, NULL);
	if (rc < 0)
		return server_publish_status(rc);
	srv->published = true; /* one sse_hub_flush() at the end of the turn */
	id = sse_replay_newest_id(sse_hub_ring(srv->hub), &id_len);
	id_len = min_size(id_len, cap - 1);
	memcpy(text, id, id_len);
	text[id_len] = '\n';
	*text_len = id_len + 1;
	return 202;
}

/* The hub dropped a subscriber: it missed events, stalled, or failed.
 * Over HTTP/2 only its stream ends (RST_STREAM CANCEL). */
static void on_drop(struct sse_stream *s, int err, void *user)
{
	struct strm *t = sse_stream_user(s);

	(void)user;
	if (err == SSE_ERR_GAP || err == SSE_ERR_STALLED)
		fprintf(stderr, NAME ": dropped a slow subscriber: %s\n", sse_strerror(err));
	if (t->id == 0)
		conn_close(t->c);
	else
		sse_h2_reset(t->h2, NGHTTP2_CANCEL); /* wakes the connection */
}

/* A subscriber for t: an asynchronous transport, the --retry value. */
static int strm_subscriber(struct strm *t, sse_write_fn write, sse_writev_fn writev)
{
	const struct sse_transport tr = {.size = sizeof(tr), .write = write, .writev = writev,
					 .ctx = t, .flags = SSE_TRANSPORT_ASYNC};
	long retry = t->c->srv->opt.retry_ms;
	int rc = sse_stream_new(&t->s, &tr, t, NULL);

	if (rc == 0 && retry != SSE_RETRY_NONE)
		rc = sse_stream_set_retry(t->s, retry);
	if (rc != 0) {
		sse_stream_free(t->s);
		t->s = NULL;
	}
	return rc;
}

/* ---- HTTP/2: the event streams' frames (libsse-nghttp2) */

/* A DATA frame of /events: the header copied, the payload by reference. */
static int h2_send_frame(struct sse_h2_stream *st, const struct sse_h2_frame *f, void *ctx)
{
	static const char zeros[256];
	struct conn *c = ctx;

	if (c->out.bytes >= OUT_MAX)
		return SSE_ERR_WOULDBLOCK; /* nghttp2 offers it again at the next pump */
	if (!out_own(c, f->head, f->head_len))
		return SSE_ERR_NOMEM;
	for (size_t i = 0; i < f->n; i++)
		if (!out_ref(c, NULL, st, f->data[i].base, f->data[i].len))
			return SSE_ERR_NOMEM;
	return f->pad == 0 || out_own(c, zeros, f->pad) ? 0 : SSE_ERR_NOMEM;
}

/* An event stream has bytes for nghttp2: pump at the end of the turn. */
static void h2_wake(struct sse_h2_stream *st, void *ctx)
{
	(void)st;
	mark_dirty(ctx);
}

/* Every other frame, copied (they are small). */
static ssize_t h2_send(nghttp2_session *ss, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	struct conn *c = user;

	(void)ss, (void)flags;
	if (c->out.bytes >= OUT_MAX)
		return NGHTTP2_ERR_WOULDBLOCK;
	return out_own(c, data, len) ? (ssize_t)len : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* ---- HTTP/2: requests and answers */

static nghttp2_nv nv(const char *name, const char *value)
{
	return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
			    NGHTTP2_NV_FLAG_NONE};
}

static ssize_t text_read(nghttp2_session *ss, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct strm *t = src->ptr;
	size_t n = min_size(length, t->text_len - t->text_off);

	(void)ss, (void)id, (void)user;
	memcpy(buf, t->text + t->text_off, n);
	t->text_off += n;
	if (t->text_off == t->text_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* A short answer; text NULL: the status line. */
static void h2_reply(struct strm *t, int status, const char *allow, const char *text, size_t len)
{
	nghttp2_data_provider prd = {.source.ptr = t, .read_callback = text_read};
	char code[8], clen[24];
	nghttp2_nv h[4];
	size_t n = 0;

	if (text == NULL)
		len = (size_t)snprintf(t->text, sizeof(t->text), "%d %s\n", status, server_reason(status));
	else
		memcpy(t->text, text, len = min_size(len, sizeof(t->text)));
	t->text_len = len;
	t->answered = true;
	snprintf(code, sizeof(code), "%d", status);
	snprintf(clen, sizeof(clen), "%zu", len);
	h[n++] = nv(":status", code);
	h[n++] = nv("content-type", "text/plain; charset=utf-8");
	h[n++] = nv("content-length", clen);
	if (status == 405)
		h[n++] = nv("allow", allow);
	else if (status == 401)
		h[n++] = nv("www-authenticate", "Bearer");
	if (nghttp2_submit_response(t->c->h2, t->id, h, n, &prd) != 0)
		nghttp2_submit_rst_stream(t->c->h2, NGHTTP2_FLAG_NONE, t->id,
					  NGHTTP2_INTERNAL_ERROR);
}

/* GET /events: a subscriber, bound to the stream by the adapter. */
static void h2_events(struct strm *t)
{
	struct sse_h2_config cfg = t->c->srv->h2;
	const struct sse_h2_request rq = {
		.path = t->field[F_PATH], .path_len = t->field_len[F_PATH],
		.last_event_id = t->field[F_LAST_ID], .last_event_id_len = t->field_len[F_LAST_ID]};
	int rc;

	cfg.ctx = t->c;
	rc = sse_h2_respond(&t->h2, t->c->h2, t->id, &cfg, &rq, t);
	if (rc == 0)
		t->answered = true;
	else
		h2_reply(t, rc == SSE_ERR_HTTP ? 400 : 503, NULL, NULL, 0);
}

static struct span field_span(const struct strm *t, enum field f)
{
	return (struct span){t->field[f], t->field_len[f]};
}

/* The request is complete (END_STREAM): answer it. */
static void h2_request(struct strm *t)
{
	struct request rq = {.method = field_span(t, F_METHOD), .last_id = field_span(t, F_LAST_ID),
			     .auth = field_span(t, F_AUTH)};
	const char *allow = NULL;
	char text[64];
	size_t len = 0;
	int r = t->too_big ? 431 : 404, st;

	if (t->field[F_PATH] != NULL && !t->too_big) {
		split_target(t->field[F_PATH], t->field_len[F_PATH], &rq);
		r = route(t->c->srv, &rq, &allow);
	}
	if (r == ROUTE_EVENTS) {
		h2_events(t);
	} else if (r == ROUTE_PUBLISH) {
		st = publish(t->c->srv, &rq, t->body, t->body_len, text, sizeof(text), &len);
		h2_reply(t, st, NULL, st == 202 ? text : NULL, len);
	} else {
		h2_reply(t, r, allow, NULL, 0);
	}
	strm_clear_request(t);
}

static bool strm_set_field(struct strm *t, enum field f, const void *p, size_t n)
{
	if (t->field[f] != NULL || p == NULL)
		return true; /* the first wins; NULL: absent */
	if (n > HEAD_MAX) {
		t->too_big = true;
		return true;
	}
	t->field[f] = malloc(n + 1);
	if (t->field[f] == NULL)
		return false;
	memcpy(t->field[f], p, n);
	t->field[f][n] = '\0';
	t->field_len[f] = n;
	return true;
}

static int on_begin_headers(nghttp2_session *ss, const nghttp2_frame *frame, void *user)
{
	struct strm *t;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	t = strm_new(user, frame->hd.stream_id);
	if (t == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(ss, frame->hd.stream_id, t);
	return 0;
}

static int on_header(nghttp2_session *ss, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	static const char *const names[F_COUNT] = {":method", ":path", "last-event-id",
						   "authorization"};
	struct strm *t = nghttp2_session_get_stream_user_data(ss, frame->hd.stream_id);

	(void)flags, (void)user;
	for (int f = 0; t != NULL && f < F_COUNT; f++) {
		if (namelen == strlen(names[f]) && memcmp(name, names[f], namelen) == 0)
			return strm_set_field(t, f, value, valuelen)
				       ? 0
				       : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

/* A request body (a publish): kept up to SERVER_BODY_MAX, then 413. */
static int on_data_chunk(nghttp2_session *ss, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	struct strm *t = nghttp2_session_get_stream_user_data(ss, id);
	char *b;

	(void)flags, (void)user;
	if (t == NULL || t->answered)
		return 0; /* the rest of a body we refused */
	if (len > SERVER_BODY_MAX - t->body_len) {
		strm_clear_request(t);
		h2_reply(t, 413, NULL, NULL, 0);
		return 0;
	}
	b = grow(t->body, &t->body_cap, t->body_len + len, 1);
	if (b == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	t->body = b;
	memcpy(b + t->body_len, data, len);
	t->body_len += len;
	return 0;
}

static int on_frame_recv(nghttp2_session *ss, const nghttp2_frame *frame, void *user)
{
	struct strm *t;

	(void)user;
	if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	t = nghttp2_session_get_stream_user_data(ss, frame->hd.stream_id);
	if (t != NULL && !t->answered)
		h2_request(t);
	return 0;
}

/* The stream ended: sent, reset by the client (RST_STREAM), or refused.
 * Only its own subscriber goes (strm_close(): sse_h2_close()). */
static int on_stream_close(nghttp2_session *ss, int32_t id, uint32_t code, void *user)
{
	struct strm *t = nghttp2_session_get_stream_user_data(ss, id);

	(void)code, (void)user;
	if (t != NULL)
		strm_close(t);
	return 0;
}

static int h2_callbacks(nghttp2_session_callbacks **out)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return -1;
	nghttp2_session_callbacks_set_send_callback(cb, h2_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, sse_h2_send_data);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	*out = cb;
	return 0;
}

static int h2_session(struct conn *c)
{
	if (nghttp2_session_server_new(&c->h2, c->srv->cbs, c) != 0)
		return -1;
	c->state = C_H2;
	return 0;
}

static int h2_settings(struct conn *c)
{
	static const nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_STREAMS},
	};

	return nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, settings, 1) == 0 ? 0 : -1;
}

static void h2_feed(struct conn *c, const void *p, size_t n)
{
	if (n > 0 && nghttp2_session_mem_recv(c->h2, p, n) < 0)
		conn_close(c);
}

/* Prior knowledge: the preface is in c->in. */
static void h2_start(struct conn *c)
{
	if (h2_session(c) != 0 || h2_settings(c) != 0) {
		conn_close(c);
		return;
	}
	h2_feed(c, c->in, c->in_len);
	if (c->state == C_H2) {
		conn_free_request(c);
		mark_dirty(c);
	}
}

static void h2_read(struct conn *c)
{
	uint8_t buf[16384];

	while (c->state == C_H2) {
		size_t n = 0;
		enum io io = io_read(c, buf, sizeof(buf), &n);

		if (io == IO_AGAIN)
			break;
		if (io != IO_OK) {
			conn_close(c); /* the peer left: every stream of it goes */
			return;
		}
		c->hold = false;
		h2_feed(c, buf, n);
	}
	mark_dirty(c);
}

/* Frames out until nghttp2 has none or the socket is full. */
static void h2_pump(struct conn *c)
{
	if (c->hold) { /* the 101 alone: curl 7.88 takes little data after it */
		if (out_write(c) < 0)
			conn_close(c);
		return;
	}
	for (;;) {
		size_t before = c->produced;
		int w;

		if (c->out.bytes < OUT_MAX && nghttp2_session_send(c->h2) != 0) {
			conn_close(c);
			return;
		}
		w = out_write(c);
		if (w < 0)
			conn_close(c);
		if (w != 0)
			return;
		if (c->produced == before || !nghttp2_session_want_write(c->h2))
			break;
	}
	if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
		conn_close(c); /* after GOAWAY, or the peer's */
}

/* ---- HTTP/1.1 */

static bool has_token(const struct sse_http_header *h, const char *tok)
{
	const char *p = h->value, *end = h->value + h->value_len;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma ? comma : end;

		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - p) == strlen(tok) && strncasecmp(p, tok, (size_t)(e - p)) == 0)
			return true;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return false;
}

/* A short answer, then the connection closes. */
static void h1_reply(struct conn *c, int status, const char *allow, const char *text, size_t len)
{
	char head[256], line[64];
	int n;

	if (text == NULL) {
		len = (size_t)snprintf(line, sizeof(line), "%d %s\n", status, server_reason(status));
		text = line;
	}
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: %zu\r\n%s%s%s%sConnection: close\r\n\r\n",
		     status, server_reason(status), len, status == 405 ? "Allow: " : "",
		     status == 405 ? allow : "", status == 405 ? "\r\n" : "",
		     status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
	if (!out_own(c, head, (size_t)n) || !out_own(c, text, len)) {
		conn_close(c);
		return;
	}
	conn_free_request(c);
	c->close_after = true;
	c->state = C_H1_REPLY;
	mark_dirty(c);
}

static int h1_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct strm *t = ctx;
	struct conn *c = t->c;
	size_t got = 0;

	if (!c->pumping) { /* a publish or heartbeat: write at the end of the turn */
		mark_dirty(c);
		return SSE_ERR_WOULDBLOCK;
	}
	for (size_t i = 0; i < n && c->out.bytes < OUT_MAX; i++) {
		size_t k = min_size(iov[i].len, OUT_MAX - c->out.bytes);

		if (!out_ref(c, t, NULL, iov[i].base, k))
			return SSE_ERR_NOMEM;
		got += k;
	}
	*taken = got;
	return got > 0 ? 0 : SSE_ERR_WOULDBLOCK;
}

static int h1_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	const struct sse_iovec one = {buf, len};

	return h1_writev(&one, 1, taken, ctx);
}

/* GET /events: the head goes into the output queue, ahead of the
 * subscriber's bytes. (Not through sse_stream_send_raw(): refused by a
 * transport that takes bytes only while pumped, it would start the
 * stream's stall clock at 0, and the hub would drop it at once.) */
static void h1_events(struct conn *c)
{
	static const struct sse_http_options defaults;
	struct srv *srv = c->srv;
	char id[HEAD_MAX], head[512];
	size_t id_len = 0, head_len = 0;
	struct strm *t;

	if (resume_id(&c->rq, id, sizeof(id), &id_len) != 0) {
		h1_reply(c, 400, NULL, NULL, 0);
		return;
	}
	t = strm_new(c, 0);
	if (t == NULL || strm_subscriber(t, h1_write, h1_writev) != 0 ||
	    sse_hub_subscribe(srv->hub, t->s, id, id_len, NULL) != 0) {
		if (t != NULL)
			strm_close(t); /* took nothing: not pumping */
		h1_reply(c, 503, NULL, NULL, 0);
		return;
	}
	if (sse_http_response_head(&defaults, head, sizeof(head), &head_len) != 0 ||
	    !out_own(c, head, head_len)) {
		conn_close(c);
		return;
	}
	conn_free_request(c);
	c->state = C_H1_STREAM;
	mark_dirty(c);
}

static void h1_publish_done(struct conn *c)
{
	char text[64];
	size_t len = 0;
	int st = publish(c->srv, &c->rq, c->body, c->body_len, text, sizeof(text), &len);

	h1_reply(c, st, NULL, st == 202 ? text : NULL, len);
}

static void h1_read_body(struct conn *c)
{
	while (c->body_len < c->body_want) {
		size_t n = 0;
		enum io io = io_read(c, c->body + c->body_len, c->body_want - c->body_len, &n);

		if (io == IO_AGAIN)
			return;
		if (io != IO_OK) {
			conn_close(c); /* a body cut short is no event */
			return;
		}
		c->body_len += n;
	}
	h1_publish_done(c);
}

/* Content-Length only (chunked: 411), up to SERVER_BODY_MAX. */
static void h1_publish(struct conn *c, const struct sse_http_request *req)
{
	const struct sse_http_header *cl = sse_http_find_header(req, "Content-Length");
	const struct sse_http_header *ex = sse_http_find_header(req, "Expect");
	size_t len = 0, have = c->in_len - c->head_len;

	if (sse_http_find_header(req, "Transfer-Encoding") != NULL || cl == NULL) {
		h1_reply(c, 411, NULL, NULL, 0);
		return;
	}
	for (size_t i = 0; i < cl->value_len && len <= SERVER_BODY_MAX; i++) {
		if (!isdigit((unsigned char)cl->value[i])) {
			h1_reply(c, 400, NULL, NULL, 0);
			return;
		}
		len = len * 10 + (size_t)(cl->value[i] - '0');
	}
	if (cl->value_len == 0 || len > SERVER_BODY_MAX) {
		h1_reply(c, cl->value_len == 0 ? 400 : 413, NULL, NULL, 0);
		return;
	}
	c->body = malloc(len + 1);
	if (c->body == NULL) {
		conn_close(c);
		return;
	}
	c->body_want = len;
	c->body_len = min_size(have, len);
	memcpy(c->body, c->in + c->head_len, c->body_len);
	if (ex != NULL && c->body_len < len && has_token(ex, "100-continue")) {
		if (!out_own(c, "HTTP/1.1 100 Continue\r\n\r\n", 25)) {
			conn_close(c);
			return;
		}
		mark_dirty(c);
	}
	c->state = C_H1_BODY;
	h1_read_body(c);
}

/* The settings of an "Upgrade: h2c" request: base64url (RFC 4648 5). */
static bool base64url(const struct sse_http_header *h, uint8_t *out, size_t cap, size_t *len)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	int bits = 0;

	*len = 0;
	for (size_t i = 0; i < h->value_len && h->value[i] != '='; i++) {
		const char *d = memchr(abc, h->value[i], 64);

		if (d == NULL)
			return false;
		acc = (acc << 6) | (uint32_t)(d - abc);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (*len == cap)
				return false;
			out[(*len)++] = (uint8_t)(acc >> bits);
		}
	}
	return true;
}

/* Plain HTTP/1.1 with "Upgrade: h2c", HTTP2-Settings and no body. */
static bool h1_wants_h2(const struct conn *c, const struct sse_http_request *req)
{
	const struct sse_http_header *up = sse_http_find_header(req, "Upgrade");
	const struct sse_http_header *cl = sse_http_find_header(req, "Content-Length");

#ifdef SSE_H2_TLS
	if (c->ssl != NULL)
		return false; /* h2c is for cleartext; over TLS, ALPN says h2 */
#else
	(void)c;
#endif
	return up != NULL && has_token(up, "h2c") &&
	       sse_http_find_header(req, "HTTP2-Settings") != NULL &&
	       sse_http_find_header(req, "Transfer-Encoding") == NULL &&
	       (cl == NULL || (cl->value_len == 1 && cl->value[0] == '0'));
}

/* 101, our SETTINGS, then the request is answered as stream 1. */
static void h1_upgrade(struct conn *c, const struct sse_http_request *req)
{
	static const char sw[] =
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
	uint8_t settings[512];
	size_t slen = 0;
	struct strm *t;

	if (!base64url(sse_http_find_header(req, "HTTP2-Settings"), settings, sizeof(settings),
		       &slen)) {
		h1_reply(c, 400, NULL, NULL, 0);
		return;
	}
	t = strm_new(c, 1);
	if (t == NULL || !out_own(c, sw, sizeof(sw) - 1) || h2_session(c) != 0 ||
	    nghttp2_session_upgrade2(c->h2, settings, slen, span_is(c->rq.method, "HEAD"), t) ||
	    h2_settings(c) != 0 || !strm_set_field(t, F_METHOD, req->method, req->method_len) ||
	    !strm_set_field(t, F_PATH, req->target, req->target_len) ||
	    !strm_set_field(t, F_LAST_ID, c->rq.last_id.p, c->rq.last_id.n) ||
	    !strm_set_field(t, F_AUTH, c->rq.auth.p, c->rq.auth.n)) {
		conn_close(c);
		return;
	}
	h2_request(t);
	c->hold = c->in_len == c->head_len;
	h2_feed(c, c->in + c->head_len, c->in_len - c->head_len); /* the client's preface */
	if (c->state == C_H2) {
		conn_free_request(c);
		mark_dirty(c);
	}
}

static struct span header_span(const struct sse_http_request *req, const char *name)
{
	const struct sse_http_header *h = sse_http_find_header(req, name);

	return h != NULL ? (struct span){h->value, h->value_len} : (struct span){NULL, 0};
}

static void h1_request(struct conn *c, const struct sse_http_request *req)
{
	struct request *rq = &c->rq;
	const char *allow = NULL;
	int r;

	rq->method = (struct span){req->method, req->method_len};
	rq->last_id = header_span(req, "Last-Event-ID");
	rq->auth = header_span(req, "Authorization");
	split_target(req->target, req->target_len, rq);
	c->head_len = req->head_len;
	if (h1_wants_h2(c, req)) {
		h1_upgrade(c, req);
		return;
	}
	r = route(c->srv, rq, &allow);
	if (r == ROUTE_EVENTS)
		h1_events(c);
	else if (r == ROUTE_PUBLISH)
		h1_publish(c, req);
	else
		h1_reply(c, r, allow, NULL, 0);
}

/* 1: the bytes so far are the HTTP/2 preface, 0: could be, -1: are not. */
static int preface(const struct conn *c)
{
	size_t n = min_size(c->in_len, sizeof(H2_PREFACE) - 1);

	if (memcmp(c->in, H2_PREFACE, n) != 0)
		return -1;
	return n == sizeof(H2_PREFACE) - 1 ? 1 : 0;
}

/* New first bytes: true when the connection has left C_SNIFF. */
static bool sniffed(struct conn *c)
{
	struct sse_http_header fields[H1_FIELDS];
	struct sse_http_request req = {.headers = fields, .header_cap = H1_FIELDS};
	int p = preface(c), rc;

	if (p >= 0) {
		if (p == 1)
			h2_start(c);
		return p == 1;
	}
	rc = sse_http_parse_request(c->in, c->in_len, &req);
	if (rc == SSE_ERR_INCOMPLETE)
		return false;
	if (rc == 0)
		h1_request(c, &req);
	else
		h1_reply(c, rc == SSE_ERR_TOO_LARGE ? 431 : 400, NULL, NULL, 0);
	return true;
}

static void read_head(struct conn *c)
{
	while (c->state == C_SNIFF) {
		size_t n = 0;
		enum io io;

		if (c->in_len == HEAD_MAX) {
			h1_reply(c, 431, NULL, NULL, 0);
			return;
		}
		io = io_read(c, c->in + c->in_len, HEAD_MAX - c->in_len, &n);
		if (io == IO_AGAIN)
			return;
		if (io != IO_OK) {
			conn_close(c);
			return;
		}
		c->in_len += n;
		if (sniffed(c))
			return;
	}
}

/* Input that no longer matters; the peer closing ends a subscriber or a
 * linger (not an answer being written: it may have half-closed). */
static void discard(struct conn *c)
{
	char sink[4096];
	size_t n;
	enum io io;

	while ((io = io_read(c, sink, sizeof(sink), &n)) == IO_OK)
		;
	if (io != IO_AGAIN && c->state != C_H1_REPLY)
		conn_close(c);
}

/* The answer is out: FIN, then read until the client closes (closing with
 * unread input would reset the connection and could lose the answer). */
static void h1_linger(struct conn *c)
{
#ifdef SSE_H2_TLS
	if (c->ssl != NULL)
		(void)SSL_shutdown(c->ssl);
#endif
	(void)shutdown(c->fd, SHUT_WR);
	c->state = C_LINGER;
	c->deadline = c->srv->now + LINGER_MS;
	discard(c);
}

/* Write what the subscriber owes and the queue, until done or full. */
static void h1_pump(struct conn *c)
{
	for (;;) {
		int rc = 0, w;

		if (c->state == C_H1_STREAM) {
			c->pumping = true;
			rc = sse_hub_writable(c->srv->hub, c->streams->s); /* drops: on_drop() */
			c->pumping = false;
			if (c->state == C_CLOSED)
				return;
		}
		w = out_write(c);
		if (w < 0) {
			conn_close(c);
			return;
		}
		if (w > 0 || rc != SSE_ERR_WOULDBLOCK)
			break;
	}
	if (c->close_after && c->out.bytes == 0)
		h1_linger(c);
}

/* ---- the loop */

static void conn_input_once(struct conn *c)
{
	switch (c->state) {
	case C_TLS:
#ifdef SSE_H2_TLS
		tls_handshake(c);
#endif
		return;
	case C_SNIFF:
#ifdef SSE_H2_TLS
		if (!tls_sniff(c)) {
			conn_close(c);
			return;
		}
		if (c->state == C_TLS)
			return;
#endif
		read_head(c);
		return;
	case C_H1_BODY:
		h1_read_body(c);
		return;
	case C_H2:
		h2_read(c);
		return;
	case C_H1_REPLY:
	case C_H1_STREAM:
	case C_LINGER:
		discard(c);
		return;
	case C_CLOSED:
		return;
	}
}

/* Read until the socket is empty, in each state the bytes lead to: the
 * loop is edge-triggered, so nothing may be left unread. */
static void conn_input(struct conn *c)
{
	enum state before;

	do {
		before = c->state;
		conn_input_once(c);
	} while (c->state != before && c->state != C_CLOSED);
}

static void conn_event(struct conn *c, uint32_t events)
{
	if (c->state == C_CLOSED)
		return; /* closed earlier in this turn */
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	c->blocked = false; /* EPOLLOUT, or (TLS) input a write may wait for: try */
	conn_input(c);
	mark_dirty(c);
}

/* A connection whose socket is full waits for its next event. */
static void pump(struct conn *c)
{
	if (c->blocked)
		return;
	if (c->state == C_H2)
		h2_pump(c);
	else if (c->state == C_H1_REPLY || c->state == C_H1_STREAM || c->state == C_H1_BODY)
		h1_pump(c);
}

static void pump_dirty(struct srv *srv)
{
	while (srv->dirty != NULL) {
		struct conn *c = srv->dirty;

		srv->dirty = c->dirty_next;
		c->dirty = false;
		pump(c);
	}
}

/* Requests and lingers that take too long; HTTP/2 connections whose
 * socket took nothing for the stall time while owing bytes. */
static void sweep(struct srv *srv)
{
	struct conn *c, *next;

	if (srv->now < srv->next_sweep)
		return;
	srv->next_sweep = srv->now + SWEEP_MS;
	srv->sweep_wanted = false;
	for (c = srv->conns; c != NULL; c = next) {
		bool timed = c->state == C_SNIFF || c->state == C_TLS || c->state == C_H1_BODY ||
			     c->state == C_LINGER || (c->state == C_H2 && c->hold);
		bool owing = c->state == C_H2 && c->out.bytes > 0;

		next = c->next;
		if ((timed && srv->now >= c->deadline) ||
		    (owing && srv->now - c->last_write >= srv->opt.stall_ms))
			conn_close(c);
		else
			srv->sweep_wanted = srv->sweep_wanted || timed || owing;
	}
}

static void reap(struct srv *srv)
{
	while (srv->closed != NULL) {
		struct conn *c = srv->closed;

		conn_unlink(&srv->closed, c);
		free(c);
	}
}

/* Shutdown: HTTP/1.1 subscribers close; an HTTP/2 one ends its stream
 * cleanly (END_STREAM) once it owes nothing. */
static int stop_subscriber(struct sse_stream *s, void *ctx)
{
	struct strm *t = sse_stream_user(s);

	(void)ctx;
	if (t->id == 0)
		conn_close(t->c);
	else
		sse_h2_end(t->h2); /* wakes the connection */
	return 0;
}

static void begin_stop(struct srv *srv)
{
	struct conn *c, *next;

	srv->stopping = true;
	srv->stop_deadline = srv->now + GRACE_MS;
	close(srv->listen_fd);
	srv->listen_fd = -1;
	sse_hub_visit(srv->hub, stop_subscriber, NULL);
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_H2) {
			nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
					      nghttp2_session_get_last_proc_stream_id(c->h2),
					      NGHTTP2_NO_ERROR, NULL, 0);
			mark_dirty(c);
		} else if (c->state != C_LINGER && c->state != C_H1_REPLY) {
			conn_close(c);
		}
	}
}

static int wait_ms(const struct srv *srv, uint64_t next)
{
	if (srv->sweep_wanted && srv->next_sweep < next)
		next = srv->next_sweep;
	if (srv->stopping && srv->stop_deadline < next)
		next = srv->stop_deadline;
	if (next == SSE_NO_DEADLINE)
		return -1;
	return next <= srv->now ? 0 : (int)min_size(next - srv->now, INT_MAX);
}

static void dispatch(struct srv *srv, const struct epoll_event *ev)
{
	struct signalfd_siginfo si;

	if (ev->data.ptr == &srv->listen_fd)
		accept_all(srv);
	else if (ev->data.ptr == &srv->signal_fd)
		while (read(srv->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			srv->stop_requested = true;
	else
		conn_event(ev->data.ptr, ev->events);
}

/* One turn: the clock and due heartbeats, the events, one fan-out for
 * the turn's publishes, timeouts, then every connection that has
 * something to write is written once, and closed ones are freed. */
static int run(struct srv *srv)
{
	struct epoll_event events[EPOLL_BATCH];
	int n = 0;

	for (;;) {
		uint64_t next = SSE_NO_DEADLINE;

		srv->now = server_now_ms();
		sse_hub_tick(srv->hub, srv->now, NULL);
		for (int i = 0; i < n; i++)
			dispatch(srv, &events[i]);
		if (srv->published) {
			srv->published = false;
			sse_hub_flush(srv->hub);
		}
		if (srv->stop_requested && !srv->stopping)
			begin_stop(srv);
		sweep(srv);
		sse_hub_tick(srv->hub, srv->now, &next); /* streams that joined this turn */
		pump_dirty(srv);
		reap(srv);
		if (srv->stopping && (srv->conns == NULL || srv->now >= srv->stop_deadline))
			return 0;
		n = epoll_wait(srv->epoll_fd, events, EPOLL_BATCH, wait_ms(srv, next));
		if (n < 0 && errno != EINTR) {
			perror(NAME ": epoll_wait");
			return -1;
		}
		n = n < 0 ? 0 : n;
	}
}

/* ---- setting up and tearing down */

static int open_signals(void)
{
	signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(2) */
	return server_signals();
}

static int watch(struct srv *srv, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};

	return epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int srv_init(struct srv *srv)
{
	int rc;

	srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	srv->signal_fd = open_signals();
	if (srv->epoll_fd < 0 || srv->signal_fd < 0 ||
	    watch(srv, srv->listen_fd, &srv->listen_fd) < 0 ||
	    watch(srv, srv->signal_fd, &srv->signal_fd) < 0 || h2_callbacks(&srv->cbs) != 0) {
		fprintf(stderr, NAME ": setup: %s\n", strerror(errno));
		return -1;
	}
	rc = server_hub_new(&srv->opt, on_drop, srv, &srv->hub);
	if (rc < 0)
		fprintf(stderr, NAME ": setup: %s\n", sse_strerror(rc));
	sse_h2_config_init(&srv->h2);
	srv->h2.hub = srv->hub;
	srv->h2.send = h2_send_frame;
	srv->h2.wake = h2_wake;
	srv->h2.retry_ms = srv->opt.retry_ms;
	return rc < 0 ? -1 : 0;
}

static void srv_free(struct srv *srv)
{
	while (srv->conns != NULL)
		conn_close(srv->conns);
	reap(srv);
	sse_hub_free(srv->hub);
	nghttp2_session_callbacks_del(srv->cbs);
#ifdef SSE_H2_TLS
	SSL_CTX_free(srv->tls);
#endif
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->signal_fd >= 0)
		close(srv->signal_fd);
	if (srv->epoll_fd >= 0)
		close(srv->epoll_fd);
}

/* --tls-cert FILE --tls-key FILE are ours: taken out of argv before
 * server_options() reads sse-relay's options. */
static int tls_options(struct srv *srv, int *argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	int n = 1;

	for (int i = 1; i < *argc; i++) {
		bool is_cert = strcmp(argv[i], "--tls-cert") == 0;

		if ((is_cert || strcmp(argv[i], "--tls-key") == 0) && i + 1 < *argc)
			*(is_cert ? &cert : &key) = argv[++i];
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	*argc = n;
	if (cert == NULL && key == NULL)
		return 0;
#ifdef SSE_H2_TLS
	if (cert != NULL && key != NULL && (srv->tls = tls_new(cert, key)) != NULL)
		return 0;
	fprintf(stderr, NAME ": TLS needs a usable --tls-cert and --tls-key\n");
#else
	(void)srv;
	fprintf(stderr, NAME ": built without OpenSSL: no --tls-cert/--tls-key\n");
#endif
	return -1;
}

int main(int argc, char **argv)
{
	struct srv srv = {.epoll_fd = -1, .listen_fd = -1, .signal_fd = -1};
	int rc = tls_options(&srv, &argc, argv);

	if (rc == 0)
		rc = server_options(argc, argv, &srv.opt);
	if (rc != 0) {
		srv_free(&srv);
		return rc > 0 ? 0 : 2;
	}
	srv.listen_fd = server_listen(NAME, &srv.opt);
	rc = srv.listen_fd < 0 ? -1 : srv_init(&srv);
	if (rc == 0)
		rc = server_announce(NAME, srv.listen_fd);
	if (rc == 0)
		rc = run(&srv);
	if (rc == 0)
		fprintf(stderr, NAME ": stopped\n");
	srv_free(&srv);
	return rc == 0 ? 0 : 1;
}
