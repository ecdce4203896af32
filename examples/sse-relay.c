/*
 * sse-relay: a small Server-Sent Events relay, libsse's flagship example.
 *
 *     sse-relay --port P [--bind ADDR] [--token T] [--replay-events N]
 *               [--replay-bytes B] [--heartbeat MS] [--retry MS]
 *               [--stall MS] [--plain-ids] [--batch MS]
 *               [--body-memory B] [--max-conns N] [--max-per-addr N]
 *               [--max-conns-per-addr N]
 *               [--sndbuf B] [--max-lifetime MS] [--shutdown-retry-window MS]
 *               [--metrics-bind ADDR:PORT] [--access-log[=FILE]]
 *               [--jwt-hs256-secret-file F] [--jwt-rs256-public-key F]
 *               [--jwt-cookie NAME] [--jwt-query NAME] [--jwt-expiry stop|retry]
 *               [--cors-origin ORIGIN]... [--max-channels N] [--channel-idle MS]
 *               [--threads N]
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
 * One epoll loop per thread, non-blocking sockets; relay.h lists the
 * files and relay-conn.c explains the connection state machine. The main
 * thread does everything; with --threads N (by default one per CPU the
 * process may use) N - 1 more fan the default channel out of its ring,
 * each streaming to the subscribers handed to it (relay-threads.c). Every
 * buffer a client can fill is bounded and every wait times out, so no
 * client, however slow or hostile, can stop the others or grow memory:
 * malformed requests are answered 4xx and closed, and a subscriber that
 * stops reading is dropped once it misses events (the ring dropped what it
 * still owes) or its socket took nothing for the stall time, with a reset
 * that frees its send buffer at once; one that reads slowly but steadily
 * keeps its place however much it owes. Bodies being received share one
 * budget (--body-memory); connections are capped in all (--max-conns, the
 * last few kept for publishers) and per address (--max-per-addr: streams,
 * --max-conns-per-addr: any), those refused told to come back later (200
 * with a retry: field) or closed at once before a request; a publisher
 * keeps its connection for its next publish. --max-lifetime ends streams
 * on an event boundary, spread by jitter; clients resume where they were.
 * SIGINT or SIGTERM: stop accepting, let subscribers finish their frame,
 * tell them a jittered retry (--shutdown-retry-window) and close them,
 * within a second; free everything, exit 0.
 * For operators (relay-metrics.c): GET /metrics (Prometheus), /healthz
 * and /readyz, on the main port or only on --metrics-bind; --access-log.
 * Who may subscribe and publish (relay-auth.c): JWTs granting channels,
 * whose exp ends a stream; CORS for an allowlist of origins, and no
 * publishing from a page of another origin. Channels (relay-channels.c):
 * /events/NAME and /publish/NAME, a ring each, created on first use.
 *
 * The options of every example server are parsed in server.c; those only
 * sse-relay honours (limits and rotation) here.
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
#include <stddef.h>
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

/* ---- sse-relay's own options */

static const char relay_usage[] =
	"sse-relay also takes:\n"
	"  --body-memory B    bytes of request bodies received at once, all together;\n"
	"                     a publish waits (unread) for room (default 4194304,\n"
	"                     at least 1048576). Bodies over 64 KiB share at most\n"
	"                     half of it (at least 1048576), so that slow large\n"
	"                     bodies cannot keep small ones waiting\n"
	"  --max-conns N      connections at once (default: the descriptor limit less 64);\n"
	"                     the last 32 are kept for requests other than /events.\n"
	"                     Past it: /events gets 200 with a retry: of 2-10 s, others 503\n"
	"  --max-per-addr N   event streams per client address (IPv6: per /64);\n"
	"                     past it 200 with a retry: (default 0: no cap)\n"
	"  --max-conns-per-addr N\n"
	"                     connections of any kind per client address (IPv6:\n"
	"                     per /64); past it a new one is closed at once\n"
	"                     (default 0: no cap)\n"
	"  --sndbuf B         SO_SNDBUF of a subscriber's socket (default 65536; the\n"
	"                     kernel doubles it; 0: the kernel's own, autotuned)\n"
	"  --max-lifetime MS  end each stream after MS, give or take a tenth, on an\n"
	"                     event boundary; the client resumes with Last-Event-ID\n"
	"                     (default 0: no limit)\n"
	"  --shutdown-retry-window MS\n"
	"                     at SIGTERM, tell each subscriber a retry: drawn in\n"
	"                     [MS/10, MS] before closing it (default 5000; 0: none)\n"
	"  --threads N        loop threads fanning out /events, each from the same\n"
	"                     ring (default: the CPUs the process may use; 1 with\n"
	"                     --redis, which takes no other); 1: a single thread\n";

