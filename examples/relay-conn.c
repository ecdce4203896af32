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
#include <pthread.h>
#include <stddef.h>
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

/* Move c, just appended, back to its place by deadline (the expiry
 * slot's list): tokens of one lifetime come in order, so it rarely moves. */
static void list_sift_back(struct conn_list *l, struct conn *c)
{
	struct conn *at = c->prev;

	while (at != NULL && at->deadline > c->deadline)
		at = at->prev;
	if (at == c->prev)
		return;
	l->tail = c->prev; /* c is the tail: unlink it */
	l->tail->next = NULL;
	c->prev = at;
	c->next = at != NULL ? at->next : l->head;
	c->next->prev = c; /* not NULL: c moved before someone */
	if (at != NULL)
		at->next = c;
	else
		l->head = c;
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

static struct conn_list *list_for(struct conn *c, enum conn_state state)
{
	struct relay *r = c->relay;

	switch (state) {
	case CONN_READING_HEAD:
	case CONN_READING_BODY:
	case CONN_RESPONDING:
		return &r->requests;
	case CONN_LINGERING:
		return &r->lingering;
	case CONN_STREAMING:
		return &r->subscribers[c->slot];
	case CONN_DRAINING:
		return &r->draining;
	case CONN_CLOSED:
		break;
	}
	return &r->closed;
}

/* Change state, and list if need be. A request keeps its place on its
 * list, and so its deadline, from head to body to response. */
static void conn_enter(struct conn *c, enum conn_state state)
{
	struct conn_list *from = list_for(c, c->state);
	struct conn_list *to = list_for(c, state);

	c->state = (uint8_t)state;
	if (from != to) {
		list_unlink(from, c);
		list_append(to, c);
	}
}

/* ---- opening and closing */

size_t conn_local_subscribers(const struct relay *r)
{
	size_t n = r->draining.len;

	for (size_t i = 0; i < RELAY_LIFETIME_SLOTS; i++)
		n += r->subscribers[i].len;
	return n;
}

/* Those of the other loop threads too (--threads): on the main thread. */
size_t conn_subscriber_count(const struct relay *r)
{
	return conn_local_subscribers(r) + threads_conns(r);
}

size_t conn_count(const struct relay *r)
{
	return r->requests.len + r->lingering.len + conn_subscriber_count(r);
}

/* xorshift64: jitter needs spread, not quality. A number below `below`
 * (> 0). */
uint64_t relay_random(struct relay *r, uint64_t below)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->rng % below;
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

/* ---- the body budget
 *
 * Bodies are bounded one by one (SERVER_BODY_MAX) and all together: a
 * request takes what its Content-Length announces from the relay's budget
 * (--body-memory) before it reads a byte of body, and gives it back with
 * its buffer. One that cannot get it waits, not reading (its client
 * blocks on a full window), until budget comes back or its request
 * deadline passes. Taking the whole length at once means two large
 * bodies never each hold half of what both need.
 *
 * Bodies over RELAY_SMALL_BODY together hold at most half the budget (at
 * least one body of SERVER_BODY_MAX): slow clients announcing the
 * largest bodies can fill that half, not the other, so small publishes
 * (the usual kind) still get in at once. Small ones may use it all. */

/* Budget that bodies over RELAY_SMALL_BODY may hold together. */
static size_t large_share(const struct relay *r)
{
	size_t half = r->lim.body_memory / 2;

	return half > SERVER_BODY_MAX ? half : SERVER_BODY_MAX;
}

static bool budget_fits(const struct relay *r, size_t want)
{
	return want <= r->body_budget &&
	       (want <= RELAY_SMALL_BODY || want <= large_share(r) - r->large_taken);
}

static bool budget_take(struct conn *c)
{
	struct relay *r = c->relay;
	struct conn_request *rq = c->u.req;

	if (rq->budgeted || rq->body_want == 0)
		return true;
	if (!budget_fits(r, rq->body_want))
		return false;
	r->body_budget -= rq->body_want;
	if (rq->body_want > RELAY_SMALL_BODY)
		r->large_taken += rq->body_want;
	rq->budgeted = true;
	return true;
}

/* The body buffer goes, and its budget with it. */
static void body_release(struct conn *c)
{
	struct relay *r = c->relay;
	struct conn_request *rq = c->u.req;

	free(rq->body);
	rq->body = NULL;
	rq->body_len = rq->body_cap = 0;
	if (rq->budgeted) {
		r->body_budget += rq->body_want;
		if (rq->body_want > RELAY_SMALL_BODY)
			r->large_taken -= rq->body_want;
		rq->budgeted = false;
		r->budget_freed = r->waiting > 0;
	}
	if (c->flags & CONN_F_WAITING) {
		c->flags &= (uint8_t)~CONN_F_WAITING;
		r->waiting--;
	}
}

/* The request and its buffers: not needed once it has been answered. */
static void free_request(struct conn *c)
{
	if (c->u.req == NULL)
		return;
	if (c->u.req->pending != NULL)
		cluster_forget(c); /* a publish waiting for Redis gets no answer */
	body_release(c);
	free(c->u.req->owned);
	free(c->u.req);
	c->u.req = NULL;
}

/* A subscriber's stream and hub: its own (CONN_F_CHANNEL), or the default's. */
static struct sse_stream *conn_stream(const struct conn *c)
{
	return (c->flags & CONN_F_CHANNEL) ? c->u.sub->stream : c->u.stream;
}

static struct sse_hub *conn_hub(const struct conn *c)
{
	return (c->flags & CONN_F_CHANNEL) ? channel_hub(c->u.sub->ch) : c->relay->hub;
}

/* The socket has room: write what the subscriber's hub (or hubs) owe it. */
static void conn_writable(struct conn *c)
{
	if (conn_is_merged(c))
		merge_writable(c);
	else
		(void)sse_hub_writable(conn_hub(c), conn_stream(c));
}

/* Whatever the connection's state holds: its request, or its stream. */
static void free_state_part(struct conn *c)
{
	if (c->state == CONN_STREAMING || c->state == CONN_DRAINING) {
		if (conn_is_merged(c)) { /* its streams, its channels (relay-merge.c) */
			merge_free(c->relay, merge_of(c));
			c->flags &= (uint8_t)~CONN_F_CHANNEL;
		} else {
			sse_stream_free(conn_stream(c)); /* also leaves the hub and its scheduler */
		}
		if (c->flags & CONN_F_CHANNEL) {
			channel_release(c->relay, c->u.sub->ch);
			free(c->u.sub);
			c->flags &= (uint8_t)~CONN_F_CHANNEL;
		}
		c->u.stream = NULL;
	} else {
		free_request(c);
	}
}

/* why: what ended a subscriber, for the access log; NULL: see stream_end(). */
static void close_because(struct conn *c, const char *why)
{
	if (c->state == CONN_CLOSED)
		return;
	access_log_close(c, why);
	free_state_part(c);
	peers_release(c);
	close(c->fd); /* also leaves the epoll set: the descriptor is never duplicated */
	c->fd = -1;
	conn_enter(c, CONN_CLOSED);
}

void conn_close(struct conn *c)
{
	close_because(c, NULL);
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

static void conn_open(struct relay *r, int fd, uint8_t flags)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	struct conn *c;

	/* Past the cap, a few more are let in to be told to come back
	 * later (relay-routes.c); past those, there is no room to answer. */
	if (conn_count(r) >= r->lim.max_conns + RELAY_FD_OVERHEAD / 2) {
		r->m.refused_no_room++;
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
	c->flags = flags;
	c->born = ops_clock(r);
	c->deadline = r->now + RELAY_REQUEST_TIMEOUT_MS;
	ev.data.ptr = c;
	/* One address past --max-conns-per-addr: closed before it holds a
	 * descriptor for a request deadline (it asked nothing to answer). */
	if (!peers_accept(c)) {
		r->m.refused_per_addr++;
		free_request(c);
		free(c);
		close(fd);
		return;
	}
	/* Registering reports input that arrived already: no edge is lost. */
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		peers_release(c);
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
static void shed_connection(struct relay *r, int listen_fd)
{
	int fd;

	if (r->spare_fd < 0)
		return;
	close(r->spare_fd);
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		r->m.refused_no_room++;
		close(fd);
	}
	r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* flags: the connection's first (CONN_F_OPS for --metrics-bind). */
void conn_accept_from(struct relay *r, int listen_fd, uint8_t flags)
{
	for (int i = 0; i < ACCEPT_BATCH && listen_fd >= 0; i++) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_open(r, fd, flags);
		} else if (errno == EMFILE || errno == ENFILE) {
			shed_connection(r, listen_fd);
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ||
			   errno == ENOMEM) {
			return; /* level-triggered: the rest is reported again */
		}
		/* Anything else is that one connection's error (accept(2)). */
	}
}

void conn_accept_all(struct relay *r)
{
	conn_accept_from(r, r->listen_fd, 0);
}

/* --threads: out of this loop's epoll set and lists. An event fetched for
 * it in this turn is the one being handled: nothing else finds it. */
void conn_detach(struct conn *c)
{
	(void)epoll_ctl(c->relay->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	list_unlink(list_for(c, c->state), c);
}

/* Into r's. Registering reports what is pending already: no edge is lost. */
bool conn_attach(struct relay *r, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};

	c->relay = r;
	list_append(list_for(c, c->state), c);
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) == 0)
		return true;
	conn_close(c);
	return false;
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
		access_note(c, &req);
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

