/*
 * The delivery contract (shared/DESIGN.md): what holds whatever the
 * transport does. A transport has its own context; a pull transport reads
 * what a push one is written; a buffered transport that takes a loop
 * turn's bytes and nothing more, or a pull transport read in small
 * pieces, never gets a healthy subscriber dropped; a stalled one is;
 * ids are restart-safe; the hub's flush skips the subscribers owed
 * nothing; every subscriber can be reached at shutdown.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

/* ---- helpers */

static struct sse_event data_event(const char *data, size_t len)
{
	return (struct sse_event){.data = data, .data_len = len, .retry = SSE_RETRY_NONE};
}

/* The events a client parsed from the bytes it got: their ids and data. */
struct seen {
	int n;
	char ids[256][24];
	size_t data_len[256];
	unsigned long data_sum[256]; /* a cheap fingerprint of the data */
	char last_type[32];
};

static int on_message(const struct sse_message *m, void *user)
{
	struct seen *s = user;
	unsigned long sum = 0;

	ck_assert_int_lt(s->n, 256);
	ck_assert_uint_lt(m->last_id_len, sizeof(s->ids[0]));
	memcpy(s->ids[s->n], m->last_id, m->last_id_len + 1);
	for (size_t i = 0; i < m->data_len; i++)
		sum = sum * 31 + (unsigned char)m->data[i];
	s->data_len[s->n] = m->data_len;
	s->data_sum[s->n] = sum;
	snprintf(s->last_type, sizeof(s->last_type), "%.*s", (int)m->type_len, m->type);
	s->n++;
	return 0;
}

static void parse_all(const char *buf, size_t len, struct seen *seen)
{
	struct sse_parser_callbacks cb = {.on_message = on_message};
	struct sse_parser *p;

	memset(seen, 0, sizeof(*seen));
	ck_assert_int_eq(sse_parser_new(&p, &cb, seen, NULL), 0);
	ck_assert_int_eq(sse_parser_set_limit(p, 16u << 20), 0);
	ck_assert_int_eq(sse_parser_feed(p, buf, len), 0);
	ck_assert_int_eq(sse_parser_end(p), 0);
	sse_parser_free(p);
}

static unsigned long fingerprint(const char *data, size_t len)
{
	unsigned long sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = sum * 31 + (unsigned char)data[i];
	return sum;
}

/* ---- hub plumbing */

static int drops, last_drop_err;
static struct sse_stream *last_dropped;
/* An asynchronous transport whose held writes a drop cancels (as closing
 * a libuv handle does); NULL: none. */
struct async_io;
static struct async_io *cancel_on_drop;
static void async_complete(struct async_io *io);

static void on_drop(struct sse_stream *s, int err, void *user)
{
	(void)user;
	drops++;
	last_drop_err = err;
	last_dropped = s;
	if (cancel_on_drop != NULL)
		async_complete(cancel_on_drop);
}

static struct sse_hub *new_hub(size_t events, size_t bytes, const char *epoch, uint64_t stall_ms)
{
	static const struct sse_event reset = {.type = "sse-reset", .type_len = 9, .data = "",
					       .retry = SSE_RETRY_NONE};
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = events,
					      .max_bytes = bytes, .epoch = epoch, .reset_event = &reset},
				     .stall_ms = stall_ms,
				     .no_heartbeat = 1};
	struct sse_hub *h = NULL;

	drops = last_drop_err = 0;
	last_dropped = NULL;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	return h;
}

/* ---- the transport's own context */

struct conn {
	int id;
	struct test_writer *out; /* not the first member: the context is not the user */
};

static int conn_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	return test_writer_write(buf, len, taken, ctx);
}

START_TEST(test_contract_callbacks_get_the_transport_context)
{
	struct test_writer wa, wb;
	struct conn a = {1, &wa}, b = {2, &wb};
	struct sse_transport ta = {.size = sizeof(ta), .write = conn_write, .ctx = &wa};
	struct sse_transport tb = {.size = sizeof(tb), .write = conn_write, .ctx = &wb};
	struct sse_stream *sa, *sb;
	struct sse_event ev = data_event("to a", 4);

	test_writer_init(&wa);
	test_writer_init(&wb);
	ck_assert_int_eq(sse_stream_new(&sa, &ta, &a, NULL), 0);
	ck_assert_int_eq(sse_stream_new(&sb, &tb, &b, NULL), 0);
	ck_assert_ptr_eq(sse_stream_user(sa), &a);
	ck_assert_int_eq(sse_stream_send(sa, &ev), 0);
	ev = data_event("to b", 4);
	ck_assert_int_eq(sse_stream_send(sb, &ev), 0);
	ck_assert_uint_eq(wa.len, strlen("data: to a\n\n"));
	ck_assert_mem_eq(wa.buf, "data: to a\n\n", wa.len);
	ck_assert_uint_eq(wb.len, strlen("data: to b\n\n"));
	ck_assert_mem_eq(wb.buf, "data: to b\n\n", wb.len);
	sse_stream_free(sa);
	sse_stream_free(sb);
	test_writer_fini(&wa);
	test_writer_fini(&wb);
}
END_TEST

