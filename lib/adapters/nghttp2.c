/*
 * libsse-nghttp2: an event stream bound to an HTTP/2 stream of an nghttp2
 * server session, carried as NGHTTP2_DATA_FLAG_NO_COPY DATA frames.
 *
 * The event stream has an asynchronous transport that takes bytes only
 * while nghttp2 asks the data source for them: the read callback lets the
 * hub write up to nghttp2's length, and the transport "stages" the pieces
 * (pointers into the ring or the stream's queue). nghttp2 then frames them
 * and calls send_data, which hands header and pieces to the application;
 * the application completes them as they are done with. Asked to write
 * at any other time (a publish, a heartbeat), the transport takes
 * nothing and resumes the deferred data source instead.
 *
 * Order of completion: the application's bytes were taken first, then
 * what is still staged, so staged bytes nghttp2 never framed (the stream
 * closed) are completed last, once the application holds nothing.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdbool.h>
#include <string.h>

#include <sse/nghttp2.h>

/* nghttp2 1.60 replaced ssize_t in callbacks with nghttp2_ssize. */
#if NGHTTP2_VERSION_NUM >= 0x013c00
typedef nghttp2_ssize h2_ssize;
typedef nghttp2_data_provider2 h2_provider;
#define h2_submit_response nghttp2_submit_response2
#else
typedef ssize_t h2_ssize;
typedef nghttp2_data_provider h2_provider;
#define h2_submit_response nghttp2_submit_response
#endif

#define STAGE_MAX 64 /* pieces staged and not framed yet */
#define ID_STACK 256 /* a resume id this long needs no allocation */

struct sse_h2_stream {
	nghttp2_session *session; /* NULL once closed */
	int32_t id;
	struct sse_stream *s;
	struct sse_hub *hub;
	sse_h2_send_fn send;
	sse_h2_wake_fn wake;
	void *ctx;
	struct sse_allocator alloc; /* the caller's, or libc's */
	struct sse_iovec stage[STAGE_MAX]; /* a ring of pieces, in order taken */
	size_t stage_head, stage_n;
	size_t staged; /* their bytes */
	size_t want;   /* in the read callback: bytes the transport may stage */
	size_t held;   /* handed to the send function, not completed */
	bool in_read, in_send, deferred, subscribed, ending, reset, closed;
	bool responding, wake_held; /* inside sse_h2_respond(): wakes wait for the handle */
};

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static void *mem_alloc(const struct sse_allocator *a, size_t n)
{
	return a->alloc_fn(n, a->ctx);
}

static void mem_free(const struct sse_allocator *a, void *p, size_t n)
{
	a->free_fn(p, n, a->ctx);
}

/* The application learns of a stream only once sse_h2_respond() returned
 * it: a wake before that (the opening bytes) is held until then. */
static void wake(struct sse_h2_stream *st)
{
	if (st->responding)
		st->wake_held = true;
	else if (st->wake != NULL)
		st->wake(st, st->ctx);
}

/* Have nghttp2 ask the data source again. */
static void resume(struct sse_h2_stream *st)
{
	if (st->deferred && st->session != NULL && !st->reset) {
		st->deferred = false;
		nghttp2_session_resume_data(st->session, st->id);
	}
	wake(st);
}

/* ---- the event stream's transport */

/* Stage up to st->want bytes (pointers only), while nghttp2 asks. */
static int h2_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct sse_h2_stream *st = ctx;
	size_t got = 0;

	if (!st->in_read) {
		resume(st);
		return SSE_ERR_WOULDBLOCK;
	}
	for (size_t i = 0; i < n && got < st->want && st->stage_n < STAGE_MAX; i++) {
		size_t k = min_size(iov[i].len, st->want - got);

		st->stage[(st->stage_head + st->stage_n++) % STAGE_MAX] =
			(struct sse_iovec){iov[i].base, k};
		got += k;
	}
	st->want -= got;
	st->staged += got;
	*taken = got;
	return got > 0 ? 0 : SSE_ERR_WOULDBLOCK;
}