/* The body can be read once it has budget: the bytes that came with
 * the head first, then the socket's. Bytes past the body in the head
 * buffer are the next request (keep-alive), read after the answer. */
static void body_start(struct conn *c)
{
	struct conn_request *rq = c->u.req;
	size_t len = rq->body_want;
	size_t have = rq->head_len - rq->head_end;

	if (!budget_take(c)) {
		c->flags |= CONN_F_WAITING;
		c->relay->waiting++;
		return; /* "100 Continue" too waits for the budget */
	}
	if (have > len)
		have = len;
	rq->consumed = rq->head_end + have;
	if (have > 0) {
		if (!body_reserve(rq, have)) {
			conn_close(c);
			return;
		}
		memcpy(rq->body, rq->head + rq->head_end, have);
		rq->body_len = have;
	}
	if (have < len && rq->expect_continue && !write_continue(c))
		return;
	read_body(c); /* the rest may be waiting already, and raise no edge */
}

void conn_read_body(struct conn *c, size_t len, bool send_continue, conn_body_fn done)
{
	struct conn_request *rq = c->u.req;

	rq->body_want = len;
	rq->on_body = done;
	rq->expect_continue = send_continue;
	conn_enter(c, CONN_READING_BODY);
	body_start(c);
}

/* Budget came back: requests that wait for it and fit start reading,
 * oldest first (the list is in arrival order). Once per loop turn, not
 * from where budget is given back, which may be deep in a request. */
