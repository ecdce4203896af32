/*
 * sse-relay for operators: what a monitoring system and a load balancer
 * ask of it.
 *
 *   GET /metrics   Prometheus text (format 0.0.4): the hub's counters,
 *                  rendered from SSE_HUB_STATS() so that a counter the
 *                  library adds appears here unedited; the relay's own
 *                  figures; libsse-redis's counters with --redis
 *   GET /healthz   200 "ok" while the loop runs
 *   GET /readyz    200 when the node can serve; 503 and why otherwise:
 *                  --redis not in step with the log, or shutting down.
 *                  /ready is its older name, kept as an alias
 *
 * By default they are on the main port, open to all: they tell traffic
 * volumes and nothing of the events, the clients or the token, and a
 * scrape costs a few microseconds. To keep them off the internet, either
 * block /metrics at the proxy in front, or give --metrics-bind
 * ADDR:PORT: a listener of their own (e.g. 127.0.0.1:9091), the only one
 * that serves /metrics. It also stays open through the shutdown, while
 * the main socket is closed at once, so that probes see /readyz go 503.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

#ifdef SSE_RELAY_REDIS
#include <sse/redis.h>
#endif

const char ops_usage[] =
	"  --metrics-bind ADDR:PORT\n"
	"                     serve /metrics only on this listener (e.g. 127.0.0.1:9091),\n"
	"                     with /healthz and /readyz; it stays open during shutdown\n"
	"                     (default: /metrics on the main port, open to all)\n"
	"  --access-log[=FILE] a line per request and per event stream, at its end, to\n"
	"                     FILE (\"-\" or none: stderr); no query strings (default off)\n";

/* ---- options */

static int bad_value(const char *argv0, const char *name, const char *arg)
{
	fprintf(stderr, "%s: bad value for --%s: '%s'\n", argv0, name, arg != NULL ? arg : "");
	return -1;
}

/* "--NAME" exactly, or "--NAME=...": the value after '=', or "" for none. */
static const char *match(const char *a, const char *name)
{
	size_t len = strlen(name);

	if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, len) != 0)
		return NULL;
	return a[2 + len] == '=' ? a + 3 + len : a[2 + len] == '\0' ? "" : NULL;
}

int ops_take_option(int argc, char **argv, int *i, struct ops_options *o)
{
	const char *a = argv[*i], *v;

	if ((v = match(a, "access-log")) != NULL) {
		/* The file is optional: a next word that is not an option is it. */
		if (v[0] == '\0' && strchr(a, '=') == NULL && *i + 1 < argc && argv[*i + 1][0] != '-')
			v = argv[++*i];
		if (strchr(a, '=') != NULL && v[0] == '\0')
			return bad_value(argv[0], "access-log", v);
		o->access_log = v[0] != '\0' ? v : "-";
		return 1;
	}
	if ((v = match(a, "metrics-bind")) == NULL)
		return 0;
	if (v[0] == '\0' && strchr(a, '=') == NULL)
		v = *i + 1 < argc ? argv[++*i] : NULL;
	if (v == NULL || strrchr(v, ':') == NULL || strrchr(v, ':') == v)
		return bad_value(argv[0], "metrics-bind", v);
	o->metrics_bind = v;
	return 1;
}

/* ---- the listener */

/* "ADDR:PORT" ("[V6]:PORT" too) into server_listen()'s options. */
static int listen_ops(const char *spec)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	size_t len = (size_t)(colon - spec);
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	struct server_options so = {.bind = host};

	if (spec[0] == '[' && len >= 2 && spec[len - 1] == ']')
		spec++, len -= 2;
	if (len >= sizeof(host) || colon[1] < '0' || colon[1] > '9' || *end != '\0' ||
	    port > 65535) {
		fprintf(stderr, "sse-relay: bad --metrics-bind '%s': want ADDR:PORT\n", spec);
		return -1;
	}
	memcpy(host, spec, len);
	host[len] = '\0';
	so.port = (unsigned)port;
	return server_listen("sse-relay --metrics-bind", &so);
}

