/*
 * libsse-libuv: a hub driven by a libuv loop, and streams written to
 * libuv handles with uv_write pointing into libsse's own bytes.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types (pthread_rwlock_t) */

#include <limits.h>
#include <stdbool.h>

#include <sse.h>
#include <sse/libuv.h>

struct sse_uv_hub {
	struct sse_allocator alloc;
	uv_loop_t *loop;
	struct sse_hub *hub;
	struct sse_handoff *handoff; /* NULL until sse_uv_hub_set_handoff() */
	uv_timer_t timer;            /* the hub's next deadline */
	uv_prepare_t before_poll;    /* flush and re-arm before the loop sleeps */
	uv_check_t after_io;         /* flush after the turn's I/O callbacks */
	uv_async_t wake;             /* sse_uv_hub_push() from other threads */
	uint64_t armed_at;           /* the timer's deadline, when timer_armed */
	bool timer_armed, closing;
	unsigned refs;               /* open handles and live connections */
	struct sse_uv_conn *conns;   /* a list, for sse_uv_hub_close() */
	char scratch[16384];         /* input nobody needs is read into this */
};

struct sse_uv_conn {
	struct sse_uv_hub *d;
	uv_stream_t *handle;
	void *handle_data; /* the application's handle->data, given back at close */
	struct sse_stream *s;
	sse_uv_closed_fn on_closed;
	void *data;
	size_t high, low;
	int err; /* for on_closed */
	bool closing;
	struct sse_uv_conn *prev, *next;
};

/* One uv_write: its bytes belong to libsse until the callback completes them. */
struct write_req {
	uv_write_t req;
	struct sse_uv_conn *c;
	size_t len;
};

/* ---- memory: the caller's allocator, or libc */

static void *mem_alloc(const struct sse_uv_hub *d, size_t size)
{
	return d->alloc.alloc_fn(size, d->alloc.ctx);
}

static void mem_free(const struct sse_uv_hub *d, void *p, size_t size)
{
	d->alloc.free_fn(p, size, d->alloc.ctx);
}

/* ---- the driver */

/* A handle closed or a connection freed: the driver goes with the last. */
static void hub_release(struct sse_uv_hub *d)
{
	if (--d->refs == 0 && d->closing)
		mem_free(d, d, sizeof(*d));
}

static void on_hub_handle_closed(uv_handle_t *h)
{
	hub_release(h->data);
}

static void on_timer(uv_timer_t *t);

/* Heartbeats, stalls and expiry that are due; then sleep until the next
 * deadline. Deadlines move with every write and subscription, so this
 * runs each turn (a heap peek), and the timer moves only when they do. */
