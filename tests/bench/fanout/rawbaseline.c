/*
 * rawbaseline: the fan-out benchmark's lower bound. No libsse: a minimal
 * epoll server with the relay's publish path and wire bytes.
 *
 *     rawbaseline --port P [--bind 127.0.0.1] [--sndbuf B] [--keep-alive 0|1]
 *
 * prints "rawbaseline: listening on http://ADDR:PORT/" and then:
 *
 *   GET  <any path>         a subscriber: a minimal 200 head, ":\n\n",
 *                           then every event published from then on
 *   POST <path>[?event=T]   the body (Content-Length only) is one event's
 *                           data: 202 and its id; the connection then
 *                           closes, or with --keep-alive 1 waits for the
 *                           client's next request (HTTP/1.1 without
 *                           "Connection: close"), as sse-relay does
 *
 * Socket options, so that a ratio against sse-relay compares like with
 * like: TCP_NODELAY on every connection (as sse-relay), and with
 * --sndbuf B > 0 a subscriber's SO_SNDBUF set to B once its head is
 * written (sse-relay's --sndbuf, 65536 by default there; 0 here: the
 * kernel's own, autotuned, as this program always did).
 *
 * An event is appended once, as "id: N\nevent: T\ndata: LINE\n...\n", to
 * one shared buffer; each subscriber holds an offset into it. Once per
 * loop turn, after the publishes of that turn, every subscriber that is
 * owed bytes gets all of them in one send (sendmsg) — the same batching
 * the hub does, with nothing else around it. A subscriber that would
 * block waits for EPOLLOUT (edge-triggered); one that lags more than
 * 16 MiB is closed. SIGINT/SIGTERM: exit.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define BODY_MAX (1 << 20)
#define LAG_MAX ((size_t)16 << 20)
#define EPOLL_BATCH 256

enum state { ST_HEAD, ST_BODY, ST_REPLY, ST_LINGER, ST_SUB };

/* A request in progress; freed when it becomes a subscriber. */
struct req {
	char head[HEAD_MAX];
	size_t head_len, head_end;
	char type[64];
	size_t type_len;
	char *body;
	size_t body_len, body_want;
	char reply[160];
	size_t reply_len, reply_sent;
	size_t body_from_head; /* body bytes that came in the head's reads */
	bool keep;             /* keep the connection for the next request */
};

struct conn {
	int fd;
	enum state st;
	uint32_t index;     /* in subs[], when ST_SUB */
	bool blocked;       /* a send would block: wait for EPOLLOUT */
	uint64_t off;       /* absolute offset of the next byte it owes */
	struct req *rq;
};

static struct {
	int ep, lfd, sfd;
	struct conn **subs;
	size_t nsubs, cap;
	/* The shared log: bytes [base, base + len) of the absolute stream. */
	char *log;
	size_t len, logcap;
	uint64_t base;
	uint64_t next_id;
	bool published;
	bool stop;
	int sndbuf;      /* a subscriber's SO_SNDBUF; 0: the kernel's */
	bool keep_alive; /* answer publishes without closing */
} g;

static void conn_close(struct conn *c)
{
	if (c->st == ST_SUB) {
		struct conn *last = g.subs[--g.nsubs];

		g.subs[c->index] = last;
		last->index = c->index;
	}
	close(c->fd);
	if (c->rq != NULL)
		free(c->rq->body);
	free(c->rq);
	free(c);
}

/* ---- the log */

static int log_append(const char *p, size_t n)
{
	if (g.len + n > g.logcap) {
		size_t cap = g.logcap ? g.logcap : 1 << 16;
		char *np;

		while (cap < g.len + n)
			cap *= 2;
		np = realloc(g.log, cap);
		if (np == NULL)
			return -1;
		g.log = np;
		g.logcap = cap;
	}
	memcpy(g.log + g.len, p, n);
	g.len += n;
	return 0;
}

/* The frame the relay writes for the same publish: its id, its type,
 * one data line per line of the body (LF, CR or CRLF), the blank line. */
