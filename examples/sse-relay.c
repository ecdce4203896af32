/*
 * sse-relay: a small Server-Sent Events relay, libsse's flagship example.
 *
 *     sse-relay --port P [--bind ADDR] [--token T] [--replay-events N]
 *               [--replay-bytes B] [--heartbeat MS] [--retry MS]
 *               [--stall MS] [--plain-ids]
 *
 * Anyone POSTs an event to /publish (the body is its data, ?event=NAME
 * its type); every client of GET /events receives it; a client that
 * reconnects with Last-Event-ID gets what it missed from a replay ring,
 * or an "sse-reset" event when the ring no longer has it. GET / serves a
 * page to try it in a browser. Try:
 *
 *     sse-relay --port 8080 &
 *     curl -N http://127.0.0.1:8080/events &
 *     curl -d 'hello' 'http://127.0.0.1:8080/publish?event=greeting'
 *
 * One thread, one epoll loop, non-blocking sockets; relay.h lists the
 * files and relay-conn.c explains the connection state machine. Every
 * buffer a client can fill is bounded and every wait times out, so no
 * client, however slow or hostile, can stop the others or grow memory:
 * malformed requests are answered 4xx and closed, and a subscriber that
 * stops reading is dropped once it misses events (the ring dropped what it
 * still owes) or its socket took nothing for the stall time; one that
 * reads slowly but steadily keeps its place however much it owes.
 * SIGINT or SIGTERM: stop accepting, let subscribers drain for up to a
 * second, free everything, exit 0.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

#define EPOLL_BATCH 64

/* ---- options */

static void usage(FILE *to, const char *argv0, bool full)
{
	fprintf(to,
		"usage: %s --port P [--bind ADDR] [--token T] [--replay-events N]\n"
		"       [--replay-bytes B] [--heartbeat MS] [--retry MS] [--stall MS] [--plain-ids]\n",
		argv0);
	if (!full)
		return;
	fputs("  --port P           TCP port; 0 picks a free one\n"
	      "  --bind ADDR        address to listen on (default 127.0.0.1)\n"
	      "  --token T          POST /publish needs 'Authorization: Bearer T'\n"
	      "  --replay-events N  events kept for replay (default 1000)\n"
	      "  --replay-bytes B   bytes kept for replay (default 8388608)\n"
	      "  --heartbeat MS     idle time before a keep-alive comment (default 15000, 0: off)\n"
	      "  --retry MS         reconnection delay sent to clients (default: none)\n"
	      "  --stall MS         drop a subscriber whose socket took nothing this long\n"
	      "                     while it owed bytes (default 30000)\n"
	      "  --plain-ids        ids 1, 2, 3, ... without this run's epoch: a client\n"
	      "                     holding an id of an earlier run then resumes from the\n"
	      "                     wrong place instead of getting the reset event\n",
	      to);
}

