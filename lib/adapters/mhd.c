/*
 * libsse-mhd: event-stream responses on libmicrohttpd (external polling).
 *
 * Each response is a content reader over a pull stream: it copies what
 * the stream owes into libmicrohttpd's buffer, and suspends the
 * connection when nothing is owed; the stream's wake resumes it. The
 * response owns its subscriber (struct sub): the free callback leaves the
 * hub and frees it, however the connection ends.
 *
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse/mhd.h"

/* MHD_run() rounds one turn may take while connections keep being
 * resumed during them; past it, the loop is told not to sleep. */
#define RUNS_MAX 4

/* One subscriber: its stream and its connection. Owned by its response. */
struct sub {
	struct sse_mhd *m;
	struct MHD_Connection *conn;
	struct sse_stream *stream;
	struct sub *prev, *next; /* the adapter's list, for shutdown */
	bool suspended;          /* by its reader, until wake or a drop resumes it */
	bool told;               /* on_error was called */
	int err;                 /* the stream failed: end the response */
};

struct sse_mhd {
	struct sse_mhd_config cfg;
	struct sse_http_field fields[SSE_HTTP_FIELDS_MAX];
	size_t nfields;
	struct sub *subs;
	size_t count, suspended;
	bool resumed; /* since the last MHD_run() began */
};

/* ---- one subscriber */

static void sub_tell(struct sub *sub, int err)
{
	struct sse_mhd *m = sub->m;

	if (sub->told)
		return;
	sub->told = true;
	if (m->cfg.on_error != NULL)
		m->cfg.on_error(err, m->cfg.user);
}

static void sub_resume(struct sub *sub)
{
	if (!sub->suspended)
		return; /* resuming a connection that is not suspended is undefined */
	sub->suspended = false;
	sub->m->suspended--;
	MHD_resume_connection(sub->conn);
	sub->m->resumed = true; /* no wake-up descriptor in external polling */
}

static void on_wake(struct sse_stream *s, void *ctx)
{
	(void)s;
	sub_resume(ctx);
}

/* The content reader: copy what the stream owes, or suspend until wake. */
static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sub *sub = cls;
	size_t n = 0;
	int rc = sub->err != 0 ? sub->err : sse_stream_read(sub->stream, buf, max, &n);

	(void)pos;
	if (rc == 0)
		return (ssize_t)n;
	if (rc == SSE_ERR_WOULDBLOCK) {
		sub->suspended = true;
		sub->m->suspended++;
		MHD_suspend_connection(sub->conn);
		return 0;
	}
	sub->err = rc;
	sub_tell(sub, rc); /* e.g. fell out of the ring while its socket was full */
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The response is done with: leave the hub first, so that no fan-out
 * reaches a freed stream. */
static void sub_free(void *cls)
{
	struct sub *sub = cls;
	struct sse_mhd *m = sub->m;

	sse_hub_unsubscribe(m->cfg.hub, sub->stream);
	sse_stream_free(sub->stream);
	if (sub->prev != NULL)
		sub->prev->next = sub->next;
	else
		m->subs = sub->next;
	if (sub->next != NULL)
		sub->next->prev = sub->prev;
	m->count--;
	free(sub);
}

static struct sub *sub_new(struct sse_mhd *m, struct MHD_Connection *conn)
{
	struct sub *sub = calloc(1, sizeof(*sub));
	const struct sse_transport t = {.size = sizeof(t), .wake = on_wake, .ctx = sub};

	if (sub == NULL)
		return NULL;
	*sub = (struct sub){.m = m, .conn = conn, .next = m->subs};
	if (sse_stream_new(&sub->stream, &t, sub, NULL) < 0) {
		free(sub);
		return NULL;
	}
	if (m->subs != NULL)
		m->subs->prev = sub;
	m->subs = sub;
	m->count++;
	return sub;
}

/* ---- the response */

static bool add_fields(const struct sse_mhd *m, struct MHD_Response *r)
{
	for (size_t i = 0; i < m->nfields; i++)
		if (MHD_add_response_header(r, m->fields[i].name, m->fields[i].value) != MHD_YES)
			return false;
	return MHD_set_response_options(r, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END) ==
	       MHD_YES;
}