enum { BODY_MEMORY, MAX_CONNS, MAX_PER_ADDR, MAX_CONNS_PER_ADDR, SNDBUF, MAX_LIFETIME,
       SHUTDOWN_WINDOW, THREADS };

static const struct relay_option {
	const char *name;
	unsigned long long min, max;
} relay_options[] = {
	[BODY_MEMORY] = {"body-memory", SERVER_BODY_MAX, (unsigned long long)1 << 40},
	[MAX_CONNS] = {"max-conns", 1, RELAY_MAX_CONNS},
	[MAX_PER_ADDR] = {"max-per-addr", 0, RELAY_MAX_CONNS},
	[MAX_CONNS_PER_ADDR] = {"max-conns-per-addr", 0, RELAY_MAX_CONNS},
	[SNDBUF] = {"sndbuf", 0, (unsigned long long)1 << 30},
	[MAX_LIFETIME] = {"max-lifetime", 0, 30ull * 86400000},
	[SHUTDOWN_WINDOW] = {"shutdown-retry-window", 0, SSE_RETRY_MAX},
	[THREADS] = {"threads", 1, RELAY_THREADS_MAX},
};

/* A decimal number in the option's range, digits only, into its field. */
static bool set_relay_option(struct relay_options *o, size_t k, const char *arg)
{
	char *end;
	unsigned long long v;

	if (arg == NULL || arg[0] < '0' || arg[0] > '9')
		return false; /* strtoull would accept " 5", "+5" and "-5" */
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || *end != '\0' || v < relay_options[k].min || v > relay_options[k].max)
		return false;
	switch (k) {
	case BODY_MEMORY: o->body_memory = (size_t)v; break;
	case MAX_CONNS: o->max_conns = (size_t)v; break;
	case MAX_PER_ADDR: o->max_per_addr = (size_t)v; break;
	case MAX_CONNS_PER_ADDR: o->max_conns_per_addr = (size_t)v; break;
	case SNDBUF: o->sndbuf = (int)v; break;
	case MAX_LIFETIME: o->max_lifetime_ms = v; break;
	case THREADS: o->threads = (size_t)v; break;
	default: o->shutdown_window_ms = v; break;
	}
	return true;
}

/* "--name V" or "--name=V" of ours, at argv[*i]: 1 taken (and *i moved
 * past its value), 0 not ours, -1 bad (told). */
static int take_relay_option(int argc, char **argv, int *i, struct relay_options *o)
{
	const char *a = argv[*i];

	if (strncmp(a, "--", 2) != 0)
		return 0;
	for (size_t k = 0; k < sizeof(relay_options) / sizeof(relay_options[0]); k++) {
		const struct relay_option *ro = &relay_options[k];
		size_t len = strlen(ro->name);
		const char *arg;

		if (strncmp(a + 2, ro->name, len) != 0 || (a[2 + len] != '\0' && a[2 + len] != '='))
			continue;
		arg = a[2 + len] == '=' ? a + 3 + len : (*i + 1 < argc ? argv[++*i] : NULL);
		if (set_relay_option(o, k, arg))
			return 1;
		fprintf(stderr, "%s: bad value for --%s: '%s'\n", argv[0], ro->name,
			arg != NULL ? arg : "");
		return -1;
	}
	return 0;
}