/* A decimal number in [min, max], digits only. */
static bool parse_number(const char *arg, unsigned long long min, unsigned long long max,
			 unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (arg[0] < '0' || arg[0] > '9')
		return false; /* strtoull would accept " 5", "+5" and "-5" */
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

enum {
	OPT_PORT = 256,
	OPT_BIND,
	OPT_TOKEN,
	OPT_EVENTS,
	OPT_BYTES,
	OPT_HEARTBEAT,
	OPT_RETRY,
	OPT_STALL,
	OPT_PLAIN_IDS
};

/* One option's value into o; false if it is out of range. */
static bool set_option(struct relay_options *o, int opt, const char *arg)
{
	unsigned long long v = 0;

	switch (opt) {
	case OPT_BIND:
		o->bind = arg;
		return true;
	case OPT_TOKEN:
		o->token = arg;
		return arg[0] != '\0';
	case OPT_PORT:
		if (!parse_number(arg, 0, 65535, &v))
			return false;
		o->port = (unsigned)v;
		return true;
	case OPT_EVENTS:
		if (!parse_number(arg, 1, 10000000, &v))
			return false;
		o->replay_events = (size_t)v;
		return true;
	case OPT_BYTES:
		if (!parse_number(arg, 1, (unsigned long long)1 << 30, &v))
			return false;
		o->replay_bytes = (size_t)v;
		return true;
	case OPT_HEARTBEAT:
		if (!parse_number(arg, 0, 86400000, &v))
			return false;
		o->heartbeat_ms = v;
		return true;
	case OPT_RETRY:
		if (!parse_number(arg, 0, SSE_RETRY_MAX, &v))
			return false;
		o->retry_ms = (long)v;
		return true;
	case OPT_STALL:
		if (!parse_number(arg, 1, 86400000, &v))
			return false;
		o->stall_ms = v;
		return true;
	case OPT_PLAIN_IDS:
		o->plain_ids = true;
		return true;
	}
	return false;
}

static const struct option longopts[] = {
	{"port", required_argument, NULL, OPT_PORT},
	{"bind", required_argument, NULL, OPT_BIND},
	{"token", required_argument, NULL, OPT_TOKEN},
	{"replay-events", required_argument, NULL, OPT_EVENTS},
	{"replay-bytes", required_argument, NULL, OPT_BYTES},
	{"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
	{"retry", required_argument, NULL, OPT_RETRY},
	{"stall", required_argument, NULL, OPT_STALL},
	{"plain-ids", no_argument, NULL, OPT_PLAIN_IDS},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static const char *option_name(int opt)
{
	for (const struct option *lo = longopts; lo->name != NULL; lo++)
		if (lo->val == opt)
			return lo->name;
	return "?";
}

/* 0 to run, 1 for --help, -1 for a usage error (reported). */
static int parse_options(int argc, char **argv, struct relay_options *o)
{
	bool have_port = false;
	int opt;

	*o = (struct relay_options){.bind = "127.0.0.1", .replay_events = 1000,
				    .replay_bytes = RELAY_REPLAY_BYTES,
				    .heartbeat_ms = SSE_HEARTBEAT_DEFAULT_MS,
				    .stall_ms = SSE_HUB_DEFAULT_STALL_MS,
				    .retry_ms = SSE_RETRY_NONE};
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'h')
			return 1;
		if (opt == '?' || !set_option(o, opt, optarg)) {
			if (opt != '?')
				fprintf(stderr, "%s: bad value for --%s: '%s'\n", argv[0],
					option_name(opt), optarg);
			return -1;
		}
		have_port = have_port || opt == OPT_PORT;
	}
	if (optind < argc || !have_port) {
		fprintf(stderr, "%s: %s\n", argv[0],
			optind < argc ? "unexpected argument" : "--port is required");
		return -1;
	}
	return 0;
}

/* ---- the listening socket */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int listen_on(const struct addrinfo *ai)
{
	int on = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);

	if (fd < 0)
		return -1;
	/* Restarting must not wait for the old connections' TIME_WAIT. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Listen on the first address ADDR resolves to that works. */
static int open_listener(const struct relay_options *o)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *list, *ai;
	char port[8];
	int fd = -1, rc;

	snprintf(port, sizeof(port), "%u", o->port);
	rc = getaddrinfo(o->bind, port, &hints, &list);
	if (rc != 0) {
		fprintf(stderr, "sse-relay: %s: %s\n", o->bind, gai_strerror(rc));
		return -1;
	}
	for (ai = list; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = listen_on(ai);
	if (fd < 0)
		fprintf(stderr, "sse-relay: cannot listen on %s port %s: %s\n", o->bind, port,
			strerror(errno));
	freeaddrinfo(list);
	return fd;
}

/* The line tests wait for: the address and the port actually bound. */
static int announce(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	unsigned port;
	bool v6 = false;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
		v6 = true;
	} else {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	}
	printf("sse-relay: listening on http://%s%s%s:%u/\n", v6 ? "[" : "", host, v6 ? "]" : "",
	       port);
	return fflush(stdout) == 0 ? 0 : -1;
}

/* ---- setting up and tearing down */

/* SIGINT and SIGTERM arrive as input on a descriptor, read by the loop
 * between events: no code runs in a signal handler. */
static int open_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The hub: its ring holds every event, encoded once: strict UTF-8 (a
 * publish that is not is refused), ids assigned by the ring, and the
 * reset event for clients whose Last-Event-ID it no longer holds. Its
 * subscribers follow the ring; it sends their heartbeats and drops the
 * slow ones (conn_subscriber_dropped()). */
static int open_hub(struct relay *r)
{
	static const char data[] = "{\"reason\":\"missed events\"}";
	const struct sse_event reset = {
		.type = "sse-reset",
		.type_len = strlen("sse-reset"),
		.data = data,
		.data_len = sizeof(data) - 1,
		.retry = SSE_RETRY_NONE,
	};
	const struct sse_hub_config cfg = {
		.size = sizeof(cfg),
		.ring = {
			.size = sizeof(cfg.ring),
			.max_events = r->opt.replay_events,
			.max_bytes = r->opt.replay_bytes,
			.flags = SSE_ENCODE_STRICT_UTF8,
			/* NULL: a fresh epoch per run, so ids of an earlier run
			 * get the reset event instead of a wrong resume. */
			.epoch = r->opt.plain_ids ? "" : NULL,
			.reset_event = &reset,
		},
		.stall_ms = r->opt.stall_ms,
		.heartbeat_ms = r->opt.heartbeat_ms,
		/* A tenth of jitter: subscribers that came together beat apart. */
		.heartbeat_jitter_ms = r->opt.heartbeat_ms / 10,
		.no_heartbeat = r->opt.heartbeat_ms == 0,
	};

	return sse_hub_new(&r->hub, &cfg, conn_subscriber_dropped, r, NULL);
}