static int publish(const char *type, size_t type_len, const char *data, size_t len)
{
	char head[96];
	int n = snprintf(head, sizeof(head), "id: %llu\n", (unsigned long long)g.next_id);
	const char *p = data, *end = data + len;

	if (log_append(head, (size_t)n) < 0)
		return -1;
	if (type_len > 0 && (log_append("event: ", 7) < 0 || log_append(type, type_len) < 0 ||
			     log_append("\n", 1) < 0))
		return -1;
	for (;;) {
		const char *e = p;

		while (e < end && *e != '\n' && *e != '\r')
			e++;
		if (log_append(e > p ? "data: " : "data:", e > p ? 6 : 5) < 0 ||
		    log_append(p, (size_t)(e - p)) < 0 || log_append("\n", 1) < 0)
			return -1;
		if (e == end)
			break;
		p = e + (*e == '\r' && e + 1 < end && e[1] == '\n' ? 2 : 1);
	}
	if (log_append("\n", 1) < 0)
		return -1;
	g.next_id++;
	g.published = true;
	return 0;
}

/* Write what c owes, in one call; false if it had to be closed. */
static bool sub_flush(struct conn *c)
{
	uint64_t end = g.base + g.len;

	while (c->off < end && !c->blocked) {
		struct iovec iov = {g.log + (c->off - g.base), (size_t)(end - c->off)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

		if (n > 0) {
			c->off += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->blocked = true;
			if (end - c->off > LAG_MAX) {
				conn_close(c);
				return false;
			}
			break;
		}
		conn_close(c);
		return false;
	}
	return true;
}

/* The fan-out pass, once per loop turn with publishes. */
static void fan_out(void)
{
	bool all_caught_up = true;

	for (size_t i = 0; i < g.nsubs;) {
		struct conn *c = g.subs[i];

		if (!sub_flush(c))
			continue; /* the last one moved into slot i */
		if (c->off != g.base + g.len)
			all_caught_up = false;
		i++;
	}
	if (all_caught_up) { /* nobody needs the bytes: start the buffer over */
		g.base += g.len;
		g.len = 0;
	}
}

/* ---- requests */

static void reply(struct conn *c, int status, const char *reason, const char *body)
{
	struct req *rq = c->rq;
	int n = snprintf(rq->reply, sizeof(rq->reply),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "%s\r\n%s",
			 status, reason, strlen(body), rq->keep ? "" : "Connection: close\r\n", body);

	rq->reply_len = n > 0 && (size_t)n < sizeof(rq->reply) ? (size_t)n : 0;
	rq->reply_sent = 0;
	c->st = ST_REPLY;
}

/* false if c was closed */
static bool make_subscriber(struct conn *c)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
				   "Cache-Control: no-cache\r\n\r\n:\n\n";
	ssize_t n = send(c->fd, head, sizeof(head) - 1, MSG_NOSIGNAL);

	if (n != (ssize_t)sizeof(head) - 1) { /* an empty socket buffer takes it whole */
		conn_close(c);
		return false;
	}
	if (g.nsubs == g.cap) {
		size_t cap = g.cap ? g.cap * 2 : 1024;
		struct conn **ns = realloc(g.subs, cap * sizeof(*ns));

		if (ns == NULL) {
			conn_close(c);
			return false;
		}
		g.subs = ns;
		g.cap = cap;
	}
	free(c->rq->body);
	free(c->rq);
	c->rq = NULL;
	c->st = ST_SUB;
	c->off = g.base + g.len; /* live events only */
	if (g.sndbuf > 0)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &g.sndbuf, sizeof(g.sndbuf));
	c->index = (uint32_t)g.nsubs;
	g.subs[g.nsubs++] = c;
	return true;
}

/* Does [p, p + n) hold word, in any case? */
static bool strcasestr_n(const char *p, size_t n, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i + wl <= n; i++)
		if (strncasecmp(p + i, word, wl) == 0)
			return true;
	return false;
}

