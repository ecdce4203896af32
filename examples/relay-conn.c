/*
 * sse-relay: one connection's state machine and its I/O (relay.h has
 * the diagram). What to answer is relay-routes.c's business.
 *
 * Every connection is registered once with epoll, edge-triggered, for
 * input and output, and never modified. Edge-triggered, the kernel
 * reports a socket writable again only after a write found it full,
 * that is only while a stream has pending bytes: an idle subscriber
 * costs nothing, and EPOLLOUT needs no epoll_ctl() to be turned on and
 * off. The rule that comes with it: read until EAGAIN (or until input no
 * longer matters), and write until done or EAGAIN, since an edge that
 * was not used up is not reported twice.
 *
 * Closing a connection closes its descriptor at once but frees the
 * struct only at the end of the loop turn (conn_reap()), so an event
 * fetched for it earlier in the turn finds it CLOSED, not freed.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay.h"

#define ACCEPT_BATCH 64            /* per wakeup, so a flood cannot starve the rest */
#define BODY_FIRST_CAP (16 * 1024) /* a body buffer's first size; it doubles from there */
#define DISCARD_READ (16 * 1024)   /* one read of input that no longer matters */

/* The count of discarded bytes stops just past the bound. */
_Static_assert(RELAY_DISCARD_MAX + DISCARD_READ <= UINT32_MAX, "discarded fits 32 bits");
_Static_assert(RELAY_HEAD_FIRST > 0 && RELAY_HEAD_FIRST <= RELAY_HEAD_MAX, "the head buffer grows");

/* ---- lists */

static void list_append(struct conn_list *l, struct conn *c)
{
	c->prev = l->tail;
	c->next = NULL;
	if (l->tail != NULL)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	l->len++;
}

static void list_unlink(struct conn_list *l, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	l->len--;
}

static struct conn_list *list_for(struct relay *r, enum conn_state state)
{
	switch (state) {
	case CONN_READING_HEAD:
	case CONN_READING_BODY:
	case CONN_RESPONDING:
		return &r->requests;
	case CONN_LINGERING:
		return &r->lingering;
	case CONN_STREAMING:
		return &r->subscribers;
	case CONN_CLOSED:
		break;
	}
	return &r->closed;
}

/* Change state, and list if need be. A request keeps its place on its
 * list, and so its deadline, from head to body to response. */
static void conn_enter(struct conn *c, enum conn_state state)
{
	struct conn_list *from = list_for(c->relay, c->state);
	struct conn_list *to = list_for(c->relay, state);

	c->state = state;
	if (from != to) {
		list_unlink(from, c);
		list_append(to, c);
	}
}

/* ---- opening and closing */

size_t conn_count(const struct relay *r)
{
	return r->requests.len + r->lingering.len + r->subscribers.len;
}

/* A request part with a small head buffer; the rest of it zeroed. */
static struct conn_request *new_request(void)
{
	struct conn_request *rq = malloc(sizeof(*rq) + RELAY_HEAD_FIRST);

	if (rq != NULL) {
		memset(rq, 0, sizeof(*rq));
		rq->head_cap = RELAY_HEAD_FIRST;
	}
	return rq;
}

/* The request and its buffers: not needed once it has been answered. */
static void free_request(struct conn *c)
{
	if (c->u.req == NULL)
		return;
	free(c->u.req->body);
	free(c->u.req);
	c->u.req = NULL;
}

/* Whatever the connection's state holds: its request, or its stream. */
static void free_state_part(struct conn *c)
{
	if (c->state == CONN_STREAMING) {
		sse_stream_free(c->u.stream); /* also leaves the hub and its scheduler */
		c->u.stream = NULL;
	} else {
		free_request(c);
	}
}

void conn_close(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	free_state_part(c);
	close(c->fd); /* also leaves the epoll set: the descriptor is never duplicated */
	c->fd = -1;
	conn_enter(c, CONN_CLOSED);
}

void conn_reap(struct relay *r)
{
	struct conn *c;

	while ((c = r->closed.head) != NULL) {
		list_unlink(&r->closed, c);
		free(c);
	}
}