void conn_grant_bodies(struct relay *r)
{
	struct conn *c, *next;

	if (!r->budget_freed)
		return;
	r->budget_freed = false;
	for (c = r->requests.head; c != NULL && r->waiting > 0; c = next) {
		next = c->next;
		if (!(c->flags & CONN_F_WAITING) || !budget_fits(r, c->u.req->body_want))
			continue;
		c->flags &= (uint8_t)~CONN_F_WAITING;
		r->waiting--;
		body_start(c);
	}
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

/* Keep-alive: the answer is out, and the connection reads its next
 * request, with a fresh deadline (so at the tail of the list, which stays
 * sorted). What the client sent after the body is that request's start;
 * a pipelined one is answered at once. */
static void next_request(struct conn *c)
{
	struct relay *r = c->relay;
	struct conn_request *rq = c->u.req;
	size_t rest = rq->head_len - rq->consumed;
	size_t cap = rq->head_cap;

	body_release(c);
	free(rq->owned);
	memmove(rq->head, rq->head + rq->consumed, rest);
	memset(rq, 0, offsetof(struct conn_request, head));
	rq->head_cap = cap;
	rq->head_len = rest;
	list_unlink(&r->requests, c);
	c->state = CONN_READING_HEAD;
	c->deadline = r->now + RELAY_REQUEST_TIMEOUT_MS;
	c->born = ops_clock(r);
	list_append(&r->requests, c);
	if (rest > 0 && head_received(c))
		return;
	read_head(c); /* we stopped reading at the body's end: no edge will tell */
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
	access_log_request(c, "answered");
	if (rq->keep_alive)
		next_request(c);
	else
		conn_linger(c);
}

/* A complete response; the body must stay valid until it is written
 * (static, or the request's text). An answer closes the connection
 * unless the route kept it alive (a publish whose body was read, from a
 * client that did not ask to close): publishers then reuse theirs. */
void conn_reply(struct conn *c, int status, const char *extra_headers, const char *content_type,
		const char *body, size_t len)
{
	struct conn_request *rq = c->u.req;
	char cors[AUTH_CORS_LINES_MAX];
	size_t cors_len = auth_cors_lines(c, cors, sizeof(cors)); /* --cors-origin */
	int n = snprintf(rq->reply_head, sizeof(rq->reply_head),
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %zu\r\n"
			 "%s%.*s"
			 "X-Content-Type-Options: nosniff\r\n"
			 "%s"
			 "\r\n",
			 status, server_reason(status), content_type, len,
			 extra_headers != NULL ? extra_headers : "", (int)cors_len, cors,
			 rq->keep_alive ? "" : "Connection: close\r\n");

	if (n < 0 || (size_t)n >= sizeof(rq->reply_head)) {
		conn_close(c); /* our own headers outgrew the buffer: a bug, not the client's */
		return;
	}
	rq->reply_head_len = (size_t)n;
	rq->reply_body = body;
	rq->reply_body_len = len;
	rq->reply_sent = 0;
	rq->status = (uint16_t)status;
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

/* A body of ours (malloc'd), freed with the request. */
void conn_reply_owned(struct conn *c, int status, const char *content_type, char *body,
		      size_t len)
{
	c->u.req->owned = body;
	conn_reply(c, status, NULL, content_type, body, len);
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

/* The CORS lines conn_reply() gives an answer, after the status line of
 * the len bytes in reply_head: a page of an allowed origin must read the
 * refusal (its retry), not see a network error. */
static bool add_cors_lines(struct conn *c, size_t *len)
{
	struct conn_request *rq = c->u.req;
	char cors[AUTH_CORS_LINES_MAX];
	size_t n = auth_cors_lines(c, cors, sizeof(cors));
	const char *eol = memchr(rq->reply_head, '\n', *len);
	size_t at = eol != NULL ? (size_t)(eol - rq->reply_head) + 1 : 0;

	if (n == 0)
		return true;
	if (at == 0 || *len + n > sizeof(rq->reply_head))
		return false;
	memmove(rq->reply_head + at + n, rq->reply_head + at, *len - at);
	memcpy(rq->reply_head + at, cors, n);
	*len += n;
	return true;
}

/* Refused for want of room (relay-routes.c): a complete 200 event stream
 * that says only "retry: N", N drawn in a window so that those refused
 * together do not come back together, then close. EventSource takes it
 * as a stream that ended and reconnects after N; any other status would
 * make a browser give up for good, and a reset looks like a failure. */
void conn_retry_later(struct conn *c)
{
	struct conn_request *rq = c->u.req;
	long ms = RELAY_SHED_RETRY_MIN_MS +
		  (long)relay_random(c->relay, RELAY_SHED_RETRY_MAX_MS - RELAY_SHED_RETRY_MIN_MS + 1);
	size_t n = 0;

	rq->keep_alive = false;
	if (sse_http_retry_later(NULL, ms, rq->reply_head, sizeof(rq->reply_head), &n) != 0 ||
	    !add_cors_lines(c, &n)) {
		conn_close(c); /* not reached: the answer fits */
		return;
	}
	rq->reply_head_len = n;
	rq->reply_body = NULL;
	rq->reply_body_len = 0;
	rq->reply_sent = 0;
	rq->status = 200;
	conn_enter(c, CONN_RESPONDING);
	write_reply(c);
}

/* ---- subscribers */

/* The byte at pos of what iov holds. */
static char byte_at(const struct sse_iovec *iov, size_t pos)
{
	while (pos >= iov->len) {
		pos -= iov->len;
		iov++;
	}
	return ((const char *)iov->base)[pos];
}

/* Remember how the bytes written so far end: after "\n\n" the stream is
 * on an event boundary. Frames are whole lines and only a frame ends
 * with an empty line; the response head ends with "\r\n\r\n", not that. */
static void note_tail(struct conn *c, const struct sse_iovec *iov, size_t taken)
{
	bool nl1 = byte_at(iov, taken - 1) == '\n';
	bool nl2 = nl1 && (taken >= 2 ? byte_at(iov, taken - 2) == '\n' : (c->flags & CONN_F_NL1) != 0);

	c->flags &= (uint8_t)~(CONN_F_NL1 | CONN_F_NL2);
	c->flags |= (uint8_t)((nl1 ? CONN_F_NL1 : 0) | (nl2 ? CONN_F_NL2 : 0));
}

/* The pieces of iov up to and with the end of the first frame ending in
 * them (all of them if none does) into cut; nl: a line feed came last. */
static size_t cut_at_frame_end(const struct sse_iovec *iov, size_t n, bool nl,
			       struct sse_iovec *cut)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = iov[i].base;
		size_t len = iov[i].len, j = 0;

		cut[i] = iov[i];
		while (j < len) {
			const char *lf;

			if (nl && p[j] == '\n') {
				cut[i].len = j + 1;
				return i + 1;
			}
			lf = memchr(p + j, '\n', len - j);
			nl = lf != NULL;
			j = lf != NULL ? (size_t)(lf - p) + 1 : len;
		}
	}
	return n;
}

/* A subscriber's transport: the socket, through sse_socket_writev(),
 * noting where the bytes written end. A subscriber draining at the end of
 * its lifetime writes up to the end of the frame it is in, and nothing
 * after it (events keep coming: it resumes them on its next connection).
 * At shutdown none come any more: it writes all it owes. */
static int conn_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct conn *c = ctx;
	struct sse_iovec cut[SSE_IOV_MAX];
	int rc;

	if (c->state == CONN_DRAINING && !(c->flags & CONN_F_LEFT_HUB) && !c->relay->stopping) {
		if (c->flags & CONN_F_NL2)
			return SSE_ERR_WOULDBLOCK; /* on the boundary: conn_drain_boundaries() */
		n = cut_at_frame_end(iov, n < SSE_IOV_MAX ? n : SSE_IOV_MAX,
				     (c->flags & CONN_F_NL1) != 0, cut);
		iov = cut;
	}
	rc = sse_socket_writev(iov, n, taken, &c->fd);
	if (rc == 0 && *taken > 0) {
		note_tail(c, iov, *taken);
		c->sent += *taken;
	}
	return rc;
}