static int h2_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	const struct sse_iovec one = {buf, len};

	return h2_writev(&one, 1, taken, ctx);
}

/* ---- the data source */

static void leave_hub(struct sse_h2_stream *st)
{
	if (st->subscribed)
		sse_hub_unsubscribe(st->hub, st->s);
	st->subscribed = false;
}

/* Let the stream write up to want bytes into the stage. */
static int pull(struct sse_h2_stream *st, size_t want)
{
	int rc;

	st->in_read = true;
	st->want = want;
	rc = st->subscribed ? sse_hub_writable(st->hub, st->s) : sse_stream_flush(st->s);
	st->in_read = false;
	st->want = 0;
	return rc;
}

static h2_ssize h2_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
			uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
	struct sse_h2_stream *st = source->ptr;
	int rc = 0;

	(void)session, (void)id, (void)buf, (void)user_data;
	if (!st->reset && st->staged < length)
		rc = pull(st, length - st->staged); /* a drop calls sse_h2_reset() */
	if (st->reset)
		return NGHTTP2_ERR_DEFERRED; /* the RST_STREAM closes it */
	if (st->staged > 0) {
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		return (h2_ssize)min_size(st->staged, length);
	}
	if (st->ending && rc != SSE_ERR_WOULDBLOCK) { /* caught up (or failed) */
		leave_hub(st);
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	if (rc < 0 && rc != SSE_ERR_WOULDBLOCK) { /* failed, and nobody reset it */
		sse_h2_reset(st, NGHTTP2_CANCEL);
		return NGHTTP2_ERR_DEFERRED;
	}
	st->deferred = true; /* the transport resumes it */
	return NGHTTP2_ERR_DEFERRED;
}

/* The first len staged bytes as pieces; the last may be cut. */
static size_t stage_pieces(const struct sse_h2_stream *st, size_t len, struct sse_iovec *out)
{
	size_t k = 0;

	for (size_t i = 0; len > 0 && i < st->stage_n; i++) {
		struct sse_iovec p = st->stage[(st->stage_head + i) % STAGE_MAX];

		p.len = min_size(p.len, len);
		out[k++] = p;
		len -= p.len;
	}
	return k;
}

/* Framed: the first len staged bytes belong to the application now. */
static void stage_consume(struct sse_h2_stream *st, size_t len)
{
	st->staged -= len;
	while (len > 0) {
		struct sse_iovec *p = &st->stage[st->stage_head];
		size_t k = min_size(p->len, len);

		p->base = (const char *)p->base + k;
		p->len -= k;
		len -= k;
		if (p->len == 0) {
			st->stage_head = (st->stage_head + 1) % STAGE_MAX;
			st->stage_n--;
		}
	}
}

static void finish(struct sse_h2_stream *st)
{
	struct sse_allocator a = st->alloc; /* it is in the block it frees */

	if (st->staged > 0)
		sse_stream_complete(st->s, st->staged); /* never framed: cancelled */
	sse_stream_free(st->s);
	mem_free(&a, st, sizeof(*st));
}

