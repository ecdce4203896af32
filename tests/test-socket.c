/*
 * The socket adapters over real sockets: non-blocking AF_UNIX socketpairs
 * and TCP loopback connections, no mocks. A reader on the other end parses
 * what arrives with sse_parser; expected bytes are written by hand from the
 * WHATWG event stream format. Every wait is bounded: a loop that makes no
 * progress for WATCHDOG_MS fails the test instead of hanging.
 *
 * Also the delivery contract through real sockets with real backpressure
 * (small socket buffers, a reader that reads at its own pace): a client
 * resuming over a backlog of several MiB that holds one multi-MiB frame,
 * a live client receiving one 6 MiB event, each gets every event exactly
 * once; a reader that stops reading is dropped (SSE_ERR_GAP when its ring
 * moves on, SSE_ERR_STALLED after its stall time); and a stream's own
 * memory stays O(1) whatever it owes. And the transport's context is its
 * own: a connection struct whose first member is not the fd.
 *
 * SPDX-License-Identifier: MIT
 */
#define _XOPEN_SOURCE 700 /* POSIX.1-2008 plus setitimer() and IOV_MAX */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"

/* What lib/socket.c sends per sendmsg at most; the same fallback. */
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define WATCHDOG_MS 5000
#define PAYLOAD_LEN 200

enum transport { UNIX_PAIR, TCP_PAIR };

/* ---- time and progress */

static uint64_t now_ms(void)
{
	struct timespec ts;

	ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Fails the test when no progress was made for WATCHDOG_MS. */
struct watchdog {
	uint64_t deadline;
};

static void watchdog_start(struct watchdog *w)
{
	w->deadline = now_ms() + WATCHDOG_MS;
}

static void watchdog_check(struct watchdog *w, int progress, const char *what)
{
	if (progress)
		watchdog_start(w);
	else
		ck_assert_msg(now_ms() < w->deadline, "no progress for %d ms: %s", WATCHDOG_MS,
			      what);
}

/* ---- connected pairs: w is the server's (writing) end, r the client's */

struct pair {
	int w, r;
};

static void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ne(fl, -1);
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl), 0);
}

/* 0 keeps the default. The kernel rounds tiny values up to its minimum. */
static void set_buf(int fd, int opt, int bytes)
{
	if (bytes > 0)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes)), 0);
}

/* Buffers are set before connecting, so TCP's window starts small too. */
static void tcp_open(struct pair *p, int sndbuf, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(l, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	set_buf(l, SO_SNDBUF, sndbuf); /* inherited by the accepted socket */
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	p->r = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(p->r, 0);
	set_buf(p->r, SO_RCVBUF, rcvbuf);
	ck_assert_int_eq(connect(p->r, (struct sockaddr *)&a, sizeof(a)), 0);
	p->w = accept(l, NULL, NULL);
	ck_assert_int_ge(p->w, 0);
	close(l);
}

static void pair_open(struct pair *p, enum transport t, int sndbuf, int rcvbuf)
{
	if (t == UNIX_PAIR) {
		int fds[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
		p->w = fds[0];
		p->r = fds[1];
		set_buf(p->w, SO_SNDBUF, sndbuf);
		set_buf(p->r, SO_RCVBUF, rcvbuf);
	} else {
		tcp_open(p, sndbuf, rcvbuf);
	}
	set_nonblock(p->w, 1);
	set_nonblock(p->r, 1);
}

static void pair_close(struct pair *p)
{
	if (p->w >= 0)
		close(p->w);
	if (p->r >= 0)
		close(p->r);
	p->w = p->r = -1;
}

/* Wait up to ms for the reader to have bytes (or EOF). */
static void wait_readable(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	(void)poll(&pfd, 1, ms);
}

/* ---- growable byte buffers */

static void append(char **b, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 4096;

		while (c < *len + n)
			c *= 2;
		*b = realloc(*b, c);
		ck_assert_ptr_nonnull(*b);
		*cap = c;
	}
	memcpy(*b + *len, p, n);
	*len += n;
}

/* ---- the reading side: every byte read is kept and parsed */

struct plan;

struct sink {
	int fd;
	struct sse_parser *parser;
	int keep;  /* keep the bytes read in bytes/len (else only count them) */
	char *bytes;
	size_t len, cap;
	char *log; /* "[type][id][data]" per event, for log_message */
	size_t log_len, log_cap;
	long next_id; /* seq_message: the id the next event must carry */
	struct plan *plan; /* plan_message: the events expected */
	size_t comments;
	int eof;
};

static void log_str(struct sink *k, const char *s, size_t n)
{
	append(&k->log, &k->log_len, &k->log_cap, "[", 1);
	append(&k->log, &k->log_len, &k->log_cap, s, n);
	append(&k->log, &k->log_len, &k->log_cap, "]", 1);
}

static int log_message(const struct sse_message *m, void *user)
{
	struct sink *k = user;

	log_str(k, m->type, m->type_len);
	log_str(k, m->last_id, m->last_id_len);
	log_str(k, m->data, m->data_len);
	return 0;
}

/* The data of event id: its number, then letters that shift with it, so a
 * frame that arrives twice, late or torn cannot match. */
static void payload(long id, char out[PAYLOAD_LEN + 1])
{
	int n = snprintf(out, PAYLOAD_LEN + 1, "event %06ld ", id);

	for (int j = n; j < PAYLOAD_LEN; j++)
		out[j] = (char)('a' + (id + j) % 26);
	out[PAYLOAD_LEN] = '\0';
}

/* Events must carry ids next_id, next_id + 1, ... and their payloads. */
static int seq_message(const struct sse_message *m, void *user)
{
	struct sink *k = user;
	char want[PAYLOAD_LEN + 1];
	char *end;
	long id = strtol(m->last_id, &end, 10);

	ck_assert_uint_gt(m->last_id_len, 0);
	ck_assert_ptr_eq(end, m->last_id + m->last_id_len);
	ck_assert_int_eq(id, k->next_id);
	payload(id, want);
	ck_assert_uint_eq(m->data_len, PAYLOAD_LEN);
	ck_assert_mem_eq(m->data, want, PAYLOAD_LEN);
	k->next_id++;
	return 0;
}

static int count_comment(const char *text, size_t len, void *user)
{
	(void)text;
	(void)len;
	((struct sink *)user)->comments++;
	return 0;
}

static void sink_init(struct sink *k, int fd, sse_message_fn on_message)
{
	struct sse_parser_callbacks cb = {.on_message = on_message, .on_comment = count_comment};

	*k = (struct sink){.fd = fd, .keep = 1, .next_id = 1};
	ck_assert_int_eq(sse_parser_new(&k->parser, &cb, k, NULL), 0);
}

static void sink_fini(struct sink *k)
{
	sse_parser_free(k->parser);
	free(k->bytes);
	free(k->log);
}

/* Read at most max bytes (64 KiB at most), once, without blocking;
 * returns bytes read. */
static size_t sink_read(struct sink *k, size_t max)
{
	static char tmp[65536];
	ssize_t n;

	if (max > sizeof(tmp))
		max = sizeof(tmp);
	n = read(k->fd, tmp, max);
	if (n < 0) {
		ck_assert_msg(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR,
			      "read: %s", strerror(errno));
		return 0;
	}
	if (n == 0) {
		k->eof = 1;
		return 0;
	}
	if (k->keep)
		append(&k->bytes, &k->len, &k->cap, tmp, (size_t)n);
	else
		k->len += (size_t)n;
	ck_assert_int_eq(sse_parser_feed(k->parser, tmp, (size_t)n), 0);
	return (size_t)n;
}

/* Read until the writer's end is closed. */
static void sink_read_to_eof(struct sink *k)
{
	struct watchdog wd;

	watchdog_start(&wd);
	while (!k->eof) {
		size_t n = sink_read(k, SIZE_MAX);

		if (n == 0 && !k->eof)
			wait_readable(k->fd, 10);
		watchdog_check(&wd, n > 0, "reading to EOF");
	}
}

/* ---- streams over a socket, and transport calls counted */

/* Context of the counting transport: the adapters' context is &fd. */
struct counted {
	long writes, writevs; /* calls of each */
	long moved;           /* calls that took at least one byte */
	size_t max_n;         /* most pieces one writev call was given */
	int fd;
};

static void count_result(struct counted *c, int rc, const size_t *taken)
{
	if (rc == 0 && *taken > 0)
		c->moved++;
}

static int counted_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	struct counted *c = ctx;
	int rc = sse_socket_write(buf, len, taken, &c->fd);

	c->writes++;
	count_result(c, rc, taken);
	return rc;
}