static int watch(struct relay *r, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};

	return epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void relay_free(struct relay *r)
{
	conn_close_all(r);
	conn_reap(r);
	sse_hub_free(r->hub);
	close_fd(&r->listen_fd);
	close_fd(&r->signal_fd);
	close_fd(&r->spare_fd);
	close_fd(&r->epoll_fd);
}

/* Everything but the listening socket, which main() opens first so that
 * a bad --bind or --port fails fast. The listening and signal
 * descriptors are told apart from connections by their epoll data: a
 * pointer to the relay's field rather than to a struct conn. */
static int relay_init(struct relay *r)
{
	int rc;

	r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	r->signal_fd = open_signals();
	r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (r->epoll_fd < 0 || r->signal_fd < 0 || r->spare_fd < 0 ||
	    watch(r, r->listen_fd, &r->listen_fd) < 0 || watch(r, r->signal_fd, &r->signal_fd) < 0) {
		fprintf(stderr, "sse-relay: setup: %s\n", strerror(errno));
		return -1;
	}
	rc = open_hub(r);
	if (rc < 0) {
		fprintf(stderr, "sse-relay: setup: %s\n", sse_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- the loop */

static void read_signals(struct relay *r)
{
	struct signalfd_siginfo si;

	while (read(r->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		r->stop_requested = true;
}

/* Stop accepting; subscribers drain for up to RELAY_GRACE_MS. */
static void begin_stop(struct relay *r)
{
	r->stopping = true;
	r->stop_deadline = r->now + RELAY_GRACE_MS;
	close_fd(&r->listen_fd); /* also leaves the epoll set */
	conn_stop_all(r);
}

static bool finished(const struct relay *r)
{
	return r->stopping && (conn_count(r) == 0 || r->now >= r->stop_deadline);
}

static void dispatch(struct relay *r, const struct epoll_event *ev)
{
	if (ev->data.ptr == &r->listen_fd)
		conn_accept_all(r);
	else if (ev->data.ptr == &r->signal_fd)
		read_signals(r);
	else
		conn_on_event(ev->data.ptr, ev->events);
}

/* How long epoll may sleep: until the next heartbeat, request timeout,
 * linger timeout or the end of the shutdown grace, whichever is first. */
static int wait_timeout(struct relay *r)
{
	uint64_t next = SSE_NO_DEADLINE, other = conn_next_deadline(r);

	/* Run again after this turn's work: streams that joined have
	 * deadlines the first run did not know. Nothing is due twice. */
	sse_hub_tick(r->hub, r->now, &next);
	if (other < next)
		next = other;
	if (r->stopping && r->stop_deadline < next)
		next = r->stop_deadline;
	if (next == SSE_NO_DEADLINE)
		return -1;
	if (next <= r->now)
		return 0;
	return next - r->now > INT_MAX ? INT_MAX : (int)(next - r->now);
}

/* One turn: the clock, due heartbeats, the events the last wait
 * returned, one fan-out for all events published meanwhile, shutdown,
 * timeouts; then closed connections are freed and the loop sleeps. */
static int run(struct relay *r)
{
	struct epoll_event events[EPOLL_BATCH];
	int n = 0;

	for (;;) {
		r->now = now_ms();
		/* First, so that streams see this turn's time before we use them. */
		sse_hub_tick(r->hub, r->now, NULL);
		for (int i = 0; i < n; i++)
			dispatch(r, &events[i]);
		if (r->published) {
			r->published = false;
			sse_hub_flush(r->hub); /* drops go to conn_subscriber_dropped() */
		}
		if (r->stop_requested && !r->stopping)
			begin_stop(r);
		conn_expire(r);
		conn_reap(r);
		if (finished(r))
			return 0;
		n = epoll_wait(r->epoll_fd, events, EPOLL_BATCH, wait_timeout(r));
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "sse-relay: epoll_wait: %s\n", strerror(errno));
			return -1;
		}
		if (n < 0)
			n = 0;
	}
}

/* Each subscriber holds a descriptor: take all the system allows (the
 * soft limit is often 1024, the hard one far higher). */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct relay r = {.epoll_fd = -1, .listen_fd = -1, .signal_fd = -1, .spare_fd = -1};
	int rc = parse_options(argc, argv, &r.opt);

	if (rc != 0) {
		usage(rc > 0 ? stdout : stderr, argv[0], rc > 0);
		return rc > 0 ? 0 : 2;
	}
	raise_fd_limit();
	r.listen_fd = open_listener(&r.opt);
	rc = r.listen_fd < 0 ? -1 : relay_init(&r);
	if (rc == 0)
		rc = announce(r.listen_fd);
	if (rc == 0)
		rc = run(&r);
	if (rc == 0)
		fprintf(stderr, "sse-relay: stopped\n");
	relay_free(&r);
	return rc == 0 ? 0 : 1;
}
