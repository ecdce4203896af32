/*
 * What every example server shares (server.h): options, hub, socket.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* ---- options */

static void usage(FILE *to, const char *argv0, bool full)
{
	fprintf(to,
		"usage: %s --port P [--bind ADDR] [--token T] [--replay-events N]\n"
		"       [--replay-bytes B] [--heartbeat MS] [--retry MS] [--stall MS] [--plain-ids]\n"
		"       [--batch MS]\n",
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
	      "                     wrong place instead of getting the reset event\n"
	      "  --batch MS         gather events published within MS into one write\n"
	      "                     per subscriber; none is held longer (default 2, 0: off)\n",
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
	OPT_PLAIN_IDS,
	OPT_BATCH
};

/* One option's value into o; false if it is out of range. */
static bool set_option(struct server_options *o, int opt, const char *arg)
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
	case OPT_BATCH:
		if (!parse_number(arg, 0, 1000, &v))
			return false;
		o->batch_ms = v;
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
	{"batch", required_argument, NULL, OPT_BATCH},
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
static int parse(int argc, char **argv, struct server_options *o)
{
	bool have_port = false;
	int opt;

	*o = (struct server_options){.bind = "127.0.0.1", .replay_events = 1000,
				     .replay_bytes = SERVER_REPLAY_BYTES,
				     .heartbeat_ms = SSE_HEARTBEAT_DEFAULT_MS,
				     .stall_ms = SSE_HUB_DEFAULT_STALL_MS,
				     .retry_ms = SSE_RETRY_NONE,
				     /* Measured (doc/guide.md, "Batching"): at 1 000
				      * subscribers and one publish at a time, 2 ms
				      * gives 9-13x the deliveries per CPU-second of
				      * no window, with p99 latency no worse. */
				     .batch_ms = SERVER_BATCH_MS};
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

int server_options(int argc, char **argv, struct server_options *o)
{
	int rc = parse(argc, argv, o);

	if (rc != 0)
		usage(rc > 0 ? stdout : stderr, argv[0], rc > 0);
	return rc;
}

/* ---- the listening socket */

uint64_t server_now_ms(void)
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
int server_listen(const char *name, const struct server_options *o)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *list, *ai;
	char port[8];
	int fd = -1, rc;

	snprintf(port, sizeof(port), "%u", o->port);
	rc = getaddrinfo(o->bind, port, &hints, &list);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: %s\n", name, o->bind, gai_strerror(rc));
		return -1;
	}
	for (ai = list; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = listen_on(ai);
	if (fd < 0)
		fprintf(stderr, "%s: cannot listen on %s port %s: %s\n", name, o->bind, port,
			strerror(errno));
	freeaddrinfo(list);
	return fd;
}

/* The line tests wait for: the address and the port actually bound. */
int server_announce(const char *name, int fd)
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
	printf("%s: listening on http://%s%s%s:%u/\n", name, v6 ? "[" : "", host, v6 ? "]" : "",
	       port);
	return fflush(stdout) == 0 ? 0 : -1;
}


/* ---- signals */

int server_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* ---- the hub */

int server_hub_new(const struct server_options *o, sse_hub_drop_fn on_drop, void *user,
		   struct sse_hub **out)
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
			.max_events = o->replay_events,
			.max_bytes = o->replay_bytes,
			.flags = SSE_ENCODE_STRICT_UTF8,
			/* NULL: a fresh epoch per run, so ids of an earlier run
			 * get the reset event instead of a wrong resume. */
			.epoch = o->plain_ids ? "" : NULL,
			.reset_event = &reset,
		},
		.stall_ms = o->stall_ms,
		.heartbeat_ms = o->heartbeat_ms,
		/* A tenth of jitter: subscribers that came together beat apart. */
		.heartbeat_jitter_ms = o->heartbeat_ms / 10,
		.no_heartbeat = o->heartbeat_ms == 0,
		.window_ms = o->batch_ms,
	};

	return sse_hub_new(out, &cfg, on_drop, user, NULL);
}

/* ---- answers */

int server_publish_status(int err)
{
	switch (err) {
	case SSE_ERR_UTF8:           /* data or type is not UTF-8 */
	case SSE_ERR_TYPE_LINEBREAK: /* checked before, but the encoder has the last word */
		return 400;
	case SSE_ERR_TOO_LARGE:      /* the frame alone is larger than the ring */
		return 413;
	case SSE_ERR_PINNED:         /* frames held by slow transports fill both arenas */
		return 503;
	default:
		return 500;
	}
}

const char *server_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}
