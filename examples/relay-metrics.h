/*
 * sse-relay for operators: /metrics, /healthz, /readyz (relay-metrics.c)
 * and the access log (relay-log.c).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sse.h>

struct relay;
struct conn;

/* --metrics-bind and --access-log. */
struct ops_options {
	const char *metrics_bind; /* "ADDR:PORT": /metrics only there; NULL: on the main port */
	const char *access_log;   /* a file, or "-": stderr; NULL: no access log */
};

/* What the relay counts for /metrics, beyond the hub's counters. */
struct relay_metrics {
	uint64_t refused_max_conns;  /* answered "come back later" or 503: --max-conns */
	uint64_t refused_per_addr;   /* answered "come back later": --max-per-addr */
	uint64_t refused_not_joined; /* --redis: /events before the node followed the log */
	uint64_t refused_no_room;    /* closed unanswered: past the cap's margin, no descriptor */
	uint64_t started_ms;         /* the monotonic clock at start */
	int64_t started_unix;        /* the wall clock at start, in seconds */
	int ops_fd;                  /* --metrics-bind's listening socket; -1: none */
	FILE *log;                   /* --access-log; NULL: off */
};

extern const char ops_usage[];

/* "--metrics-bind ADDR:PORT", "--access-log[=FILE]" at argv[*i]: 1 taken
 * (*i moved past its value), 0 not ours, -1 bad (told). */
int ops_take_option(int argc, char **argv, int *i, struct ops_options *o);

/* Once the main socket listens: the clocks, the --metrics-bind socket
 * (announced on stdout after the main one) and the log. 0, or -1 (told). */
int ops_open(struct relay *r);
int ops_announce(struct relay *r);
void ops_close(struct relay *r);

/* Is this epoll data pointer the --metrics-bind socket? Accept on it. */
bool ops_owns(const struct relay *r, const void *ptr);
void ops_accept(struct relay *r);

/* /metrics, /healthz, /readyz (and /ready, its older name): true when
 * the request was one of them, or came on the --metrics-bind socket,
 * and was answered. */
bool ops_route(struct conn *c, const struct sse_http_request *req, const char *path,
	       size_t path_len);

/* A connection's clock for the access log: ms since the start, mod 2^32. */
uint32_t ops_clock(const struct relay *r);

/* relay-log.c, with --access-log only. A request was parsed: keep its
 * method and path (never its query) for the line. */
void access_note(struct conn *c, const struct sse_http_request *req);
/* A request's answer is out; end: why it ended. */
void access_log_request(struct conn *c, const char *end);
/* A connection closes: a line for a subscriber (why: NULL, or what dropped
 * it), or for a request cut short. */
void access_log_close(struct conn *c, const char *why);

#endif