static int counted_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct counted *c = ctx;
	int rc = sse_socket_writev(iov, n, taken, &c->fd);

	c->writevs++;
	if (n > c->max_n)
		c->max_n = n;
	count_result(c, rc, taken);
	return rc;
}

/* A stream writing through the counting transport, write and writev. */
static struct sse_stream *counted_stream(struct counted *c)
{
	struct sse_transport t = {.size = sizeof(t), .write = counted_write,
				  .writev = counted_writev, .ctx = c};
	struct sse_stream *s = NULL;

	ck_assert_int_eq(sse_stream_new(&s, &t, NULL, NULL), 0);
	return s;
}

/* A stream writing through sse_socket_write() alone (no writev). */
static struct sse_stream *socket_stream(int *fd)
{
	struct sse_transport t = {.size = sizeof(t), .write = sse_socket_write, .ctx = fd};
	struct sse_stream *s = NULL;

	ck_assert_int_eq(sse_stream_new(&s, &t, NULL, NULL), 0);
	return s;
}

static struct sse_event data_event(const char *data)
{
	return (struct sse_event){.data = data, .data_len = strlen(data), .retry = SSE_RETRY_NONE};
}

/* Event id with its payload, as the stalled-reader tests send it. */
static int send_numbered(struct sse_stream *s, long id)
{
	char idbuf[24], data[PAYLOAD_LEN + 1];
	struct sse_event ev = {.retry = SSE_RETRY_NONE};

	payload(id, data);
	ev.id = idbuf;
	ev.id_len = (size_t)snprintf(idbuf, sizeof(idbuf), "%ld", id);
	ev.data = data;
	ev.data_len = PAYLOAD_LEN;
	return sse_stream_send(s, &ev);
}

/* The wire bytes of events 1..n, written by hand: "id: N", "data: ...". */
static char *numbered_bytes(long n, size_t *len)
{
	char *b = NULL, frame[PAYLOAD_LEN + 64], data[PAYLOAD_LEN + 1];
	size_t cap = 0;

	*len = 0;
	for (long id = 1; id <= n; id++) {
		payload(id, data);
		int k = snprintf(frame, sizeof(frame), "id: %ld\ndata: %s\n\n", id, data);
		append(&b, len, &cap, frame, (size_t)k);
	}
	return b;
}

/* ---- (1) events arrive exactly */

START_TEST(test_socket_write_delivers_events)
{
	static const char wire[] = "id: 1\nevent: greeting\ndata: hello\n\n"
				   "data: line one\ndata: line two\n\n"
				   ": still here\n"
				   "data:\n\n"
				   "id: 42\nretry: 3000\ndata: x\n\n";
	static const char events[] = "[greeting][1][hello]"
				     "[message][1][line one\nline two]"
				     "[message][1][]"
				     "[message][42][x]";
	struct sse_event greeting = data_event("hello"), last = data_event("x");
	struct pair p;
	struct sink k;
	struct sse_stream *s;

	pair_open(&p, (enum transport)_i, 0, 0);
	sink_init(&k, p.r, log_message);
	s = socket_stream(&p.w);
	greeting.id = "1";
	greeting.id_len = 1;
	greeting.type = "greeting";
	greeting.type_len = 8;
	last.id = "42";
	last.id_len = 2;
	last.retry = 3000;
	ck_assert_int_eq(sse_stream_send(s, &greeting), 0);
	ck_assert_int_eq(sse_stream_send(s, &(struct sse_event){.data = "line one\nline two",
								.data_len = 17,
								.retry = SSE_RETRY_NONE}),
			 0);
	ck_assert_int_eq(sse_stream_comment(s, "still here", 10), 0);
	ck_assert_int_eq(sse_stream_send(s, &(struct sse_event){.data = "", .retry = SSE_RETRY_NONE}),
			 0);
	ck_assert_int_eq(sse_stream_send(s, &last), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	sse_stream_free(s);
	ck_assert_int_eq(shutdown(p.w, SHUT_WR), 0); /* so the reader sees the end */

	sink_read_to_eof(&k);
	ck_assert_uint_eq(k.len, sizeof(wire) - 1);
	ck_assert_mem_eq(k.bytes, wire, sizeof(wire) - 1);
	ck_assert_uint_eq(k.log_len, sizeof(events) - 1);
	ck_assert_mem_eq(k.log, events, sizeof(events) - 1);
	ck_assert_uint_eq(k.comments, 1);
	ck_assert_int_eq(sse_parser_end(k.parser), 0);
	sink_fini(&k);
	pair_close(&p);
}
END_TEST

/* ---- (2) a reader that stalls, then drains slowly */

#define STALL_EVENTS 5000L

/* One round of the writer: flush, then send up to a burst of new events
 * (a full queue just waits for the next round). Returns whether it moved. */
static int writer_round(struct sse_stream *s, long *next, int *blocked)
{
	size_t before = sse_stream_pending(s);
	long sent = *next;
	int rc = sse_stream_flush(s);

	ck_assert_msg(rc == 0 || rc == SSE_ERR_WOULDBLOCK, "flush: %s", sse_strerror(rc));
	if (rc == SSE_ERR_WOULDBLOCK)
		(*blocked)++;
	for (int i = 0; i < 10 && *next <= STALL_EVENTS; i++) {
		rc = send_numbered(s, *next);
		if (rc == SSE_ERR_QUEUE_FULL)
			break;
		ck_assert_int_eq(rc, 0);
		(*next)++;
	}
	return *next != sent || sse_stream_pending(s) != before;
}

START_TEST(test_socket_write_survives_stalled_reader)
{
	struct pair p;
	struct sink k;
	struct watchdog wd;
	struct sse_stream *s;
	size_t want_len;
	char *want;
	long next = 1;
	int blocked = 0;

	/* Small buffers, so TCP cannot autotune its way past the stall. */
	pair_open(&p, (enum transport)_i, 16384, 16384);
	sink_init(&k, p.r, seq_message);
	s = socket_stream(&p.w);

	/* Nobody reads: the socket fills, and the stream starts queueing. */
	while (next <= STALL_EVENTS && sse_stream_pending(s) == 0)
		ck_assert_int_eq(send_numbered(s, next++), 0);
	ck_assert_uint_gt(sse_stream_pending(s), 0);
	ck_assert_int_lt(next, STALL_EVENTS / 2);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);

	/* The reader takes 1 KiB per round while the writer keeps going. */
	watchdog_start(&wd);
	while (k.next_id <= STALL_EVENTS) {
		int moved = writer_round(s, &next, &blocked);
		size_t n = sink_read(&k, 1024);

		if (!moved && n == 0)
			wait_readable(p.r, 10);
		watchdog_check(&wd, moved || n > 0, "stalled reader");
	}
	ck_assert_int_eq(next, STALL_EVENTS + 1);
	ck_assert_int_gt(blocked, 0);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	ck_assert_int_eq(shutdown(p.w, SHUT_WR), 0);
	sink_read_to_eof(&k);

	/* Every byte, in order, exactly once; and nothing after the last event. */
	want = numbered_bytes(STALL_EVENTS, &want_len);
	ck_assert_uint_eq(k.len, want_len);
	ck_assert_int_eq(memcmp(k.bytes, want, want_len), 0);
	ck_assert_int_eq(k.next_id, STALL_EVENTS + 1);
	free(want);
	sink_fini(&k);
	pair_close(&p);
}
END_TEST

