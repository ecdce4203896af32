/*
 * loadclient: the fan-out benchmark's subscribers and publisher, in one
 * single-threaded epoll program (run.sh drives it).
 *
 *     loadclient --port P [--host 127.0.0.1] [--sub-path /events]
 *                [--pub-path /publish?event=bench] --subs N --events M
 *                --rate R [--burst B] [--pub-conns C] [--size BYTES]
 *                [--server-pid PID]... [--connect-timeout S]
 *                [--drain-timeout S] [--max-seconds S] [--label TEXT]
 *                [--read-every-ms MS] [--stamp-scheduled]
 *                [--sub-port P]... [--pub-port P]... [--cpu-pid PID]...
 *                [--redis-pid PID] [--no-publish] [--print-hist]
 *
 * Several servers (a cluster's nodes; tests/bench/cluster/run.sh):
 * subscriber i connects to the (i mod K)-th --sub-port, event k is
 * published to the (k mod J)-th --pub-port (each port its own keep-alive
 * connections; still at most --pub-conns in flight in all); --port is then
 * only the default of both. --cpu-pid counts a process's CPU time but not
 * its memory (another node, whose memory another client measures);
 * --redis-pid too, and reports it apart as redis_cpu_s (from schedstat, to
 * the nanosecond, where the total counts clock ticks). --no-publish:
 * subscribers only, another client publishes: once they are connected it
 * says so on stderr ("... subscribers ready, waiting for events"), takes
 * every one of the --events as published, and ends when all arrived, or
 * --drain-timeout after the last delivery (--max-seconds before the first).
 * --print-hist adds the latency histogram to the report ("hist": bucket
 * index -> count, a bucket's value as below) for merging several clients'.
 *
 * 1. Opens N event-stream connections (GET sub-path, Accept:
 *    text/event-stream), at most 128 connecting at once, and waits until
 *    every one has its 200 response head, then 300 ms for opening bytes.
 *    connect_s in the report: the time this took, less the pause at N/2.
 * 2. Reads the server's memory (/proc/PID/smaps_rollup, summed over the
 *    --server-pid processes) before connecting, with N/2 idle subscribers
 *    (connecting pauses there; N >= 100) and with N: per subscriber from
 *    0 to N, and the marginal cost from N/2 to N, which leaves out what
 *    does not grow with N (buffers of connections being set up, heap
 *    slack). And its CPU time (utime + stime) around the publishing.
 * 3. Publishes M events by POST to pub-path: burst 1 is the per-event
 *    regime (one event in flight, event k sent at k/R s); burst B sends B
 *    events at once every B/R s over up to C connections (keep-alive
 *    where the server allows it, else one connection per event). Each
 *    event's data is "t=<CLOCK_MONOTONIC ns> seq=<k> " padded to --size:
 *    t is when it is sent or, with --stamp-scheduled, when it was due
 *    (k/R s): then an event a server held back by answering late (the
 *    publisher waits for the answer) counts its wait in its latency,
 *    as it would for one the server queues after answering at once.
 * 4. Parses every stream with libsse's parser, one per connection
 *    (de-chunking first if the response is chunked), and for each event:
 *    latency = arrival - t (same machine, same clock), into a log-linear
 *    histogram; duplicates and missing events by seq, per connection;
 *    order: every connection must see the events in the same order.
 *    With --read-every-ms MS, a subscriber is read only every MS ms
 *    (a periodic timer: each tick reads every stream that has bytes, all
 *    it has, then sleeps): a client that batches its reads, as one that
 *    renders every few ms would. Without it, streams are read as soon as
 *    they are readable.
 * 5. Waits for all deliveries (or --drain-timeout after the last publish
 *    answer), reads the server's CPU time, and prints one JSON line.
 *
 * It always reports what it saw; it exits 2 only on a usage error.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "sse.h"

#define MAX_PIDS 8
#define MAX_PORTS 16
#define MAX_PUB_CONNS 256
#define CONNECT_INFLIGHT 128
#define HEAD_MAX 8192
#define READ_BUF (256 * 1024)
#define EPOLL_BATCH 512
#define SETTLE_NS 300000000ull

/* ---- options */

static struct {
	const char *host;
	unsigned port;
	const char *sub_path;
	const char *pub_path;
	unsigned long subs;
	unsigned long events;
	double rate;
	unsigned long burst;
	unsigned long pub_conns;
	unsigned long size;
	int pids[MAX_PIDS];
	int npids;
	int cpu_pids[MAX_PIDS]; /* CPU time only: --cpu-pid, then --redis-pid */
	int ncpu_pids;
	int redis_pid;
	unsigned sub_ports[MAX_PORTS], pub_ports[MAX_PORTS];
	int nsub_ports, npub_ports;
	bool no_publish, print_hist;
	double connect_timeout, drain_timeout, max_seconds;
	double read_every_ms;
	bool stamp_scheduled;
	const char *label;
} opt = {
	.host = "127.0.0.1",
	.sub_path = "/events",
	.pub_path = "/publish?event=bench",
	.burst = 1,
	.pub_conns = 0,
	.size = 96,
	.connect_timeout = 60,
	.drain_timeout = 10,
	.max_seconds = 150,
	.label = "",
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL) {
		fputs("loadclient: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

/* ---- latency histogram: log-linear, 32 buckets per power of two (~3%) */

#define HIST_SUB 32u
#define HIST_BUCKETS (HIST_SUB * 60u)

static struct {
	uint64_t count[HIST_BUCKETS];
	uint64_t n, max, sum;
} hist;

static unsigned hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - 5u; /* v >> shift is in [32, 63] */
	return HIST_SUB * shift + (unsigned)(v >> shift);
}

/* The middle of bucket i. */
static uint64_t hist_value(unsigned i)
{
	unsigned shift, mant;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1u;
	mant = i - HIST_SUB * shift;
	return ((uint64_t)mant << shift) + (((uint64_t)1 << shift) >> 1);
}

static void hist_add(uint64_t v)
{
	unsigned i = hist_index(v);

	if (i >= HIST_BUCKETS)
		i = HIST_BUCKETS - 1;
	hist.count[i]++;
	hist.n++;
	hist.sum += v;
	if (v > hist.max)
		hist.max = v;
}

static uint64_t hist_quantile(double q)
{
	uint64_t target, seen = 0;

	if (hist.n == 0)
		return 0;
	target = (uint64_t)(q * (double)hist.n);
	if (target < 1)
		target = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += hist.count[i];
		if (seen >= target)
			return hist_value(i);
	}
	return hist.max;
}

/* ---- the server's processes: CPU time and memory from /proc */

/* One process's CPU seconds, user + system; the system part added to *sys. */
static double pid_cpu_s(int pid, double *sys)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, st = 0;
	long tck = sysconf(_SC_CLK_TCK);
	double hz = (double)(tck > 0 ? tck : 100);
	FILE *f;
	size_t n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (p == NULL)
		return 0;
	/* after ") ": state(3) ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) !=
	    2)
		return 0;
	*sys += (double)st / hz;
	return (double)(ut + st) / hz;
}

/* One process's CPU seconds to the nanosecond: the run time of each of
 * its threads (/proc/PID/task/TID/schedstat), where /proc/PID/stat counts
 * clock ticks (10 ms), too coarse for Redis's share of a short run. */