START_TEST(test_contract_transport_size_is_checked)
{
	struct test_writer w;
	struct sse_transport t;
	struct sse_stream *s = NULL;

	test_writer_init(&w);
	t = test_writer_transport(&w, false);
	t.size = sizeof(t) + 8; /* a newer caller: fields we cannot know */
	ck_assert_int_eq(sse_stream_new(&s, &t, NULL, NULL), SSE_ERR_INVALID);
	t.size = sizeof(size_t); /* not even the callbacks */
	ck_assert_int_eq(sse_stream_new(&s, &t, NULL, NULL), SSE_ERR_INVALID);
	t = (struct sse_transport){.size = sizeof(t)}; /* pull without wake */
	ck_assert_int_eq(sse_stream_new(&s, &t, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_ptr_null(s);
	test_writer_fini(&w);
}
END_TEST

/* A transport with writev only: every call goes through it, even for
 * one piece. */
static int writev_only(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct test_writer *w = ctx;

	return test_writer_writev(iov, n, taken, w);
}

START_TEST(test_contract_writev_alone_is_a_push_transport)
{
	struct test_writer w;
	struct sse_transport t = {.size = sizeof(t), .writev = writev_only, .ctx = &w};
	struct sse_stream *s;
	struct sse_event ev = data_event("one", 3);

	test_writer_init(&w);
	ck_assert_int_eq(sse_stream_new(&s, &t, NULL, NULL), 0);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(sse_stream_comment(s, "c", 1), 0);
	ck_assert_uint_eq(w.len, strlen("data: one\n\n: c\n"));
	ck_assert_mem_eq(w.buf, "data: one\n\n: c\n", w.len);
	ck_assert_int_eq(w.writev_calls, 2);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

/* ---- pull transports */

struct puller {
	struct sse_stream *s;
	int wakes;
	char *got;
	size_t len, cap;
};

static void on_wake(struct sse_stream *s, void *ctx)
{
	struct puller *p = ctx;

	ck_assert_ptr_eq(s, p->s);
	p->wakes++;
}

static struct sse_stream *new_pull_stream(struct puller *p)
{
	struct sse_transport t = {.size = sizeof(t), .wake = on_wake, .ctx = p};

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(sse_stream_new(&p->s, &t, p, NULL), 0);
	return p->s;
}

/* One read of up to chunk bytes into the puller's buffer. */
static int pull_some(struct puller *p, size_t chunk)
{
	size_t n = 0;
	int rc;

	if (p->len + chunk > p->cap) {
		p->cap = (p->len + chunk) * 2;
		p->got = realloc(p->got, p->cap);
		ck_assert_ptr_nonnull(p->got);
	}
	rc = sse_stream_read(p->s, p->got + p->len, chunk, &n);
	p->len += n;
	ck_assert(rc == 0 ? n > 0 : n == 0);
	return rc;
}

START_TEST(test_contract_pull_reads_what_push_would_write)
{
	struct puller p;
	struct sse_stream *s = new_pull_stream(&p);
	struct sse_event ev = data_event("a\nb", 3);
	char small[4];
	size_t n = 99;

	ck_assert_int_eq(sse_stream_read(s, small, sizeof(small), &n), SSE_ERR_WOULDBLOCK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(p.wakes, 0);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(p.wakes, 1); /* owing nothing -> owing something */
	ck_assert_int_eq(sse_stream_comment(s, "x", 1), 0);
	ck_assert_int_eq(p.wakes, 1); /* once until a read finds nothing */
	while (pull_some(&p, 3) == 0)
		;
	ck_assert_uint_eq(p.len, strlen("data: a\ndata: b\n\n: x\n"));
	ck_assert_mem_eq(p.got, "data: a\ndata: b\n\n: x\n", p.len);
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(p.wakes, 2);
	ck_assert_int_eq(sse_stream_read(s, NULL, 1, &n), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_stream_read(s, small, 0, &n), SSE_ERR_INVALID);
	sse_stream_free(s);
	free(p.got);
}
END_TEST

START_TEST(test_contract_pull_subscriber_of_a_hub)
{
	/* Like libmicrohttpd's content reader: woken once per batch, read in
	 * 1 KiB pieces, suspended when a read finds nothing; a 64 KiB event
	 * and a burst of 30 x 30 KB events arrive whole, nobody is dropped. */
	struct sse_hub *h = new_hub(64, 4u << 20, "", 0);
	struct puller p;
	struct sse_stream *s = new_pull_stream(&p);
	char *big = malloc(64 * 1024);
	struct seen *seen = malloc(sizeof(*seen));
	int wakes;

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(seen);
	memset(big, 'x', 64 * 1024);
	ck_assert_int_eq(sse_hub_subscribe(h, s, NULL, 0, NULL), 0);
	ck_assert_int_eq(p.wakes, 1); /* the opening bytes */
	while (pull_some(&p, 1024) == 0)
		;
	for (int k = 0; k < 31; k++) {
		struct sse_event ev = data_event(big, k == 0 ? 64 * 1024 : 30000);

		ck_assert_int_eq(sse_hub_publish(h, &ev, 0, NULL), 0);
	}
	wakes = p.wakes;
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(p.wakes, wakes + 1);
	ck_assert_int_eq(sse_hub_flush(h), 0); /* nothing new: no second wake */
	ck_assert_int_eq(p.wakes, wakes + 1);
	for (int turn = 0; pull_some(&p, 1024) == 0; turn++) {
		ck_assert_int_lt(turn, 2000);
		ck_assert_int_eq(sse_hub_flush(h), 0);
	}
	ck_assert_int_eq(drops, 0);
	parse_all(p.got, p.len, seen);
	ck_assert_int_eq(seen->n, 31);
	for (int k = 0; k < 31; k++) {
		size_t len = k == 0 ? 64 * 1024 : 30000;
		char id[8];

		snprintf(id, sizeof(id), "%d", k + 1);
		ck_assert_str_eq(seen->ids[k], id);
		ck_assert_uint_eq(seen->data_len[k], len);
		ck_assert_uint_eq(seen->data_sum[k], fingerprint(big, len));
	}
	/* caught up: the next publish wakes it again */
	ck_assert_int_eq(sse_hub_publish(h, &(struct sse_event){.data = "y", .data_len = 1,
								.retry = SSE_RETRY_NONE}, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(p.wakes, wakes + 2);
	sse_hub_free(h);
	sse_stream_free(s);
	free(p.got);
	free(big);
	free(seen);
}
END_TEST

/* ---- a buffered transport: takes one loop turn's worth, then would block */

struct bucket {
	struct test_writer w;
	size_t room; /* what it takes until the loop drains it */
};

static int bucket_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct bucket *b = ctx;
	size_t before = b->w.len;
	int rc;

	if (b->room == 0)
		return SSE_ERR_WOULDBLOCK;
	b->w.max_per_call = b->room;
	rc = test_writer_writev(iov, n, taken, &b->w);
	b->room -= b->w.len - before;
	return rc;
}

static int bucket_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	struct sse_iovec one = {buf, len};

	return bucket_writev(&one, 1, taken, ctx);
}

START_TEST(test_contract_buffered_transport_keeps_healthy_subscribers)
{
	/* Like an evbuffer drained 16 KiB per loop turn: a 64 KiB event and
	 * a burst of 30 x 30 KB events in one turn owe far more than any
	 * per-subscriber bound, but the bytes flow, so nobody is dropped. */
	struct sse_hub *h = new_hub(64, 4u << 20, "", 1000);
	struct bucket b = {.room = 16 * 1024};
	struct sse_transport t = {.size = sizeof(t), .write = bucket_write,
				  .writev = bucket_writev, .ctx = &b};
	struct sse_stream *s;
	char *big = malloc(64 * 1024);
	struct seen *seen = malloc(sizeof(*seen));
	uint64_t now = 0;
	int turns = 0;

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(seen);
	memset(big, 'z', 64 * 1024);
	test_writer_init(&b.w);
	ck_assert_int_eq(sse_stream_new(&s, &t, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_subscribe(h, s, NULL, 0, NULL), 0);
	for (int k = 0; k < 31; k++) {
		struct sse_event ev = data_event(big, k == 0 ? 64 * 1024 : 30000);

		ck_assert_int_eq(sse_hub_publish(h, &ev, now, NULL), 0);
	}
	ck_assert_int_eq(sse_hub_flush(h), 0);
	/* each loop turn: 10 ms pass, the buffer drains, writable again */
	while (sse_stream_pending(s) > 0) {
		ck_assert_int_lt(++turns, 1000);
		now += 10;
		ck_assert_int_eq(sse_hub_tick(h, now, NULL), 0);
		b.room = 16 * 1024;
		sse_hub_writable(h, s);
		ck_assert_int_eq(drops, 0);
	}
	ck_assert_int_gt(turns, 50); /* it really was throttled */
	parse_all(b.w.buf, b.w.len, seen);
	ck_assert_int_eq(seen->n, 31);
	ck_assert_uint_eq(seen->data_len[0], 64 * 1024);
	ck_assert_uint_eq(seen->data_sum[30], fingerprint(big, 30000));
	/* now it stops reading: dropped for its stall, not its debt */
	b.room = 0;
	ck_assert_int_eq(sse_hub_publish(h, &(struct sse_event){.data = "q", .data_len = 1,
								.retry = SSE_RETRY_NONE}, now, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(sse_hub_tick(h, now + 999, NULL), 0);
	ck_assert_int_eq(drops, 0);
	ck_assert_int_eq(sse_hub_tick(h, now + 1000, NULL), 0);
	ck_assert_int_eq(drops, 1);
	ck_assert_int_eq(last_drop_err, SSE_ERR_STALLED);
	ck_assert_uint_eq(sse_stream_pending(s), 0); /* failed: owes nothing */
	sse_stream_free(s);
	sse_hub_free(h);
	test_writer_fini(&b.w);
	free(big);
	free(seen);
}
END_TEST

START_TEST(test_contract_stall_is_judged_by_offering_bytes)
{
	/* The transport refused once and the loop never said "writable"
	 * again (as epoll does not until a third of a socket buffer is
	 * free): at the stall deadline the stream offers its bytes, and a
	 * transport that takes them is not stalled. One that still takes
	 * nothing is. */
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = data_event("slow", 4);
	uint64_t next;

	test_writer_init(&w);
	s = test_stream_new(&w, false, NULL);
	ck_assert_int_eq(sse_stream_set_heartbeat(s, 0, 0), 0);
	ck_assert_int_eq(sse_stream_set_stall(s, 100), 0);
	ck_assert_int_eq(sse_stream_tick(s, 0, &next), 0);
	w.wouldblock_left = 1;
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_uint_eq(w.len, 0);
	ck_assert_int_eq(sse_stream_tick(s, 50, &next), 0);
	ck_assert_uint_eq(next, 100);
	ck_assert_int_eq(sse_stream_tick(s, 100, &next), 0); /* it takes them now */
	ck_assert_uint_eq(w.len, strlen("data: slow\n\n"));
	ck_assert_uint_eq(next, SSE_NO_DEADLINE);
	w.wouldblock_left = 1 << 30;
	ck_assert_int_eq(sse_stream_send(s, &ev), 0);
	ck_assert_int_eq(sse_stream_tick(s, 199, &next), 0);
	ck_assert_int_eq(sse_stream_tick(s, 200, &next), SSE_ERR_STALLED);
	ck_assert_int_eq(sse_stream_error(s), SSE_ERR_STALLED);
	sse_stream_free(s);
	test_writer_fini(&w);
}
END_TEST

START_TEST(test_contract_stall_clock_starts_on_the_hubs_clock)
{
	/* The response head was refused before the stream joined the hub,
	 * whose clock is far ahead of the stream's own: the stall period
	 * starts when it joins, not at the stream's time 0. */
	struct sse_hub *h = new_hub(16, 4096, "", 30000);
	struct test_writer w;
	struct sse_stream *s;

	test_writer_init(&w);
	s = test_stream_new(&w, false, NULL);
	w.wouldblock_left = 1 << 30;
	ck_assert_int_eq(sse_stream_send_raw(s, "HTTP/1.1 200 OK\r\n\r\n", 19), 0);
	ck_assert_int_eq(sse_hub_tick(h, 1000000, NULL), 0);
	ck_assert_int_eq(sse_hub_subscribe(h, s, NULL, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_tick(h, 1000001, NULL), 0);
	ck_assert_int_eq(drops, 0);
	ck_assert_int_eq(sse_hub_tick(h, 1000000 + 29999, NULL), 0);
	ck_assert_int_eq(drops, 0);
	ck_assert_int_eq(sse_hub_tick(h, 1000000 + 30000, NULL), 0);
	ck_assert_int_eq(drops, 1);
	ck_assert_int_eq(last_drop_err, SSE_ERR_STALLED);
	sse_stream_free(s);
	sse_hub_free(h);
	test_writer_fini(&w);
}
END_TEST

/* ---- pending after eviction */

START_TEST(test_contract_pending_of_an_evicted_follower_is_zero)
{
	/* The follower is in the middle of frame 1 when the ring drops it:
	 * it owes nothing it can send (not 2^64 - 5), and fails with GAP. */
	struct sse_replay_config cfg = {.size = sizeof(cfg), .max_events = 2, .max_bytes = 4096,
					.epoch = ""};
	struct sse_replay *r;
	struct test_writer w;
	struct sse_stream *s;
	struct sse_event ev = data_event("0123456789", 10);

	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), 0);
	test_writer_init(&w);
	s = test_stream_new(&w, false, NULL);
	ck_assert_int_eq(sse_stream_follow(s, r, 1), 0);
	ck_assert_int_eq(sse_replay_publish(r, &ev, 0, NULL), 0);
	w.max_per_call = 5;
	w.accept_calls = 1;
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_WOULDBLOCK);
	ck_assert_uint_eq(sse_stream_pending(s), 24 - 5);
	ck_assert_int_eq(sse_replay_publish(r, &ev, 0, NULL), 0);
	ck_assert_int_eq(sse_replay_publish(r, &ev, 0, NULL), 0); /* frame 1 is gone */
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_int_eq(sse_stream_flush(s), SSE_ERR_GAP);
	ck_assert_uint_eq(sse_stream_pending(s), 0);
	ck_assert_uint_eq(sse_stream_cursor(s), 0);
	sse_stream_free(s);
	sse_replay_free(r);
	test_writer_fini(&w);
}
END_TEST

/* ---- restart-safe ids */

START_TEST(test_contract_id_of_an_earlier_instance_gets_the_reset)
{
	/* Two hubs with no epoch given stand for two runs of one server: a
	 * client holding id 2 of the first must not resume silently in the
	 * second, which has published 3 events of its own. */
	struct sse_hub *first = new_hub(16, 4096, NULL, 0), *second;
	struct sse_event ev = data_event("e", 1);
	struct test_writer w;
	struct sse_stream *s;
	struct seen seen;
	char held[32];
	const char *id;
	size_t len = 0;
	int status = -1;

	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(sse_hub_publish(first, &ev, 0, NULL), 0);
	id = sse_replay_newest_id(sse_hub_ring(first), &len);
	ck_assert_uint_lt(len, sizeof(held));
	memcpy(held, id, len);
	held[len] = '\0';
	ck_assert_uint_eq(len, 8 + 1 + 1);
	ck_assert_int_eq(held[8], '-');
	ck_assert_int_eq(held[9], '2');
	second = new_hub(16, 4096, NULL, 0);
	ck_assert_str_ne(sse_replay_epoch(sse_hub_ring(first)), sse_replay_epoch(sse_hub_ring(second)));
	for (int k = 0; k < 3; k++)
		ck_assert_int_eq(sse_hub_publish(second, &ev, 0, NULL), 0);
	test_writer_init(&w);
	s = test_stream_new(&w, true, NULL);
	ck_assert_int_eq(sse_hub_subscribe(second, s, held, len, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_UNKNOWN);
	parse_all(w.buf, w.len, &seen);
	ck_assert_int_eq(seen.n, 1); /* the reset, and none of the 3 events */
	ck_assert_str_eq(seen.last_type, "sse-reset");
	id = sse_replay_newest_id(sse_hub_ring(second), &len);
	ck_assert_uint_eq(strlen(seen.ids[0]), len);
	ck_assert_mem_eq(seen.ids[0], id, len);
	sse_stream_free(s);
	sse_hub_free(first);
	sse_hub_free(second);
	test_writer_fini(&w);
}
END_TEST

/* ---- the hub's costs and duties */

START_TEST(test_contract_flush_skips_subscribers_owed_nothing)
{
	enum { N = 20 };
	struct sse_hub *h = new_hub(16, 4096, "", 0);
	struct test_writer w[N];
	struct sse_stream *s[N];
	struct sse_event ev = data_event("e", 1);
	int calls = 0, after;

	for (int i = 0; i < N; i++) {
		test_writer_init(&w[i]);
		s[i] = test_stream_new(&w[i], true, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, s[i], NULL, 0, NULL), 0);
	}
	w[0].accept_calls = 0; /* waits on its transport */
	ck_assert_int_eq(sse_hub_publish(h, &ev, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	for (int i = 0; i < N; i++)
		calls += w[i].calls;
	for (int k = 0; k < 5; k++) /* nothing new: no transport call at all */
		ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(sse_hub_publish(h, &ev, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	after = 0;
	for (int i = 0; i < N; i++)
		after += w[i].calls;
	/* one call per caught-up subscriber; the waiting one is not tried */
	ck_assert_int_eq(after, calls + (N - 1));
	w[0].accept_calls = -1;
	ck_assert_int_eq(sse_hub_writable(h, s[0]), 0);
	ck_assert_uint_eq(sse_stream_cursor(s[0]), 3);
	for (int i = 0; i < N; i++) {
		sse_stream_free(s[i]);
		test_writer_fini(&w[i]);
	}
	ck_assert_uint_eq(sse_hub_count(h), 0);
	sse_hub_free(h);
}
END_TEST

static int close_one(struct sse_stream *s, void *ctx)
{
	struct sse_event bye = {.type = "bye", .type_len = 3, .data = "", .retry = SSE_RETRY_NONE};

	++*(int *)ctx;
	ck_assert_int_eq(sse_stream_send(s, &bye), 0);
	sse_stream_free(s); /* as an application closing it would */
	return 0;
}

START_TEST(test_contract_visit_reaches_every_subscriber)
{
	enum { N = 7 };
	struct sse_hub *h = new_hub(16, 4096, "", 0);
	struct test_writer w[N];
	struct sse_stream *s;
	int visited = 0;

	for (int i = 0; i < N; i++) {
		test_writer_init(&w[i]);
		s = test_stream_new(&w[i], true, NULL);
		ck_assert_int_eq(sse_hub_subscribe(h, s, NULL, 0, NULL), 0);
	}
	w[3].accept_calls = 0; /* one waiting on its transport is reached too */
	ck_assert_int_eq(sse_hub_publish(h, &(struct sse_event){.data = "x", .data_len = 1,
								.retry = SSE_RETRY_NONE}, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	w[3].accept_calls = -1;
	ck_assert_int_eq(sse_hub_visit(h, close_one, &visited), 0);
	ck_assert_int_eq(visited, N);
	ck_assert_uint_eq(sse_hub_count(h), 0);
	for (int i = 0; i < N; i++) {
		struct seen seen;

		/* every one got "x" and "bye"; a stream's own event goes out at
		 * the next frame boundary, so the one that was waiting got
		 * "bye" before the frame it still owed */
		parse_all(w[i].buf, w[i].len, &seen);
		ck_assert_int_eq(seen.n, 2);
		ck_assert_int_eq(strcmp(seen.last_type, i == 3 ? "message" : "bye"), 0);
		test_writer_fini(&w[i]);
	}
	sse_hub_free(h);
}
END_TEST

START_TEST(test_contract_hub_tick_expires_by_age)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 16,
					      .max_bytes = 4096, .max_age_ms = 1000, .epoch = ""},
				     .no_heartbeat = 1};
	struct sse_hub *h;
	struct sse_event ev = data_event("old", 3);

	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_publish(h, &ev, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_tick(h, 1000, NULL), 0);
	ck_assert_uint_eq(sse_replay_count(sse_hub_ring(h)), 1);
	ck_assert_int_eq(sse_hub_tick(h, 1001, NULL), 0); /* no publish needed */
	ck_assert_uint_eq(sse_replay_count(sse_hub_ring(h)), 0);
	sse_hub_free(h);
}
END_TEST

START_TEST(test_contract_config_size_is_checked)
{
	struct sse_hub_config cfg = {.size = sizeof(cfg) - 1,
				     .ring = {.size = sizeof(cfg.ring), .max_events = 4,
					      .max_bytes = 4096}};
	struct sse_hub *h = NULL;

	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), SSE_ERR_INVALID);
	cfg.size = sizeof(cfg);
	cfg.ring.size = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_ptr_null(h);
}
END_TEST

/* ---- asynchronous transports */

/* Holds the pointers it takes, like uv_write, and reads them only when it
 * completes, out of the loop turn that wrote them: bytes the library
 * reused meanwhile would show up corrupted in what the client parses. */
struct async_io {
	struct sse_stream *s;
	struct {
		const char *p;
		size_t len;
	} held[2048];
	size_t nheld;
	bool refuse;
	char *out;
	size_t len, cap;
};

static int async_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct async_io *io = ctx;

	if (io->refuse)
		return SSE_ERR_WOULDBLOCK;
	*taken = 0;
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_lt(io->nheld, 2048);
		io->held[io->nheld].p = iov[i].base;
		io->held[io->nheld].len = iov[i].len;
		io->nheld++;
		*taken += iov[i].len;
	}
	return 0;
}

static int async_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	struct sse_iovec one = {buf, len};

	return async_writev(&one, 1, taken, ctx);
}

/* The transport is done with all it holds: it reads the bytes now. */
static void async_complete(struct async_io *io)
{
	size_t n = 0;

	for (size_t i = 0; i < io->nheld; i++) {
		if (io->len + io->held[i].len > io->cap) {
			io->cap = (io->len + io->held[i].len) * 2;
			io->out = realloc(io->out, io->cap);
			ck_assert_ptr_nonnull(io->out);
		}
		memcpy(io->out + io->len, io->held[i].p, io->held[i].len);
		io->len += io->held[i].len;
		n += io->held[i].len;
	}
	io->nheld = 0;
	ck_assert_uint_eq(sse_stream_inflight(io->s), n);
	ck_assert_int_eq(sse_stream_complete(io->s, n), 0);
	ck_assert_uint_eq(sse_stream_inflight(io->s), 0);
}

static struct sse_stream *new_async_stream(struct async_io *io)
{
	struct sse_transport t = {.size = sizeof(t), .write = async_write, .writev = async_writev,
				  .ctx = io, .flags = SSE_TRANSPORT_ASYNC};

	memset(io, 0, sizeof(*io));
	ck_assert_int_eq(sse_stream_new(&io->s, &t, io, NULL), 0);
	return io->s;
}

/* Event k's data: 200 bytes that say which event they are. */
static void event_data(int k, char data[200])
{
	for (int i = 0; i < 200; i++)
		data[i] = (char)('a' + (k + i) % 26);
}

START_TEST(test_contract_async_frames_stay_valid_until_done)
{
	/* A ring of 2 KiB holds about 9 events of 220 bytes: an async
	 * subscriber that completes only every 5th loop turn holds more
	 * than that, so without pins the ring would overwrite bytes it
	 * still reads. Every event must arrive intact, once, in order. */
	struct test_alloc ta;
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 64,
					      .max_bytes = 2048, .epoch = ""},
				     .no_heartbeat = 1};
	struct sse_hub *h;
	struct async_io *io = malloc(sizeof(*io));
	struct seen *seen = malloc(sizeof(*seen));
	long long ring_bytes;
	char data[200];
	int k;

	ck_assert_ptr_nonnull(io);
	ck_assert_ptr_nonnull(seen);
	test_alloc_init(&ta, 0);
	drops = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, &ta.hooks), 0);
	new_async_stream(io);
	ck_assert_int_eq(sse_hub_subscribe(h, io->s, NULL, 0, NULL), 0);
	ring_bytes = ta.live_bytes; /* the ring, and the hub's arrays */
	for (k = 1; k <= 40; k++) {
		struct sse_event ev = data_event(data, sizeof(data));

		event_data(k, data);
		ck_assert_int_eq(sse_hub_publish(h, &ev, 0, NULL), 0);
		ck_assert_int_eq(sse_hub_flush(h), 0);
		if (k % 5 == 0) {
			async_complete(io);
			sse_hub_writable(h, io->s);
		}
	}
	ck_assert_int_eq(drops, 0);
	async_complete(io);
	parse_all(io->out, io->len, seen);
	ck_assert_int_eq(seen->n, 40);
	for (k = 1; k <= 40; k++) {
		char id[8];

		event_data(k, data);
		snprintf(id, sizeof(id), "%d", k);
		ck_assert_str_eq(seen->ids[k - 1], id);
		ck_assert_uint_eq(seen->data_sum[k - 1], fingerprint(data, sizeof(data)));
	}
	/* pins released: the ring is back to one arena */
	ck_assert_int_eq(sse_hub_publish(h, &(struct sse_event){.data = "x", .data_len = 1,
								.retry = SSE_RETRY_NONE}, 0, NULL), 0);
	ck_assert_int_eq(ta.live_bytes, ring_bytes);
	sse_hub_unsubscribe(h, io->s);
	sse_stream_free(io->s);
	sse_hub_free(h);
	ck_assert_int_eq(ta.live_blocks, 0);
	free(io->out);
	free(io);
	free(seen);
}
END_TEST