static int open_log(struct relay *r)
{
	const char *path = r->ops_opt.access_log;

	if (path == NULL)
		return 0;
	r->m.log = strcmp(path, "-") == 0 ? stderr : fopen(path, "ae");
	if (r->m.log == NULL) {
		fprintf(stderr, "sse-relay: --access-log %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* A line at a time: a crash loses none, and tail -f sees them. */
	setvbuf(r->m.log, NULL, _IOLBF, 0);
	return 0;
}

int ops_open(struct relay *r)
{
	struct timespec ts;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &r->m.ops_fd};

	r->m.started_ms = server_now_ms();
	clock_gettime(CLOCK_REALTIME, &ts);
	r->m.started_unix = ts.tv_sec;
	if (open_log(r) < 0)
		return -1;
	if (r->ops_opt.metrics_bind == NULL)
		return 0;
	r->m.ops_fd = listen_ops(r->ops_opt.metrics_bind);
	if (r->m.ops_fd < 0)
		return -1;
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, r->m.ops_fd, &ev) < 0) {
		fprintf(stderr, "sse-relay: setup: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int ops_announce(struct relay *r)
{
	return r->m.ops_fd >= 0 ? server_announce("sse-relay metrics", r->m.ops_fd) : 0;
}

void ops_close(struct relay *r)
{
	if (r->m.ops_fd >= 0)
		close(r->m.ops_fd);
	r->m.ops_fd = -1;
	if (r->m.log != NULL && r->m.log != stderr)
		fclose(r->m.log);
	r->m.log = NULL;
}

bool ops_owns(const struct relay *r, const void *ptr)
{
	return ptr == &r->m.ops_fd;
}

void ops_accept(struct relay *r)
{
	conn_accept_from(r, r->m.ops_fd, CONN_F_OPS);
}

uint32_t ops_clock(const struct relay *r)
{
	return (uint32_t)(r->now - r->m.started_ms);
}

/* ---- /metrics */

/* One metric family of one sample: HELP, TYPE, value. Counters are named
 * NAME_total (the caller's name is without it). */
static void metric(FILE *f, const char *name, const char *kind, const char *help, uint64_t v)
{
	const char *suffix = strcmp(kind, "counter") == 0 ? "_total" : "";

	fprintf(f, "# HELP %s%s %s\n# TYPE %s%s %s\n%s%s %" PRIu64 "\n", name, suffix, help, name,
		suffix, kind, name, suffix, v);
}

/* Every counter of the hubs, whichever this libsse has: summed over the
 * channels (a label each would let clients grow the series without
 * bound), with the channels gauge and how they came and went. */
static void render_hub(FILE *f, const struct relay *r)
{
	struct sse_hub_stats st = {.size = sizeof(st)};

	if (channels_hub_totals(r, &st) != 0)
		return;
	threads_hub_totals(r, &st); /* --threads: the other threads' hubs */
#define HUB_METRIC(name, kind, help) metric(f, "sse_relay_hub_" #name, #kind, help, st.name);
	SSE_HUB_STATS(HUB_METRIC)
#undef HUB_METRIC
	metric(f, "sse_relay_channels", "gauge", "Named channels open", r->ch.count);
	metric(f, "sse_relay_channels_created", "counter", "Named channels created", r->ch.created);
	metric(f, "sse_relay_channels_freed", "counter", "Named channels freed when idle",
	       r->ch.freed);
	metric(f, "sse_relay_channels_refused", "counter",
	       "Requests refused for --max-channels", r->ch.refused);
}

static void render_connections(FILE *f, const struct relay *r)
{
	size_t subscribers = conn_subscriber_count(r);
	size_t draining = r->draining.len + threads_draining(r); /* --threads: all threads' */
	size_t streaming = subscribers > draining ? subscribers - draining : 0;

	fputs("# HELP sse_relay_connections Connections open, by state\n"
	      "# TYPE sse_relay_connections gauge\n", f);
	fprintf(f, "sse_relay_connections{state=\"request\"} %zu\n", r->requests.len);
	fprintf(f, "sse_relay_connections{state=\"lingering\"} %zu\n", r->lingering.len);
	fprintf(f, "sse_relay_connections{state=\"streaming\"} %zu\n", streaming);
	fprintf(f, "sse_relay_connections{state=\"draining\"} %zu\n", draining);
	metric(f, "sse_relay_connections_limit", "gauge", "Connections allowed at once (--max-conns)",
	       r->lim.max_conns);
	fputs("# HELP sse_relay_refused_total Connections refused, by the limit that refused them\n"
	      "# TYPE sse_relay_refused_total counter\n", f);
	fprintf(f, "sse_relay_refused_total{reason=\"max_conns\"} %" PRIu64 "\n",
		r->m.refused_max_conns);
	fprintf(f, "sse_relay_refused_total{reason=\"max_per_addr\"} %" PRIu64 "\n",
		r->m.refused_per_addr);
	fprintf(f, "sse_relay_refused_total{reason=\"not_joined\"} %" PRIu64 "\n",
		r->m.refused_not_joined);
	fprintf(f, "sse_relay_refused_total{reason=\"no_room\"} %" PRIu64 "\n",
		r->m.refused_no_room);
}

static void render_relay(FILE *f, const struct relay *r)
{
	const char *why;

	fprintf(f, "# HELP sse_relay_build_info The libsse version and features of this sse-relay\n"
		   "# TYPE sse_relay_build_info gauge\n"
		   "sse_relay_build_info{version=\"%s\",redis=\"%s\"} 1\n",
		SSE_VERSION_STRING, cluster_enabled(r) ? "on" : "off");
	metric(f, "sse_relay_start_time_seconds", "gauge", "When the relay started, in Unix time",
	       (uint64_t)r->m.started_unix);
	metric(f, "sse_relay_uptime_seconds", "gauge", "Seconds since the relay started",
	       (server_now_ms() - r->m.started_ms) / 1000);
	metric(f, "sse_relay_ready", "gauge", "1 while /readyz answers 200",
	       !r->stopping && cluster_ready(r, &why));
	render_connections(f, r);
	threads_render(f, r);
	metric(f, "sse_relay_body_memory_bytes", "gauge", "Request body bytes reserved now",
	       r->lim.body_memory - r->body_budget);
	metric(f, "sse_relay_body_memory_limit_bytes", "gauge",
	       "Request body bytes allowed at once (--body-memory)", r->lim.body_memory);
	metric(f, "sse_relay_body_waiting", "gauge", "Publishes waiting for body memory",
	       r->waiting);
}

#ifdef SSE_RELAY_REDIS
/* libsse-redis's counters, with --redis. */
static void render_redis(FILE *f, const struct relay *r)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} fields[] = {
#define REDIS_FIELD(n, h) {"sse_relay_redis_" #n, h, offsetof(struct sse_redis_stats, n)}
		REDIS_FIELD(connects, "Redis connection attempts, both connections"),
		REDIS_FIELD(sub_connects, "Of which the pub/sub connection's"),
		REDIS_FIELD(failures, "Redis connections refused, lost, or timed out"),
		REDIS_FIELD(timeouts, "Redis commands or connects that timed out"),
		REDIS_FIELD(live, "Live frames put in the hub from Redis"),
		REDIS_FIELD(backfilled, "Frames put in the hub from the Redis stream"),
		REDIS_FIELD(syncs, "Reads of the Redis stream for the live feed"),
		REDIS_FIELD(restarts, "Ring restarts: joins, new epochs, holes"),
		REDIS_FIELD(held_dropped, "Live frames dropped while holding (read again)"),
#undef REDIS_FIELD
	};
	const struct sse_redis *redis = cluster_redis(r);
	struct sse_redis_stats st;

	if (redis == NULL || sse_redis_stats(redis, &st) != 0)
		return;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)&st + fields[i].off, sizeof(v));
		metric(f, fields[i].name, "counter", fields[i].help, v);
	}
}
#else
static void render_redis(FILE *f, const struct relay *r) { (void)f, (void)r; }
#endif