static double pid_cpu_ns_s(int pid)
{
	char path[64];
	struct dirent *e;
	double total = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char p[320];
		unsigned long long ns;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", pid, e->d_name);
		f = fopen(p, "r");
		if (f == NULL)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			total += (double)ns / 1e9;
		fclose(f);
	}
	closedir(d);
	return total;
}

/* The server's CPU seconds (--server-pid, --cpu-pid and --redis-pid),
 * user + system; the system part in *sys, Redis's alone in *redis. */
static double proc_cpu_s(double *sys, double *redis)
{
	double total = 0;

	*sys = 0;
	for (int i = 0; i < opt.npids; i++)
		total += pid_cpu_s(opt.pids[i], sys);
	for (int i = 0; i < opt.ncpu_pids; i++)
		total += pid_cpu_s(opt.cpu_pids[i], sys);
	*redis = opt.redis_pid > 0 ? pid_cpu_ns_s(opt.redis_pid) : 0;
	return total;
}

/* Microseconds some task waited for a CPU (pressure stall information):
 * other load on the machine that may have delayed the server or us. */
static unsigned long long cpu_stall_us(void)
{
	unsigned long long total = 0;
	char line[256];
	FILE *f = fopen("/proc/pressure/cpu", "r");

	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) != NULL) {
		const char *t = strstr(line, "total=");

		if (t != NULL)
			total = strtoull(t + 6, NULL, 10);
	}
	fclose(f);
	return total;
}

struct mem {
	unsigned long long rss_kb, private_dirty_kb, anon_kb;
};

static struct mem proc_mem(void)
{
	struct mem m = {0, 0, 0};

	for (int i = 0; i < opt.npids; i++) {
		char path[64], line[256];
		unsigned long long v;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", opt.pids[i]);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			if (sscanf(line, "Rss: %llu kB", &v) == 1)
				m.rss_kb += v;
			else if (sscanf(line, "Private_Dirty: %llu kB", &v) == 1)
				m.private_dirty_kb += v;
			else if (sscanf(line, "Anonymous: %llu kB", &v) == 1)
				m.anon_kb += v;
		}
		fclose(f);
	}
	return m;
}

/* ---- HTTP bits */

/* Chunked transfer coding, decoded incrementally. */
enum { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END, CH_END, CH_BAD };

struct dechunk {
	int st;
	uint64_t left;
};

typedef int (*sink_fn)(void *user, const char *buf, size_t len);

/* Returns 0, or -1 on malformed framing or when sink fails. */
static int dechunk_feed(struct dechunk *d, const char *b, size_t n, sink_fn sink, void *user)
{
	size_t i = 0;

	while (i < n) {
		char c = b[i];

		switch (d->st) {
		case CH_SIZE:
			if (c >= '0' && c <= '9')
				d->left = d->left * 16 + (uint64_t)(c - '0');
			else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
				d->left = d->left * 16 + (uint64_t)((c | 0x20) - 'a' + 10);
			else if (c == ';' || c == ' ' || c == '\t' || c == '\r')
				d->st = CH_EXT;
			else if (c == '\n')
				d->st = d->left ? CH_DATA : CH_END;
			else
				d->st = CH_BAD;
			if (d->left > ((uint64_t)1 << 40))
				d->st = CH_BAD;
			i++;
			break;
		case CH_EXT:
			if (c == '\n')
				d->st = d->left ? CH_DATA : CH_END;
			i++;
			break;
		case CH_DATA: {
			size_t take = n - i;

			if (take > d->left)
				take = (size_t)d->left;
			if (sink(user, b + i, take) != 0)
				return -1;
			d->left -= take;
			i += take;
			if (d->left == 0)
				d->st = CH_DATA_END;
			break;
		}
		case CH_DATA_END:
			if (c == '\n')
				d->st = CH_SIZE;
			else if (c != '\r')
				d->st = CH_BAD;
			i++;
			break;
		case CH_END:
			return 0; /* the trailer section and anything after: ignored */
		default:
			return -1;
		}
	}
	return d->st == CH_BAD ? -1 : 0;
}

/* End of the head ("\r\n\r\n" or "\n\n") in buf, or 0. */
static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

struct resp_head {
	int status;
	int minor;
	bool chunked, close;
	long long content_length; /* -1: none */
};

/* A header's value (trimmed) if the line names it, else NULL. */
static const char *header_value(const char *line, const char *end, const char *name,
				size_t *len)
{
	size_t nl = strlen(name);
	const char *v;

	if ((size_t)(end - line) <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	v = line + nl + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	*len = (size_t)(end - v);
	return v;
}

static bool contains_token(const char *v, size_t len, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= len; i++)
		if (strncasecmp(v + i, tok, tl) == 0)
			return true;
	return false;
}

static int parse_resp_head(const char *buf, size_t len, struct resp_head *h)
{
	const char *p = buf, *end = buf + len;
	int major = 0;

	*h = (struct resp_head){.status = 0, .content_length = -1};
	if (sscanf(buf, "HTTP/%d.%d %d", &major, &h->minor, &h->status) != 3 || major != 1)
		return -1;
	h->close = h->minor == 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *v;
		size_t vl;

		if (eol == NULL)
			break;
		if ((v = header_value(p, eol, "transfer-encoding", &vl)) != NULL)
			h->chunked = contains_token(v, vl, "chunked");
		else if ((v = header_value(p, eol, "content-length", &vl)) != NULL)
			h->content_length = strtoll(v, NULL, 10);
		else if ((v = header_value(p, eol, "connection", &vl)) != NULL) {
			if (contains_token(v, vl, "close"))
				h->close = true;
			else if (contains_token(v, vl, "keep-alive"))
				h->close = false;
		}
		p = eol + 1;
	}
	return 0;
}

/* Subscribers' addresses (--sub-port, else --port), publishers'
 * (--pub-port, else --port). */
static struct sockaddr_in sub_addr[MAX_PORTS], pub_addr[MAX_PORTS];