START_TEST(test_contract_async_pinner_is_a_slow_consumer)
{
	/* A subscriber whose transport holds frames and completes nothing:
	 * the ring keeps those bytes intact (a second arena takes the new
	 * frames), the subscriber is dropped as it missed events, and
	 * publishing fails only when both arenas are blocked. Completing
	 * (as a cancelled uv_write does) lets everything go. */
	struct test_alloc ta;
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 64,
					      .max_bytes = 2048, .epoch = ""},
				     .no_heartbeat = 1};
	struct sse_hub *h;
	struct async_io *io = malloc(sizeof(*io));
	struct seen *seen = malloc(sizeof(*seen));
	long long one_arena;
	char data[200];
	int k, rc = 0;

	ck_assert_ptr_nonnull(io);
	ck_assert_ptr_nonnull(seen);
	test_alloc_init(&ta, 0);
	drops = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, &ta.hooks), 0);
	new_async_stream(io);
	ck_assert_int_eq(sse_hub_subscribe(h, io->s, NULL, 0, NULL), 0);
	one_arena = ta.live_bytes;
	event_data(1, data);
	ck_assert_int_eq(sse_hub_publish(h, &(struct sse_event){.data = data, .data_len = 200,
								.retry = SSE_RETRY_NONE}, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0); /* frame 1 is now held */
	io->refuse = true;
	for (k = 2; k <= 40 && rc == 0; k++) {
		event_data(k, data);
		rc = sse_hub_publish(h, &(struct sse_event){.data = data, .data_len = 200,
							    .retry = SSE_RETRY_NONE}, 0, NULL);
		if (k == 12)
			ck_assert_int_eq(ta.live_bytes, one_arena + 2048); /* the second arena */
	}
	ck_assert_int_eq(rc, SSE_ERR_PINNED);
	ck_assert_int_le(ta.live_bytes, one_arena + 2048); /* never a third */
	ck_assert_int_eq(sse_hub_writable(h, io->s), SSE_ERR_GAP);
	ck_assert_int_eq(drops, 1);
	/* the cancelled write completes: what it read is still event 1 */
	async_complete(io);
	parse_all(io->out, io->len, seen);
	ck_assert_int_eq(seen->n, 1);
	event_data(1, data);
	ck_assert_uint_eq(seen->data_sum[0], fingerprint(data, 200));
	rc = sse_hub_publish(h, &(struct sse_event){.data = "x", .data_len = 1,
						    .retry = SSE_RETRY_NONE}, 0, NULL);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(ta.live_bytes, one_arena); /* the second arena is gone */
	sse_stream_free(io->s);
	sse_hub_free(h);
	ck_assert_int_eq(ta.live_blocks, 0);
	free(io->out);
	free(io);
	free(seen);
}
END_TEST