/* Ours out of argv, the rest to server_options(): 0 to run, 1 after
 * --help, else 2 (the exit status of a usage error). */
static int parse_options(int argc, char **argv, struct relay *r)
{
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int n = 0, rc = 0;

	r->lim = (struct relay_options){.body_memory = RELAY_BODY_MEMORY, .sndbuf = RELAY_SNDBUF,
					.shutdown_window_ms = 5000};
	r->ch.opt = (struct channel_options){.max = CHANNEL_MAX_DEFAULT,
					     .idle_ms = CHANNEL_IDLE_DEFAULT_MS};
	if (rest == NULL)
		return 2;
	rest[n++] = argv[0];
	for (int i = 1; i < argc && rc == 0; i++) {
		if (strcmp(argv[i], "--") == 0) { /* the rest is not options */
			while (i < argc)
				rest[n++] = argv[i++];
			break;
		}
		rc = cluster_take_option(argc, argv, &i, &r->cluster_opt);
		if (rc == 0)
			rc = channel_take_option(argc, argv, &i, &r->ch.opt);
		if (rc == 0)
			rc = ops_take_option(argc, argv, &i, &r->ops_opt);
		if (rc == 0)
			rc = auth_take_option(argc, argv, &i, &r->auth);
		if (rc == 0)
			rc = take_relay_option(argc, argv, &i, &r->lim);
		if (rc == 0)
			rest[n++] = argv[i];
		else
			rc = rc > 0 ? 0 : -1;
	}
	if (rc == 0)
		rc = server_options(n, rest, &r->opt);
	else
		fprintf(stderr, "%s%s%s%s%s", relay_usage, channel_usage, cluster_usage, ops_usage,
			auth_usage);
	if (rc == 0)
		rc = cluster_check(&r->cluster_opt, &r->opt);
	if (rc == 0)
		rc = threads_check(r); /* --threads: its default, or none with --redis */
	if (rc == 0 && auth_open(&r->auth) < 0) /* the key files */
		rc = -1;
	if (rc > 0)
		printf("%s%s%s%s%s", relay_usage, channel_usage, cluster_usage, ops_usage, auth_usage);
	free(rest);
	return rc == 0 ? 0 : rc > 0 ? 1 : 2;
}

/* ---- setting up and tearing down */

/* The hub (server_hub_new()): its subscribers follow the ring; it sends
 * their heartbeats and drops the slow ones (conn_subscriber_dropped()). */
static int open_hub(struct relay *r)
{
	return server_hub_new(&r->opt, conn_subscriber_dropped, r, &r->hub);
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
	threads_free(r); /* first: they use the ring, the log, the address table */
	conn_close_all(r);
	conn_reap(r);
	peers_free(r);
	cluster_free(r); /* before the hub it feeds */
	ops_close(r);
	auth_free(&r->auth);
	channels_free(r); /* after the connections that held them */
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
	r->signal_fd = server_signals();
	r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (r->epoll_fd < 0 || r->signal_fd < 0 || r->spare_fd < 0 ||
	    watch(r, r->listen_fd, &r->listen_fd) < 0 || watch(r, r->signal_fd, &r->signal_fd) < 0) {
		fprintf(stderr, "sse-relay: setup: %s\n", strerror(errno));
		return -1;
	}
	if (peers_init(r) < 0) {
		fprintf(stderr, "sse-relay: setup: %s\n", strerror(ENOMEM));
		return -1;
	}
	rc = open_hub(r);
	if (rc < 0) {
		fprintf(stderr, "sse-relay: setup: %s\n", sse_strerror(rc));
		return -1;
	}
	if (ops_open(r) < 0) /* --metrics-bind, --access-log */
		return -1;
	if (cluster_open(r) < 0) /* --redis: Redis feeds the hub */
		return -1;
	return threads_open(r); /* --threads: with the log and the clocks set */
}