static int connect_nb(const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

/* ---- state */

enum sub_state { SUB_IDLE, SUB_CONNECTING, SUB_HEAD, SUB_STREAM, SUB_DEAD };

struct sub {
	int fd;
	enum sub_state st;
	bool chunked;
	char *head; /* until the response head is in */
	size_t head_len;
	size_t req_off;
	struct dechunk dc;
	struct sse_parser *parser;
	uint64_t got;       /* distinct events received */
	uint64_t last_rank; /* rank+1 of the last event received; 0: none */
	uint64_t *seen;     /* bit per seq */
};

enum pub_state { PUB_FREE, PUB_CONNECTING, PUB_SENDING, PUB_READING };

struct pub {
	int fd; /* -1, or an idle keep-alive connection while FREE */
	int port; /* index in opt.pub_ports: slot i serves i mod J */
	enum pub_state st;
	bool reused;
	int retries;
	uint64_t seq;
	char req[1024];
	size_t req_len, req_off;
	char head[HEAD_MAX];
	size_t head_len, hdr_end;
	struct resp_head rh;
	struct dechunk dc;
	long long body_got;
};

enum phase { PH_CONNECT, PH_SETTLE_HALF, PH_SETTLE, PH_PUBLISH, PH_DRAIN, PH_DONE };

static struct {
	int ep, tfd;
	int ep_subs, tick; /* --read-every-ms: streams read on the tick only */
	enum phase phase;
	struct sub *subs;
	struct pub pubs[MAX_PUB_CONNS];
	unsigned long next_sub;     /* next to connect */
	unsigned long connecting;   /* CONNECTING or HEAD */
	unsigned long ready, dead, never_ready;
	unsigned long half, half_ready; /* a pause at N/2 for a second memory reading */
	uint64_t *rank;             /* seq -> first-arrival rank + 1 (0: not yet) */
	uint64_t next_rank;
	unsigned char *pub_ok;      /* per seq: 1 when the server accepted it */
	uint64_t next_seq;          /* next event to publish */
	uint64_t pubs_done, pubs_ok, pub_errors, pub_retries;
	uint64_t pub_connects;      /* publisher connections opened (keep-alive: few) */
	unsigned long npub_slots;   /* --pub-conns per --pub-port */
	unsigned long pub_inflight; /* slots not FREE: at most --pub-conns */
	uint64_t dead_got;          /* deliveries to subscribers that died since */
	uint64_t armed;             /* the publish timer's deadline */
	uint64_t sub_reads;
	uint64_t deliveries, dups, reorders, foreign, stream_errors, connect_errors;
	uint64_t expected;          /* ready subs x accepted events, once known */
	uint64_t connect_deadline, t_done;
	uint64_t t_conn_half, t_conn_resume, t_conn_all; /* connecting, less the pause */
	uint64_t t0, t_last_pub, t_last_delivery, deadline, now_read;
	uint64_t sub_req_len;
	char sub_req[512];
	double cpu0, cpu1, sys0, sys1, redis0, redis1;
	unsigned long long stall0, stall1;
	struct mem mem0, mem_half, mem1;
	struct rusage ru0, ru1;
	char *rbuf;
} g;

#define TAG_SUB 1u
#define TAG_PUB 2u
#define TAG_TIMER 3u
#define TAG_TICK 4u

static uint64_t ev_data(unsigned tag, unsigned long idx)
{
	return ((uint64_t)tag << 32) | (uint64_t)idx;
}

static void ep_set(int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};

	if (epoll_ctl(g.ep, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL)
		fprintf(stderr, "loadclient: epoll_ctl: %s\n", strerror(errno));
}

/* ---- subscribers */

static void sub_kill(struct sub *s, bool error)
{
	if (s->st == SUB_DEAD)
		return;
	if (s->st == SUB_CONNECTING || s->st == SUB_HEAD)
		g.connecting--;
	if (s->st == SUB_STREAM) {
		g.ready--;
		g.dead++;
		g.dead_got += s->got;
	}
	if (error)
		g.stream_errors++;
	if (s->fd >= 0)
		close(s->fd); /* leaves the epoll set */
	s->fd = -1;
	free(s->head);
	s->head = NULL;
	s->st = SUB_DEAD;
}

static int on_message(const struct sse_message *m, void *user)
{
	struct sub *s = user;
	const char *p = m->data, *end = m->data + m->data_len;
	uint64_t t = 0, seq = 0;
	bool ok = m->data_len > 2 && p[0] == 't' && p[1] == '=';

	if (ok) {
		for (p += 2; p < end && *p >= '0' && *p <= '9'; p++)
			t = t * 10 + (uint64_t)(*p - '0');
		ok = end - p > 5 && memcmp(p, " seq=", 5) == 0;
	}
	if (ok) {
		const char *d = p + 5;

		for (p = d; p < end && *p >= '0' && *p <= '9'; p++)
			seq = seq * 10 + (uint64_t)(*p - '0');
		ok = p > d && seq < opt.events;
	}
	if (!ok) {
		g.foreign++;
		return 0;
	}
	if (g.now_read > t)
		hist_add(g.now_read - t);
	else
		hist_add(0);
	if (s->seen[seq / 64] & ((uint64_t)1 << (seq % 64))) {
		g.dups++;
		return 0;
	}
	s->seen[seq / 64] |= (uint64_t)1 << (seq % 64);
	s->got++;
	g.deliveries++;
	g.t_last_delivery = g.now_read;
	/* Order: ranks are given by first arrival on any connection; every
	 * connection must see ranks increasing (the server's one order). */
	if (g.rank[seq] == 0)
		g.rank[seq] = ++g.next_rank;
	if (g.rank[seq] < s->last_rank)
		g.reorders++;
	else
		s->last_rank = g.rank[seq];
	return 0;
}

static int feed_parser(void *user, const char *buf, size_t len)
{
	struct sub *s = user;

	return sse_parser_feed(s->parser, buf, len) == 0 ? 0 : -1;
}

static int sub_body(struct sub *s, const char *buf, size_t len)
{
	if (s->chunked)
		return dechunk_feed(&s->dc, buf, len, feed_parser, s);
	return feed_parser(s, buf, len);
}

static void sub_start(unsigned long i)
{
	struct sub *s = &g.subs[i];

	s->fd = connect_nb(&sub_addr[i % (unsigned long)opt.nsub_ports]);
	if (s->fd < 0) {
		g.connect_errors++;
		s->st = SUB_DEAD;
		g.never_ready++;
		return;
	}
	s->st = SUB_CONNECTING;
	g.connecting++;
	ep_set(EPOLL_CTL_ADD, s->fd, EPOLLOUT, ev_data(TAG_SUB, i));
}

static void sub_head_in(struct sub *s, size_t end)
{
	struct resp_head h;
	size_t rest = s->head_len - end;
	static const struct sse_parser_callbacks cb = {.on_message = on_message};

	if (parse_resp_head(s->head, end, &h) < 0 || h.status != 200 ||
	    sse_parser_new(&s->parser, &cb, s, NULL) != 0) {
		g.never_ready++;
		sub_kill(s, true);
		return;
	}
	s->chunked = h.chunked;
	s->st = SUB_STREAM;
	if (opt.read_every_ms > 0) { /* from now on, read on the tick */
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
					 .data.u64 = ev_data(TAG_SUB, (unsigned long)(s - g.subs))};

		ep_set(EPOLL_CTL_DEL, s->fd, 0, 0);
		if (epoll_ctl(g.ep_subs, EPOLL_CTL_ADD, s->fd, &ev) < 0)
			fprintf(stderr, "loadclient: epoll_ctl: %s\n", strerror(errno));
	}
	g.connecting--;
	g.ready++;
	if (rest > 0 && sub_body(s, s->head + end, rest) != 0) {
		sub_kill(s, true);
		return;
	}
	free(s->head);
	s->head = NULL;
}

