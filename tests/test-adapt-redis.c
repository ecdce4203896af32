/*
 * libsse-redis against a real redis-server (one per test, on a free
 * loopback port, without persistence) and a poll() loop of the test's
 * own that drives the watch hook, sse_redis_handle() and the ticks.
 * What subscribers got is read back with the parser; every event must
 * arrive once and in order, on every node, across reconnects.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* prctl, mkdtemp */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <sse/redis.h>

#include "test-common.h"

enum { SUBS = 3, FDS = 4, NODES = 2 };

/* ---- a redis-server of the test's own */

struct server {
	pid_t pid;
	int port;
	char dir[64];
};

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool server_accepts(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	close(fd);
	return ok;
}

static void server_start(struct server *s)
{
	char port[16], log[96];

	if (s->port == 0)
		s->port = free_port();
	if (s->dir[0] == '\0') {
		strcpy(s->dir, "/tmp/sse-redis-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(s->dir));
	}
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(log, sizeof(log), "%s/log", s->dir);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no server */
		execlp("redis-server", "redis-server", "--save", "", "--appendonly", "no",
		       "--port", port, "--bind", "127.0.0.1", "--dir", s->dir, "--logfile", log,
		       "--enable-debug-command", "local", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && !server_accepts(s->port); i++)
		usleep(10000);
	ck_assert_msg(server_accepts(s->port), "redis-server did not start");
}

static void server_stop(struct server *s)
{
	char log[96];

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
	snprintf(log, sizeof(log), "%s/log", s->dir);
	unlink(log);
}

static void server_remove(struct server *s)
{
	server_stop(s);
	rmdir(s->dir);
}

/* An admin command, synchronously: the test may block, the library not. */
static void admin(const struct server *s, const char *cmd)
{
	redisContext *c = redisConnect("127.0.0.1", s->port);
	redisReply *x;

	ck_assert(c != NULL && c->err == 0);
	x = redisCommand(c, cmd);
	ck_assert_ptr_nonnull(x);
	ck_assert_msg(x->type != REDIS_REPLY_ERROR, "%s: %s", cmd, x->str);
	freeReplyObject(x);
	redisFree(c);
}

/* ---- nodes: a hub, its subscribers, a sse_redis and its fds */

struct node {
	struct sse_hub *hub;
	struct sse_redis *r;
	struct test_writer ws[SUBS];
	struct sse_stream *ss[SUBS];
	int drop_err[SUBS];
	struct pollfd fds[FDS];
	int nfds;
};

static struct node nodes[NODES];
static struct server srv;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void watch(int fd, unsigned events, void *user)
{
	struct node *n = user;
	short ev = (short)(((events & SSE_REDIS_READ) ? POLLIN : 0) |
			   ((events & SSE_REDIS_WRITE) ? POLLOUT : 0));
	int i;

	for (i = 0; i < n->nfds && n->fds[i].fd != fd; i++)
		;
	if (events == 0) {
		ck_assert_int_lt(i, n->nfds);
		n->fds[i] = n->fds[--n->nfds];
		return;
	}
	if (i == n->nfds) {
		ck_assert_int_lt(n->nfds, FDS);
		n->nfds++;
	}
	n->fds[i] = (struct pollfd){.fd = fd, .events = ev};
}

static void on_drop(struct sse_stream *s, int err, void *user)
{
	struct node *n = user;

	for (int i = 0; i < SUBS; i++)
		if (n->ss[i] == s)
			n->drop_err[i] = err;
}

static struct sse_redis_config node_config(struct node *n)
{
	return (struct sse_redis_config){.size = sizeof(struct sse_redis_config),
					 .port = srv.port, .channel = "news",
					 .command_timeout_ms = 1000, .connect_timeout_ms = 1000,
					 .backoff_min_ms = 50, .backoff_max_ms = 400,
					 .watch = watch, .user = n};
}

static void node_init(struct node *n, size_t ring_events, const struct sse_redis_config *cfg)
{
	static const struct sse_event reset = {.type = "sse-reset", .type_len = 9, .data = "",
					       .retry = SSE_RETRY_NONE};
	struct sse_hub_config hc = {.size = sizeof(hc),
				    .ring = {.size = sizeof(hc.ring), .max_events = ring_events,
					     .max_bytes = 1 << 16, .reset_event = &reset},
				    .heartbeat_ms = 200};
	struct sse_redis_config c = cfg ? *cfg : node_config(n);

	memset(n, 0, sizeof(*n));
	c.user = n;
	ck_assert_int_eq(sse_hub_new(&n->hub, &hc, on_drop, n, NULL), 0);
	ck_assert_int_eq(sse_redis_new(&n->r, n->hub, &c, NULL), 0);
	for (int i = 0; i < SUBS; i++)
		test_writer_init(&n->ws[i]);
}

static void node_fini(struct node *n)
{
	sse_redis_free(n->r);
	ck_assert_int_eq(n->nfds, 0); /* every fd was given back */
	sse_hub_free(n->hub);
	for (int i = 0; i < SUBS; i++) {
		sse_stream_free(n->ss[i]);
		test_writer_fini(&n->ws[i]);
	}
}

/* Subscriber i of n, from last_id; the resume's status. */
static int subscribe(struct node *n, int i, const char *last_id)
{
	int status = -1;

	sse_stream_free(n->ss[i]);
	test_writer_fini(&n->ws[i]);
	test_writer_init(&n->ws[i]);
	n->drop_err[i] = 0;
	n->ss[i] = test_stream_new(&n->ws[i], true, NULL);
	ck_assert_int_eq(sse_hub_subscribe(n->hub, n->ss[i], last_id,
					   last_id ? strlen(last_id) : 0, &status), 0);
	return status;
}

/* ---- the loop: one turn polls every node's fds, then ticks and flushes */

static uint64_t longest_turn; /* ms spent in one turn, polling excluded */

static int gather(struct pollfd *all, struct node **owner, int count)
{
	int k = 0;

	for (int i = 0; i < count; i++) {
		for (int j = 0; j < nodes[i].nfds; j++) {
			all[k] = nodes[i].fds[j];
			owner[k++] = &nodes[i];
		}
	}
	return k;
}

static void turn(int count, uint64_t cap_ms)
{
	struct pollfd all[NODES * FDS];
	struct node *owner[NODES * FDS];
	uint64_t t = now_ms(), next = t + cap_ms, start;
	int k, rc;

	for (int i = 0; i < count; i++) {
		uint64_t a, b;

		sse_redis_tick(nodes[i].r, t, &a);
		sse_hub_tick(nodes[i].hub, t, &b);
		next = a < next ? a : next;
		next = b < next ? b : next;
	}
	k = gather(all, owner, count);
	rc = poll(all, (nfds_t)k, next > t ? (int)(next - t) : 0);
	ck_assert(rc >= 0 || errno == EINTR);
	start = now_ms();
	for (int i = 0; i < k && rc > 0; i++) {
		unsigned ev = 0;

		if (all[i].revents & (POLLIN | POLLHUP | POLLERR))
			ev |= SSE_REDIS_READ;
		if (all[i].revents & POLLOUT)
			ev |= SSE_REDIS_WRITE;
		if (ev != 0)
			(void)sse_redis_handle(owner[i]->r, all[i].fd, ev);
	}
	for (int i = 0; i < count; i++) {
		sse_redis_tick(nodes[i].r, now_ms(), NULL);
		sse_hub_flush(nodes[i].hub);
	}
	if (now_ms() - start > longest_turn)
		longest_turn = now_ms() - start;
}

/* Run the loop until cond() holds, for up to ms. */
static bool run_until(int count, bool (*cond)(void), uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (!cond()) {
		if (now_ms() >= end)
			return false;
		turn(count, 20);
	}
	return true;
}

static void run_for(int count, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		turn(count, end - now_ms());
}

static bool ready1(void) { return sse_redis_ready(nodes[0].r); }
static bool ready2(void) { return ready1() && sse_redis_ready(nodes[1].r); }

/* ---- publishing */

static int acks, nacks;
static char ack_id[64][48];

static void published(int err, const char *id, size_t len, void *user)
{
	(void)user;
	if (err != 0) {
		nacks++;
		return;
	}
	ck_assert_uint_lt(len, sizeof(ack_id[0]));
	ck_assert_int_lt(acks, 64);
	memcpy(ack_id[acks], id, len);
	ack_id[acks++][len] = '\0';
}

static int sent; /* events published so far: "ev <k>" */

static int publish(struct node *n)
{
	char data[32];
	struct sse_event ev = {.data = data, .retry = SSE_RETRY_NONE};
	int rc;

	ev.data_len = (size_t)snprintf(data, sizeof(data), "ev %d", sent + 1);
	rc = sse_redis_publish(n->r, &ev, published, NULL);
	if (rc == 0)
		sent++;
	return rc;
}

static int want_acks;
static bool acked(void) { return acks + nacks >= want_acks; }

/* ---- what a subscriber got: "e-1:ev 1 e-2:ev 2 R " */

struct seen {
	char text[16384];
	size_t len;
	int events, resets;
};

static int on_message(const struct sse_message *m, void *user)
{
	struct seen *s = user;
	int k;

	if (m->type_len == 9 && memcmp(m->type, "sse-reset", 9) == 0) {
		s->resets++;
		k = snprintf(s->text + s->len, sizeof(s->text) - s->len, "R ");
	} else {
		s->events++;
		k = snprintf(s->text + s->len, sizeof(s->text) - s->len, "%.*s:%.*s ",
			     (int)m->last_id_len, m->last_id, (int)m->data_len, m->data);
	}
	ck_assert_int_gt(k, 0);
	s->len += (size_t)k;
	ck_assert_uint_lt(s->len, sizeof(s->text));
	return 0;
}

static struct seen got(const struct node *n, int i)
{
	struct seen s = {.len = 0};
	struct sse_parser_callbacks cb = {.on_message = on_message};
	struct sse_parser *p;

	ck_assert_int_eq(sse_parser_new(&p, &cb, &s, NULL), 0);
	ck_assert_int_eq(sse_parser_feed(p, n->ws[i].buf, n->ws[i].len), 0);
	sse_parser_free(p);
	return s;
}

/* "<epoch>-a:ev a ... <epoch>-z:ev z " */
static const char *expected(const char *epoch, int a, int z)
{
	static char text[16384];
	size_t len = 0;

	text[0] = '\0';
	for (int k = a; k <= z; k++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s-%d:ev %d ", epoch, k, k);
	return text;
}

static void expect_got(const struct node *n, int i, const char *want)
{
	struct seen s = got(n, i);

	ck_assert_msg(strcmp(s.text, want) == 0, "subscriber %d got\n\"%s\"\nwant\n\"%s\"", i,
		      s.text, want);
}

/* The epoch of ack_id[k]: up to its last '-'. */
static const char *epoch_of(int k)
{
	static char e[48];

	strcpy(e, ack_id[k]);
	*strrchr(e, '-') = '\0';
	return e;
}

static void start(int count, size_t ring_events)
{
	signal(SIGPIPE, SIG_IGN);
	memset(&srv, 0, sizeof(srv));
	server_start(&srv);
	acks = nacks = sent = 0;
	longest_turn = 0;
	for (int i = 0; i < count; i++)
		node_init(&nodes[i], ring_events, NULL);
	ck_assert(run_until(count, count == 2 ? ready2 : ready1, 5000));
}

static void finish(int count)
{
	for (int i = 0; i < count; i++)
		node_fini(&nodes[i]);
	server_remove(&srv);
}

/* ---- tests */

START_TEST(test_redis_publish_gets_contiguous_ids_in_order)
{
	char want[64];

	start(1, 64);
	subscribe(&nodes[0], 0, NULL);
	subscribe(&nodes[0], 1, NULL);
	for (int k = 0; k < 20; k++)
		ck_assert_int_eq(publish(&nodes[0]), 0);
	want_acks = 20;
	ck_assert(run_until(1, acked, 3000));
	ck_assert_int_eq(nacks, 0);
	for (int k = 0; k < 20; k++) {
		snprintf(want, sizeof(want), "%s-%d", epoch_of(0), k + 1);
		ck_assert_str_eq(ack_id[k], want);
	}
	run_for(1, 100);
	expect_got(&nodes[0], 0, expected(epoch_of(0), 1, 20));
	expect_got(&nodes[0], 1, expected(epoch_of(0), 1, 20));
	/* An id is refused: the log gives them. */
	struct sse_event ev = {.id = "x", .id_len = 1, .data = "d", .data_len = 1,
			       .retry = SSE_RETRY_NONE};
	ck_assert_int_eq(sse_redis_publish(nodes[0].r, &ev, published, NULL), SSE_ERR_INVALID);
	finish(1);
}
END_TEST

static bool b_has_all(void)
{
	return got(&nodes[1], 0).events == sent && got(&nodes[1], 1).events == sent - 3 &&
	       acks == sent;
}

/* Publishes on A reach B's subscribers; a resume on B from an id B's
 * small ring no longer holds is answered from Redis while A goes on. */
START_TEST(test_redis_two_nodes_share_events_and_history)
{
	start(2, 8);
	subscribe(&nodes[1], 0, NULL);
	/* One at a time: B's ring of 8 must not overflow within one turn. */
	for (int k = 0; k < 12; k++) {
		ck_assert_int_eq(publish(&nodes[0]), 0);
		want_acks = k + 1;
		ck_assert(run_until(2, acked, 3000));
	}
	ck_assert(run_until(2, acked, 3000));
	run_for(2, 100);
	expect_got(&nodes[1], 0, expected(epoch_of(0), 1, 12));
	/* B's ring holds 5..12 now: a client of id 3 resumes from Redis. */
	char id[64];
	snprintf(id, sizeof(id), "%s-3", epoch_of(0));
	ck_assert_int_eq(subscribe(&nodes[1], 1, id), SSE_REPLAY_HISTORY);
	/* Live events go on while the answer is on its way. */
	for (int k = 0; k < 10; k++) {
		ck_assert_int_eq(publish(&nodes[0]), 0);
		want_acks = sent;
		ck_assert(run_until(2, acked, 3000));
	}
	if (!run_until(2, b_has_all, 3000))
		ck_abort_msg("B's subscribers: 0 got \"%s\" (drop %d), 1 got \"%s\" (drop %d); %d acks of %d",
			     got(&nodes[1], 0).text, nodes[1].drop_err[0], got(&nodes[1], 1).text,
			     nodes[1].drop_err[1], acks, sent);
	expect_got(&nodes[1], 0, expected(epoch_of(0), 1, sent));
	expect_got(&nodes[1], 1, expected(epoch_of(0), 4, sent));
	/* A client that never was on B, from an id B never had. */
	ck_assert_int_eq(subscribe(&nodes[1], 2, id), SSE_REPLAY_HISTORY);
	run_for(2, 200);
	expect_got(&nodes[1], 2, expected(epoch_of(0), 4, sent));
	finish(2);
}
END_TEST

static bool all_acked_and_got(void)
{
	return acks == sent && got(&nodes[1], 0).events == sent && sse_redis_ready(nodes[1].r);
}

/* The pub/sub connections die while A publishes: B fills the hole from
 * the stream, nothing lost, nothing twice. */
START_TEST(test_redis_lost_live_feed_is_backfilled)
{
	struct sse_redis_stats st0, st1;

	start(2, 256);
	subscribe(&nodes[1], 0, NULL);
	sse_redis_stats(nodes[1].r, &st0);
	for (int k = 0; k < 40; k++) {
		ck_assert_int_eq(publish(&nodes[0]), 0);
		if (k == 10 || k == 25)
			admin(&srv, "CLIENT KILL TYPE pubsub");
		turn(2, 2);
	}
	ck_assert(run_until(2, all_acked_and_got, 5000));
	ck_assert_int_eq(nacks, 0);
	expect_got(&nodes[1], 0, expected(epoch_of(0), 1, 40));
	sse_redis_stats(nodes[1].r, &st1);
	ck_assert_uint_gt(st1.sub_connects, st0.sub_connects); /* it did reconnect */
	ck_assert_uint_gt(st1.syncs, st0.syncs);
	finish(2);
}
END_TEST

static bool dropped0(void) { return nodes[0].drop_err[0] != 0; }

/* Redis goes away: publish fails at once, subscribers only get heartbeats;
 * it comes back empty: a new epoch, and subscribers get the reset. */
START_TEST(test_redis_down_then_back_empty_gives_reset)
{
	size_t before;
	uint64_t t;
	struct seen s;
	char last[64], old_epoch[48];

	start(1, 64);
	subscribe(&nodes[0], 0, NULL);
	for (int k = 0; k < 3; k++)
		ck_assert_int_eq(publish(&nodes[0]), 0);
	want_acks = 3;
	ck_assert(run_until(1, acked, 3000));
	run_for(1, 50);
	snprintf(last, sizeof(last), "%s", ack_id[2]);
	snprintf(old_epoch, sizeof(old_epoch), "%s", epoch_of(0));
	ck_assert_int_eq(got(&nodes[0], 0).events, 3);
	server_stop(&srv);
	run_for(1, 100);
	t = now_ms();
	ck_assert_int_eq(publish(&nodes[0]), SSE_ERR_IO);
	/* At once, not after the 1 s command timeout (the bound leaves room
	 * for a loaded machine to preempt the test). */
	ck_assert_uint_lt(now_ms() - t, 500);
	ck_assert_ptr_nonnull(strstr(sse_redis_last_error(nodes[0].r), "redis: "));
	ck_assert(!sse_redis_ready(nodes[0].r));
	before = nodes[0].ws[0].len;
	run_for(1, 700);
	s = got(&nodes[0], 0);
	ck_assert_int_eq(s.events, 3); /* nothing invented */
	ck_assert_uint_gt(nodes[0].ws[0].len, before); /* heartbeats went on */
	ck_assert_int_eq(nodes[0].drop_err[0], 0);

	server_start(&srv); /* same port, no data */
	ck_assert(run_until(1, ready1, 5000));
	ck_assert(run_until(1, dropped0, 1000));
	ck_assert_int_eq(nodes[0].drop_err[0], SSE_ERR_GAP);
	/* Its client comes back with its last id, of the old epoch. */
	ck_assert_int_eq(subscribe(&nodes[0], 0, last), SSE_REPLAY_UNKNOWN);
	acks = nacks = 0;
	sent = 0;
	ck_assert_int_eq(publish(&nodes[0]), 0);
	want_acks = 1;
	ck_assert(run_until(1, acked, 3000));
	ck_assert_str_ne(epoch_of(0), old_epoch); /* a new epoch */
	run_for(1, 100);
	char want[128];
	snprintf(want, sizeof(want), "R %s", expected(epoch_of(0), 1, 1));
	expect_got(&nodes[0], 0, want);
	finish(1);
}
END_TEST

/* DEBUG SLEEP: the loop keeps turning, the publish fails by its deadline. */
START_TEST(test_redis_slow_redis_never_stalls_the_loop)
{
	struct sse_redis_config c;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	uint64_t t;
	int fd, turns = 0;

	signal(SIGPIPE, SIG_IGN);
	memset(&srv, 0, sizeof(srv));
	server_start(&srv);
	c = node_config(&nodes[0]);
	c.command_timeout_ms = 500;
	node_init(&nodes[0], 64, &c);
	acks = nacks = sent = 0;
	ck_assert(run_until(1, ready1, 5000));
	a.sin_port = htons((uint16_t)srv.port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(write(fd, "DEBUG SLEEP 2\r\n", 15), 15);
	usleep(50000); /* Redis is asleep now */
	longest_turn = 0;
	t = now_ms();
	ck_assert_int_eq(publish(&nodes[0]), 0);
	want_acks = 1;
	while (!acked() && now_ms() - t < 1500) {
		turn(1, 20);
		turns++;
	}
	ck_assert_int_eq(nacks, 1);
	/* Deadlines count from the last sse_redis_tick(): up to the 50 ms
	 * sleep above plus one turn before t. */
	ck_assert_uint_ge(now_ms() - t, 500 - 50 - 20);
	/* The upper bounds are loose for a loaded machine, and still well
	 * short of Redis's 2 s sleep, which a blocking wait would take. */
	ck_assert_uint_le(now_ms() - t, 1200);
	ck_assert_int_gt(turns, 10);           /* the loop ran meanwhile */
	ck_assert_uint_lt(longest_turn, 400); /* and no turn blocked */
	ck_assert_ptr_nonnull(strstr(sse_redis_last_error(nodes[0].r), "timed out"));
	/* Redis wakes up: the node comes back and publishes again. */
	ck_assert(run_until(1, ready1, 5000));
	ck_assert_int_eq(publish(&nodes[0]), 0);
	want_acks = 2;
	ck_assert(run_until(1, acked, 3000));
	ck_assert_int_eq(acks, 1);
	close(fd);
	finish(1);
}
END_TEST

/* Redis stops answering without closing anything (SIGSTOP: the sockets
 * stay open, nothing is said). A node with a keepalive notices on its
 * own, with no command of its own to time out, and says it is not ready;
 * one without it notices nothing. Redis back: the feed is whole. */
START_TEST(test_redis_silent_live_feed_is_noticed_by_keepalive)
{
	struct sse_redis_config c;
	struct sse_redis_stats st;
	char why[160] = "";
	uint64_t end;

	signal(SIGPIPE, SIG_IGN);
	memset(&srv, 0, sizeof(srv));
	server_start(&srv);
	acks = nacks = sent = 0;
	c = node_config(&nodes[0]);
	c.keepalive_ms = 200;
	c.command_timeout_ms = 300;
	node_init(&nodes[0], 64, &c);
	c = node_config(&nodes[1]);
	c.keepalive_ms = UINT64_MAX;
	node_init(&nodes[1], 64, &c);
	ck_assert(run_until(2, ready2, 5000));
	subscribe(&nodes[0], 0, NULL);
	ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);
	end = now_ms() + 1200;
	while (now_ms() < end) {
		turn(2, 20);
		if (why[0] == '\0' && !sse_redis_ready(nodes[0].r))
			snprintf(why, sizeof(why), "%s", sse_redis_last_error(nodes[0].r));
	}
	ck_assert_msg(strstr(why, "keepalive") != NULL, "A not ready because: %s", why);
	ck_assert_int_eq(sse_redis_stats(nodes[1].r, &st), 0);
	ck_assert_uint_eq(st.timeouts, 0); /* silent, and it never knew */
	ck_assert(sse_redis_ready(nodes[1].r));
	ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
	ck_assert(run_until(2, ready2, 5000));
	for (int k = 0; k < 3; k++)
		ck_assert_int_eq(publish(&nodes[1]), 0);
	want_acks = 3;
	ck_assert(run_until(2, acked, 3000));
	ck_assert_int_eq(acks, 3);
	run_for(2, 300);
	expect_got(&nodes[0], 0, expected(epoch_of(0), 1, 3));
	finish(2);
}
END_TEST

/* Nothing listens: the attempts come at doubling delays, each drawn in
 * [d/2, d], up to the largest. */
START_TEST(test_redis_reconnect_backs_off_with_jitter)
{
	struct sse_redis_config c;
	uint64_t at[12];
	int n = 0;
	uint64_t last = 0, end, lo = UINT64_MAX, hi = 0;

	memset(&srv, 0, sizeof(srv));
	srv.port = free_port(); /* no server */
	c = node_config(&nodes[0]);
	c.backoff_min_ms = 40;
	c.backoff_max_ms = 160;
	node_init(&nodes[0], 16, &c);
	end = now_ms() + 3000;
	while (n < 12 && now_ms() < end) {
		struct sse_redis_stats st;

		turn(1, 2);
		sse_redis_stats(nodes[0].r, &st);
		if (st.connects - st.sub_connects > last) {
			last = st.connects - st.sub_connects;
			at[n++] = now_ms();
		}
	}
	ck_assert_int_eq(n, 12);
	for (int k = 1; k < n; k++) {
		uint64_t d = 40u << (k - 1 < 2 ? k - 1 : 2), gap = at[k] - at[k - 1];

		ck_assert_msg(gap + 5 >= d / 2 && gap <= d + 100,
			      "attempt %d came %" PRIu64 " ms after the last, want [%" PRIu64
			      ", %" PRIu64 "]", k, gap, d / 2, d);
		if (k >= 3) {
			lo = gap < lo ? gap : lo;
			hi = gap > hi ? gap : hi;
		}
	}
	/* Nine draws in [80, 160]: all within 4 ms of each other by chance is
	 * about (8/80)^8. */
	ck_assert_msg(hi - lo > 4, "the delays at the largest backoff are all the same: no jitter");
	ck_assert_int_eq(publish(&nodes[0]), SSE_ERR_IO);
	node_fini(&nodes[0]);
}
END_TEST

static Suite *redis_suite(void)
{
	Suite *s = suite_create("adapt-redis");
	TCase *tc = tcase_create("redis");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_redis_publish_gets_contiguous_ids_in_order);
	tcase_add_test(tc, test_redis_two_nodes_share_events_and_history);
	tcase_add_test(tc, test_redis_lost_live_feed_is_backfilled);
	tcase_add_test(tc, test_redis_down_then_back_empty_gives_reset);
	tcase_add_test(tc, test_redis_slow_redis_never_stalls_the_loop);
	tcase_add_test(tc, test_redis_silent_live_feed_is_noticed_by_keepalive);
	tcase_add_test(tc, test_redis_reconnect_backs_off_with_jitter);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		printf("SKIP: redis-server not found (Debian: apt install redis-server)\n");
		return 77;
	}
	return test_run_suite(redis_suite());
}