/* ---- direct calls: nothing to send, bad arguments, a full socket */

START_TEST(test_socket_write_handles_edges)
{
	int bad = -1;
	size_t taken = 99;
	struct pair p;
	char block[4096] = {0};

	/* Nothing to send makes no system call: fd -1 would fail with EBADF. */
	ck_assert_int_eq(sse_socket_write("x", 0, &taken, &bad), 0);
	ck_assert_uint_eq(taken, 0);
	ck_assert_int_eq(sse_socket_write(NULL, 0, &taken, &bad), 0);
	ck_assert_int_eq(sse_socket_write("x", 1, &taken, &bad), SSE_ERR_IO);
	ck_assert_int_eq(sse_socket_write("x", 1, NULL, &bad), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_socket_write("x", 1, &taken, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_socket_write(NULL, 1, &taken, &bad), SSE_ERR_INVALID);

	/* A full socket is congestion, not failure. */
	pair_open(&p, UNIX_PAIR, 4096, 0);
	for (int i = 0; i < 100000; i++) {
		int rc = sse_socket_write(block, sizeof(block), &taken, &p.w);

		if (rc == SSE_ERR_WOULDBLOCK)
			break;
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_gt(taken, 0);
	}
	taken = 99;
	ck_assert_int_eq(sse_socket_write(block, sizeof(block), &taken, &p.w), SSE_ERR_WOULDBLOCK);
	ck_assert_uint_eq(taken, 0);
	pair_close(&p);
}
END_TEST

/* ---- (3) the peer goes away: SSE_ERR_IO, and never SIGPIPE */

/* With the default action a SIGPIPE kills the test: had the adapter sent
 * without MSG_NOSIGNAL, the test (or, unforked, the runner) would die. */
static void sigpipe_kills(void)
{
	sigset_t set;

	ck_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	ck_assert_int_eq(sigprocmask(SIG_UNBLOCK, &set, NULL), 0);
}

enum gone { CLOSE_UNIX, SHUTDOWN_UNIX, CLOSE_TCP, RESET_TCP, GONE_VARIANTS };

/* Open a pair and make its reader vanish in one of the ways above. */
static void pair_open_gone(struct pair *p, enum gone how)
{
	pair_open(p, how == CLOSE_TCP || how == RESET_TCP ? TCP_PAIR : UNIX_PAIR, 0, 0);
	if (how == SHUTDOWN_UNIX) {
		ck_assert_int_eq(shutdown(p->r, SHUT_RDWR), 0);
		return;
	}
	if (how == RESET_TCP) { /* unread bytes make close() send a RST */
		ck_assert_int_eq(write(p->w, "unread", 6), 6);
		wait_readable(p->r, 1000);
	}
	close(p->r);
	p->r = -1;
}

/* Call once more until something other than 0 comes back (TCP learns of
 * the close only from the peer's answer to a first send). */
#define UNTIL_FAILURE(call)                                                              \
	do {                                                                             \
		struct watchdog wd_;                                                     \
		watchdog_start(&wd_);                                                    \
		while ((rc = (call)) == 0) {                                             \
			(void)poll(NULL, 0, 1);                                          \
			watchdog_check(&wd_, 0, "waiting for the peer's close");          \
		}                                                                        \
	} while (0)

START_TEST(test_socket_write_peer_gone_fails_without_sigpipe)
{
	struct sse_event ev = data_event("anyone there?");
	struct pair p;
	struct sse_stream *s;
	int rc;

	sigpipe_kills();
	pair_open_gone(&p, (enum gone)_i);
	s = socket_stream(&p.w);
	UNTIL_FAILURE(sse_stream_send(s, &ev));
	ck_assert_int_eq(rc, SSE_ERR_IO);
	ck_assert_int_eq(sse_stream_error(s), SSE_ERR_IO);
	ck_assert_int_eq(sse_stream_send(s, &ev), SSE_ERR_IO);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_IO);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	pair_close(&p);
}
END_TEST

START_TEST(test_socket_writev_peer_gone_fails_without_sigpipe)
{
	struct sse_iovec iov[3] = {{"data: ", 6}, {"gone", 4}, {"\n\n", 2}};
	struct pair p;
	size_t taken;
	int rc;

	sigpipe_kills();
	pair_open_gone(&p, (enum gone)_i);
	UNTIL_FAILURE(sse_socket_writev(iov, 3, &taken, &p.w));
	ck_assert_int_eq(rc, SSE_ERR_IO);
	ck_assert_int_eq(sse_socket_writev(iov, 3, &taken, &p.w), SSE_ERR_IO);
	pair_close(&p);
}
END_TEST

/* A ring of numbered events, published with ring-assigned plain ids 1, 2, ... */
static struct sse_replay *numbered_ring(size_t max_bytes)
{
	struct sse_replay_config cfg = {.size = sizeof(cfg), .max_events = 100000,
					.max_bytes = max_bytes, .epoch = ""};
	struct sse_replay *r = NULL;

	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), 0);
	return r;
}

static void publish_numbered(struct sse_replay *r, long id)
{
	char data[PAYLOAD_LEN + 1];
	struct sse_event ev = {.data = data, .data_len = PAYLOAD_LEN, .retry = SSE_RETRY_NONE};
	uint64_t seq;

	payload(id, data);
	ck_assert_int_eq(sse_replay_publish(r, &ev, 0, &seq), 0);
	ck_assert_uint_eq(seq, (uint64_t)id);
}

START_TEST(test_socket_writev_stream_peer_gone_fails_without_sigpipe)
{
	struct counted c = {.fd = -1};
	struct sse_replay *r = numbered_ring(65536);
	struct sse_stream *s;
	struct pair p;
	int rc;

	sigpipe_kills();
	pair_open_gone(&p, (enum gone)_i);
	c.fd = p.w;
	s = counted_stream(&c);
	ck_assert_int_eq(sse_stream_follow(s, r, sse_replay_next_seq(r)), 0);
	/* A queued comment and the ring's frames: two pieces, one writev. */
	for (long id = 1; id <= 3; id++)
		publish_numbered(r, id);
	UNTIL_FAILURE(sse_stream_comment(s, "ping", 4));
	ck_assert_int_eq(rc, SSE_ERR_IO);
	ck_assert_int_gt(c.writevs, 0);
	ck_assert_int_eq(sse_stream_error(s), SSE_ERR_IO);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_IO);
	sse_stream_free(s);
	sse_replay_free(r);
	pair_close(&p);
}
END_TEST