/* The text, in a buffer the request frees (conn_reply_owned()). */
static void serve_metrics(struct conn *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL) {
		conn_reply_status(c, 503, NULL);
		return;
	}
	render_relay(f, c->relay);
	render_hub(f, c->relay);
	render_redis(f, c->relay);
	if (fclose(f) != 0) {
		free(text);
		conn_reply_status(c, 503, NULL);
		return;
	}
	conn_reply_owned(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

/* ---- /healthz, /readyz */

static void serve_readyz(struct conn *c)
{
	const char *why = "shutting down";
	char text[64];
	int n;

	if (!c->relay->stopping && cluster_ready(c->relay, &why)) {
		conn_reply_text(c, 200, "ready\n", 6);
		return;
	}
	n = snprintf(text, sizeof(text), "%s\n", why);
	conn_reply_text(c, 503, text, n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text));
}

bool ops_route(struct conn *c, const struct sse_http_request *req, const char *path,
	       size_t path_len)
{
	bool ops_port = (c->flags & CONN_F_OPS) != 0;
	bool metrics = http_span_is(path, path_len, "/metrics") &&
		       (ops_port || c->relay->ops_opt.metrics_bind == NULL);
	bool health = http_span_is(path, path_len, "/healthz");
	bool ready = http_span_is(path, path_len, "/readyz") || http_span_is(path, path_len, "/ready");

	if (!metrics && !health && !ready) {
		if (!ops_port)
			return false;
		conn_reply_status(c, 404, NULL); /* nothing else on this port */
		return true;
	}
	if (!http_span_is(req->method, req->method_len, "GET"))
		conn_reply_status(c, 405, "Allow: GET\r\n");
	else if (metrics)
		serve_metrics(c);
	else if (health)
		conn_reply_text(c, 200, "ok\n", 3);
	else
		serve_readyz(c);
	return true;
}