/* The head is in: route it. false if c was closed. */
static bool head_done(struct conn *c)
{
	struct req *rq = c->rq;
	const char *h = rq->head, *end = rq->head + rq->head_end;
	const char *sp = memchr(h, ' ', (size_t)(end - h)), *q, *tend;
	long long cl = -1;

	if (rq->head_len >= 4 && memcmp(h, "GET ", 4) == 0)
		return make_subscriber(c);
	if (rq->head_len < 5 || memcmp(h, "POST ", 5) != 0 || sp == NULL) {
		reply(c, 405, "Method Not Allowed", "");
		return true;
	}
	tend = memchr(sp + 1, ' ', (size_t)(end - sp - 1));
	if (tend == NULL)
		tend = end;
	q = memchr(sp + 1, '?', (size_t)(tend - sp - 1));
	if (q != NULL && (size_t)(tend - q) > 7 && memcmp(q + 1, "event=", 6) == 0) {
		const char *v = q + 7, *ve = v;

		while (ve < tend && *ve != '&')
			ve++;
		rq->type_len = (size_t)(ve - v) < sizeof(rq->type) ? (size_t)(ve - v) : 0;
		memcpy(rq->type, v, rq->type_len);
	}
	/* HTTP/1.1 keeps the connection unless the client says close. */
	rq->keep = g.keep_alive && tend + 9 <= end && memcmp(tend, " HTTP/1.1", 9) == 0;
	for (const char *p = h; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			break;
		if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
			cl = strtoll(p + 15, NULL, 10);
		else if ((size_t)(eol - p) > 11 && strncasecmp(p, "connection:", 11) == 0 &&
			 strcasestr_n(p + 11, (size_t)(eol - p - 11), "close"))
			rq->keep = false;
		p = eol + 1;
	}
	if (cl < 0 || cl > BODY_MAX) {
		reply(c, cl < 0 ? 411 : 413, cl < 0 ? "Length Required" : "Content Too Large", "");
		return true;
	}
	rq->body_want = (size_t)cl;
	rq->body = malloc(rq->body_want ? rq->body_want : 1);
	if (rq->body == NULL) {
		reply(c, 500, "Internal Server Error", "");
		return true;
	}
	rq->body_len = rq->head_len - rq->head_end;
	if (rq->body_len > rq->body_want)
		rq->body_len = rq->body_want;
	memcpy(rq->body, rq->head + rq->head_end, rq->body_len);
	rq->body_from_head = rq->body_len;
	c->st = ST_BODY;
	return true;
}

static void body_done(struct conn *c)
{
	struct req *rq = c->rq;
	char id[32];

	snprintf(id, sizeof(id), "%llu\n", (unsigned long long)g.next_id);
	if (publish(rq->type, rq->type_len, rq->body, rq->body_len) < 0)
		reply(c, 500, "Internal Server Error", "");
	else
		reply(c, 202, "Accepted", id);
}

static size_t find_head_end(const char *b, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (b[i] == '\n' && b[i - 1] == '\r' && b[i - 2] == '\n' && b[i - 3] == '\r')
			return i + 1;
	return 0;
}

/* A whole head is buffered (head_end set): route it and take in the
 * body bytes that came with it. false if c was closed. */
static bool head_in(struct conn *c)
{
	struct req *rq = c->rq;

	if (!head_done(c))
		return false;
	if (c->st == ST_BODY && rq->body_len == rq->body_want)
		body_done(c);
	return true;
}

/* Read until EAGAIN, driving the request forward. false if c was closed;
 * a reply is left for the caller to write. */
static bool on_input(struct conn *c)
{
	char sink[4096];

	for (;;) {
		struct req *rq = c->rq;
		char *dst;
		size_t cap;
		ssize_t n;

		if (c->st == ST_HEAD) {
			if (rq->head_end == 0 && rq->head_len > 0)
				rq->head_end = find_head_end(rq->head, rq->head_len);
			if (rq->head_end > 0) { /* one kept from the last read */
				if (!head_in(c))
					return false;
				continue;
			}
			if (rq->head_len == HEAD_MAX) {
				reply(c, 431, "Request Header Fields Too Large", "");
				return true;
			}
			dst = rq->head + rq->head_len;
			cap = HEAD_MAX - rq->head_len;
		} else if (c->st == ST_BODY) {
			dst = rq->body + rq->body_len;
			cap = rq->body_want - rq->body_len;
		} else if (c->st == ST_SUB || c->st == ST_REPLY) {
			return true; /* a next request waits until this one is answered */
		} else {
			dst = sink;
			cap = sizeof(sink);
		}
		if (cap == 0) {
			body_done(c);
			return true;
		}
		n = read(c->fd, dst, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) {
			conn_close(c); /* a client closed or failed */
			return false;
		}
		if (c->st == ST_HEAD) {
			rq->head_len += (size_t)n;
		} else if (c->st == ST_BODY) {
			rq->body_len += (size_t)n;
			if (rq->body_len == rq->body_want) {
				body_done(c);
				return true;
			}
		}
	}
}

/* The answer is out and the client keeps the connection: start over,
 * with what it sent past this request's body. false if c was closed. */
static bool next_request(struct conn *c)
{
	struct req *rq = c->rq;
	size_t used = rq->head_end + rq->body_from_head;
	size_t rest = rq->head_len > used ? rq->head_len - used : 0;

	memmove(rq->head, rq->head + used, rest);
	free(rq->body);
	rq->body = NULL;
	rq->head_len = rest;
	rq->head_end = rq->type_len = rq->body_len = rq->body_want = rq->body_from_head = 0;
	rq->reply_len = rq->reply_sent = 0;
	rq->keep = false;
	c->st = ST_HEAD;
	return on_input(c);
}