/* ---- (4) a blocking send interrupted by signals is retried */

static volatile sig_atomic_t alarms;
static int alarm_drain_fd = -1;

/* The first alarms only interrupt the blocked send (EINTR); from the
 * third on, the reader is drained (read() is async-signal-safe), so the
 * retried send can complete. */
static void on_alarm(int sig)
{
	char tmp[4096];
	int saved = errno;

	(void)sig;
	if (++alarms >= 3)
		while (read(alarm_drain_fd, tmp, sizeof(tmp)) > 0)
			;
	errno = saved;
}

/* Fill a pair until a non-blocking send refuses, then make it blocking
 * with a send timeout, so a broken retry fails instead of hanging. */
static void fill_then_block(struct pair *p)
{
	struct timeval limit = {.tv_sec = WATCHDOG_MS / 1000};
	char block[1024] = {0};

	while (write(p->w, block, sizeof(block)) > 0)
		;
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	set_nonblock(p->w, 0);
	ck_assert_int_eq(setsockopt(p->w, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit)), 0);
}

START_TEST(test_socket_retries_after_eintr)
{
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	struct itimerval tick = {{0, 20000}, {0, 20000}}, off = {{0, 0}, {0, 0}};
	struct sse_iovec iov[2] = {{"data: interrupted", 17}, {"\n\n", 2}};
	struct pair p;
	size_t taken = 0;
	int rc;

	pair_open(&p, UNIX_PAIR, 4096, 0);
	fill_then_block(&p);
	alarms = 0;
	alarm_drain_fd = p.r;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the blocked send returns EINTR */
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &tick, NULL), 0);
	if (_i == 0)
		rc = sse_socket_write("data: interrupted\n\n", 19, &taken, &p.w);
	else
		rc = sse_socket_writev(iov, 2, &taken, &p.w);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
	ck_assert_int_eq(sigaction(SIGALRM, &old, NULL), 0);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(taken, 19);
	ck_assert_int_ge(alarms, 3);
	pair_close(&p);
}
END_TEST

/* ---- (5) the writev adapter: IOV_MAX, short writes mid-piece */

#define PIECES 3000

/* PIECES tiny pieces of 1..13 bytes, apart in memory (a '#' between
 * each), and their concatenation. */
struct pieces {
	char src[PIECES * 15];
	char want[PIECES * 14];
	struct sse_iovec iov[PIECES];
	size_t total;
};

static void pieces_init(struct pieces *pc)
{
	size_t at = 0;

	pc->total = 0;
	for (size_t i = 0; i < PIECES; i++) {
		size_t len = 1 + (i * 7) % 13;

		for (size_t j = 0; j < len; j++)
			pc->src[at + j] = (char)('A' + (i + j) % 58);
		memcpy(pc->want + pc->total, pc->src + at, len);
		pc->iov[i] = (struct sse_iovec){pc->src + at, len};
		pc->total += len;
		at += len;
		pc->src[at++] = '#';
	}
}

/* Bytes in the pieces from i on, at most IOV_MAX of them. */
static size_t prefix_bytes(const struct sse_iovec *iov, size_t i, size_t n)
{
	size_t sum = 0;

	for (size_t k = i; k < n && k < i + IOV_MAX; k++)
		sum += iov[k].len;
	return sum;
}

START_TEST(test_socket_writev_caps_pieces_at_iov_max)
{
	static struct pieces pc;
	struct pair p;
	size_t taken = 0;

	pieces_init(&pc);
	pair_open(&p, UNIX_PAIR, 0, 0); /* room for far more than one call sends */
	ck_assert_int_gt(PIECES, IOV_MAX);
	ck_assert_int_eq(sse_socket_writev(pc.iov, PIECES, &taken, &p.w), 0);
	ck_assert_uint_eq(taken, prefix_bytes(pc.iov, 0, PIECES));
	pair_close(&p);
}
END_TEST

/* Move the pieces past taken bytes: whole pieces, then into the next one.
 * Returns whether it stopped inside a piece. */
static int advance_pieces(struct sse_iovec *iov, size_t *i, size_t n, size_t taken)
{
	while (taken > 0 && taken >= iov[*i].len) {
		taken -= iov[*i].len;
		(*i)++;
	}
	if (taken == 0)
		return 0;
	ck_assert_uint_lt(*i, n);
	iov[*i].base = (const char *)iov[*i].base + taken;
	iov[*i].len -= taken;
	return 1;
}

START_TEST(test_socket_writev_resumes_mid_piece)
{
	static struct pieces pc;
	struct pair p;
	struct sink k;
	struct watchdog wd;
	size_t i = 0;
	int mid = 0, calls = 0;

	pieces_init(&pc);
	pair_open(&p, (enum transport)_i, 1024, 1024);
	sink_init(&k, p.r, log_message);
	watchdog_start(&wd);
	while (i < PIECES || k.len < pc.total) {
		size_t taken = 0, n = 0;
		int rc = 0;

		if (i < PIECES) {
			size_t most = prefix_bytes(pc.iov, i, PIECES);

			rc = sse_socket_writev(pc.iov + i, PIECES - i, &taken, &p.w);
			calls++;
			ck_assert_msg(rc == 0 || rc == SSE_ERR_WOULDBLOCK, "%s", sse_strerror(rc));
			ck_assert_uint_le(taken, most); /* never past IOV_MAX pieces */
			mid += advance_pieces(pc.iov, &i, PIECES, taken);
		}
		n = sink_read(&k, 512);
		if (taken == 0 && n == 0)
			wait_readable(p.r, 10);
		watchdog_check(&wd, taken > 0 || n > 0, "tiny-buffer writev");
	}
	ck_assert_uint_eq(k.len, pc.total);
	ck_assert_mem_eq(k.bytes, pc.want, pc.total);
	ck_assert_int_gt(calls, 2); /* the buffer really was small */
	ck_assert_int_gt(mid, 0);
	sink_fini(&k);
	pair_close(&p);
}
END_TEST