static void sub_read(struct sub *s)
{
	for (int rounds = 0; rounds < 16 && s->st != SUB_DEAD; rounds++) {
		ssize_t n = read(s->fd, g.rbuf, READ_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			if (s->st == SUB_HEAD)
				g.never_ready++;
			sub_kill(s, true); /* the server closed a stream: an error */
			return;
		}
		g.now_read = now_ns();
		if (g.t0 != 0)
			g.sub_reads++; /* deliveries / reads: how much the server batched */
		if (s->st == SUB_HEAD) {
			size_t take = (size_t)n, end;

			if (take > HEAD_MAX - s->head_len)
				take = HEAD_MAX - s->head_len;
			memcpy(s->head + s->head_len, g.rbuf, take);
			s->head_len += take;
			end = head_end(s->head, s->head_len);
			if (end == 0) {
				if (s->head_len == HEAD_MAX) {
					g.never_ready++;
					sub_kill(s, true);
				}
				continue;
			}
			/* Bytes past HEAD_MAX in this read belong to the body. */
			if (take < (size_t)n) {
				sub_head_in(s, end);
				if (s->st == SUB_STREAM &&
				    sub_body(s, g.rbuf + take, (size_t)n - take) != 0)
					sub_kill(s, true);
				continue;
			}
			sub_head_in(s, end);
			continue;
		}
		if (sub_body(s, g.rbuf, (size_t)n) != 0)
			sub_kill(s, true);
		if ((size_t)n < READ_BUF)
			return; /* level-triggered: more is reported again */
	}
}

static void sub_event(unsigned long i, uint32_t events)
{
	struct sub *s = &g.subs[i];

	if (s->st == SUB_CONNECTING) {
		int err = sock_error(s->fd);

		if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
			g.connect_errors++;
			g.never_ready++;
			sub_kill(s, false);
			return;
		}
		if (s->head == NULL)
			s->head = malloc(HEAD_MAX);
		if (s->head == NULL) {
			g.never_ready++;
			sub_kill(s, true);
			return;
		}
		while (s->req_off < g.sub_req_len) {
			ssize_t n = write(s->fd, g.sub_req + s->req_off, g.sub_req_len - s->req_off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (n < 0 && errno == EAGAIN)
					return; /* EPOLLOUT again */
				g.never_ready++;
				sub_kill(s, true);
				return;
			}
			s->req_off += (size_t)n;
		}
		s->st = SUB_HEAD;
		ep_set(EPOLL_CTL_MOD, s->fd, EPOLLIN | EPOLLRDHUP, ev_data(TAG_SUB, i));
		return;
	}
	if (s->st == SUB_HEAD || s->st == SUB_STREAM)
		sub_read(s);
}

/* The read tick: every stream with bytes waiting, read to the end (level-
 * triggered, so a stream is reported until read dry; the rounds are
 * bounded in case the server outruns us). */
static void read_tick(void)
{
	struct epoll_event evs[EPOLL_BATCH];
	uint64_t x;
	unsigned long rounds = opt.subs / EPOLL_BATCH + 2;

	if (read(g.tick, &x, sizeof(x)) < 0 && errno != EAGAIN)
		perror("loadclient: timerfd");
	for (unsigned long r = 0; r < rounds; r++) {
		int n = epoll_wait(g.ep_subs, evs, EPOLL_BATCH, 0);

		for (int i = 0; i < n; i++)
			sub_event((unsigned long)(evs[i].data.u64 & 0xffffffffu), evs[i].events);
		if (n < EPOLL_BATCH)
			break;
	}
}

/* ---- publisher */

static uint64_t due_ns(uint64_t seq)
{
	uint64_t burst = seq / opt.burst;

	return g.t0 + (uint64_t)((double)(burst * opt.burst) * 1e9 / opt.rate);
}