/* The response that reads from sub's stream and owns sub; NULL: sub is
 * freed. Close-delimited: chunked framing would only wrap every read in
 * a few more bytes. */
static struct MHD_Response *events_response(struct sub *sub)
{
	struct MHD_Response *r = MHD_create_response_from_callback(
		MHD_SIZE_UNKNOWN, sub->m->cfg.block, read_events, sub, sub_free);

	if (r == NULL) {
		sub_free(sub);
		return NULL;
	}
	if (!add_fields(sub->m, r)) {
		MHD_destroy_response(r); /* frees sub through sub_free() */
		return NULL;
	}
	return r;
}

/* A plain-text answer whose body is its status line. */
static enum MHD_Result reply_status(struct MHD_Connection *conn, unsigned status)
{
	char text[64];
	int n = snprintf(text, sizeof(text), "%u %s\n", status, MHD_get_reason_phrase_for(status));
	struct MHD_Response *r = MHD_create_response_from_buffer(
		n > 0 ? (size_t)n : 0, text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

/* The resume point: 1 and a malloc'd id, 0 for none, or an error
 * (SSE_ERR_HTTP: a malformed escape). */
static int resume_id(struct MHD_Connection *conn, const char *query, char **id, size_t *len)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
	size_t hlen = h != NULL ? strlen(h) : 0;
	size_t qlen = query != NULL ? strlen(query) : 0;
	int rc;

	*id = malloc(hlen + qlen + 1);
	if (*id == NULL)
		return SSE_ERR_NOMEM;
	rc = sse_http_resume_id(h, hlen, query, qlen, *id, hlen + qlen + 1, len);
	if (rc <= 0) {
		free(*id);
		*id = NULL;
	}
	return rc;
}

/* A new subscriber of the hub, from id on, in the response that owns it. */
static struct MHD_Response *subscribe(struct sse_mhd *m, struct MHD_Connection *conn,
				      const char *id, size_t id_len)
{
	struct sub *sub = sub_new(m, conn);
	struct MHD_Response *r;

	if (sub == NULL)
		return NULL;
	if (m->cfg.on_stream != NULL && m->cfg.on_stream(sub->stream, m->cfg.user) < 0) {
		sub_free(sub);
		return NULL;
	}
	r = events_response(sub);
	/* Subscribing queues the opening bytes and any replay in the stream;
	 * they leave through the reader once the head is out. */
	if (r != NULL && sse_hub_subscribe(m->cfg.hub, sub->stream, id, id_len, NULL) < 0) {
		MHD_destroy_response(r); /* and sub with it */
		return NULL;
	}
	return r;
}

enum MHD_Result sse_mhd_respond(struct sse_mhd *m, struct MHD_Connection *conn,
				const char *query)
{
	char *id = NULL;
	size_t id_len = 0;
	struct MHD_Response *r;
	enum MHD_Result ok;
	int rc = resume_id(conn, query, &id, &id_len);

	if (rc < 0)
		return reply_status(conn, rc == SSE_ERR_HTTP ? MHD_HTTP_BAD_REQUEST
							     : MHD_HTTP_SERVICE_UNAVAILABLE);
	r = subscribe(m, conn, id, id_len);
	free(id);
	if (r == NULL)
		return reply_status(conn, MHD_HTTP_SERVICE_UNAVAILABLE);
	/* Its stream is the one timeout that counts (the hub's stall time). */
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r); /* freed, with sub, when the connection is done */
	return ok;
}

/* ---- drops, the loop, shutdown */

void sse_mhd_drop(struct sse_mhd *m, struct sse_stream *s, int err)
{
	struct sub *sub = sse_stream_user(s);

	(void)m;
	sub->err = err;
	sub_tell(sub, err);
	if (sub->suspended)
		sub_resume(sub); /* its reader ends the response */
	else
		MHD_set_connection_option(sub->conn, MHD_CONNECTION_OPTION_TIMEOUT, 1u);
}