START_TEST(test_socket_writev_handles_edges)
{
	struct sse_iovec empty[2] = {{"", 0}, {NULL, 0}};
	struct sse_iovec one[1] = {{"x", 1}};
	int bad = -1;
	size_t taken = 99;

	/* Nothing to send makes no system call: fd -1 would fail with EBADF. */
	ck_assert_int_eq(sse_socket_writev(NULL, 0, &taken, &bad), 0);
	ck_assert_uint_eq(taken, 0);
	taken = 99;
	ck_assert_int_eq(sse_socket_writev(empty, 2, &taken, &bad), 0);
	ck_assert_uint_eq(taken, 0);
	ck_assert_int_eq(sse_socket_writev(one, 1, &taken, &bad), SSE_ERR_IO);
	ck_assert_int_eq(sse_socket_writev(one, 1, NULL, &bad), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_socket_writev(one, 1, &taken, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_socket_writev(NULL, 1, &taken, &bad), SSE_ERR_INVALID);
}
END_TEST

/* ---- (6) a stream following a ring, written with writev */

#define FOLLOW_EVENTS 3000L
#define RING_BYTES 65536
/* Publish only while the stream owes less than this, so the ring (which
 * wraps many times over) never drops a frame the stream still needs. */
#define FOLLOW_BACKLOG (RING_BYTES / 2)

/* One drain of the stream, counted: on a socketpair nobody reads during
 * it, so a drain moves bytes with at most one call, and makes at most one
 * more (the one that finds the socket full). */
static void counted_flush(struct sse_stream *s, struct counted *c, enum transport t,
			  long *flushes)
{
	long calls = c->writes + c->writevs, moved = c->moved;
	int rc = sse_stream_flush(s);

	ck_assert_msg(rc == 0 || rc == SSE_ERR_WOULDBLOCK, "flush: %s", sse_strerror(rc));
	(*flushes)++;
	if (t == UNIX_PAIR) {
		ck_assert_int_le(c->moved - moved, 1);
		ck_assert_int_le(c->writes + c->writevs - calls, 2);
	}
}

/* Publish a burst while the backlog allows; a comment now and then puts
 * queued bytes between frames. Returns whether anything was published. */
static int publish_round(struct sse_replay *r, struct sse_stream *s, long *published,
			 long *comments)
{
	long before = *published;

	while (*published < FOLLOW_EVENTS && sse_stream_pending(s) < FOLLOW_BACKLOG &&
	       *published - before < 20) {
		publish_numbered(r, ++*published);
		if (*published % 250 == 0) {
			ck_assert_int_eq(sse_stream_comment(s, "tick", 4), 0);
			(*comments)++;
		}
	}
	return *published != before;
}

START_TEST(test_socket_writev_stream_follows_ring)
{
	enum transport t = (enum transport)_i;
	struct counted c = {.fd = -1};
	struct sse_replay *r = numbered_ring(RING_BYTES);
	struct sse_stream *s;
	struct pair p;
	struct sink k;
	struct watchdog wd;
	long published = 0, comments = 1, flushes = 0; /* 1: the opening comment */

	pair_open(&p, t, 1024, 1024);
	c.fd = p.w;
	sink_init(&k, p.r, seq_message);
	s = counted_stream(&c);
	ck_assert_int_eq(sse_stream_follow(s, r, sse_replay_next_seq(r)), 0);
	ck_assert_int_eq(sse_stream_start(s, 0), 0);

	watchdog_start(&wd);
	while (k.next_id <= FOLLOW_EVENTS) {
		uint64_t cursor = sse_stream_cursor(s);
		int moved = publish_round(r, s, &published, &comments);
		size_t n;

		counted_flush(s, &c, t, &flushes);
		n = sink_read(&k, 1024);
		moved = moved || n > 0 || sse_stream_cursor(s) != cursor;
		if (!moved)
			wait_readable(p.r, 10);
		watchdog_check(&wd, moved, "stream following a ring");
	}
	ck_assert_int_eq(sse_stream_flush(s), 0);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), (uint64_t)FOLLOW_EVENTS + 1);
	ck_assert_int_eq(sse_stream_error(s), 0);
	/* The ring wrapped and comments were queued: several pieces at once. */
	ck_assert_int_gt(c.writevs, 0);
	ck_assert_uint_gt(c.max_n, 1);
	ck_assert_uint_le(c.max_n, SSE_IOV_MAX);
	sse_stream_free(s);
	ck_assert_int_eq(shutdown(p.w, SHUT_WR), 0);
	sink_read_to_eof(&k);
	ck_assert_int_eq(k.next_id, FOLLOW_EVENTS + 1);
	ck_assert_uint_eq(k.comments, (size_t)comments);
	ck_assert_int_eq(sse_parser_end(k.parser), 0);
	sink_fini(&k);
	sse_replay_free(r);
	pair_close(&p);
}
END_TEST

/* ---- (7) the transport's context is its own, not the user pointer */

/* A connection as an application keeps it: the fd is not its first
 * member, and its first member is the number of the other connection's
 * socket, so an adapter that read the user pointer as the fd would send
 * each stream's bytes down the other one's socket. */
struct conn {
	int id;
	char pad[12];
	int fd;
};

/* Two such connections: each stream's events (written alone, and with
 * ring frames in one writev) arrive on its own peer only, and the user
 * pointer is the connection. */
START_TEST(test_socket_transport_context_is_not_user_pointer)
{
	static const char want_a[] = "id: a1\ndata: for A\n\n"
				     ": only A\n"
				     "id: 1\ndata: shared 1\n\nid: 2\ndata: shared 2\n\n";
	static const char want_b[] = "id: b1\ndata: for B\n\n"
				     "id: 1\ndata: shared 1\n\nid: 2\ndata: shared 2\n\n";
	struct pair pa, pb;
	struct conn a, b;
	struct sse_transport ta, tb;
	struct sse_stream *sa = NULL, *sb = NULL;
	struct sse_replay *r = numbered_ring(4096);
	struct sse_event ev_a = data_event("for A"), ev_b = data_event("for B");
	struct sse_event shared = data_event("shared 1");
	struct sink ka, kb;

	pair_open(&pa, UNIX_PAIR, 0, 0);
	pair_open(&pb, UNIX_PAIR, 0, 0);
	a = (struct conn){.id = pb.w, .fd = pa.w};
	b = (struct conn){.id = pa.w, .fd = pb.w};
	ta = sse_socket_transport(&a.fd);
	tb = sse_socket_transport(&b.fd);
	ck_assert_uint_eq(ta.size, sizeof(struct sse_transport));
	ck_assert_ptr_eq(ta.ctx, &a.fd);
	ck_assert(ta.write == sse_socket_write);
	ck_assert(ta.writev == sse_socket_writev);
	ck_assert(ta.flush == NULL && ta.wake == NULL);
	ck_assert_int_eq(sse_stream_new(&sa, &ta, &a, NULL), 0);
	ck_assert_int_eq(sse_stream_new(&sb, &tb, &b, NULL), 0);
	ck_assert_ptr_eq(sse_stream_user(sa), &a);
	ck_assert_ptr_eq(sse_stream_user(sb), &b);

	/* One piece each (write), then queued bytes and ring frames (writev). */
	ev_a.id = "a1";
	ev_a.id_len = 2;
	ev_b.id = "b1";
	ev_b.id_len = 2;
	ck_assert_int_eq(sse_stream_send(sa, &ev_a), 0);
	ck_assert_int_eq(sse_stream_send(sb, &ev_b), 0);
	ck_assert_int_eq(sse_stream_follow(sa, r, sse_replay_next_seq(r)), 0);
	ck_assert_int_eq(sse_stream_follow(sb, r, sse_replay_next_seq(r)), 0);
	ck_assert_int_eq(sse_replay_publish(r, &shared, 0, NULL), 0);
	shared = data_event("shared 2");
	ck_assert_int_eq(sse_replay_publish(r, &shared, 0, NULL), 0);
	ck_assert_int_eq(sse_stream_comment(sa, "only A", 6), 0);
	ck_assert_int_eq(sse_stream_flush(sa), 0);
	ck_assert_int_eq(sse_stream_flush(sb), 0);
	ck_assert_ptr_eq(sse_stream_user(sa), &a);
	sse_stream_free(sa);
	sse_stream_free(sb);
	sse_replay_free(r);

	ck_assert_int_eq(shutdown(pa.w, SHUT_WR), 0);
	ck_assert_int_eq(shutdown(pb.w, SHUT_WR), 0);
	sink_init(&ka, pa.r, log_message);
	sink_init(&kb, pb.r, log_message);
	sink_read_to_eof(&ka);
	sink_read_to_eof(&kb);
	ck_assert_uint_eq(ka.len, sizeof(want_a) - 1);
	ck_assert_mem_eq(ka.bytes, want_a, sizeof(want_a) - 1);
	ck_assert_uint_eq(kb.len, sizeof(want_b) - 1);
	ck_assert_mem_eq(kb.bytes, want_b, sizeof(want_b) - 1);
	sink_fini(&ka);
	sink_fini(&kb);
	pair_close(&pa);
	pair_close(&pb);
}
END_TEST