/* Frames are written whole, one writev per flush: Nagle's algorithm
 * would only hold an event back until the previous one is acknowledged. */
static void set_nodelay(int fd)
{
	int on = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static void conn_open(struct relay *r, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	struct conn *c;

	if (conn_count(r) >= RELAY_MAX_CONNS) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->u.req = new_request()) == NULL) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->relay = r;
	c->state = CONN_READING_HEAD;
	c->deadline = r->now + RELAY_REQUEST_TIMEOUT_MS;
	ev.data.ptr = c;
	/* Registering reports input that arrived already: no edge is lost. */
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free_request(c);
		free(c);
		close(fd);
		return;
	}
	set_nodelay(fd);
	list_append(&r->requests, c);
}

/* Out of descriptors, a pending connection would keep the listening
 * socket ready forever: give back the spare descriptor, accept and
 * close the newcomer (it sees its connection reset), take the spare. */
static void shed_connection(struct relay *r)
{
	int fd;

	if (r->spare_fd < 0)
		return;
	close(r->spare_fd);
	fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void conn_accept_all(struct relay *r)
{
	for (int i = 0; i < ACCEPT_BATCH && r->listen_fd >= 0; i++) {
		int fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_open(r, fd);
		} else if (errno == EMFILE || errno == ENFILE) {
			shed_connection(r);
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ||
			   errno == ENOMEM) {
			return; /* level-triggered: the rest is reported again */
		}
		/* Anything else is that one connection's error (accept(2)). */
	}
}

/* ---- reading */

enum io { IO_OK, IO_AGAIN, IO_EOF, IO_ERROR };

/* One read of at most cap (> 0) bytes. */
static enum io read_some(int fd, char *buf, size_t cap, size_t *n)
{
	ssize_t got;

	do
		got = read(fd, buf, cap);
	while (got < 0 && errno == EINTR);
	if (got > 0) {
		*n = (size_t)got;
		return IO_OK;
	}
	if (got == 0)
		return IO_EOF;
	return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERROR;
}

/* Input that no longer matters: a subscriber has nothing to say, and a
 * lingering client may still be sending the body we refused. Read it
 * until EAGAIN; end of input, an error or too much of it closes. */
static void discard_input(struct conn *c)
{
	char sink[DISCARD_READ];
	size_t n;
	enum io io;

	while ((io = read_some(c->fd, sink, sizeof(sink), &n)) == IO_OK) {
		c->discarded += (uint32_t)n;
		if (c->discarded > RELAY_DISCARD_MAX)
			break;
	}
	if (io != IO_AGAIN)
		conn_close(c);
}

/* Has the head's blank line arrived? It is a line break followed by an
 * empty line, after the empty lines a client may send before a request
 * (RFC 9112 2.2; sse_http_parse_request() skips them too). The search
 * resumes where it stopped, so a head sent a byte at a time still costs
 * O(length) in all. */
static bool head_complete(struct conn_request *rq)
{
	const char *p = rq->head;
	size_t len = rq->head_len, i = rq->scan;

	while (!rq->head_started && i < len && (p[i] == '\r' || p[i] == '\n'))
		i++;
	rq->head_started = rq->head_started || i < len;
	while (rq->head_started && i < len) {
		const char *lf = memchr(p + i, '\n', len - i);
		size_t after;

		if (lf == NULL) {
			i = len;
			break;
		}
		i = (size_t)(lf - p);
		after = len - i - 1; /* bytes after the line feed */
		if (after == 0 || (after == 1 && p[i + 1] == '\r'))
			break; /* cannot tell yet: look here again */
		if (p[i + 1] == '\n' || (p[i + 1] == '\r' && p[i + 2] == '\n'))
			return true;
		i++;
	}
	rq->scan = i;
	return false;
}

/* New bytes of the head arrived. Parse when its end is there, and once
 * at the first bytes, so that what is not HTTP at all (a TLS hello,
 * garbage) is refused at once. Parsing after every read instead would
 * cost O(n^2) for a head sent a byte at a time.
 * Returns true when the connection has left READING_HEAD. */
