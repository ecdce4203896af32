/*
 * sse-relay --redis: the hub fed by libsse-redis (doc/redis.md), so that
 * several relays behind any load balancer serve one channel.
 *
 * The two Redis connections are epoll descriptors like the others,
 * level-triggered (hiredis reads and writes what it can, not until
 * EAGAIN), their epoll data a slot of ours so that dispatch tells them
 * from connections. A publish waits for Redis without holding the loop:
 * the connection stays in READING_BODY (its body callback turned into a
 * no-op, so input does not publish twice) until Redis answered, failed
 * or timed out (--redis-timeout); the answer is given in the loop's turn,
 * not from within hiredis's callback. A connection that closes meanwhile
 * is forgotten: the answer goes nowhere.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#ifndef SSE_RELAY_REDIS
const char cluster_usage[] =
	"  --redis URL        not in this build (sse-relay was built without hiredis)\n";
#else
const char cluster_usage[] =
	"  --redis URL        run as one node of a cluster: redis://HOST[:PORT][/CHANNEL]\n"
	"                     (port 6379, channel " CLUSTER_CHANNEL " by default); events go\n"
	"                     through Redis to every node, ids are the log's, resumes\n"
	"                     work on any node. Not with --plain-ids\n"
	"  --redis-timeout MS Redis connect and command timeout (default 2000); a publish\n"
	"                     not acknowledged in time is answered 503\n";
#endif

static int bad_value(const char *argv0, const char *name, const char *arg)
{
	fprintf(stderr, "%s: bad value for --%s: '%s'\n", argv0, name, arg != NULL ? arg : "");
	return -1;
}

int cluster_take_option(int argc, char **argv, int *i, struct cluster_options *o)
{
	static const char *const names[] = {"redis", "redis-timeout"};
	const char *a = argv[*i];

	if (strncmp(a, "--", 2) != 0)
		return 0;
	for (size_t k = 0; k < 2; k++) {
		size_t len = strlen(names[k]);
		const char *arg;
		char *end;
		unsigned long long v;

		if (strncmp(a + 2, names[k], len) != 0 || (a[2 + len] != '\0' && a[2 + len] != '='))
			continue;
		arg = a[2 + len] == '=' ? a + 3 + len : (*i + 1 < argc ? argv[++*i] : NULL);
		if (arg == NULL || arg[0] == '\0')
			return bad_value(argv[0], names[k], arg);
		if (k == 0) {
			o->url = arg;
			return 1;
		}
		errno = 0;
		v = strtoull(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || errno != 0 || *end != '\0' || v < 1 ||
		    v > 600000)
			return bad_value(argv[0], names[k], arg);
		o->timeout_ms = v;
		return 1;
	}
	return 0;
}

int cluster_check(const struct cluster_options *o, const struct server_options *so)
{
	if (o->url != NULL && so->plain_ids) {
		fprintf(stderr, "sse-relay: --plain-ids cannot go with --redis: a cluster's ids are "
				"the Redis log's, <epoch>-<offset>\n");
		return -1;
	}
	return 0;
}

bool cluster_enabled(const struct relay *r)
{
	return r->cluster != NULL;
}

#ifndef SSE_RELAY_REDIS

int cluster_open(struct relay *r)
{
	if (r->cluster_opt.url == NULL)
		return 0;
	fprintf(stderr, "sse-relay: --redis: built without Redis support (hiredis)\n");
	return -1;
}

void cluster_free(struct relay *r) { (void)r; }
bool cluster_owns(const struct relay *r, const void *ptr) { (void)r, (void)ptr; return false; }
void cluster_on_event(struct relay *r, void *ptr, uint32_t events) { (void)r, (void)ptr, (void)events; }
void cluster_tick(struct relay *r) { (void)r; }
uint64_t cluster_next_deadline(struct relay *r) { (void)r; return SSE_NO_DEADLINE; }
void cluster_publish(struct conn *c, const struct sse_event *ev) { (void)ev; conn_reply_status(c, 500, NULL); }
void cluster_forget(struct conn *c) { (void)c; }

bool cluster_ready(const struct relay *r, const char **why)
{
	(void)r;
	*why = "";
	return true;
}

bool cluster_joined(const struct relay *r) { (void)r; return true; }
const struct sse_redis *cluster_redis(const struct relay *r) { (void)r; return NULL; }

#else

#include <netdb.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <sse/redis.h>

#define CLUSTER_FDS 4 /* two connections; room for one closing as one opens */