START_TEST(test_contract_async_waiting_holder_is_dropped_by_flush)
{
	/* A peer that stopped reading: its transport holds frames and then
	 * refuses more, so the stream waits and is never written to again.
	 * The flush after the publish that drops its held frame from the
	 * ring drops it, so publishing never fails on its pin. */
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 64,
					      .max_bytes = 2048, .epoch = ""},
				     .no_heartbeat = 1};
	struct sse_hub *h;
	struct async_io *io = malloc(sizeof(*io));
	char data[200];

	ck_assert_ptr_nonnull(io);
	drops = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	new_async_stream(io);
	cancel_on_drop = io;
	ck_assert_int_eq(sse_hub_subscribe(h, io->s, NULL, 0, NULL), 0);
	for (int k = 1; k <= 100; k++) {
		event_data(k, data);
		ck_assert_int_eq(sse_hub_publish(h, &(struct sse_event){.data = data,
									.data_len = 200,
									.retry = SSE_RETRY_NONE},
						 0, NULL),
				 0);
		ck_assert_int_eq(sse_hub_flush(h), 0);
		io->refuse = k >= 1; /* took frame 1, then nothing more */
	}
	cancel_on_drop = NULL;
	ck_assert_int_eq(drops, 1);
	ck_assert_int_eq(last_drop_err, SSE_ERR_GAP);
	ck_assert_uint_eq(sse_stream_inflight(io->s), 0); /* cancelled at the drop */
	sse_stream_free(io->s);
	sse_hub_free(h);
	free(io->out);
	free(io);
}
END_TEST