static bool head_received(struct conn *c)
{
	struct sse_http_header fields[RELAY_HEAD_FIELDS];
	struct sse_http_request req = {.headers = fields, .header_cap = RELAY_HEAD_FIELDS};
	struct conn_request *rq = c->u.req;
	bool complete = head_complete(rq);
	int rc;

	if (!complete && rq->peeked)
		return false;
	rq->peeked = true;
	rc = sse_http_parse_request(rq->head, rq->head_len, &req);
	if (rc == SSE_ERR_INCOMPLETE && !complete)
		return false;
	if (rc == SSE_ERR_TOO_LARGE)
		conn_reply_status(c, 431, NULL); /* more than RELAY_HEAD_FIELDS fields */
	else if (rc != 0)
		conn_reply_status(c, 400, NULL);
	else {
		rq->head_end = req.head_len;
		route_request(c, &req);
	}
	return true;
}

/* A full head buffer doubles, up to RELAY_HEAD_MAX: most heads are a few
 * hundred bytes, and memory should follow what a client sent. Nothing
 * points into the buffer while the head is read (parsing it keeps no
 * pointer until the head is complete), so it may move. */
static bool head_grow(struct conn *c)
{
	struct conn_request *rq = c->u.req;
	size_t cap = rq->head_cap * 2 < RELAY_HEAD_MAX ? rq->head_cap * 2 : RELAY_HEAD_MAX;

	rq = realloc(rq, sizeof(*rq) + cap);
	if (rq == NULL)
		return false;
	rq->head_cap = cap;
	c->u.req = rq;
	return true;
}

static void read_head(struct conn *c)
{
	for (;;) {
		struct conn_request *rq = c->u.req;
		size_t n;
		enum io io;

		if (rq->head_len == RELAY_HEAD_MAX) {
			conn_reply_status(c, 431, NULL);
			return;
		}
		if (rq->head_len == rq->head_cap && !head_grow(c)) {
			conn_close(c);
			return;
		}
		rq = c->u.req;
		io = read_some(c->fd, rq->head + rq->head_len, rq->head_cap - rq->head_len, &n);
		if (io == IO_AGAIN)
			return;
		if (io != IO_OK) {
			conn_close(c); /* gone before it asked anything */
			return;
		}
		rq->head_len += n;
		if (head_received(c))
			return;
	}
}

/* Room for at least `more` bytes of body. The buffer doubles from a
 * small start up to the announced length at most, so memory follows
 * what a client sent, not what its Content-Length claimed. */
static bool body_reserve(struct conn_request *rq, size_t more)
{
	size_t need = rq->body_len + more;
	size_t cap = rq->body_cap ? rq->body_cap : BODY_FIRST_CAP;
	char *p;

	if (need <= rq->body_cap)
		return true;
	while (cap < need)
		cap *= 2;
	if (cap > rq->body_want)
		cap = rq->body_want;
	p = realloc(rq->body, cap);
	if (p == NULL)
		return false;
	rq->body = p;
	rq->body_cap = cap;
	return true;
}

static void read_body(struct conn *c)
{
	struct conn_request *rq = c->u.req;

	while (rq->body_len < rq->body_want) {
		size_t n;
		enum io io;

		if (!body_reserve(rq, 1)) {
			conn_close(c);
			return;
		}
		io = read_some(c->fd, rq->body + rq->body_len, rq->body_cap - rq->body_len, &n);
		if (io == IO_AGAIN)
			return;
		if (io != IO_OK) {
			conn_close(c); /* a body cut short is no event */
			return;
		}
		rq->body_len += n;
	}
	rq->on_body(c, rq->body != NULL ? rq->body : "", rq->body_len);
}

/* Answer "Expect: 100-continue" (curl sends it for large bodies, then
 * waits a second). Nothing was written to this socket yet, so its
 * buffer is empty and takes these few bytes whole. */
static bool write_continue(struct conn *c)
{
	static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
	size_t taken = 0;

	if (sse_socket_write(msg, sizeof(msg) - 1, &taken, &c->fd) == 0 &&
	    taken == sizeof(msg) - 1)
		return true;
	conn_close(c);
	return false;
}