/* Write the reply; then either wait for the next request, or shut the
 * write side and read until the client closes (closing with unread input
 * would reset the connection). */
static bool write_reply(struct conn *c)
{
	struct req *rq = c->rq;

	while (rq->reply_sent < rq->reply_len) {
		ssize_t n = send(c->fd, rq->reply + rq->reply_sent, rq->reply_len - rq->reply_sent,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0) {
			conn_close(c);
			return false;
		}
		rq->reply_sent += (size_t)n;
	}
	if (rq->keep) {
		if (!next_request(c))
			return false;
		return c->st == ST_REPLY ? write_reply(c) : true;
	}
	(void)shutdown(c->fd, SHUT_WR);
	c->st = ST_LINGER;
	return true;
}

static void on_event(struct conn *c, uint32_t events)
{
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (c->st == ST_SUB) {
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
			char sink[512];
			ssize_t n;

			while ((n = read(c->fd, sink, sizeof(sink))) > 0)
				;
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				conn_close(c);
				return;
			}
		}
		if (events & EPOLLOUT) {
			c->blocked = false;
			(void)sub_flush(c);
		}
		return;
	}
	if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && !on_input(c))
		return;
	if (c->st == ST_REPLY)
		(void)write_reply(c);
}

static void accept_all(void)
{
	for (int i = 0; i < 64; i++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
		struct conn *c;
		int on = 1, fd = accept4(g.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (c != NULL)
			c->rq = calloc(1, sizeof(*c->rq));
		if (c == NULL || c->rq == NULL) {
			free(c);
			close(fd);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		c->fd = fd;
		c->st = ST_HEAD;
		ev.data.ptr = c;
		if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(c->rq);
			free(c);
			close(fd);
		}
	}
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	const char *bind_addr = "127.0.0.1";
	long port = -1;
	bool bad = false;
	sigset_t set;
	int on = 1;
	char host[INET_ADDRSTRLEN];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--bind") == 0)
			bind_addr = argv[i + 1];
		else if (strcmp(argv[i], "--sndbuf") == 0)
			g.sndbuf = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--keep-alive") == 0)
			g.keep_alive = atoi(argv[i + 1]) != 0;
		else
			bad = true;
	}
	if (bad || port < 0 || port > 65535 || argc % 2 != 1 || g.sndbuf < 0 ||
	    inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: %s --port P [--bind IPV4] [--sndbuf B] [--keep-alive 0|1]\n",
			argv[0]);
		return 2;
	}
	raise_nofile();
	sa.sin_port = htons((uint16_t)port);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	g.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	g.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g.sfd < 0 || g.ep < 0 || g.lfd < 0)
		return 1;
	(void)setsockopt(g.lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(g.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(g.lfd, 4096) < 0 ||
	    getsockname(g.lfd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("rawbaseline: listen");
		return 1;
	}
	{
		struct epoll_event le = {.events = EPOLLIN, .data.ptr = &g.lfd};
		struct epoll_event se = {.events = EPOLLIN, .data.ptr = &g.sfd};

		if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.lfd, &le) < 0 ||
		    epoll_ctl(g.ep, EPOLL_CTL_ADD, g.sfd, &se) < 0)
			return 1;
	}
	inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
	printf("rawbaseline: listening on http://%s:%u/\n", host, (unsigned)ntohs(sa.sin_port));
	fflush(stdout);

	while (!g.stop) {
		struct epoll_event evs[EPOLL_BATCH];
		int n = epoll_wait(g.ep, evs, EPOLL_BATCH, -1);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &g.lfd) {
				accept_all();
			} else if (evs[i].data.ptr == &g.sfd) {
				g.stop = true;
			} else {
				struct conn *c = evs[i].data.ptr;

				on_event(c, evs[i].events);
			}
		}
		/* Replies go out after the turn's input; a closed connection was
		 * freed at once, so it is looked up by nothing here. */
		if (g.published) {
			g.published = false;
			fan_out();
		}
	}
	while (g.nsubs > 0)
		conn_close(g.subs[g.nsubs - 1]);
	free(g.subs);
	free(g.log);
	close(g.lfd);
	close(g.sfd);
	close(g.ep);
	fprintf(stderr, "rawbaseline: stopped\n");
	return 0;
}