START_TEST(test_contract_async_queue_bytes_do_not_move)
{
	/* Direct sends on an async stream: the queue must grow while the
	 * transport holds bytes of it; they stay where they were. */
	struct async_io *io = malloc(sizeof(*io));
	struct seen *seen = malloc(sizeof(*seen));
	char data[200];

	ck_assert_ptr_nonnull(io);
	ck_assert_ptr_nonnull(seen);
	new_async_stream(io);
	for (int k = 1; k <= 30; k++) {
		struct sse_event ev = data_event(data, sizeof(data));
		char id[8];

		event_data(k, data);
		snprintf(id, sizeof(id), "%d", k);
		ev.id = id;
		ev.id_len = strlen(id);
		io->refuse = k > 10 && k < 20; /* held while the queue grows */
		ck_assert_int_eq(sse_stream_send(io->s, &ev), 0);
		if (k == 25)
			async_complete(io);
	}
	ck_assert_int_eq(sse_stream_flush(io->s), 0);
	async_complete(io);
	parse_all(io->out, io->len, seen);
	ck_assert_int_eq(seen->n, 30);
	for (int k = 1; k <= 30; k++) {
		event_data(k, data);
		ck_assert_uint_eq(seen->data_sum[k - 1], fingerprint(data, 200));
	}
	ck_assert_int_eq(sse_stream_complete(io->s, 1), SSE_ERR_INVALID); /* nothing held */
	sse_stream_free(io->s);
	free(io->out);
	free(io);
	free(seen);
}
END_TEST