struct cluster_fd {
	struct relay_cluster *cl;
	int fd; /* -1: free */
};

/* A publish sent to Redis: freed when Redis's callback ran and, if its
 * connection still waits, once answered. */
struct cluster_pending {
	struct cluster_pending *next; /* on the answered list */
	struct relay_cluster *cl;
	struct conn *conn;            /* NULL: it closed */
	int status;                   /* 202 or 503 */
	size_t len;
	char text[64];                /* the id, or why not, and a line feed */
};

struct relay_cluster {
	struct relay *relay;
	struct sse_redis *redis;
	struct cluster_fd fds[CLUSTER_FDS];
	struct cluster_pending *answered, *answered_tail;
	uint64_t next; /* Redis's next deadline */
	bool joined;   /* the ring followed the log once: its ids are the log's */
	char host[NI_MAXHOST];
	char channel[256];
	int port;
};

/* ---- the URL: redis://HOST[:PORT][/CHANNEL]; HOST a name, an IPv4
 * address or [an IPv6 one]. Resolved once here, at start (the library
 * would resolve a name at every connect, blocking the loop). */

static int parse_url(struct relay_cluster *cl, const char *url)
{
	const char *p = url, *host, *end, *slash;
	char name[NI_MAXHOST], port[8] = "6379";
	size_t hlen;

	if (strncmp(p, "redis://", 8) != 0)
		return -1;
	p += 8;
	slash = strchr(p, '/');
	end = slash != NULL ? slash : p + strlen(p);
	host = p;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (close == NULL)
			return -1;
		host = p + 1;
		hlen = (size_t)(close - host);
		p = close + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		hlen = (size_t)((colon != NULL ? colon : end) - host);
		p = colon != NULL ? colon : end;
	}
	if (hlen == 0 || hlen >= sizeof(name))
		return -1;
	memcpy(name, host, hlen);
	name[hlen] = '\0';
	if (*p == ':') {
		size_t plen = (size_t)(end - p - 1);

		if (plen == 0 || plen >= sizeof(port) || strspn(p + 1, "0123456789") < plen)
			return -1;
		memcpy(port, p + 1, plen);
		port[plen] = '\0';
	} else if (p != end) {
		return -1;
	}
	cl->port = atoi(port);
	if (cl->port < 1 || cl->port > 65535)
		return -1;
	snprintf(cl->channel, sizeof(cl->channel), "%s",
		 slash != NULL && slash[1] != '\0' ? slash + 1 : CLUSTER_CHANNEL);
	return strlen(slash != NULL ? slash + 1 : "") < sizeof(cl->channel) ? 0 : -1;
}

static int resolve(struct relay_cluster *cl, const char *name)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	int rc = getaddrinfo(name, NULL, &hints, &ai);

	if (rc != 0) {
		fprintf(stderr, "sse-relay: --redis: %s: %s\n", name, gai_strerror(rc));
		return -1;
	}
	rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, cl->host, sizeof(cl->host), NULL, 0,
			 NI_NUMERICHOST);
	freeaddrinfo(ai);
	return rc == 0 ? 0 : -1;
}

/* The host part again, to resolve it (parse_url() checked the form). */
static void url_host(const char *url, char *out, size_t cap)
{
	const char *p = url + 8;
	size_t n = strcspn(p, *p == '[' ? "]" : ":/");

	if (*p == '[')
		p++, n--;
	snprintf(out, cap, "%.*s", (int)n, p);
}

/* ---- the watch hook: the Redis fds in the relay's epoll set */