/* ---- (8) no loss inside the window, through real sockets */

#define MIB ((size_t)1 << 20)
/* A stream's own memory (the stream and its queue), whatever it owes. */
#define STREAM_MEMORY_BOUND (64 * 1024)
/* Socket buffers small enough that the backlog meets real backpressure. */
#define SMALL_SOCKBUF 16384

enum big_style { BIG_TEXT_LINES, BIG_LINE_BREAKS };

/* The events of the large tests: the data of each is a function of its
 * sequence number, so the client checks every byte without a copy. */
struct plan {
	char epoch[32];       /* the ring's id prefix */
	uint64_t big_seq;     /* the one large event (0: none) */
	size_t big_len;
	enum big_style style;
	uint64_t next_seq;    /* the event the client must get next */
};

static size_t plan_len(const struct plan *pl, uint64_t seq)
{
	if (seq == pl->big_seq)
		return pl->big_len;
	return 300 + (size_t)(seq * 7919u % 3000u);
}

/* Lines of 79 letters that shift with seq, or line breaks only. */
static char plan_byte(const struct plan *pl, uint64_t seq, size_t i)
{
	if (seq == pl->big_seq && pl->style == BIG_LINE_BREAKS)
		return '\n';
	if (i % 80 == 79)
		return '\n';
	return (char)('a' + (seq + i) % 26);
}

static void publish_plan(struct sse_replay *r, const struct plan *pl, uint64_t seq)
{
	size_t len = plan_len(pl, seq);
	char *data = malloc(len + 1);
	struct sse_event ev = {.data = data, .data_len = len, .retry = SSE_RETRY_NONE};
	uint64_t got = 0;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < len; i++)
		data[i] = plan_byte(pl, seq, i);
	ck_assert_int_eq(sse_replay_publish(r, &ev, 0, &got), 0);
	ck_assert_uint_eq(got, seq);
	free(data);
}

/* Each event once, in order: id "<epoch><seq>", type message, its data. */
static int plan_message(const struct sse_message *m, void *user)
{
	struct sink *k = user;
	struct plan *pl = k->plan;
	char id[64];
	size_t len = plan_len(pl, pl->next_seq);
	int n = snprintf(id, sizeof(id), "%s%" PRIu64, pl->epoch, pl->next_seq);

	ck_assert_uint_eq(m->type_len, 7);
	ck_assert_mem_eq(m->type, "message", 7);
	ck_assert_uint_eq(m->last_id_len, (size_t)n);
	ck_assert_mem_eq(m->last_id, id, (size_t)n);
	ck_assert_uint_eq(m->data_len, len);
	for (size_t i = 0; i < len; i++)
		if (m->data[i] != plan_byte(pl, pl->next_seq, i))
			ck_abort_msg("event %" PRIu64 ": byte %zu differs", pl->next_seq, i);
	pl->next_seq++;
	return 0;
}

static void plan_sink_init(struct sink *k, int fd, struct plan *pl)
{
	sink_init(k, fd, plan_message);
	k->keep = 0; /* MiBs: parse them, keep nothing */
	k->plan = pl;
	ck_assert_int_eq(sse_parser_set_limit(k->parser, 16 * MIB), 0);
}

/* The ring of the large tests: 16 MiB, ids under a generated epoch; its
 * memory is its own (libc), apart from the streams'. */
static struct sse_replay *big_ring(struct plan *pl)
{
	struct sse_replay_config cfg = {.size = sizeof(cfg), .max_events = 100000,
					.max_bytes = 16 * MIB};
	struct sse_replay *r = NULL;

	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), 0);
	ck_assert_uint_lt(strlen(sse_replay_epoch(r)), sizeof(pl->epoch));
	strcpy(pl->epoch, sse_replay_epoch(r));
	ck_assert_str_ne(pl->epoch, ""); /* the default: a generated epoch */
	return r;
}

/* A stream on the socket adapters, its memory counted by ta. */
static struct sse_stream *counted_memory_stream(int *fd, struct test_alloc *ta)
{
	struct sse_transport t = sse_socket_transport(fd);
	struct sse_stream *s = NULL;

	test_alloc_init(ta, 0);
	ck_assert_int_eq(sse_stream_new(&s, &t, NULL, &ta->hooks), 0);
	return s;
}

/* What a client at a limited rate and its server do, in one thread: the
 * client reads up to 64 KiB, the server flushes the stream, and its clock
 * moves one (virtual) millisecond; live events are published now and then
 * until last_seq. The stream must never fail, not even for stalling: it
 * owes bytes all along, but they keep moving. Ends when the client has
 * every event through last_seq and the stream owes nothing. */
struct drive {
	uint64_t now;         /* the stream's clock */
	long rounds, blocked; /* rounds, and flushes the socket refused */
	size_t most_owed;     /* the most the stream owed at a flush */
};

static void drive_reader(struct sse_stream *s, struct sink *k, struct sse_replay *r,
			 uint64_t last_seq, struct drive *d)
{
	struct plan *pl = k->plan;
	struct watchdog wd;
	int rc = SSE_ERR_WOULDBLOCK;

	watchdog_start(&wd);
	while (pl->next_seq <= last_seq || rc != 0) {
		uint64_t cursor = sse_stream_cursor(s), next;
		size_t owed = sse_stream_pending(s), n;
		int published = 0, moved;

		if (owed > d->most_owed)
			d->most_owed = owed;
		if (d->rounds % 4 == 0 && sse_replay_next_seq(r) <= last_seq) {
			publish_plan(r, pl, sse_replay_next_seq(r)); /* mid-replay */
			published = 1;
		}
		n = sink_read(k, 65536);
		rc = sse_stream_flush(s);
		ck_assert_msg(rc == 0 || rc == SSE_ERR_WOULDBLOCK, "flush: %s", sse_strerror(rc));
		if (rc == SSE_ERR_WOULDBLOCK)
			d->blocked++;
		ck_assert_int_eq(sse_stream_tick(s, ++d->now, &next), 0);
		ck_assert_int_eq(sse_stream_error(s), 0);
		d->rounds++;
		/* Bytes read or written, or nothing owed (the client is caught
		 * up and waits for the next publish): no need to wait. */
		moved = n > 0 || published || rc == 0 || sse_stream_cursor(s) != cursor ||
			sse_stream_pending(s) != owed;
		if (!moved)
			wait_readable(k->fd, 10);
		watchdog_check(&wd, moved, "reader at a limited rate");
	}
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), sse_replay_next_seq(r));
}