struct sse_transport conn_transport(struct conn *c)
{
	return (struct sse_transport){.size = sizeof(struct sse_transport),
				      .writev = conn_writev, .ctx = c};
}

/* A dropped subscriber's socket may hold a full send buffer the client
 * will never read: an abortive close (a reset) frees it at once, where a
 * plain close() would keep it, retransmitted, for minutes. */
static void close_abortively(struct conn *c, const char *why)
{
	const struct linger lg = {.l_onoff = 1, .l_linger = 0};

	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close_because(c, why);
}

/* A subscriber that fell behind (its client stopped reading) is closed
 * and says so: it reconnects with Last-Event-ID and catches up from the
 * ring, or gets the reset event. One who left is closed quietly. Either
 * way what its socket still holds is dropped. */
static void close_subscriber(struct conn *c, int err)
{
	if (err == SSE_ERR_GAP || err == SSE_ERR_STALLED)
		fprintf(stderr, "sse-relay: dropped a slow subscriber: %s\n", sse_strerror(err));
	close_abortively(c, err == SSE_ERR_GAP ? "gap" : err == SSE_ERR_STALLED ? "stall" : "error");
}

/* The reconnection delay told at shutdown: drawn in [W/10, W], so that
 * the clients of a relay that stops come back spread over the window. */