/* ---- the loop */

static void read_signals(struct relay *r)
{
	struct signalfd_siginfo si;

	while (read(r->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		r->stop_requested = true;
}

/* Stop accepting; subscribers drain for up to RELAY_GRACE_MS, each
 * closing on an event boundary after a jittered retry: (conn_stop_all()). */
static void begin_stop(struct relay *r)
{
	r->stopping = true;
	r->stop_deadline = r->now + RELAY_GRACE_MS;
	close_fd(&r->listen_fd); /* also leaves the epoll set */
	conn_stop_all(r);
	threads_stop(r); /* each thread drains its own; finished() counts them */
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
	else if (ops_owns(r, ev->data.ptr))
		ops_accept(r);
	else if (cluster_owns(r, ev->data.ptr))
		cluster_on_event(r, ev->data.ptr, ev->events);
	else if (threads_owns(r, ev->data.ptr))
		threads_on_event(r); /* a thread drained: see finished() */
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
	channels_tick(r, &next); /* and the next idle sweep */
	if (other < next)
		next = other;
	other = cluster_next_deadline(r); /* after this turn's publishes */
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
		r->now = server_now_ms();
		/* First, so that streams see this turn's time before we use them. */
		sse_hub_tick(r->hub, r->now, NULL);
		channels_tick(r, NULL);
		cluster_tick(r); /* --redis: (re)connects, timeouts */
		for (int i = 0; i < n; i++)
			dispatch(r, &events[i]);
		cluster_tick(r); /* answers to publishes, Redis's deadlines */
		if (r->published) {
			r->published = false;
			sse_hub_flush(r->hub); /* drops go to conn_subscriber_dropped() */
			channels_flush(r);     /* those published to */
		}
		threads_turn_end(r); /* --threads: their new frames, subscribers handed over */
		if (r->stop_requested && !r->stopping)
			begin_stop(r);
		conn_expire(r);
		conn_drain_boundaries(r); /* those the fan-out took to one */
		conn_grant_bodies(r);     /* budget given back in this turn */
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
 * soft limit is often 1024, the hard one far higher), and keep
 * --max-conns RELAY_FD_OVERHEAD below it, so that the relay's own
 * descriptors and the answers to those over the cap have room: new
 * connections are answered, not reset. */
static void fit_fd_limit(struct relay_options *o)
{
	struct rlimit rl;
	size_t fds = RELAY_MAX_CONNS, room, overhead = RELAY_FD_OVERHEAD + 2 * o->threads;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < fds)
			fds = (size_t)rl.rlim_cur;
	}
	/* Each thread past the first holds two more: its epoll set, its eventfd. */
	room = fds > 2 * overhead ? fds - overhead : fds / 2;
	if (o->max_conns == 0 || o->max_conns > room)
		o->max_conns = room;
}

/* A seed for the jitter: differs per run and per process. */
static uint64_t seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 40) | 1;
}

int main(int argc, char **argv)
{
	struct relay r = {.epoll_fd = -1, .listen_fd = -1, .signal_fd = -1, .spare_fd = -1,
			  .m.ops_fd = -1};
	int rc = parse_options(argc, argv, &r);

	if (rc != 0)
		return rc == 1 ? 0 : 2;
	fit_fd_limit(&r.lim);
	r.body_budget = r.lim.body_memory;
	r.rng = seed();
	r.listen_fd = server_listen("sse-relay", &r.opt);
	rc = r.listen_fd < 0 ? -1 : relay_init(&r);
	if (rc == 0)
		rc = server_announce("sse-relay", r.listen_fd);
	if (rc == 0)
		rc = ops_announce(&r);
	if (rc == 0)
		rc = run(&r);
	if (rc == 0)
		fprintf(stderr, "sse-relay: stopped\n");
	relay_free(&r);
	return rc == 0 ? 0 : 1;
}