static void watch(int fd, unsigned events, void *user)
{
	struct relay_cluster *cl = user;
	struct epoll_event ev = {.events = ((events & SSE_REDIS_READ) ? EPOLLIN : 0u) |
					   ((events & SSE_REDIS_WRITE) ? EPOLLOUT : 0u)};
	struct cluster_fd *slot = NULL, *free_slot = NULL;
	int epfd = cl->relay->epoll_fd;

	for (int i = 0; i < CLUSTER_FDS; i++) {
		if (cl->fds[i].fd == fd)
			slot = &cl->fds[i];
		else if (cl->fds[i].fd < 0 && free_slot == NULL)
			free_slot = &cl->fds[i];
	}
	if (events == 0) { /* it closes next: forget it (a stale event finds fd -1) */
		if (slot != NULL) {
			(void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
			slot->fd = -1;
		}
		return;
	}
	if (slot == NULL && free_slot == NULL)
		return; /* not reached: two connections */
	ev.data.ptr = slot != NULL ? slot : free_slot;
	if (slot != NULL) {
		(void)epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
		return;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		free_slot->fd = fd;
	else
		fprintf(stderr, "sse-relay: redis: epoll: %s\n", strerror(errno));
}

bool cluster_owns(const struct relay *r, const void *ptr)
{
	const struct relay_cluster *cl = r->cluster;

	return cl != NULL && ptr >= (const void *)&cl->fds[0] &&
	       ptr < (const void *)&cl->fds[CLUSTER_FDS];
}

void cluster_on_event(struct relay *r, void *ptr, uint32_t events)
{
	struct cluster_fd *slot = ptr;
	unsigned ev = 0;

	if (slot->fd < 0)
		return; /* closed earlier in this turn */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		ev |= SSE_REDIS_READ;
	if (events & EPOLLOUT)
		ev |= SSE_REDIS_WRITE;
	(void)sse_redis_handle(r->cluster->redis, slot->fd, ev);
	r->published = true; /* live frames may have come into the ring */
}

/* ---- publishing */

/* Redis answered (or failed, or the object is being freed): note it;
 * cluster_tick() answers, outside hiredis's callback. */
static void published(int err, const char *id, size_t id_len, void *user)
{
	struct cluster_pending *p = user;
	struct relay_cluster *cl = p->cl;
	int n;

	if (p->conn == NULL) {
		free(p);
		return;
	}
	if (err == 0) {
		p->status = 202;
		n = snprintf(p->text, sizeof(p->text), "%.*s\n", (int)id_len, id);
	} else {
		p->status = 503;
		n = snprintf(p->text, sizeof(p->text), "%s\n", sse_redis_last_error(cl->redis));
	}
	p->len = n < 0 ? 0 : (size_t)n < sizeof(p->text) ? (size_t)n : sizeof(p->text) - 1;
	if (p->len > 0)
		p->text[p->len - 1] = '\n'; /* cut short: still one line */
	p->next = NULL;
	if (cl->answered_tail != NULL)
		cl->answered_tail->next = p;
	else
		cl->answered = p;
	cl->answered_tail = p;
}

/* 202 and the id, or 503 and why: the body in the request's own text
 * buffer, which lives until the answer is written. */
static void answer(struct conn *c, int status, const char *text, size_t len)
{
	char *buf = c->u.req->text;

	if (len > sizeof(c->u.req->text))
		len = sizeof(c->u.req->text);
	memcpy(buf, text, len);
	conn_reply(c, status, status == 503 ? "Retry-After: 1\r\n" : NULL,
		   "text/plain; charset=utf-8", buf, len);
}

/* Input while the publish waits is the client's next request: it waits. */
static void body_waits(struct conn *c, const char *body, size_t len)
{
	(void)c, (void)body, (void)len;
}

void cluster_publish(struct conn *c, const struct sse_event *ev)
{
	struct relay_cluster *cl = c->relay->cluster;
	struct cluster_pending *p = calloc(1, sizeof(*p));
	const char *why;
	int rc;

	if (p == NULL) {
		conn_reply_status(c, 503, NULL);
		return;
	}
	p->cl = cl;
	p->conn = c;
	rc = sse_redis_publish(cl->redis, ev, published, p);
	if (rc == 0) {
		c->u.req->pending = p;
		c->u.req->on_body = body_waits;
		return;
	}
	free(p);
	if (rc != SSE_ERR_IO) {
		conn_reply_status(c, server_publish_status(rc), NULL);
		return;
	}
	why = sse_redis_last_error(cl->redis);
	{
		char text[64];
		int n = snprintf(text, sizeof(text), "%s\n", why);
		size_t len = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;

		if (len > 0)
			text[len - 1] = '\n';
		answer(c, 503, text, len);
	}
}

void cluster_forget(struct conn *c)
{
	struct cluster_pending *p = c->u.req->pending;

	c->u.req->pending = NULL;
	if (p != NULL)
		p->conn = NULL;
}

static void answer_all(struct relay_cluster *cl)
{
	struct cluster_pending *p;

	while ((p = cl->answered) != NULL) {
		cl->answered = p->next;
		if (cl->answered == NULL)
			cl->answered_tail = NULL;
		if (p->conn != NULL) {
			struct conn *c = p->conn;

			c->u.req->pending = NULL;
			answer(c, p->status, p->text, p->len);
		}
		free(p);
	}
}

void cluster_tick(struct relay *r)
{
	struct relay_cluster *cl = r->cluster;

	if (cl == NULL)
		return;
	(void)sse_redis_tick(cl->redis, r->now, &cl->next);
	cl->joined = cl->joined || sse_redis_ready(cl->redis);
	answer_all(cl);
}

bool cluster_joined(const struct relay *r)
{
	return r->cluster == NULL || r->cluster->joined;
}

const struct sse_redis *cluster_redis(const struct relay *r)
{
	return r->cluster != NULL ? r->cluster->redis : NULL;
}

uint64_t cluster_next_deadline(struct relay *r)
{
	struct relay_cluster *cl = r->cluster;

	if (cl == NULL)
		return SSE_NO_DEADLINE;
	(void)sse_redis_tick(cl->redis, r->now, &cl->next);
	return cl->answered != NULL ? r->now : cl->next;
}

bool cluster_ready(const struct relay *r, const char **why)
{
	*why = "";
	if (r->cluster == NULL)
		return true;
	if (sse_redis_ready(r->cluster->redis))
		return true;
	*why = sse_redis_last_error(r->cluster->redis);
	if ((*why)[0] == '\0')
		*why = "redis: not in step with the log yet";
	return false;
}

/* ---- setting up */

int cluster_open(struct relay *r)
{
	struct relay_cluster *cl;
	char name[NI_MAXHOST];
	struct sse_redis_config cfg = {.size = sizeof(cfg), .watch = watch};
	int rc;

	if (r->cluster_opt.url == NULL)
		return 0;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return -1;
	cl->relay = r;
	cl->next = SSE_NO_DEADLINE;
	for (int i = 0; i < CLUSTER_FDS; i++)
		cl->fds[i] = (struct cluster_fd){.cl = cl, .fd = -1};
	url_host(r->cluster_opt.url, name, sizeof(name));
	if (parse_url(cl, r->cluster_opt.url) < 0) {
		fprintf(stderr, "sse-relay: --redis: '%s' is not redis://HOST[:PORT][/CHANNEL]\n",
			r->cluster_opt.url);
		free(cl);
		return -1;
	}
	if (resolve(cl, name) < 0) {
		free(cl);
		return -1;
	}
	signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */
	cfg.host = cl->host;
	cfg.port = cl->port;
	cfg.channel = cl->channel;
	cfg.flags = SSE_ENCODE_STRICT_UTF8; /* the ring's (server_hub_new()) */
	/* The stream keeps at least what a ring keeps. */
	cfg.max_len = r->opt.replay_events > 10000 ? r->opt.replay_events : 10000;
	cfg.connect_timeout_ms = cfg.command_timeout_ms =
		r->cluster_opt.timeout_ms != 0 ? r->cluster_opt.timeout_ms : CLUSTER_TIMEOUT_MS;
	cfg.user = cl;
	rc = sse_redis_new(&cl->redis, r->hub, &cfg, NULL);
	if (rc != 0) {
		fprintf(stderr, "sse-relay: --redis: %s (channel '%s')\n", sse_strerror(rc),
			cl->channel);
		free(cl);
		return -1;
	}
	r->cluster = cl;
	return 0;
}

void cluster_free(struct relay *r)
{
	struct relay_cluster *cl = r->cluster;

	if (cl == NULL)
		return;
	sse_redis_free(cl->redis); /* the publishes in flight land on answered */
	cl->redis = NULL;
	while (cl->answered != NULL) {
		struct cluster_pending *p = cl->answered;

		cl->answered = p->next;
		free(p);
	}
	free(cl);
	r->cluster = NULL;
}

#endif