static void pub_close(struct pub *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static void pub_write(unsigned long i);

static void pub_begin_request(unsigned long i)
{
	struct pub *p = &g.pubs[i];
	char body[4096];
	int n, hl;
	uint64_t t = opt.stamp_scheduled ? due_ns(p->seq) : now_ns();

	n = snprintf(body, sizeof(body), "t=%" PRIu64 " seq=%" PRIu64 " ", t, p->seq);
	while ((unsigned long)n < opt.size && (size_t)n < sizeof(body) - 1) {
		body[n] = (char)('a' + n % 26);
		n++;
	}
	body[n] = '\0';
	hl = snprintf(p->req, sizeof(p->req),
		      "POST %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: text/plain\r\n"
		      "Content-Length: %d\r\n\r\n%s",
		      opt.pub_path, opt.host, opt.pub_ports[p->port], n, body);
	p->req_len = (size_t)hl < sizeof(p->req) ? (size_t)hl : sizeof(p->req) - 1;
	p->req_off = 0;
	p->head_len = p->hdr_end = 0;
	p->body_got = 0;
	p->dc = (struct dechunk){CH_SIZE, 0};
	p->st = PUB_SENDING;
	pub_write(i);
}

static void pub_start(unsigned long i, uint64_t seq)
{
	struct pub *p = &g.pubs[i];

	p->seq = seq;
	p->retries = 0;
	g.pub_inflight++;
	if (p->fd >= 0) {
		p->reused = true;
		ep_set(EPOLL_CTL_MOD, p->fd, EPOLLIN | EPOLLRDHUP, ev_data(TAG_PUB, i));
		pub_begin_request(i);
		return;
	}
	p->reused = false;
	p->fd = connect_nb(&pub_addr[p->port]);
	g.pub_connects++;
	if (p->fd < 0) {
		g.pub_errors++;
		g.pubs_done++;
		g.pub_inflight--;
		p->st = PUB_FREE;
		return;
	}
	p->st = PUB_CONNECTING;
	ep_set(EPOLL_CTL_ADD, p->fd, EPOLLOUT, ev_data(TAG_PUB, i));
}

static void pub_finish(unsigned long i, bool ok, bool keep)
{
	struct pub *p = &g.pubs[i];

	if (ok) {
		g.pubs_ok++;
		g.pub_ok[p->seq] = 1;
	} else {
		g.pub_errors++;
	}
	g.pubs_done++;
	g.t_last_pub = now_ns();
	if (!keep)
		pub_close(p);
	p->st = PUB_FREE;
	g.pub_inflight--;
}

/* The connection failed: a reused keep-alive connection may have been
 * closed by the server while idle; try once more on a new one. */
static void pub_fail(unsigned long i)
{
	struct pub *p = &g.pubs[i];

	pub_close(p);
	if (p->reused && p->retries == 0 && p->head_len == 0) {
		g.pub_retries++;
		p->retries++;
		p->reused = false;
		p->fd = connect_nb(&pub_addr[p->port]);
		if (p->fd >= 0) {
			p->st = PUB_CONNECTING;
			ep_set(EPOLL_CTL_ADD, p->fd, EPOLLOUT, ev_data(TAG_PUB, i));
			return;
		}
	}
	pub_finish(i, false, false);
}

static void pub_write(unsigned long i)
{
	struct pub *p = &g.pubs[i];

	while (p->req_off < p->req_len) {
		ssize_t n = send(p->fd, p->req + p->req_off, p->req_len - p->req_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ep_set(EPOLL_CTL_MOD, p->fd, EPOLLOUT | EPOLLIN, ev_data(TAG_PUB, i));
			return;
		}
		if (n <= 0) {
			pub_fail(i);
			return;
		}
		p->req_off += (size_t)n;
	}
	p->st = PUB_READING;
	ep_set(EPOLL_CTL_MOD, p->fd, EPOLLIN | EPOLLRDHUP, ev_data(TAG_PUB, i));
}

static int discard(void *user, const char *buf, size_t len)
{
	(void)user, (void)buf, (void)len;
	return 0;
}

/* Is the response complete? 1 yes, 0 not yet, -1 malformed. */
static int pub_body(struct pub *p, const char *buf, size_t len)
{
	if (p->rh.chunked) {
		if (dechunk_feed(&p->dc, buf, len, discard, NULL) != 0)
			return -1;
		return p->dc.st == CH_END;
	}
	p->body_got += (long long)len;
	if (p->rh.content_length >= 0)
		return p->body_got >= p->rh.content_length;
	return 0; /* until the server closes */
}

static void pub_read(unsigned long i)
{
	struct pub *p = &g.pubs[i];

	for (;;) {
		ssize_t n = read(p->fd, g.rbuf, READ_BUF);
		int done = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* A body delimited by the end of the connection ends here. */
			if (n == 0 && p->hdr_end > 0 && !p->rh.chunked && p->rh.content_length < 0)
				pub_finish(i, p->rh.status / 100 == 2, false);
			else
				pub_fail(i);
			return;
		}
		if (p->hdr_end == 0) {
			size_t take = (size_t)n, end;

			if (take > HEAD_MAX - p->head_len)
				take = HEAD_MAX - p->head_len;
			memcpy(p->head + p->head_len, g.rbuf, take);
			p->head_len += take;
			end = head_end(p->head, p->head_len);
			if (end == 0) {
				if (p->head_len == HEAD_MAX) {
					pub_finish(i, false, false);
					return;
				}
				continue;
			}
			if (parse_resp_head(p->head, end, &p->rh) < 0) {
				pub_finish(i, false, false);
				return;
			}
			p->hdr_end = end;
			/* Body bytes in the head buffer, then any past it. */
			done = pub_body(p, p->head + end, p->head_len - end);
			if (done == 0 && take < (size_t)n)
				done = pub_body(p, g.rbuf + take, (size_t)n - take);
			if (done == 0 && p->rh.content_length < 0 && !p->rh.chunked &&
			    (p->rh.status == 204 || p->rh.status == 304))
				done = 1;
		} else {
			done = pub_body(p, g.rbuf, (size_t)n);
		}
		if (done < 0) {
			pub_finish(i, false, false);
			return;
		}
		if (done > 0) {
			bool keep = !p->rh.close;

			if (keep) /* idle: watch only for the server closing it */
				ep_set(EPOLL_CTL_MOD, p->fd, EPOLLRDHUP, ev_data(TAG_PUB, i));
			pub_finish(i, p->rh.status / 100 == 2, keep);
			return;
		}
	}
}

static void pub_event(unsigned long i, uint32_t events)
{
	struct pub *p = &g.pubs[i];

	switch (p->st) {
	case PUB_FREE:
		/* An idle keep-alive connection the server closed. */
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLIN))
			pub_close(p);
		return;
	case PUB_CONNECTING:
		if (sock_error(p->fd) != 0 || (events & (EPOLLERR | EPOLLHUP))) {
			pub_fail(i);
			return;
		}
		pub_begin_request(i);
		return;
	case PUB_SENDING:
		if (events & (EPOLLERR | EPOLLHUP)) {
			pub_fail(i);
			return;
		}
		pub_write(i);
		return;
	case PUB_READING:
		pub_read(i);
		return;
	}
}

/* Start every event that is due, while a connection slot of its port is
 * free and fewer than --pub-conns are in flight. */
static void publish_due(uint64_t now)
{
	unsigned long ports = (unsigned long)opt.npub_ports;

	while (g.next_seq < opt.events && due_ns(g.next_seq) <= now) {
		unsigned long slot = g.npub_slots;

		if (g.pub_inflight >= opt.pub_conns)
			return; /* a completion will bring us back */
		for (unsigned long i = g.next_seq % ports; i < g.npub_slots; i += ports) {
			if (g.pubs[i].st == PUB_FREE) {
				slot = i;
				break;
			}
		}
		if (slot == g.npub_slots)
			return;
		pub_start(slot, g.next_seq++);
	}
	if (g.next_seq < opt.events && due_ns(g.next_seq) != g.armed) {
		struct itimerspec its = {{0, 0}, {0, 0}};
		uint64_t due = due_ns(g.next_seq);

		g.armed = due;
		its.it_value.tv_sec = (time_t)(due / 1000000000u);
		its.it_value.tv_nsec = (long)(due % 1000000000u);
		timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL);
	}
}

/* ---- the loop */

static void finish_counts(uint64_t *gaps)
{
	*gaps = 0;
	for (unsigned long i = 0; i < opt.subs; i++) {
		struct sub *s = &g.subs[i];

		if (s->parser == NULL)
			continue; /* never streamed: counted in errors */
		for (uint64_t q = 0; q < opt.events; q++)
			if (g.pub_ok[q] && !(s->seen[q / 64] & ((uint64_t)1 << (q % 64))))
				(*gaps)++;
	}
}

static void enter_publish(uint64_t now)
{
	g.mem1 = proc_mem();
	g.cpu0 = proc_cpu_s(&g.sys0, &g.redis0);
	g.stall0 = cpu_stall_us();
	getrusage(RUSAGE_SELF, &g.ru0);
	g.t0 = now;
	if (opt.no_publish) { /* another client publishes: take every event as sent */
		memset(g.pub_ok, 1, opt.events);
		g.pubs_ok = g.pubs_done = opt.events;
		g.phase = PH_DRAIN;
		g.deadline = UINT64_MAX; /* until the first delivery, --max-seconds */
		fprintf(stderr, "loadclient%s%s: %lu/%lu subscribers ready, waiting for events\n",
			opt.label[0] ? " " : "", opt.label, g.ready, opt.subs);
		return;
	}
	g.phase = PH_PUBLISH;
	fprintf(stderr, "loadclient%s%s: %lu/%lu subscribers ready, publishing %lu events\n",
		opt.label[0] ? " " : "", opt.label, g.ready, opt.subs, opt.events);
	publish_due(now);
}