static long shutdown_retry(struct relay *r)
{
	uint64_t w = r->lim.shutdown_window_ms;

	return (long)(w / 10 + relay_random(r, w - w / 10 + 1));
}

/* A draining subscriber on an event boundary leaves the hub (nothing is
 * cut: it is between frames), is told its retry at shutdown, writes what
 * it still owes of its own (whole frames) and closes. At shutdown it
 * first gets every event published before (a batch not yet delivered
 * too): the boundary that counts is the last one. */
static void drain_step(struct conn *c)
{
	struct relay *r = c->relay;
	struct sse_stream *s = conn_stream(c);
	int rc = 0;

	if (c->state != CONN_DRAINING || (c->flags & CONN_F_LEFT_HUB))
		return;
	if (r->stopping && sse_stream_pending(s) > 0)
		conn_writable(c); /* may drop it: then it is closed */
	if (c->state != CONN_DRAINING || !(c->flags & CONN_F_NL2) ||
	    (r->stopping && sse_stream_pending(s) > 0))
		return;
	/* A rotation counts in the hub's drops_lifetime (/metrics). */
	if (conn_is_merged(c))
		merge_leave(merge_of(c), (c->flags & CONN_F_RETRY) || r->stopping ? SSE_HUB_CLOSED
										 : SSE_HUB_LIFETIME);
	else
		(void)sse_hub_unsubscribe_reason(conn_hub(c), s, (c->flags & CONN_F_RETRY) ||
						 r->stopping ? SSE_HUB_CLOSED : SSE_HUB_LIFETIME);
	c->flags |= CONN_F_LEFT_HUB;
	if (c->flags & CONN_F_RETRY)
		rc = sse_stream_set_retry(s, r->stopping && r->lim.shutdown_window_ms > 0 ?
						     shutdown_retry(r) : (long)r->auth.expiry_retry_ms);
	if (rc == 0)
		rc = sse_stream_flush(s);
	if (rc != SSE_ERR_WOULDBLOCK)
		conn_close(c); /* all written (FIN after the last frame), or failed */
}