/* The stream is gone: the client reads the rest and the end. */
static void finish_client(struct sink *k, struct pair *p)
{
	ck_assert_int_eq(shutdown(p->w, SHUT_WR), 0);
	sink_read_to_eof(k);
	ck_assert_int_eq(sse_parser_end(k->parser), 0);
}

START_TEST(test_socket_resume_over_large_backlog_at_limited_rate)
{
	/* A backlog of about 8 MiB: 2000 events of 300..3300 bytes with one
	 * frame of 3 MiB and more (seq 1201) among them. The client saw
	 * event 3; it reads 64 KiB at a time; events are published while the
	 * replay runs. The stream's queue limit is the default (1 MiB). */
	enum transport t = (enum transport)_i;
	struct plan pl = {.big_seq = 1201, .big_len = 3 * MIB + 4321, .style = BIG_TEXT_LINES};
	struct drive d = {.now = 1000};
	struct sse_replay *r = big_ring(&pl);
	struct test_alloc ta;
	struct sse_stream *s;
	struct pair p;
	struct sink k;
	const char *frame;
	size_t frame_len, backlog;
	char id[64];
	int status = -1;

	for (uint64_t q = 1; q <= 2000; q++)
		publish_plan(r, &pl, q);
	ck_assert_int_eq(sse_replay_frame(r, pl.big_seq, &frame, &frame_len), 1);
	ck_assert_uint_ge(frame_len, 3 * MIB);
	pair_open(&p, t, SMALL_SOCKBUF, SMALL_SOCKBUF);
	plan_sink_init(&k, p.r, &pl);
	s = counted_memory_stream(&p.w, &ta);
	ck_assert_int_eq(sse_stream_set_stall(s, 100), 0);
	ck_assert_int_eq(sse_stream_start(s, d.now), 0);
	snprintf(id, sizeof(id), "%s3", pl.epoch);
	ck_assert_int_eq(sse_stream_resume(s, r, id, strlen(id), &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_FOUND);
	ck_assert_uint_eq(sse_stream_cursor(s), 4);
	backlog = sse_stream_pending(s);
	ck_assert_uint_gt(backlog, 6 * MIB);
	ck_assert_uint_gt(backlog, SSE_STREAM_DEFAULT_QUEUE_LIMIT);
	pl.next_seq = 4;

	drive_reader(s, &k, r, 2100, &d);
	ck_assert_uint_eq(pl.next_seq, 2101);
	ck_assert_int_gt(d.blocked, 100); /* the socket pushed back, again and again */
	ck_assert_int_gt(d.rounds, 100);  /* owing for longer than the stall time */
	ck_assert_uint_ge(d.most_owed, backlog);
	ck_assert_int_lt(ta.peak_bytes, STREAM_MEMORY_BOUND);
	sse_stream_free(s);
	ck_assert_int_eq(ta.live_blocks, 0);
	finish_client(&k, &p);
	ck_assert_uint_eq(pl.next_seq, 2101); /* nothing after the last */
	ck_assert_uint_eq(k.comments, 1);    /* the opening comment */
	sink_fini(&k);
	sse_replay_free(r);
	pair_close(&p);
}
END_TEST

START_TEST(test_socket_live_follower_receives_6_mib_event)
{
	/* _i: the transport (bit 0), and the large event's data (bit 1):
	 * 6 MiB of text in lines of 80, or 1 MiB of line breaks only, which
	 * the encoder makes a frame of over 6 MiB ("data:" per line). */
	enum transport t = (enum transport)(_i & 1);
	enum big_style style = (enum big_style)(_i >> 1);
	struct plan pl = {.big_seq = 2, .style = style,
			  .big_len = style == BIG_TEXT_LINES ? 6 * MIB : MIB};
	struct drive d = {.now = 1000};
	struct sse_replay *r = big_ring(&pl);
	struct test_alloc ta;
	struct sse_stream *s;
	struct pair p;
	struct sink k;
	const char *frame;
	size_t frame_len;
	int status = -1;

	pair_open(&p, t, SMALL_SOCKBUF, SMALL_SOCKBUF);
	plan_sink_init(&k, p.r, &pl);
	s = counted_memory_stream(&p.w, &ta);
	ck_assert_int_eq(sse_stream_set_stall(s, 100), 0);
	ck_assert_int_eq(sse_stream_start(s, d.now), 0);
	ck_assert_int_eq(sse_stream_resume(s, r, NULL, 0, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_LIVE);
	pl.next_seq = 1;
	publish_plan(r, &pl, 1);
	ck_assert_int_eq(sse_stream_flush(s), 0);
	publish_plan(r, &pl, 2);
	publish_plan(r, &pl, 3);
	ck_assert_int_eq(sse_replay_frame(r, 2, &frame, &frame_len), 1);
	ck_assert_uint_ge(frame_len, 6 * MIB);
	ck_assert_uint_gt(sse_stream_pending(s), frame_len); /* frames 2 and 3 */
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ck_assert_uint_eq(sse_stream_cursor(s), 2); /* inside the large frame */

	drive_reader(s, &k, r, 3, &d);
	ck_assert_uint_eq(pl.next_seq, 4);
	ck_assert_int_gt(d.blocked, 100);
	ck_assert_int_lt(ta.peak_bytes, STREAM_MEMORY_BOUND);
	sse_stream_free(s);
	finish_client(&k, &p);
	ck_assert_uint_eq(pl.next_seq, 4);
	sink_fini(&k);
	sse_replay_free(r);
	pair_close(&p);
}
END_TEST

/* ---- (9) a reader that stops reading is dropped, in bounded memory */

START_TEST(test_socket_stalled_reader_falls_out_of_ring)
{
	/* The client never reads. Events of about 2 KiB go into a ring of
	 * 4 MiB and the server flushes after each, as a hub would: the
	 * stream owes more and more (well past its queue limit) and is not
	 * failed for it, until the ring drops the frame at its cursor; then
	 * it owes nothing it can send, and its next flush fails it. */
	enum transport t = (enum transport)_i;
	struct sse_replay_config cfg = {.size = sizeof(cfg), .max_events = 100000,
					.max_bytes = 4 * MIB};
	struct plan pl = {.big_seq = 0};
	struct sse_replay *r = NULL;
	struct test_alloc ta;
	struct sse_stream *s;
	struct pair p;
	size_t most_owed = 0;
	uint64_t q = 0;
	long refused = 0;

	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), 0);
	pair_open(&p, t, SMALL_SOCKBUF, SMALL_SOCKBUF);
	s = counted_memory_stream(&p.w, &ta);
	ck_assert_int_eq(sse_stream_start(s, 0), 0);
	ck_assert_int_eq(sse_stream_follow(s, r, sse_replay_next_seq(r)), 0);
	while (sse_replay_first_seq(r) <= sse_stream_cursor(s)) {
		int rc;

		ck_assert_uint_lt(q, 100000);
		publish_plan(r, &pl, ++q);
		if (sse_replay_first_seq(r) > sse_stream_cursor(s))
			break; /* that publish dropped the frame at the cursor */
		if (sse_stream_pending(s) > most_owed)
			most_owed = sse_stream_pending(s);
		rc = sse_stream_flush(s);
		ck_assert_msg(rc == 0 || rc == SSE_ERR_WOULDBLOCK, "flush: %s", sse_strerror(rc));
		refused += rc == SSE_ERR_WOULDBLOCK;
		ck_assert_int_eq(sse_stream_error(s), 0);
	}
	ck_assert_int_gt(refused, 0);
	ck_assert_uint_gt(most_owed, 3 * MIB); /* far past the 1 MiB queue limit */
	ck_assert_uint_eq(sse_stream_pending(s), 0); /* fell out: owes nothing it can send */
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP);
	ck_assert_int_eq(sse_stream_error(s), SSE_ERR_GAP);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP);
	ck_assert_int_lt(ta.peak_bytes, STREAM_MEMORY_BOUND);
	sse_stream_free(s);
	ck_assert_int_eq(ta.live_blocks, 0);
	sse_replay_free(r);
	pair_close(&p);
}
END_TEST