static void step(uint64_t now)
{
	switch (g.phase) {
	case PH_CONNECT:
		while (g.next_sub < g.half && g.connecting < CONNECT_INFLIGHT)
			sub_start(g.next_sub++);
		if (g.next_sub == g.half && g.half < opt.subs && g.connecting == 0) {
			g.t_conn_half = now;
			g.phase = PH_SETTLE_HALF;
			g.deadline = now + SETTLE_NS;
		} else if (g.next_sub == opt.subs && g.connecting == 0) {
			g.t_conn_all = now;
			g.phase = PH_SETTLE;
			g.deadline = now + SETTLE_NS;
		} else if (now >= g.connect_deadline) {
			for (unsigned long i = 0; i < opt.subs; i++) {
				if (g.subs[i].st == SUB_CONNECTING || g.subs[i].st == SUB_HEAD) {
					g.never_ready++;
					sub_kill(&g.subs[i], true);
				} else if (g.subs[i].st == SUB_IDLE) {
					g.never_ready++;
					g.subs[i].st = SUB_DEAD;
				}
			}
			g.next_sub = g.half = opt.subs;
			g.phase = PH_SETTLE;
			g.deadline = now + SETTLE_NS;
		}
		break;
	case PH_SETTLE_HALF:
		if (now >= g.deadline) {
			g.mem_half = proc_mem();
			g.half_ready = g.ready;
			g.half = opt.subs;
			g.t_conn_resume = now_ns();
			g.phase = PH_CONNECT;
		}
		break;
	case PH_SETTLE:
		if (now >= g.deadline)
			enter_publish(now);
		break;
	case PH_PUBLISH:
		publish_due(now);
		if (g.pubs_done == opt.events) {
			g.phase = PH_DRAIN;
			g.deadline = now + (uint64_t)(opt.drain_timeout * 1e9);
		}
		break;
	case PH_DRAIN:
		break;
	case PH_DONE:
		return;
	}
	if (g.phase == PH_DRAIN && opt.no_publish && g.t_last_delivery > g.t0)
		g.deadline = g.t_last_delivery + (uint64_t)(opt.drain_timeout * 1e9);
	if (g.phase == PH_DRAIN) {
		/* Ready subscribers (and those that died after streaming) should
		 * each have every accepted event. */
		uint64_t want = (uint64_t)g.ready * g.pubs_ok + g.dead_got;

		if (g.deliveries >= want || now >= g.deadline) {
			g.cpu1 = proc_cpu_s(&g.sys1, &g.redis1);
			g.stall1 = cpu_stall_us();
			getrusage(RUSAGE_SELF, &g.ru1);
			g.t_done = now;
			g.phase = PH_DONE;
		}
	}
}

static int wait_ms(uint64_t now)
{
	uint64_t until;

	switch (g.phase) {
	case PH_CONNECT:
		return 50;
	case PH_SETTLE_HALF:
	case PH_SETTLE:
	case PH_DRAIN:
		until = g.deadline;
		break;
	default:
		return 100; /* the timer wakes us for the next publish */
	}
	if (until <= now)
		return 0;
	until = (until - now + 999999) / 1000000;
	return until > 100 ? 100 : (int)until;
}

static double tv_s(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* The end of the report line: what only the cluster's options ask for. */
static void report_extras(void)
{
	if (opt.redis_pid > 0) {
		double r = g.redis1 - g.redis0;

		printf(",\"redis_cpu_s\":%.3f,\"redis_cpu_us_per_event\":%.1f", r,
		       g.pubs_ok ? r * 1e6 / (double)g.pubs_ok : 0);
	}
	if (opt.print_hist) {
		const char *sep = "";

		printf(",\"hist\":{");
		for (unsigned i = 0; i < HIST_BUCKETS; i++) {
			if (hist.count[i] == 0)
				continue;
			printf("%s\"%u\":%" PRIu64, sep, i, hist.count[i]);
			sep = ",";
		}
		printf("}");
	}
	printf("}\n");
}

static void report(uint64_t start)
{
	uint64_t gaps = 0, end = g.t_last_delivery > g.t0 ? g.t_last_delivery : now_ns();
	double dur = g.t0 ? (double)(end - g.t0) / 1e9 : 0;
	double pub_dur = g.t_last_pub > g.t0 ? (double)(g.t_last_pub - g.t0) / 1e9 : 0;
	double cpu = g.cpu1 - g.cpu0;
	double client_cpu = tv_s(&g.ru1.ru_utime) + tv_s(&g.ru1.ru_stime) -
			    tv_s(&g.ru0.ru_utime) - tv_s(&g.ru0.ru_stime);
	uint64_t errors;
	long long d_rss = (long long)g.mem1.rss_kb - (long long)g.mem0.rss_kb;
	long long d_pd = (long long)g.mem1.private_dirty_kb - (long long)g.mem0.private_dirty_kb;
	long long d_half = (long long)g.mem1.private_dirty_kb - (long long)g.mem_half.private_dirty_kb;
	unsigned long n_idle = g.ready + g.dead;
	/* Subscribers added between the two readings (none dies while idle). */
	long long n_second = g.half_ready ? (long long)n_idle - (long long)g.half_ready : 0;

	double stall_wall = g.t0 && g.t_done > g.t0 ? (double)(g.t_done - g.t0) / 1e9 : 0;
	uint64_t paused = g.t_conn_resume > g.t_conn_half ? g.t_conn_resume - g.t_conn_half : 0;
	double connect_s = g.t_conn_all > start ? (double)(g.t_conn_all - start - paused) / 1e9 : 0;

	finish_counts(&gaps);
	errors = g.stream_errors + g.connect_errors + g.pub_errors + g.foreign;
	printf("{\"label\":\"%s\",\"subscribers\":%lu,\"ready\":%lu,\"events\":%lu,"
	       "\"published\":%" PRIu64 ",\"burst\":%lu,\"rate\":%.1f,\"deliveries\":%" PRIu64
	       ",\"expected\":%" PRIu64 ",\"duration_s\":%.3f,\"publish_s\":%.3f,"
	       "\"deliveries_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
	       "\"mean_us\":%.1f,\"gaps\":%" PRIu64 ",\"dups\":%" PRIu64 ",\"reorders\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",\"never_ready\":%lu,\"dropped\":%lu,"
	       "\"publish_errors\":%" PRIu64 ",\"foreign_events\":%" PRIu64
	       ",\"server_cpu_s\":%.2f,\"server_sys_s\":%.2f,\"deliveries_per_cpu_s\":%.0f,\"client_cpu_s\":%.2f,"
	       "\"mem0_rss_kb\":%llu,\"mem_idle_rss_kb\":%llu,\"mem0_private_dirty_kb\":%llu,"
	       "\"mem_idle_private_dirty_kb\":%llu,\"rss_per_sub_b\":%.0f,"
	       "\"private_dirty_per_sub_b\":%.0f,\"mem_half_private_dirty_kb\":%llu,"
	       "\"half_ready\":%lu,\"marginal_private_dirty_per_sub_b\":%.0f,"
	       "\"cpu_pressure_pct\":%.1f,\"sub_reads\":%" PRIu64 ",\"events_per_read\":%.2f,"
	       "\"pub_connects\":%" PRIu64 ",\"connect_s\":%.3f,\"read_every_ms\":%.1f,\"wall_s\":%.1f",
	       opt.label, opt.subs, n_idle, opt.events, g.pubs_ok, opt.burst, opt.rate,
	       g.deliveries, (uint64_t)n_idle * g.pubs_ok, dur, pub_dur,
	       dur > 0 ? (double)g.deliveries / dur : 0, (double)hist_quantile(0.50) / 1e3,
	       (double)hist_quantile(0.99) / 1e3, (double)hist.max / 1e3,
	       hist.n ? (double)hist.sum / (double)hist.n / 1e3 : 0, gaps, g.dups, g.reorders,
	       errors, g.never_ready, g.dead, g.pub_errors, g.foreign, cpu, g.sys1 - g.sys0,
	       cpu > 0 ? (double)g.deliveries / cpu : 0, client_cpu, g.mem0.rss_kb,
	       g.mem1.rss_kb, g.mem0.private_dirty_kb, g.mem1.private_dirty_kb,
	       n_idle ? (double)d_rss * 1024 / (double)n_idle : 0,
	       n_idle ? (double)d_pd * 1024 / (double)n_idle : 0, g.mem_half.private_dirty_kb,
	       g.half_ready, n_second > 0 ? (double)d_half * 1024 / (double)n_second : 0,
	       stall_wall > 0 && g.stall1 >= g.stall0 ? (double)(g.stall1 - g.stall0) / stall_wall / 1e4
						      : 0,
	       g.sub_reads, g.sub_reads ? (double)g.deliveries / (double)g.sub_reads : 0,
	       g.pub_connects, connect_s, opt.read_every_ms, (double)(now_ns() - start) / 1e9);
	report_extras();
	fflush(stdout);
}

/* The periodic timer of --read-every-ms and the epoll set it reads. */
static int start_read_tick(void)
{
	uint64_t ns = (uint64_t)(opt.read_every_ms * 1e6);
	struct itimerspec its = {{(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)},
				 {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)}};

	g.ep_subs = epoll_create1(EPOLL_CLOEXEC);
	g.tick = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (g.ep_subs < 0 || g.tick < 0 || timerfd_settime(g.tick, 0, &its, NULL) < 0)
		return -1;
	ep_set(EPOLL_CTL_ADD, g.tick, EPOLLIN, ev_data(TAG_TICK, 0));
	return 0;
}

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
		rl.rlim_max = want; /* root may raise the hard limit */
		rl.rlim_cur = want;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
		fprintf(stderr, "loadclient: RLIMIT_NOFILE is %llu, want %llu\n",
			(unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s --port P --subs N --events M --rate R [--host A] [--sub-path P]\n"
		"       [--pub-path P] [--burst B] [--pub-conns C] [--size BYTES]\n"
		"       [--server-pid PID]... [--connect-timeout S] [--drain-timeout S]\n"
		"       [--max-seconds S] [--label TEXT] [--read-every-ms MS] [--stamp-scheduled]\n"
		"       [--sub-port P]... [--pub-port P]... [--cpu-pid PID]... [--redis-pid PID]\n"
		"       [--no-publish] [--print-hist]\n",
		argv0);
}