START_TEST(test_contract_async_holder_that_never_completes_is_dropped)
{
	/* Takes every byte and completes none: it owes nothing and its
	 * cursor stays in the ring, but the frames it holds fall out of the
	 * ring, which makes it a slow consumer at the next flush. */
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = 4,
					      .max_bytes = 4096, .epoch = ""},
				     .no_heartbeat = 1};
	struct sse_hub *h;
	struct async_io *io = malloc(sizeof(*io));
	int k, rc = 0;

	ck_assert_ptr_nonnull(io);
	drops = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	new_async_stream(io);
	ck_assert_int_eq(sse_hub_subscribe(h, io->s, NULL, 0, NULL), 0);
	for (k = 0; k < 10 && drops == 0 && rc == 0; k++) {
		rc = sse_hub_publish(h, &(struct sse_event){.data = "e", .data_len = 1,
							    .retry = SSE_RETRY_NONE}, 0, NULL);
		ck_assert_int_eq(sse_hub_flush(h), 0);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(drops, 1);
	ck_assert_int_eq(last_drop_err, SSE_ERR_GAP);
	ck_assert_int_eq(k, 5); /* frame 1 was dropped by the 5th publish */
	async_complete(io); /* cancelled */
	sse_stream_free(io->s);
	sse_hub_free(h);
	free(io->out);
	free(io);
}
END_TEST