void conn_read_body(struct conn *c, size_t len, bool send_continue, conn_body_fn done)
{
	/* Bytes that came with the head; any past the body are a pipelined
	 * request, which we drop: every answer here closes the connection. */
	struct conn_request *rq = c->u.req;
	size_t have = rq->head_len - rq->head_end;

	if (have > len)
		have = len;
	rq->body_want = len;
	rq->on_body = done;
	conn_enter(c, CONN_READING_BODY);
	if (have > 0) {
		if (!body_reserve(rq, have)) {
			conn_close(c);
			return;
		}
		memcpy(rq->body, rq->head + rq->head_end, have);
		rq->body_len = have;
	}
	if (have < len && send_continue && !write_continue(c))
		return;
	read_body(c); /* the rest may be waiting already, and raise no edge */
}

/* ---- responding */

/* The answer is out: say so with a FIN, then read and drop what the
 * client still sends, until it closes or the linger time is over.
 * Closing at once with unread input would make the kernel send a reset,
 * which can destroy the answer before the client reads it (RFC 9112 9.6). */
static void conn_linger(struct conn *c)
{
	(void)shutdown(c->fd, SHUT_WR);
	free_request(c);
	c->deadline = c->relay->now + RELAY_LINGER_MS;
	conn_enter(c, CONN_LINGERING);
	discard_input(c);
}

/* What is left to write: the rest of the head, then of the body. */
static size_t reply_pieces(const struct conn_request *rq, struct sse_iovec iov[2])
{
	size_t n = 0, off = rq->reply_sent;

	if (off < rq->reply_head_len) {
		iov[n++] = (struct sse_iovec){rq->reply_head + off, rq->reply_head_len - off};
		off = 0;
	} else {
		off -= rq->reply_head_len;
	}
	if (off < rq->reply_body_len)
		iov[n++] = (struct sse_iovec){rq->reply_body + off, rq->reply_body_len - off};
	return n;
}

static void write_reply(struct conn *c)
{
	struct conn_request *rq = c->u.req;

	while (rq->reply_sent < rq->reply_head_len + rq->reply_body_len) {
		struct sse_iovec iov[2];
		size_t n = reply_pieces(rq, iov), taken = 0;
		int rc = sse_socket_writev(iov, n, &taken, &c->fd);

		if (rc == SSE_ERR_WOULDBLOCK)
			return; /* EPOLLOUT comes when there is room */
		if (rc < 0 || taken == 0) {
			conn_close(c);
			return;
		}
		rq->reply_sent += taken;
	}
	conn_linger(c);
}

/* A complete response; the body must stay valid until it is written
 * (static, or the request's text). Every answer closes the connection:
 * keep-alive would need a second state machine turn for little gain here. */
void conn_reply(struct conn *c, int status, const char *extra_headers, const char *content_type,
		const char *body, size_t len)
{
	struct conn_request *rq = c->u.req;
	int n = snprintf(rq->reply_head, sizeof(rq->reply_head),
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %zu\r\n"
			 "%s"
			 "X-Content-Type-Options: nosniff\r\n"
			 "Connection: close\r\n"
			 "\r\n",
			 status, server_reason(status), content_type, len,
			 extra_headers != NULL ? extra_headers : "");

	if (n < 0 || (size_t)n >= sizeof(rq->reply_head)) {
		conn_close(c); /* our own headers outgrew the buffer: a bug, not the client's */
		return;
	}
	rq->reply_head_len = (size_t)n;
	rq->reply_body = body;
	rq->reply_body_len = len;
	rq->reply_sent = 0;
	conn_enter(c, CONN_RESPONDING);
	write_reply(c);
}

void conn_reply_text(struct conn *c, int status, const char *text, size_t len)
{
	char *buf = c->u.req->text;

	if (len > sizeof(c->u.req->text))
		len = sizeof(c->u.req->text);
	memcpy(buf, text, len);
	conn_reply(c, status, NULL, "text/plain; charset=utf-8", buf, len);
}

