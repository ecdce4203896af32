/*
 * sse-relay --access-log: a line per request when its answer is out
 * (a keep-alive publisher gets one per publish), and per event stream
 * when it closes, with why it closed:
 *
 *   time=2024-05-01T10:00:00.123Z peer=192.0.2.7:51234 method=GET path=/events
 *     status=200 bytes=1834 ms=61234 end=left
 *
 * (on one line). end is, for a stream: left (its client closed), gap
 * (too slow: it missed events), stall (its socket took nothing for
 * --stall), error (its socket failed), lifetime (--max-lifetime) or
 * shutdown; for a request: answered, or closed (cut short: a timeout,
 * the client gone). The path is logged without its query string, where
 * a token or a Last-Event-ID may be, and with bytes outside printable
 * ASCII, blanks and quotes %-escaped.
 *
 * A subscriber keeps nothing for it beyond the 12 bytes every connection
 * has (when it began, bytes written), which fit the allocation struct
 * conn already takes; the request part, freed once streaming, holds the
 * method and path. The peer is asked of the socket at the end: one that
 * was reset reports none ("-").
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "relay.h"

/* "METHOD /path" into the request's log_target, escaped, cut to fit. */
void access_note(struct conn *c, const struct sse_http_request *req)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *path;
	char *out = c->u.req->log_target, *end = out + sizeof(c->u.req->log_target) - 4;
	size_t path_len, query_len;
	const char *query;

	if (c->relay->m.log == NULL)
		return;
	http_split_target(req, &path, &path_len, &query, &query_len);
	for (size_t i = 0; i < req->method_len && i < 16 && out < end; i++)
		*out++ = req->method[i] > ' ' && req->method[i] < 127 ? req->method[i] : '?';
	*out++ = ' ';
	for (size_t i = 0; i < path_len && out < end; i++) {
		unsigned char b = (unsigned char)path[i];

		if (b > ' ' && b < 127 && b != '"' && b != '%' && b != '\\') {
			*out++ = (char)b;
			continue;
		}
		*out++ = '%';
		*out++ = hex[b >> 4];
		*out++ = hex[b & 15];
	}
	*out = '\0';
}

/* The peer's "ADDR:PORT" ("[V6]:PORT"), or "-". */
static void peer_of(int fd, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(buf, cap, "-");
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) != NULL)
			snprintf(buf, cap, "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) != NULL)
			snprintf(buf, cap, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
	}
}

/* The wall clock, UTC, to the millisecond. */
static void now_utc(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* target: "METHOD /path", or "" when no request was parsed. */
static void write_line(struct conn *c, const char *target, int status, uint64_t bytes,
		       const char *end)
{
	struct relay *r = c->relay;
	char when[40], peer[INET6_ADDRSTRLEN + 10], st[8];
	const char *space = strchr(target, ' ');
	int method_len = space != NULL ? (int)(space - target) : 1;

	now_utc(when, sizeof(when));
	peer_of(c->fd, peer, sizeof(peer));
	snprintf(st, sizeof(st), "%d", status);
	fprintf(r->m.log,
		"time=%s peer=%s method=%.*s path=%s status=%s bytes=%" PRIu64 " ms=%" PRIu32
		" end=%s\n",
		when, peer, method_len, space != NULL ? target : "-", space != NULL ? space + 1 : "-",
		status > 0 ? st : "-", bytes, (uint32_t)(ops_clock(r) - c->born), end);
}

void access_log_request(struct conn *c, const char *end)
{
	const struct conn_request *rq = c->u.req;

	if (c->relay->m.log == NULL || rq == NULL)
		return;
	write_line(c, rq->log_target, rq->status, rq->reply_sent, end);
}

/* A subscriber's end, when what closes it did not say: draining, it
 * reached its lifetime or the shutdown; else its client left. */
static const char *stream_end(const struct conn *c)
{
	if (c->state == CONN_DRAINING)
		return (c->flags & CONN_F_RETRY) || c->relay->stopping ? "shutdown" : "lifetime";
	return c->relay->stopping ? "shutdown" : "left";
}

void access_log_close(struct conn *c, const char *why)
{
	const struct conn_request *rq = c->u.req;

	if (c->relay->m.log == NULL)
		return;
	if (c->state == CONN_STREAMING || c->state == CONN_DRAINING) {
		write_line(c, "GET /events", 200, c->sent, why != NULL ? why : stream_end(c));
		return;
	}
	/* A request cut short; not an idle keep-alive connection closing. */
	if (c->state == CONN_CLOSED || c->state == CONN_LINGERING || rq == NULL ||
	    (c->state == CONN_READING_HEAD && rq->head_len == 0))
		return;
	write_line(c, rq->log_target, rq->status, rq->reply_sent, "closed");
}