static void tick(struct sse_uv_hub *d)
{
	uint64_t now = uv_now(d->loop), next = SSE_NO_DEADLINE;

	(void)sse_hub_tick(d->hub, now, &next);
	if (d->timer_armed && next == d->armed_at)
		return;
	d->timer_armed = next != SSE_NO_DEADLINE;
	d->armed_at = next;
	if (!d->timer_armed)
		uv_timer_stop(&d->timer);
	else
		uv_timer_start(&d->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct sse_uv_hub *d = t->data;

	d->timer_armed = false;
	tick(d);
}

/* Publish what other threads queued, a handoff's worth at a time with a
 * fan-out after each, so the ring never takes more between two flushes
 * than the handoff holds. An event the hub can never take is dropped by
 * the handoff and the drain goes on; one it cannot take yet (pinned
 * frames, memory) stays queued for the end of a later turn. Producers
 * that keep up with the drain do not hold the loop: after a few rounds
 * the rest waits for the next turn, woken by ourselves. */
static void drain(struct sse_uv_hub *d)
{
	for (int round = 0; round < 4; round++) {
		int rc = sse_handoff_drain(d->handoff, d->hub, uv_now(d->loop), 0, NULL);

		(void)sse_hub_flush(d->hub);
		if (rc == 0 || rc == SSE_ERR_PINNED || rc == SSE_ERR_NOMEM)
			return;
	}
	(void)uv_async_send(&d->wake);
}

static void on_wake(uv_async_t *a)
{
	drain(a->data);
}

/* Before the loop polls: one fan-out for what timers, idle handles and
 * pending callbacks published, then arm the timer the poll waits for. */
static void on_before_poll(uv_prepare_t *p)
{
	struct sse_uv_hub *d = p->data;

	(void)sse_hub_flush(d->hub);
	tick(d);
}

/* After the I/O callbacks: one fan-out for what they published (O(1)
 * when nothing was), and another try at what the handoff held back. */
static void on_after_io(uv_check_t *c)
{
	struct sse_uv_hub *d = c->data;

	if (d->handoff != NULL && sse_handoff_count(d->handoff) > 0)
		drain(d);
	(void)sse_hub_flush(d->hub);
}

/* Each handle's data is the driver; none keeps the loop alive. */
static int hub_handles(struct sse_uv_hub *d)
{
	int rc = uv_timer_init(d->loop, &d->timer);

	if (rc != 0)
		return rc;
	d->refs++;
	rc = uv_prepare_init(d->loop, &d->before_poll);
	if (rc != 0)
		return rc;
	d->refs++;
	rc = uv_check_init(d->loop, &d->after_io);
	if (rc != 0)
		return rc;
	d->refs++;
	d->timer.data = d->before_poll.data = d->after_io.data = d;
	uv_unref((uv_handle_t *)&d->timer);
	uv_unref((uv_handle_t *)&d->before_poll);
	uv_unref((uv_handle_t *)&d->after_io);
	rc = uv_prepare_start(&d->before_poll, on_before_poll);
	return rc != 0 ? rc : uv_check_start(&d->after_io, on_after_io);
}

static void close_hub_handle(struct sse_uv_hub *d, uv_handle_t *h)
{
	h->data = d;
	uv_close(h, on_hub_handle_closed);
}

/* The handles that were opened (refs counts them, in hub_handles() order). */
static void close_hub_handles(struct sse_uv_hub *d, unsigned opened)
{
	uv_handle_t *handles[] = {(uv_handle_t *)&d->timer, (uv_handle_t *)&d->before_poll,
				  (uv_handle_t *)&d->after_io, (uv_handle_t *)&d->wake};

	for (unsigned i = 0; i < opened; i++)
		close_hub_handle(d, handles[i]);
}

int sse_uv_hub_new(struct sse_uv_hub **out, uv_loop_t *loop, struct sse_hub *hub,
		   const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_uv_hub *d;

	if (out == NULL || loop == NULL || hub == NULL || sse_allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	d = a.alloc_fn(sizeof(*d), a.ctx);
	if (d == NULL)
		return SSE_ERR_NOMEM;
	*d = (struct sse_uv_hub){.alloc = a, .loop = loop, .hub = hub};
	/* The hub's clock starts now, not at 0: a stream subscribed before
	 * the loop first turns is idle from now on. */
	(void)sse_hub_tick(hub, uv_now(loop), NULL);
	if (hub_handles(d) != 0) {
		unsigned opened = d->refs;

		/* Freed by the last close callback; none: now. */
		d->closing = true;
		if (opened == 0)
			mem_free(d, d, sizeof(*d));
		else
			close_hub_handles(d, opened);
		return SSE_ERR_IO;
	}
	*out = d;
	return 0;
}

void sse_uv_hub_close(struct sse_uv_hub *d)
{
	if (d == NULL || d->closing)
		return;
	/* Held, so that connections freed meanwhile cannot free d. */
	d->refs++;
	for (struct sse_uv_conn *c = d->conns; c != NULL; c = c->next)
		sse_uv_conn_close(c, 0);
	d->closing = true;
	close_hub_handles(d, d->handoff != NULL ? 4 : 3);
	hub_release(d);
}

uint64_t sse_uv_hub_now(const struct sse_uv_hub *d)
{
	return uv_now(d->loop);
}

int sse_uv_hub_publish(struct sse_uv_hub *d, const struct sse_event *ev, uint64_t *seq)
{
	if (d == NULL || d->closing)
		return SSE_ERR_INVALID;
	return sse_hub_publish(d->hub, ev, uv_now(d->loop), seq);
}

int sse_uv_hub_set_handoff(struct sse_uv_hub *d, struct sse_handoff *q)
{
	if (d == NULL || q == NULL || d->closing || d->handoff != NULL)
		return SSE_ERR_INVALID;
	if (uv_async_init(d->loop, &d->wake, on_wake) != 0)
		return SSE_ERR_IO;
	d->refs++;
	d->wake.data = d;
	uv_unref((uv_handle_t *)&d->wake);
	d->handoff = q;
	return 0;
}

int sse_uv_hub_push(struct sse_uv_hub *d, const struct sse_event *ev)
{
	int wake = 0, rc;

	if (d == NULL || ev == NULL || d->handoff == NULL)
		return SSE_ERR_INVALID;
	rc = sse_handoff_push(d->handoff, ev, &wake);
	if (rc == 0 && wake && uv_async_send(&d->wake) != 0)
		return SSE_ERR_IO;
	return rc;
}

void sse_uv_drop(struct sse_stream *s, int err, void *user)
{
	(void)user;
	sse_uv_conn_close(sse_uv_conn_of(s), err);
}

/* ---- a connection's transport */

/* libuv is done with these bytes (sent, or cancelled by uv_close): give
 * them back to libsse, in order, then hand out what is owed meanwhile
 * once libuv's queue has drained enough. */
static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct sse_uv_conn *c = w->c;
	int rc;

	(void)sse_stream_complete(c->s, w->len);
	mem_free(c->d, w, sizeof(*w));
	if (c->closing)
		return; /* the close callback frees the stream */
	if (status < 0) {
		sse_uv_conn_close(c, SSE_ERR_IO); /* the peer is gone */
		return;
	}
	if (uv_stream_get_write_queue_size(c->handle) > c->low)
		return;
	/* A subscriber that fails is dropped by the hub (on_drop closes it);
	 * a stream of no hub is ours to close. */
	rc = sse_hub_writable(c->d->hub, c->s);
	if (rc == SSE_ERR_INVALID) {
		rc = sse_stream_flush(c->s);
		if (rc != 0 && rc != SSE_ERR_WOULDBLOCK)
			sse_uv_conn_close(c, rc);
	}
}

/* Take the pieces, up to what keeps libuv's queue under the high mark
 * (the last one possibly in part), in one uv_write that points at them. */
static int on_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct sse_uv_conn *c = ctx;
	uv_buf_t bufs[SSE_IOV_MAX];
	size_t queued = uv_stream_get_write_queue_size(c->handle);
	size_t room, len = 0, k;
	struct write_req *w;

	if (c->closing)
		return SSE_ERR_IO;
	if (queued >= c->high)
		return SSE_ERR_WOULDBLOCK; /* until on_written() finds room */
	room = c->high - queued;
	for (k = 0; k < n && k < SSE_IOV_MAX && len < room; k++) {
		size_t part = iov[k].len < room - len ? iov[k].len : room - len;

		bufs[k] = uv_buf_init((char *)iov[k].base, (unsigned)part);
		len += part;
	}
	w = mem_alloc(c->d, sizeof(*w));
	if (w == NULL)
		return SSE_ERR_NOMEM;
	*w = (struct write_req){.c = c, .len = len};
	if (uv_write(&w->req, c->handle, bufs, (unsigned)k, on_written) != 0) {
		mem_free(c->d, w, sizeof(*w));
		return SSE_ERR_IO;
	}
	*taken = len;
	return 0;
}