/* Read and discard what a socket holds; returns the bytes read. */
static size_t drain_fd(int fd)
{
	char tmp[16384];
	size_t total = 0;
	ssize_t n;

	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		total += (size_t)n;
	return total;
}

START_TEST(test_socket_stalled_reader_is_dropped_after_stall_time)
{
	/* Two streams follow one ring, each stall time 100 ms. The client of
	 * `stuck` never reads, so its socket fills while it owes bytes; the
	 * client of `idle` reads everything, so it owes nothing. 100 ms
	 * after the socket first refused, `stuck` fails with SSE_ERR_STALLED,
	 * and `idle`, which owes nothing, does not. */
	enum transport t = (enum transport)_i;
	struct sse_replay *r = numbered_ring(4 * MIB);
	struct test_alloc ta_stuck, ta_idle;
	struct sse_stream *stuck, *idle;
	struct pair p_stuck, p_idle;
	struct watchdog wd;
	uint64_t next = 0;
	long id = 0;
	int rc;

	pair_open(&p_stuck, t, SMALL_SOCKBUF, SMALL_SOCKBUF);
	pair_open(&p_idle, t, SMALL_SOCKBUF, SMALL_SOCKBUF);
	stuck = counted_memory_stream(&p_stuck.w, &ta_stuck);
	idle = counted_memory_stream(&p_idle.w, &ta_idle);
	ck_assert_int_eq(sse_stream_set_stall(stuck, 100), 0);
	ck_assert_int_eq(sse_stream_set_stall(idle, 100), 0);
	ck_assert_int_eq(sse_stream_tick(stuck, 1000, &next), 0);
	ck_assert_int_eq(sse_stream_tick(idle, 1000, &next), 0);
	ck_assert_int_eq(sse_stream_follow(stuck, r, 1), 0);
	ck_assert_int_eq(sse_stream_follow(idle, r, 1), 0);

	/* Publish until the stuck socket is full and bytes stay owed. */
	do {
		publish_numbered(r, ++id);
		ck_assert_int_lt(id, 10000);
		rc = sse_stream_flush(stuck);
		ck_assert(rc == 0 || rc == SSE_ERR_WOULDBLOCK);
	} while (rc == 0);
	ck_assert_uint_gt(sse_stream_pending(stuck), 0);
	/* The other client reads everything there is. */
	watchdog_start(&wd);
	while ((rc = sse_stream_flush(idle)) != 0) {
		size_t n = drain_fd(p_idle.r);

		ck_assert_int_eq(rc, SSE_ERR_WOULDBLOCK);
		if (n == 0)
			wait_readable(p_idle.r, 10);
		watchdog_check(&wd, n > 0, "draining the reading client");
	}
	ck_assert_uint_eq(sse_stream_pending(idle), 0);

	ck_assert_int_eq(sse_stream_tick(stuck, 1099, &next), 0);
	ck_assert_uint_le(next, 1100); /* its stall deadline */
	ck_assert_int_eq(sse_stream_tick(idle, 1099, &next), 0);
	ck_assert_int_eq(sse_stream_tick(stuck, 1100, &next), SSE_ERR_STALLED);
	ck_assert_uint_eq(next, SSE_NO_DEADLINE);
	ck_assert_int_eq(sse_stream_tick(idle, 1100, &next), 0);
	ck_assert_int_eq(sse_stream_error(stuck), SSE_ERR_STALLED);
	ck_assert_uint_eq(sse_stream_pending(stuck), 0);
	ck_assert_int_eq(sse_stream_flush(stuck), SSE_ERR_STALLED);
	ck_assert_int_eq(sse_stream_error(idle), 0);
	ck_assert_int_lt(ta_stuck.peak_bytes, STREAM_MEMORY_BOUND);
	ck_assert_int_lt(ta_idle.peak_bytes, STREAM_MEMORY_BOUND);
	sse_stream_free(stuck);
	sse_stream_free(idle);
	ck_assert_int_eq(ta_stuck.live_blocks, 0);
	ck_assert_int_eq(ta_idle.live_blocks, 0);
	sse_replay_free(r);
	pair_close(&p_stuck);
	pair_close(&p_idle);
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *socket_suite(void)
{
	Suite *s = suite_create("socket");
	TCase *tc;

	tc = tcase(s, "write");
	tcase_add_loop_test(tc, test_socket_write_delivers_events, UNIX_PAIR, TCP_PAIR + 1);
	tcase_add_loop_test(tc, test_socket_write_survives_stalled_reader, UNIX_PAIR,
			    TCP_PAIR + 1);
	tcase_add_test(tc, test_socket_write_handles_edges);

	tc = tcase(s, "peer_gone");
	tcase_add_loop_test(tc, test_socket_write_peer_gone_fails_without_sigpipe, 0,
			    GONE_VARIANTS);
	tcase_add_loop_test(tc, test_socket_writev_peer_gone_fails_without_sigpipe, 0,
			    GONE_VARIANTS);
	tcase_add_loop_test(tc, test_socket_writev_stream_peer_gone_fails_without_sigpipe, 0,
			    GONE_VARIANTS);

	tc = tcase(s, "eintr");
	tcase_add_loop_test(tc, test_socket_retries_after_eintr, 0, 2); /* write, writev */

	tc = tcase(s, "writev");
	tcase_add_test(tc, test_socket_writev_caps_pieces_at_iov_max);
	tcase_add_loop_test(tc, test_socket_writev_resumes_mid_piece, UNIX_PAIR, TCP_PAIR + 1);
	tcase_add_test(tc, test_socket_writev_handles_edges);

	tc = tcase(s, "follow");
	tcase_add_loop_test(tc, test_socket_writev_stream_follows_ring, UNIX_PAIR, TCP_PAIR + 1);

	tc = tcase(s, "context");
	tcase_add_test(tc, test_socket_transport_context_is_not_user_pointer);

	tc = tcase(s, "no_loss");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_socket_resume_over_large_backlog_at_limited_rate, UNIX_PAIR,
			    TCP_PAIR + 1);
	tcase_add_loop_test(tc, test_socket_live_follower_receives_6_mib_event, 0, 4);

	tc = tcase(s, "slow_consumer");
	tcase_add_loop_test(tc, test_socket_stalled_reader_falls_out_of_ring, UNIX_PAIR,
			    TCP_PAIR + 1);
	tcase_add_loop_test(tc, test_socket_stalled_reader_is_dropped_after_stall_time, UNIX_PAIR,
			    TCP_PAIR + 1);
	return s;
}

int main(void)
{
	return test_run_suite(socket_suite());
}