/* An error's body is its status line, for people reading curl's output. */
void conn_reply_status(struct conn *c, int status, const char *extra_headers)
{
	char *buf = c->u.req->text;
	size_t cap = sizeof(c->u.req->text);
	int n = snprintf(buf, cap, "%d %s\n", status, server_reason(status));

	if (n < 0 || (size_t)n >= cap)
		n = 0;
	conn_reply(c, status, extra_headers, "text/plain; charset=utf-8", buf, (size_t)n);
}

/* ---- subscribers */

/* A subscriber that fell behind (its client stopped reading) is closed
 * and says so: it reconnects with Last-Event-ID and catches up from the
 * ring, or gets the reset event. One who left is closed quietly. */
static void close_subscriber(struct conn *c, int err)
{
	if (err == SSE_ERR_GAP || err == SSE_ERR_STALLED)
		fprintf(stderr, "sse-relay: dropped a slow subscriber: %s\n", sse_strerror(err));
	conn_close(c);
}

/* The socket has room again, or the relay is stopping: write what the
 * stream owes. A failure has dropped it from the hub already, which
 * called conn_subscriber_dropped(). */
static void flush_subscriber(struct conn *c)
{
	int rc = sse_hub_writable(c->relay->hub, c->u.stream);

	if (rc == 0 && c->relay->stopping)
		conn_close(c); /* drained, and nothing more will come */
}

/* The stream has written the response head and its opening bytes. The
 * request goes: a subscriber is only its stream from now on. */
void conn_subscribe(struct conn *c, struct sse_stream *s)
{
	free_request(c);
	c->u.stream = s;
	conn_enter(c, CONN_STREAMING);
	discard_input(c); /* an end of input that came with the request raises no new edge */
}

/* A stream's user pointer is its connection (stream_open()). */
static struct conn *conn_of_stream(struct sse_stream *s)
{
	return sse_stream_user(s);
}

/* The hub dropped a subscriber: it fell behind (its client stopped
 * reading), its heartbeat found the peer gone, or its socket failed. */
void conn_subscriber_dropped(struct sse_stream *s, int err, void *user)
{
	(void)user;
	close_subscriber(conn_of_stream(s), err);
}

/* ---- events, timeouts, shutdown */

void conn_on_event(struct conn *c, uint32_t events)
{
	if (c->state == CONN_CLOSED)
		return; /* closed earlier in this loop turn */
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
		if (c->state == CONN_READING_HEAD)
			read_head(c);
		else if (c->state == CONN_READING_BODY)
			read_body(c);
		else if (c->state == CONN_LINGERING || c->state == CONN_STREAMING)
			discard_input(c);
		/* RESPONDING: input waits for the linger, which reads it. */
	}
	if (!(events & EPOLLOUT))
		return;
	if (c->state == CONN_RESPONDING)
		write_reply(c);
	else if (c->state == CONN_STREAMING)
		flush_subscriber(c);
}

static void expire_list(struct conn_list *l, uint64_t now)
{
	while (l->head != NULL && l->head->deadline <= now)
		conn_close(l->head);
}

/* A request not complete in time (a slow or silent client) and a client
 * that does not close after our answer are closed. */
void conn_expire(struct relay *r)
{
	expire_list(&r->requests, r->now);
	expire_list(&r->lingering, r->now);
}

uint64_t conn_next_deadline(const struct relay *r)
{
	uint64_t next = UINT64_MAX;

	if (r->requests.head != NULL)
		next = r->requests.head->deadline;
	if (r->lingering.head != NULL && r->lingering.head->deadline < next)
		next = r->lingering.head->deadline;
	return next;
}

static void close_list(struct conn_list *l)
{
	while (l->head != NULL)
		conn_close(l->head);
}

/* Shutdown: requests in flight are dropped (their clients retry), and
 * answered ones finish their linger. Subscribers get what can still be
 * written: the library queues whole frames, but the kernel may have
 * taken part of one, and the client would discard a frame cut short. */
void conn_stop_all(struct relay *r)
{
	struct conn *c, *next;

	close_list(&r->requests);
	for (c = r->subscribers.head; c != NULL; c = next) {
		next = c->next;
		flush_subscriber(c); /* closes those that are drained */
	}
}

void conn_close_all(struct relay *r)
{
	close_list(&r->requests);
	close_list(&r->lingering);
	close_list(&r->subscribers);
}