static int on_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	const struct sse_iovec one = {buf, len};

	return on_writev(&one, 1, taken, ctx);
}

/* ---- a connection's input and its end */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct sse_uv_conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->d->scratch, sizeof(c->d->scratch));
}

/* Input is dropped; its end (EOF) or an error means the peer left. */
static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	if (nread < 0)
		sse_uv_conn_close(h->data, SSE_ERR_IO);
}

/* libuv ran every write callback of the handle (UV_ECANCELED for those
 * cut short) before this one: the stream holds nothing any more. */
static void on_conn_closed(uv_handle_t *h)
{
	struct sse_uv_conn *c = h->data;
	struct sse_uv_hub *d = c->d;
	sse_uv_closed_fn on_closed = c->on_closed;
	void *data = c->data;
	int err = c->err;

	h->data = c->handle_data;
	sse_stream_free(c->s);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	mem_free(d, c, sizeof(*c));
	on_closed((uv_stream_t *)h, err, data);
	hub_release(d);
}

void sse_uv_conn_close(struct sse_uv_conn *c, int err)
{
	if (c == NULL || c->closing)
		return;
	c->closing = true;
	c->err = err;
	sse_hub_unsubscribe(c->d->hub, c->s); /* one the hub dropped: nothing */
	uv_close((uv_handle_t *)c->handle, on_conn_closed);
}