/* Close on the next event boundary: at once if the stream is on one,
 * else once the frame it is in is written (conn_writev() stops there);
 * after RELAY_DRAIN_MS, cut (the client drops a frame cut short and
 * resumes from the one before). */
static void begin_drain(struct conn *c, bool retry)
{
	c->deadline = c->relay->now + RELAY_DRAIN_MS;
	if (retry)
		c->flags |= CONN_F_RETRY;
	conn_enter(c, CONN_DRAINING);
	drain_step(c);
}

/* Those that reached a boundary in this turn's fan-out. */
void conn_drain_boundaries(struct relay *r)
{
	struct conn *c, *next;

	for (c = r->draining.head; c != NULL; c = next) {
		next = c->next;
		drain_step(c);
	}
}

/* The socket has room again: write what the stream owes. A failure has
 * dropped it from the hub already, which called conn_subscriber_dropped(). */
static void flush_subscriber(struct conn *c)
{
	if (c->flags & CONN_F_LEFT_HUB) {
		if (sse_stream_flush(conn_stream(c)) != SSE_ERR_WOULDBLOCK)
			conn_close(c); /* drained, or failed */
		return;
	}
	conn_writable(c);
	drain_step(c); /* a no-op unless it is draining and reached a boundary */
}

/* Its lifetime's end, with a tenth of jitter either way: one of
 * RELAY_LIFETIME_SLOTS - 1 steps, whose list it joins; or its token's
 * exp (not_after) when that comes first: no jitter, RELAY_EXPIRY_SLOT. */
static void set_lifetime(struct conn *c, uint64_t not_after)
{
	struct relay *r = c->relay;
	uint64_t life = r->lim.max_lifetime_ms, jitter = life / 10;

	c->slot = 0;
	c->deadline = UINT64_MAX;
	if (life != 0) {
		c->slot = (uint8_t)relay_random(r, RELAY_EXPIRY_SLOT);
		c->deadline = r->now + life - jitter + 2 * jitter * c->slot / (RELAY_EXPIRY_SLOT - 1);
	}
	if (not_after != 0 && not_after < c->deadline) {
		c->slot = RELAY_EXPIRY_SLOT;
		c->deadline = not_after;
	}
}

/* The stream has written the response head and its opening bytes. The
 * request goes: a subscriber is only its stream from now on (and, in a
 * named channel ch, which it holds: a small part apart). Its send
 * buffer is bounded (--sndbuf): what a slow reader is owed waits in the
 * ring, shared, rather than in a kernel buffer of its own. */