static int parse_args(int argc, char **argv)
{
	enum { O_HOST = 256, O_PORT, O_SUBPATH, O_PUBPATH, O_SUBS, O_EVENTS, O_RATE, O_BURST,
	       O_PUBCONNS, O_SIZE, O_PID, O_CTO, O_DTO, O_MAX, O_LABEL, O_READEVERY,
	       O_STAMPSCHED, O_SUBPORT, O_PUBPORT, O_CPUPID, O_REDISPID, O_NOPUB, O_HIST };
	static const struct option lo[] = {
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"sub-path", required_argument, NULL, O_SUBPATH},
		{"pub-path", required_argument, NULL, O_PUBPATH},
		{"subs", required_argument, NULL, O_SUBS},
		{"events", required_argument, NULL, O_EVENTS},
		{"rate", required_argument, NULL, O_RATE},
		{"burst", required_argument, NULL, O_BURST},
		{"pub-conns", required_argument, NULL, O_PUBCONNS},
		{"size", required_argument, NULL, O_SIZE},
		{"server-pid", required_argument, NULL, O_PID},
		{"connect-timeout", required_argument, NULL, O_CTO},
		{"drain-timeout", required_argument, NULL, O_DTO},
		{"max-seconds", required_argument, NULL, O_MAX},
		{"label", required_argument, NULL, O_LABEL},
		{"read-every-ms", required_argument, NULL, O_READEVERY},
		{"stamp-scheduled", no_argument, NULL, O_STAMPSCHED},
		{"sub-port", required_argument, NULL, O_SUBPORT},
		{"pub-port", required_argument, NULL, O_PUBPORT},
		{"cpu-pid", required_argument, NULL, O_CPUPID},
		{"redis-pid", required_argument, NULL, O_REDISPID},
		{"no-publish", no_argument, NULL, O_NOPUB},
		{"print-hist", no_argument, NULL, O_HIST},
		{NULL, 0, NULL, 0},
	};
	int o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case O_HOST: opt.host = optarg; break;
		case O_PORT: opt.port = (unsigned)strtoul(optarg, NULL, 10); break;
		case O_SUBPATH: opt.sub_path = optarg; break;
		case O_PUBPATH: opt.pub_path = optarg; break;
		case O_SUBS: opt.subs = strtoul(optarg, NULL, 10); break;
		case O_EVENTS: opt.events = strtoul(optarg, NULL, 10); break;
		case O_RATE: opt.rate = strtod(optarg, NULL); break;
		case O_BURST: opt.burst = strtoul(optarg, NULL, 10); break;
		case O_PUBCONNS: opt.pub_conns = strtoul(optarg, NULL, 10); break;
		case O_SIZE: opt.size = strtoul(optarg, NULL, 10); break;
		case O_PID:
			if (opt.npids < MAX_PIDS)
				opt.pids[opt.npids++] = atoi(optarg);
			break;
		case O_CTO: opt.connect_timeout = strtod(optarg, NULL); break;
		case O_DTO: opt.drain_timeout = strtod(optarg, NULL); break;
		case O_MAX: opt.max_seconds = strtod(optarg, NULL); break;
		case O_LABEL: opt.label = optarg; break;
		case O_READEVERY: opt.read_every_ms = strtod(optarg, NULL); break;
		case O_STAMPSCHED: opt.stamp_scheduled = true; break;
		case O_SUBPORT:
		case O_PUBPORT: {
			unsigned long v = strtoul(optarg, NULL, 10);
			unsigned *ports = o == O_SUBPORT ? opt.sub_ports : opt.pub_ports;
			int *n = o == O_SUBPORT ? &opt.nsub_ports : &opt.npub_ports;

			if (v == 0 || v > 65535 || *n == MAX_PORTS)
				return -1;
			ports[(*n)++] = (unsigned)v;
			break;
		}
		case O_CPUPID:
		case O_REDISPID:
			if (opt.ncpu_pids == MAX_PIDS || (o == O_REDISPID && opt.redis_pid > 0))
				return -1;
			opt.cpu_pids[opt.ncpu_pids++] = atoi(optarg);
			if (o == O_REDISPID)
				opt.redis_pid = opt.cpu_pids[opt.ncpu_pids - 1];
			break;
		case O_NOPUB: opt.no_publish = true; break;
		case O_HIST: opt.print_hist = true; break;
		default: return -1;
		}
	}
	/* --port is the default of --sub-port and --pub-port, or the first of them. */
	if (opt.port == 0)
		opt.port = opt.nsub_ports ? opt.sub_ports[0] : opt.npub_ports ? opt.pub_ports[0] : 0;
	if (opt.nsub_ports == 0 && opt.port != 0)
		opt.sub_ports[opt.nsub_ports++] = opt.port;
	if (opt.npub_ports == 0 && opt.port != 0)
		opt.pub_ports[opt.npub_ports++] = opt.port;
	if (optind != argc || opt.port == 0 || opt.port > 65535 || opt.events == 0 ||
	    opt.rate <= 0 || opt.burst == 0 || !(opt.read_every_ms >= 0 && opt.read_every_ms <= 1000) ||
	    opt.size > 3000 || opt.subs > 1000000 ||
	    strlen(opt.pub_path) > 400 || strlen(opt.sub_path) > 400 || strchr(opt.label, '"'))
		return -1;
	if (opt.pub_conns == 0)
		opt.pub_conns = opt.burst;
	if (opt.pub_conns > MAX_PUB_CONNS)
		opt.pub_conns = MAX_PUB_CONNS;
	/* Every port gets --pub-conns slots of its own, as many as fit. */
	g.npub_slots = opt.pub_conns * (unsigned long)opt.npub_ports;
	if (g.npub_slots > MAX_PUB_CONNS)
		g.npub_slots = MAX_PUB_CONNS - MAX_PUB_CONNS % (unsigned long)opt.npub_ports;
	if (opt.pub_conns > g.npub_slots)
		opt.pub_conns = g.npub_slots;
	return 0;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[EPOLL_BATCH];
	uint64_t start = now_ns(), hard_stop;
	int n;

	if (parse_args(argc, argv) != 0) {
		usage(argv[0]);
		return 2;
	}
	for (int i = 0; i < MAX_PORTS; i++) {
		struct sockaddr_in *a[2] = {&sub_addr[i], &pub_addr[i]};
		unsigned port[2] = {opt.sub_ports[i % opt.nsub_ports],
				    opt.pub_ports[i % opt.npub_ports]};

		for (int k = 0; k < 2; k++) {
			a[k]->sin_family = AF_INET;
			a[k]->sin_port = htons((uint16_t)port[k]);
			if (inet_pton(AF_INET, opt.host, &a[k]->sin_addr) != 1) {
				fprintf(stderr, "loadclient: --host must be an IPv4 address\n");
				return 2;
			}
		}
	}
	raise_nofile((rlim_t)opt.subs + MAX_PUB_CONNS + 64);
	g.sub_req_len = (uint64_t)snprintf(g.sub_req, sizeof(g.sub_req),
					   "GET %s HTTP/1.1\r\nHost: %s:%u\r\n"
					   "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
					   opt.sub_path, opt.host, opt.port);
	g.subs = xcalloc(opt.subs ? opt.subs : 1, sizeof(*g.subs));
	for (unsigned long i = 0; i < opt.subs; i++) {
		g.subs[i].fd = -1;
		g.subs[i].seen = xcalloc((opt.events + 63) / 64, sizeof(uint64_t));
	}
	for (unsigned long i = 0; i < MAX_PUB_CONNS; i++) {
		g.pubs[i].fd = -1;
		g.pubs[i].port = (int)(i % (unsigned long)opt.npub_ports);
	}
	g.rank = xcalloc(opt.events, sizeof(*g.rank));
	g.pub_ok = xcalloc(opt.events, 1);
	g.rbuf = xcalloc(1, READ_BUF);
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (g.ep < 0 || g.tfd < 0) {
		perror("loadclient: epoll/timerfd");
		return 1;
	}
	ep_set(EPOLL_CTL_ADD, g.tfd, EPOLLIN, ev_data(TAG_TIMER, 0));
	if (opt.read_every_ms > 0 && start_read_tick() != 0) {
		perror("loadclient: read tick");
		return 1;
	}
	g.mem0 = proc_mem();
	g.phase = PH_CONNECT;
	g.half = opt.subs >= 100 ? opt.subs / 2 : opt.subs;
	g.connect_deadline = start + (uint64_t)(opt.connect_timeout * 1e9);
	hard_stop = start + (uint64_t)(opt.max_seconds * 1e9);

	while (g.phase != PH_DONE) {
		uint64_t now = now_ns();

		step(now);
		if (g.phase == PH_DONE)
			break;
		if (now >= hard_stop) {
			fprintf(stderr, "loadclient: --max-seconds reached\n");
			g.cpu1 = proc_cpu_s(&g.sys1, &g.redis1);
			g.stall1 = cpu_stall_us();
			getrusage(RUSAGE_SELF, &g.ru1);
			g.t_done = now;
			if (g.t0 == 0) {
				g.cpu0 = g.cpu1;
				g.sys0 = g.sys1;
				g.redis0 = g.redis1;
			}
			break;
		}
		n = epoll_wait(g.ep, evs, EPOLL_BATCH, wait_ms(now));
		if (n < 0 && errno != EINTR) {
			perror("loadclient: epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++) {
			unsigned tag = (unsigned)(evs[i].data.u64 >> 32);
			unsigned long idx = (unsigned long)(evs[i].data.u64 & 0xffffffffu);

			if (tag == TAG_SUB)
				sub_event(idx, evs[i].events);
			else if (tag == TAG_PUB)
				pub_event(idx, evs[i].events);
			else if (tag == TAG_TICK)
				read_tick();
			else {
				uint64_t x;

				if (read(g.tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
					perror("loadclient: timerfd");
			}
		}
	}
	report(start);
	for (unsigned long i = 0; i < opt.subs; i++) {
		sse_parser_free(g.subs[i].parser);
		if (g.subs[i].fd >= 0)
			close(g.subs[i].fd);
		free(g.subs[i].head);
		free(g.subs[i].seen);
	}
	for (unsigned long i = 0; i < MAX_PUB_CONNS; i++)
		pub_close(&g.pubs[i]);
	free(g.subs);
	free(g.rank);
	free(g.pub_ok);
	free(g.rbuf);
	close(g.tfd);
	close(g.ep);
	if (opt.read_every_ms > 0) {
		close(g.tick);
		close(g.ep_subs);
	}
	return 0;
}