int sse_h2_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
		     size_t length, nghttp2_data_source *source, void *user_data)
{
	struct sse_h2_stream *st = source->ptr;
	struct sse_iovec data[STAGE_MAX];
	uint8_t head[10];
	struct sse_h2_frame f = {.head = head, .head_len = 9, .data = data, .len = length};
	int rc;

	(void)session, (void)user_data;
	if (length > st->staged)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	memcpy(head, framehd, 9);
	if (frame->data.padlen > 0) { /* the pad length field, then padlen - 1 zeros */
		head[9] = (uint8_t)(frame->data.padlen - 1);
		f.head_len = 10;
		f.pad = frame->data.padlen - 1;
	}
	f.n = stage_pieces(st, length, data);
	st->held += length; /* the send function may complete them at once */
	st->in_send = true;
	rc = st->send(st, &f, st->ctx);
	st->in_send = false;
	if (rc != 0) {
		st->held -= length;
		return rc == SSE_ERR_WOULDBLOCK ? NGHTTP2_ERR_WOULDBLOCK
						: NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	stage_consume(st, length);
	if (st->closed && st->held == 0)
		finish(st);
	return 0;
}

/* ---- the application's calls */

void sse_h2_config_init(struct sse_h2_config *cfg)
{
	*cfg = (struct sse_h2_config){.size = sizeof(*cfg), .retry_ms = SSE_RETRY_NONE};
}

int sse_h2_complete(struct sse_h2_stream *st, size_t n)
{
	int rc;

	if (st == NULL || n > st->held)
		return SSE_ERR_INVALID;
	rc = sse_stream_complete(st->s, n);
	if (rc != 0)
		return rc;
	st->held -= n;
	if (st->closed) {
		if (st->held == 0 && !st->in_send)
			finish(st);
		return 0;
	}
	/* A stream that would hand out nothing more while bytes were held. */
	if (st->deferred && !st->in_send && sse_stream_pending(st->s) > 0)
		resume(st);
	return 0;
}

int sse_h2_reset(struct sse_h2_stream *st, uint32_t error_code)
{
	int rv;

	if (st == NULL || st->closed || st->reset)
		return 0;
	st->reset = true;
	leave_hub(st);
	rv = nghttp2_submit_rst_stream(st->session, NGHTTP2_FLAG_NONE, st->id, error_code);
	wake(st);
	if (rv == 0)
		return 0;
	return rv == NGHTTP2_ERR_NOMEM ? SSE_ERR_NOMEM : SSE_ERR_INVALID;
}

void sse_h2_end(struct sse_h2_stream *st)
{
	if (st == NULL || st->closed || st->reset || st->ending)
		return;
	st->ending = true; /* still subscribed: what it owes goes first */
	resume(st);
}

void sse_h2_close(struct sse_h2_stream *st)
{
	if (st == NULL || st->closed)
		return;
	leave_hub(st);
	st->closed = true;
	st->session = NULL;
	if (st->held == 0 && !st->in_send)
		finish(st);
}

struct sse_stream *sse_h2_stream(const struct sse_h2_stream *st)
{
	return st != NULL ? st->s : NULL;
}

int32_t sse_h2_stream_id(const struct sse_h2_stream *st)
{
	return st != NULL ? st->id : 0;
}

size_t sse_h2_held(const struct sse_h2_stream *st)
{
	return st != NULL ? st->held : 0;
}

/* ---- answering a request */

static nghttp2_nv nv(const char *name, const char *value)
{
	return (nghttp2_nv){(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value,
			    strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE};
}

/* :status 200 and the event-stream fields, without connection-specific ones. */
static int head_fields(const struct sse_http_options *http, nghttp2_nv *out, size_t *n)
{
	struct sse_http_options o = {0};
	struct sse_http_field f[SSE_HTTP_FIELDS_MAX];
	int k;

	if (http != NULL)
		o = *http;
	o.http2 = 1;
	k = sse_http_response_fields(&o, f, SSE_HTTP_FIELDS_MAX);
	if (k < 0)
		return k;
	out[0] = nv(":status", "200");
	for (int i = 0; i < k; i++)
		out[i + 1] = nv(f[i].name, f[i].value);
	*n = (size_t)k + 1;
	return 0;
}

/* The query of a :path, without any fragment. */
static void path_query(const struct sse_h2_request *req, const char **q, size_t *qn)
{
	const char *p = req->path, *mark, *hash;
	size_t n = req->path_len;

	*q = NULL;
	*qn = 0;
	if (p == NULL || (mark = memchr(p, '?', n)) == NULL)
		return;
	hash = memchr(mark, '#', n - (size_t)(mark - p));
	*q = mark + 1;
	*qn = (size_t)((hash != NULL ? hash : p + n) - *q);
}

/* Subscribe from the request's resume point: into buf, or allocated when
 * longer than cap. */
static int subscribe(struct sse_h2_stream *st, const struct sse_h2_request *req, char *buf,
		     size_t cap)
{
	const char *q, *h = req != NULL ? req->last_event_id : NULL;
	size_t qn, hn = h != NULL ? req->last_event_id_len : 0, len = 0;
	char *id = buf;
	int rc = 0;

	if (req != NULL) {
		path_query(req, &q, &qn);
		rc = sse_http_resume_id(h, hn, q, qn, buf, cap, &len);
		if (rc == SSE_ERR_BUFFER) {
			id = mem_alloc(&st->alloc, len);
			if (id == NULL)
				return SSE_ERR_NOMEM;
			rc = sse_http_resume_id(h, hn, q, qn, id, len, &len);
		}
	}
	if (rc >= 0)
		rc = sse_hub_subscribe(st->hub, st->s, id, rc > 0 ? len : 0, NULL);
	if (id != buf)
		mem_free(&st->alloc, id, len);
	return rc;
}

static int stream_new(struct sse_h2_stream *st, const struct sse_h2_config *cfg, void *user)
{
	const struct sse_transport t = {.size = sizeof(t), .write = h2_write, .writev = h2_writev,
					.ctx = st, .flags = SSE_TRANSPORT_ASYNC};
	int rc = sse_stream_new(&st->s, &t, user, &st->alloc);

	if (rc == 0 && cfg->retry_ms != SSE_RETRY_NONE)
		rc = sse_stream_set_retry(st->s, cfg->retry_ms);
	return rc;
}

static int submit(struct sse_h2_stream *st, const nghttp2_nv *head, size_t n)
{
	h2_provider prd = {.source.ptr = st, .read_callback = h2_read};
	int rv = h2_submit_response(st->session, st->id, head, n, &prd);

	if (rv == 0)
		return 0;
	return rv == NGHTTP2_ERR_NOMEM ? SSE_ERR_NOMEM : SSE_ERR_INVALID;
}

static bool config_ok(const struct sse_h2_config *cfg)
{
	return cfg != NULL && cfg->size == sizeof(*cfg) && cfg->hub != NULL &&
	       cfg->send != NULL;
}

int sse_h2_respond(struct sse_h2_stream **out, nghttp2_session *session, int32_t stream_id,
		   const struct sse_h2_config *cfg, const struct sse_h2_request *req, void *user)
{
	nghttp2_nv head[SSE_HTTP_FIELDS_MAX + 1];
	char id[ID_STACK];
	size_t n = 0;
	struct sse_allocator a;
	struct sse_h2_stream *st;
	int rc;

	if (out == NULL || session == NULL || !config_ok(cfg) ||
	    sse_allocator_init(&a, cfg->alloc) != 0)
		return SSE_ERR_INVALID;
	rc = head_fields(cfg->http, head, &n);
	if (rc != 0)
		return rc;
	st = mem_alloc(&a, sizeof(*st));
	if (st == NULL)
		return SSE_ERR_NOMEM;
	*st = (struct sse_h2_stream){.session = session, .id = stream_id, .hub = cfg->hub,
				     .send = cfg->send, .wake = cfg->wake, .ctx = cfg->ctx,
				     .alloc = a, .responding = true};
	rc = stream_new(st, cfg, user);
	if (rc == 0)
		rc = subscribe(st, req, id, sizeof(id)); /* writes nothing: not asked yet */
	st->subscribed = rc == 0;
	if (rc == 0)
		rc = submit(st, head, n);
	if (rc != 0) {
		leave_hub(st);
		sse_stream_free(st->s);
		mem_free(&a, st, sizeof(*st));
		return rc;
	}
	*out = st;
	st->responding = false;
	if (st->wake_held)
		wake(st);
	return 0;
}