START_TEST(test_contract_unsubscribed_holder_owes_nothing_more)
{
	struct sse_hub *h = new_hub(16, 4096, "", 0);
	struct async_io *io = malloc(sizeof(*io));
	struct seen seen;

	ck_assert_ptr_nonnull(io);
	new_async_stream(io);
	ck_assert_int_eq(sse_hub_subscribe(h, io->s, NULL, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_publish(h, &(struct sse_event){.data = "a", .data_len = 1,
								.retry = SSE_RETRY_NONE}, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_uint_gt(sse_stream_inflight(io->s), 0);
	sse_hub_unsubscribe(h, io->s);
	ck_assert_int_eq(sse_hub_publish(h, &(struct sse_event){.data = "b", .data_len = 1,
								.retry = SSE_RETRY_NONE}, 0, NULL), 0);
	ck_assert_uint_eq(sse_stream_pending(io->s), 0);
	ck_assert_uint_eq(sse_stream_cursor(io->s), 0); /* follows nothing */
	ck_assert_int_eq(sse_stream_flush(io->s), 0);
	async_complete(io); /* the held frame is still intact */
	parse_all(io->out, io->len, &seen);
	ck_assert_int_eq(seen.n, 1);
	ck_assert_str_eq(seen.ids[0], "1");
	sse_stream_free(io->s);
	sse_hub_free(h);
	free(io->out);
	free(io);
}
END_TEST

START_TEST(test_contract_reset_names_the_newest_id_after_expiry)
{
	/* Every frame expired by age: the reset still carries the newest
	 * id, never an empty one (which would clear the client's id and make
	 * its next reconnect live-only, missing what comes meanwhile). */
	static const struct sse_event reset = {.type = "sse-reset", .type_len = 9, .data = "",
					       .retry = SSE_RETRY_NONE};
	struct sse_replay_config cfg = {.size = sizeof(cfg), .max_events = 8, .max_bytes = 4096,
					.max_age_ms = 10, .epoch = "e-", .reset_event = &reset};
	struct sse_replay *r;
	struct sse_event ev;
	const char *id;
	size_t len = 0;

	ck_assert_int_eq(sse_replay_new(&r, &cfg, NULL), 0);
	ck_assert_int_eq(sse_replay_publish(r, &(struct sse_event){.data = "x", .data_len = 1,
								   .retry = SSE_RETRY_NONE}, 0, NULL), 0);
	ck_assert_int_eq(sse_replay_publish(r, &(struct sse_event){.data = "y", .data_len = 1,
								   .retry = SSE_RETRY_NONE}, 0, NULL), 0);
	ck_assert_int_eq(sse_replay_expire(r, 100), 0);
	ck_assert_uint_eq(sse_replay_count(r), 0);
	id = sse_replay_newest_id(r, &len);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(id, "e-2", 3);
	ck_assert_int_eq(sse_replay_reset_event(r, &ev), 1);
	ck_assert_uint_eq(ev.id_len, 3);
	ck_assert_mem_eq(ev.id, "e-2", 3);
	/* a publish that fails leaves the newest id alone */
	ck_assert_int_eq(sse_replay_publish(r, &(struct sse_event){.data = "z", .data_len = 1,
								   .retry = -5}, 0, NULL),
			 SSE_ERR_RETRY);
	id = sse_replay_newest_id(r, &len);
	ck_assert_mem_eq(id, "e-2", 3);
	sse_replay_free(r);
}
END_TEST

Suite *contract_suite(void)
{
	Suite *s = suite_create("contract");
	TCase *tc = tcase_create("contract");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_contract_callbacks_get_the_transport_context);
	tcase_add_test(tc, test_contract_transport_size_is_checked);
	tcase_add_test(tc, test_contract_writev_alone_is_a_push_transport);
	tcase_add_test(tc, test_contract_pull_reads_what_push_would_write);
	tcase_add_test(tc, test_contract_pull_subscriber_of_a_hub);
	tcase_add_test(tc, test_contract_buffered_transport_keeps_healthy_subscribers);
	tcase_add_test(tc, test_contract_stall_is_judged_by_offering_bytes);
	tcase_add_test(tc, test_contract_stall_clock_starts_on_the_hubs_clock);
	tcase_add_test(tc, test_contract_pending_of_an_evicted_follower_is_zero);
	tcase_add_test(tc, test_contract_id_of_an_earlier_instance_gets_the_reset);
	tcase_add_test(tc, test_contract_flush_skips_subscribers_owed_nothing);
	tcase_add_test(tc, test_contract_visit_reaches_every_subscriber);
	tcase_add_test(tc, test_contract_hub_tick_expires_by_age);
	tcase_add_test(tc, test_contract_config_size_is_checked);
	tcase_add_test(tc, test_contract_async_frames_stay_valid_until_done);
	tcase_add_test(tc, test_contract_async_pinner_is_a_slow_consumer);
	tcase_add_test(tc, test_contract_async_waiting_holder_is_dropped_by_flush);
	tcase_add_test(tc, test_contract_async_queue_bytes_do_not_move);
	tcase_add_test(tc, test_contract_async_holder_that_never_completes_is_dropped);
	tcase_add_test(tc, test_contract_unsubscribed_holder_owes_nothing_more);
	tcase_add_test(tc, test_contract_reset_names_the_newest_id_after_expiry);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(contract_suite());
}