/* ---- attaching */

static int conn_stream(struct sse_uv_conn *c)
{
	const struct sse_transport t = {.size = sizeof(t), .write = on_write, .writev = on_writev,
					.ctx = c, .flags = SSE_TRANSPORT_ASYNC};

	return sse_stream_new(&c->s, &t, c, &c->d->alloc);
}

/* Reading is how a vanished peer shows up between writes. A handle that
 * cannot be read (a write-only pipe or TTY) shows it at its next write. */
static void conn_take_handle(struct sse_uv_conn *c, uv_stream_t *handle)
{
	c->handle = handle;
	c->handle_data = handle->data;
	handle->data = c;
	if (handle->type == UV_TCP)
		(void)uv_tcp_nodelay((uv_tcp_t *)handle, 1);
	(void)uv_read_stop(handle);
	(void)uv_read_start(handle, on_alloc, on_read);
}

int sse_uv_conn_new(struct sse_uv_conn **out, struct sse_uv_hub *d, uv_stream_t *handle,
		    sse_uv_closed_fn on_closed, void *data)
{
	struct sse_uv_conn *c;
	int rc;

	if (out == NULL || d == NULL || handle == NULL || on_closed == NULL || d->closing ||
	    handle->loop != d->loop || uv_is_closing((uv_handle_t *)handle))
		return SSE_ERR_INVALID;
	c = mem_alloc(d, sizeof(*c));
	if (c == NULL)
		return SSE_ERR_NOMEM;
	*c = (struct sse_uv_conn){.d = d, .on_closed = on_closed, .data = data,
				  .high = SSE_UV_DEFAULT_HIGH_WATER,
				  .low = SSE_UV_DEFAULT_LOW_WATER, .next = d->conns};
	rc = conn_stream(c);
	if (rc != 0) {
		mem_free(d, c, sizeof(*c));
		return rc;
	}
	conn_take_handle(c, handle);
	if (d->conns != NULL)
		d->conns->prev = c;
	d->conns = c;
	d->refs++;
	*out = c;
	return 0;
}

/* The head, queued in the stream ahead of all else (one copy, of the
 * head's few bytes); a long CORS origin gets a buffer of its own. */
static int send_head(struct sse_uv_conn *c, const struct sse_http_options *o)
{
	char small[256], *buf = small;
	size_t len = 0;
	int rc = sse_http_response_head(o, small, sizeof(small), &len);

	if (rc == SSE_ERR_BUFFER) {
		buf = mem_alloc(c->d, len);
		if (buf == NULL)
			return SSE_ERR_NOMEM;
		rc = sse_http_response_head(o, buf, len, &len);
	}
	if (rc == 0)
		rc = sse_stream_send_raw(c->s, buf, len);
	if (buf != small)
		mem_free(c->d, buf, len);
	return rc;
}

int sse_uv_conn_subscribe(struct sse_uv_conn *c, const struct sse_http_options *o,
			  const char *last_id, size_t len, int *status)
{
	int rc;

	if (c == NULL || c->closing || (o != NULL && o->chunked))
		return SSE_ERR_INVALID;
	rc = send_head(c, o);
	/* The hub's clock is the last tick's, from before the loop slept: a
	 * stream started on it would owe a heartbeat at once and count the
	 * sleep against its stall time. */
	uv_update_time(c->d->loop);
	(void)sse_hub_tick(c->d->hub, uv_now(c->d->loop), NULL);
	if (rc == 0)
		rc = sse_hub_subscribe(c->d->hub, c->s, last_id, len, status);
	return rc;
}

int sse_uv_conn_set_water(struct sse_uv_conn *c, size_t high, size_t low)
{
	if (c == NULL || high == 0 || high > UINT_MAX || low >= high)
		return SSE_ERR_INVALID;
	c->high = high;
	c->low = low;
	return 0;
}

struct sse_stream *sse_uv_conn_stream(const struct sse_uv_conn *c)
{
	return c != NULL ? c->s : NULL;
}

struct sse_uv_conn *sse_uv_conn_of(const struct sse_stream *s)
{
	return sse_stream_user(s);
}

void *sse_uv_conn_data(const struct sse_uv_conn *c)
{
	return c != NULL ? c->data : NULL;
}