void conn_subscribe(struct conn *c, struct sse_stream *s, struct relay_channel *ch)
{
	int sndbuf = c->relay->lim.sndbuf;
	uint64_t not_after = c->u.req->not_after;
	struct channel_sub *sub = ch != NULL ? malloc(sizeof(*sub)) : NULL;

	if (ch != NULL && sub == NULL) {
		sse_stream_free(s);
		conn_close(c); /* bytes went out: no other answer fits */
		return;
	}
	free_request(c);
	c->u.stream = s;
	if (sub != NULL) {
		*sub = (struct channel_sub){.stream = s, .ch = ch};
		channel_hold(ch);
		c->u.sub = sub;
		c->flags |= CONN_F_CHANNEL;
	}
	if (sndbuf > 0)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	set_lifetime(c, not_after);
	conn_enter(c, CONN_STREAMING);
	if (c->slot == RELAY_EXPIRY_SLOT)
		list_sift_back(&c->relay->subscribers[c->slot], c);
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
	bool subscriber = c->state == CONN_STREAMING || c->state == CONN_DRAINING;

	if (c->state == CONN_CLOSED)
		return; /* closed earlier in this loop turn */
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
		if (c->state == CONN_READING_HEAD)
			read_head(c);
		else if (c->state == CONN_READING_BODY && !(c->flags & CONN_F_WAITING))
			read_body(c);
		else if (c->state == CONN_LINGERING || subscriber)
			discard_input(c);
		/* RESPONDING, or waiting for budget: input waits. */
	}
	if (!(events & EPOLLOUT))
		return;
	if (c->state == CONN_RESPONDING)
		write_reply(c);
	else if (c->state == CONN_STREAMING || c->state == CONN_DRAINING)
		flush_subscriber(c);
}

static void expire_list(struct conn_list *l, uint64_t now)
{
	while (l->head != NULL && l->head->deadline <= now)
		conn_close(l->head);
}

/* A request not complete in time (a slow or silent client), a client
 * that does not close after our answer, and a drain that found no
 * boundary in time are closed; subscribers at the end of their lifetime
 * begin to drain. */
void conn_expire(struct relay *r)
{
	expire_list(&r->requests, r->now);
	expire_list(&r->lingering, r->now);
	expire_list(&r->draining, r->now);
	for (size_t i = 0; i < RELAY_LIFETIME_SLOTS; i++) {
		struct conn_list *l = &r->subscribers[i];

		/* At a token's exp, --jwt-expiry retry tells a retry: first. */
		while (l->head != NULL && l->head->deadline <= r->now)
			begin_drain(l->head, i == RELAY_EXPIRY_SLOT && r->auth.expiry_retry_ms > 0);
	}
}

uint64_t conn_next_deadline(const struct relay *r)
{
	const struct conn_list *lists[] = {&r->requests, &r->lingering, &r->draining};
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (lists[i]->head != NULL && lists[i]->head->deadline < next)
			next = lists[i]->head->deadline;
	for (size_t i = 0; i < RELAY_LIFETIME_SLOTS; i++)
		if (r->subscribers[i].head != NULL && r->subscribers[i].head->deadline < next)
			next = r->subscribers[i].head->deadline;
	return next;
}

static void close_list(struct conn_list *l)
{
	while (l->head != NULL)
		conn_close(l->head);
}

/* Shutdown: requests in flight are dropped (their clients retry), and
 * answered ones finish their linger. Subscribers drain: each finishes the
 * frame it is in (the client would discard a frame cut short), is told a
 * jittered retry (--shutdown-retry-window) and closes. */
void conn_stop_all(struct relay *r)
{
	bool retry = r->lim.shutdown_window_ms > 0;

	close_list(&r->requests);
	for (struct conn *c = r->draining.head; c != NULL && retry; c = c->next)
		c->flags |= CONN_F_RETRY; /* drained by their lifetime: not out yet */
	for (size_t i = 0; i < RELAY_LIFETIME_SLOTS; i++)
		while (r->subscribers[i].head != NULL)
			begin_drain(r->subscribers[i].head, retry);
}

void conn_close_all(struct relay *r)
{
	close_list(&r->requests);
	close_list(&r->lingering);
	close_list(&r->draining);
	for (size_t i = 0; i < RELAY_LIFETIME_SLOTS; i++)
		close_list(&r->subscribers[i]);
}

/* ---- connections and streams per client address (--max-conns-per-addr,
 * --max-per-addr) */

#define PEER_BUCKETS 4096u

/* Loop threads (--threads) close their own subscribers: the table is
 * shared, under this lock. Only with a cap on, where it is used at all. */
static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;

/* An address is known while it has a connection counted: all of them
 * with --max-conns-per-addr (from accept), else its streams only. */
struct relay_peer {
	struct relay_peer *next; /* in its hash bucket */
	uint32_t conns;          /* counted connections, its streams among them */
	uint32_t streams;
	uint8_t len;
	unsigned char key[8];
};

int peers_init(struct relay *r)
{
	if (r->lim.max_per_addr == 0 && r->lim.max_conns_per_addr == 0)
		return 0;
	r->peer_seed = r->rng | 1;
	r->peers = calloc(PEER_BUCKETS, sizeof(*r->peers));
	return r->peers != NULL ? 0 : -1;
}