/* Sleep until the hub's deadline or libmicrohttpd's, whichever is first. */
static int wait_ms(const struct sse_mhd *m, uint64_t now, uint64_t next)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	uint64_t ms = next == SSE_NO_DEADLINE ? UINT64_MAX : next > now ? next - now : 0;

	if (m->resumed)
		return 0; /* the daemon sees resumed connections when it runs */
	if (MHD_get_timeout(m->cfg.daemon, &mhd_ms) == MHD_YES && mhd_ms < ms)
		ms = mhd_ms;
	if (ms == UINT64_MAX)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int sse_mhd_run(struct sse_mhd *m, uint64_t now_ms, int *timeout_ms)
{
	uint64_t next = SSE_NO_DEADLINE;
	int rc = 0;

	sse_hub_tick(m->cfg.hub, now_ms, NULL);
	sse_hub_flush(m->cfg.hub); /* publishes made outside, before the daemon reads */
	for (int i = 0; i < RUNS_MAX && (i == 0 || m->resumed); i++) {
		m->resumed = false;
		if (MHD_run(m->cfg.daemon) != MHD_YES)
			rc = SSE_ERR_IO;
		sse_hub_flush(m->cfg.hub); /* publishes of the handlers; drops go to on_drop */
	}
	/* Again for the deadlines of streams that joined this turn. */
	sse_hub_tick(m->cfg.hub, now_ms, &next);
	if (timeout_ms != NULL)
		*timeout_ms = wait_ms(m, now_ms, next);
	return rc;
}

void sse_mhd_shutdown(struct sse_mhd *m)
{
	if (m == NULL)
		return;
	for (struct sub *sub = m->subs; sub != NULL; sub = sub->next) {
		if (sub->err == 0)
			sub->err = SSE_ERR_IO; /* ends it at any further read */
		sub->told = true;          /* not a failure to report */
		sub_resume(sub);
	}
}

size_t sse_mhd_count(const struct sse_mhd *m)
{
	return m->count;
}

size_t sse_mhd_suspended(const struct sse_mhd *m)
{
	return m->suspended;
}

/* ---- the adapter */

/* What the adapter needs of the daemon: external polling, and suspend.
 * MHD_ALLOW_SUSPEND_RESUME is its own bit plus MHD_USE_ITC, and an
 * external-polling daemon reports its flags without MHD_USE_ITC. */
static bool daemon_ok(struct MHD_Daemon *d)
{
	const unsigned threads = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
	const unsigned suspend = (unsigned)MHD_ALLOW_SUSPEND_RESUME & ~(unsigned)MHD_USE_ITC;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_FLAGS);
	unsigned flags = info != NULL ? (unsigned)info->flags : 0;

	return info != NULL && (flags & threads) == 0 && (flags & suspend) == suspend;
}

int sse_mhd_new(struct sse_mhd **out, const struct sse_mhd_config *cfg)
{
	struct sse_mhd *m;
	int n;

	if (out == NULL || cfg == NULL || cfg->size != sizeof(*cfg) || cfg->hub == NULL ||
	    cfg->daemon == NULL || !daemon_ok(cfg->daemon))
		return SSE_ERR_INVALID;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return SSE_ERR_NOMEM;
	m->cfg = *cfg;
	if (m->cfg.block == 0)
		m->cfg.block = SSE_MHD_DEFAULT_BLOCK;
	/* The fields point into m->cfg.http (cors_origin) or static text. */
	n = sse_http_response_fields(&m->cfg.http, m->fields, SSE_HTTP_FIELDS_MAX);
	if (n < 0) {
		free(m);
		return n;
	}
	m->nfields = (size_t)n;
	*out = m;
	return 0;
}

void sse_mhd_free(struct sse_mhd *m)
{
	free(m);
}

/* ---- the raw query, for applications without request state */

void *sse_mhd_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const char *q = strchr(uri, '?');
	size_t len = q != NULL ? strcspn(q + 1, "#") : 0;
	char *copy = malloc(len + 1);

	(void)cls, (void)conn;
	if (copy == NULL)
		return NULL;
	if (len > 0)
		memcpy(copy, q + 1, len);
	copy[len] = '\0';
	return copy;
}

void sse_mhd_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
		       enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	free(*req_cls);
	*req_cls = NULL;
}