void peers_free(struct relay *r)
{
	for (size_t i = 0; r->peers != NULL && i < PEER_BUCKETS; i++)
		while (r->peers[i] != NULL) {
			struct relay_peer *p = r->peers[i];

			r->peers[i] = p->next;
			free(p);
		}
	free(r->peers);
	r->peers = NULL;
}

/* The address as counted: an IPv4 address; of an IPv6 one its /64, what
 * one host is usually given; an IPv4-mapped one as IPv4. 0: unknown. */
static size_t peer_key(int fd, unsigned char key[8])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const unsigned char *a;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)&ss)->sin_addr, 4);
		return 4;
	}
	if (ss.ss_family != AF_INET6)
		return 0;
	a = ((const struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)&ss)->sin6_addr)) {
		memcpy(key, a + 12, 4);
		return 4;
	}
	memcpy(key, a, 8);
	return 8;
}

/* FNV-1a from a seed of this run, so that no client can aim at a bucket. */
static struct relay_peer **peer_bucket(const struct relay *r, const unsigned char *key,
				       size_t len)
{
	uint64_t h = r->peer_seed;

	for (size_t i = 0; i < len; i++)
		h = (h ^ key[i]) * 0x100000001b3ull;
	return &r->peers[(h ^ (h >> 29)) % PEER_BUCKETS];
}

/* The address's entry, made if need be; NULL: no memory, or (*unknown
 * set) an address not counted. */
static struct relay_peer *peer_get(struct conn *c, bool *unknown)
{
	unsigned char key[8];
	size_t len = peer_key(c->fd, key);
	struct relay_peer **b, *p;

	*unknown = len == 0;
	if (len == 0)
		return NULL;
	b = peer_bucket(c->relay, key, len);
	for (p = *b; p != NULL && (p->len != len || memcmp(p->key, key, len) != 0); p = p->next)
		;
	if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
		memcpy(p->key, key, len);
		p->len = (uint8_t)len;
		p->next = *b;
		*b = p;
	}
	return p;
}

/* A new connection (--max-conns-per-addr): counted until it closes, or
 * refused when its address has as many already. */
bool peers_accept(struct conn *c)
{
	struct relay *r = c->relay;
	struct relay_peer *p;
	bool unknown, ok;

	if (r->lim.max_conns_per_addr == 0)
		return true;
	pthread_mutex_lock(&peers_lock);
	if ((p = peer_get(c, &unknown)) == NULL) {
		ok = unknown; /* no memory: refused */
	} else if (p->conns >= r->lim.max_conns_per_addr) {
		ok = false; /* it has one at least: its entry stays */
	} else {
		p->conns++;
		c->peer = p;
		ok = true;
	}
	pthread_mutex_unlock(&peers_lock);
	return ok;
}

/* May this connection become one more stream of its address? If so it
 * is counted until it closes. */
bool peers_admit(struct conn *c)
{
	struct relay *r = c->relay;
	struct relay_peer *p = c->peer;
	bool unknown = false, ok = false;

	if (r->lim.max_per_addr == 0)
		return true;
	pthread_mutex_lock(&peers_lock);
	if (p == NULL && (p = peer_get(c, &unknown)) != NULL) {
		p->conns++; /* counted from now on */
		c->peer = p;
	}
	if (p == NULL) {
		ok = unknown; /* no memory: refused */
	} else if (p->streams < r->lim.max_per_addr) {
		p->streams++;
		c->flags |= CONN_F_PEER_STREAM;
		ok = true;
	}
	pthread_mutex_unlock(&peers_lock);
	return ok;
}

void peers_release(struct conn *c)
{
	struct relay_peer *p = c->peer, **b;

	if (p == NULL)
		return;
	c->peer = NULL;
	pthread_mutex_lock(&peers_lock);
	if (c->flags & CONN_F_PEER_STREAM)
		p->streams--;
	c->flags &= (uint8_t)~CONN_F_PEER_STREAM;
	if (--p->conns == 0) {
		for (b = peer_bucket(c->relay, p->key, p->len); *b != p; b = &(*b)->next)
			;
		*b = p->next;
		free(p);
	}
	pthread_mutex_unlock(&peers_lock);
}
