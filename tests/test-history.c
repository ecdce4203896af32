/*
 * A hub backed by a log: a resume that misses the ring is answered by a
 * history provider, late and page by page, while live events keep
 * arriving; every subscriber gets every event exactly once and in order,
 * or the reset event, or is dropped with the log's error.
 *
 * The log is in memory here; the provider keeps the questions it gets and
 * answers them only when the test runs a "loop turn", after the call that
 * asked has returned, interleaved with live publishes. What a subscriber
 * got is read back with the parser (the WHATWG rules), not compared with
 * our own encoder's bytes.
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

#define EPOCH "e1-"
enum { LOG_MAX = 200, SUBS = 4, QMAX = 256 };

/* ---- the log: frame n is "id: e1-n\ndata: ev n[ padding]\n\n" */

static char *log_frame[LOG_MAX + 1];
static size_t log_size[LOG_MAX + 1];
static uint64_t log_len;   /* its newest number */
static uint64_t log_first; /* its oldest number still kept */

static void log_append_sized(size_t pad)
{
	uint64_t n = ++log_len;
	char *f;
	int k;

	ck_assert_uint_le(n, LOG_MAX);
	f = malloc(64 + pad);
	ck_assert_ptr_nonnull(f);
	k = sprintf(f, "id: " EPOCH "%" PRIu64 "\ndata: ev %" PRIu64, n, n);
	if (pad > 0) {
		f[k++] = ' ';
		memset(f + k, 'x', pad);
		k += (int)pad;
	}
	memcpy(f + k, "\n\n", 2);
	log_frame[n] = f;
	log_size[n] = (size_t)k + 2;
}

static void log_reset(void)
{
	for (uint64_t n = 1; n <= log_len; n++)
		free(log_frame[n]);
	log_len = 0;
	log_first = 1;
}

/* ---- the provider */

struct question {
	struct sse_history_fetch *f;
	uint64_t from;
	size_t max;
	bool open;
};

static struct question qs[QMAX];
static int nq, cancels;
static int fetch_error;   /* fetch refuses with this */
static int answer_error;  /* the log "cannot be read": done with this */
static int page_frames;   /* most frames per page; 0: by bytes only */
static bool answer_within; /* answer inside fetch */

static void answer(int i);

static int prov_fetch(void *ctx, struct sse_history_fetch *f, uint64_t from, size_t max)
{
	ck_assert_ptr_eq(ctx, qs);
	if (fetch_error != 0)
		return fetch_error;
	ck_assert_int_lt(nq, QMAX);
	qs[nq] = (struct question){.f = f, .from = from, .max = max, .open = true};
	nq++;
	if (answer_within)
		answer(nq - 1);
	return 0;
}

static struct question *open_question(struct sse_history_fetch *f)
{
	for (int i = 0; i < nq; i++)
		if (qs[i].open && qs[i].f == f)
			return &qs[i];
	return NULL;
}

static void prov_cancel(void *ctx, struct sse_history_fetch *f)
{
	struct question *q = open_question(f);

	ck_assert_ptr_eq(ctx, qs);
	/* Only a question not answered yet is cancelled, once. */
	ck_assert_ptr_nonnull(q);
	q->open = false;
	q->f = NULL; /* never used again: a late answer is impossible */
	cancels++;
}

static void give_frames(struct question *q)
{
	size_t bytes = 0;
	int k = 0;

	for (uint64_t n = q->from; n <= log_len; n++, k++) {
		if ((k > 0 && bytes + log_size[n] > q->max) || (page_frames && k == page_frames))
			return;
		bytes += log_size[n];
		if (sse_history_frame(q->f, n, log_frame[n], log_size[n]) != 0)
			return;
	}
}

/* Answer question i as the log stands. */
static void answer(int i)
{
	struct question *q = &qs[i];
	struct sse_history_fetch *f = q->f;
	int status = SSE_HISTORY_FRAMES;

	ck_assert(q->open);
	ck_assert_ptr_nonnull(f);
	if (answer_error != 0)
		status = answer_error;
	else if (q->from < log_first)
		status = SSE_HISTORY_GAP;
	else if (q->from > log_len + 1)
		status = SSE_HISTORY_UNKNOWN;
	else
		give_frames(q);
	q->open = false; /* answered: f is the hub's again */
	sse_history_done(f, status);
}

/* A loop turn: answer the questions open when it starts. */
static int loop_turn(void)
{
	int n = nq, answered = 0;

	for (int i = 0; i < n; i++) {
		if (qs[i].open) {
			answer(i);
			answered++;
		}
	}
	return answered;
}

static int open_count(void)
{
	int n = 0;

	for (int i = 0; i < nq; i++)
		n += qs[i].open;
	return n;
}

static const struct sse_history provider = {
	.size = sizeof(struct sse_history), .fetch = prov_fetch, .cancel = prov_cancel, .ctx = qs};

/* ---- hub and subscribers */

static struct test_writer ws[SUBS];
static struct sse_stream *ss[SUBS];
static int drops, drop_err[SUBS];
static uint64_t now;

static void on_drop(struct sse_stream *s, int err, void *user)
{
	(void)user;
	for (int i = 0; i < SUBS; i++) {
		if (ss[i] == s) {
			drops++;
			drop_err[i] = err;
			return;
		}
	}
	ck_abort_msg("unknown stream dropped");
}

static struct sse_hub *new_hub(size_t events)
{
	static const struct sse_event reset = {.type = "sse-reset", .type_len = 9, .data = "",
					       .retry = SSE_RETRY_NONE};
	struct sse_hub_config cfg = {.size = sizeof(cfg),
				     .ring = {.size = sizeof(cfg.ring), .max_events = events,
					      .max_bytes = 1 << 16, .epoch = EPOCH,
					      .reset_event = &reset},
				     .heartbeat_ms = 1000};
	struct sse_hub *h;

	log_reset();
	memset(qs, 0, sizeof(qs));
	nq = cancels = fetch_error = answer_error = page_frames = 0;
	answer_within = false;
	drops = 0;
	memset(drop_err, 0, sizeof(drop_err));
	now = 0;
	ck_assert_int_eq(sse_hub_new(&h, &cfg, on_drop, NULL, NULL), 0);
	ck_assert_int_eq(sse_hub_set_history(h, &provider), 0);
	for (int i = 0; i < SUBS; i++) {
		test_writer_init(&ws[i]);
		ss[i] = test_stream_new(&ws[i], true, NULL);
	}
	return h;
}

static void free_all(struct sse_hub *h)
{
	sse_hub_free(h);
	for (int i = 0; i < SUBS; i++) {
		sse_stream_free(ss[i]);
		test_writer_fini(&ws[i]);
	}
	log_reset();
}

/* The node receives log frame n, live. */
static void node_gets(struct sse_hub *h, uint64_t n)
{
	ck_assert_int_eq(sse_hub_publish_frame(h, log_frame[n], log_size[n], now, NULL), 0);
}

/* A new event: into the log, and to this node, then the loop's flush. */
static void publish_live(struct sse_hub *h)
{
	log_append_sized(0);
	node_gets(h, log_len);
	ck_assert_int_eq(sse_hub_flush(h), 0);
}

static void fill_log(struct sse_hub *h, int n)
{
	for (int i = 0; i < n; i++)
		publish_live(h);
}

static int subscribe(struct sse_hub *h, int i, const char *id)
{
	int status = -1;

	ck_assert_int_eq(sse_hub_subscribe(h, ss[i], id, id ? strlen(id) : 0, &status), 0);
	return status;
}

/* ---- what a subscriber got, read by the parser: "5 6 R 7 " */

struct seen {
	char text[4096];
	size_t len;
};

static int on_message(const struct sse_message *m, void *user)
{
	struct seen *seen = user;
	char id[64];
	uint64_t n;
	int k;

	if (m->type_len == 9 && memcmp(m->type, "sse-reset", 9) == 0) {
		k = snprintf(seen->text + seen->len, sizeof(seen->text) - seen->len, "R ");
	} else {
		/* Every event carries the id of its own number. */
		ck_assert_int_eq(sscanf(m->data, "ev %" SCNu64, &n), 1);
		snprintf(id, sizeof(id), EPOCH "%" PRIu64, n);
		ck_assert_uint_eq(m->last_id_len, strlen(id));
		ck_assert_mem_eq(m->last_id, id, strlen(id));
		k = snprintf(seen->text + seen->len, sizeof(seen->text) - seen->len,
			     "%" PRIu64 " ", n);
	}
	ck_assert_int_gt(k, 0);
	seen->len += (size_t)k;
	ck_assert_uint_lt(seen->len, sizeof(seen->text));
	return 0;
}

static const char *got(int i)
{
	static struct seen seen;
	struct sse_parser_callbacks cb = {.on_message = on_message};
	struct sse_parser *p;

	seen.len = 0;
	seen.text[0] = '\0';
	ck_assert_int_eq(sse_parser_new(&p, &cb, &seen, NULL), 0);
	ck_assert_int_eq(sse_parser_feed(p, ws[i].buf, ws[i].len), 0);
	sse_parser_free(p);
	return seen.text;
}

/* "a b ... z " for the numbers a..z, after prefix. */
static const char *range(const char *prefix, uint64_t a, uint64_t z)
{
	static char text[4096];
	size_t len = (size_t)snprintf(text, sizeof(text), "%s", prefix);

	for (uint64_t n = a; n <= z; n++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%" PRIu64 " ", n);
	return text;
}

static void expect_bytes(int i, const char *want)
{
	ck_assert_uint_ge(ws[i].len, strlen(want));
	ck_assert_mem_eq(ws[i].buf, want, strlen(want));
}

static void expect_got(int i, const char *want)
{
	const char *have = got(i);

	ck_assert_msg(strcmp(have, want) == 0, "subscriber %d got \"%s\", want \"%s\"", i, have,
		      want);
}

/* ---- counters and lag */

static struct sse_hub_stats stats_of(const struct sse_hub *h)
{
	struct sse_hub_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(sse_hub_stats(h, &st), 0);
	return st;
}

/* Events (numbers, not resets) in "4 5 R 6 ". */
static uint64_t events_in(const char *text)
{
	uint64_t n = 0;

	for (const char *t = text; *t != '\0'; t++)
		n += *t == ' ' && t > text && t[-1] != 'R';
	return n;
}

/* ---- resuming from the log */

START_TEST(test_history_resume_deep_in_log_in_pages)
{
	/* The ring holds 37..40; the client saw 3: pages of 5 from the log,
	 * each asked once the one before drained, live events in between. */
	struct sse_hub *h = new_hub(4);
	int turns = 0;

	fill_log(h, 40);
	page_frames = 5;
	ck_assert_int_eq(subscribe(h, 0, EPOCH "3"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(nq, 1);
	ck_assert_uint_eq(qs[0].from, 4);
	expect_got(0, ""); /* nothing until the provider answers */
	while (loop_turn() > 0) {
		publish_live(h);
		turns++;
	}
	ck_assert_int_gt(turns, 5);
	ck_assert_int_eq(nq, turns); /* one question per page */
	publish_live(h);
	expect_got(0, range("", 4, log_len));
	ck_assert_int_eq(drops, 0);
	ck_assert_int_eq(open_count(), 0);
	free_all(h);
}
END_TEST

START_TEST(test_history_answer_overlapping_ring_is_merged)
{
	/* The ring holds 37..40, the answer 36..40: 36 from the log, the
	 * rest from the ring, once. */
	struct sse_hub *h = new_hub(4);

	fill_log(h, 40);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "35"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(loop_turn(), 1);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	publish_live(h);
	expect_got(0, range("", 36, 41));
	ck_assert_int_eq(nq, 1);
	free_all(h);
}
END_TEST

START_TEST(test_history_live_publishes_before_the_answer)
{
	/* The ring moves on while the question is out: the answer ends
	 * below the ring's new first frame, so a second page follows. */
	struct sse_hub *h = new_hub(4);

	fill_log(h, 20);
	page_frames = 8;
	ck_assert_int_eq(subscribe(h, 0, EPOCH "10"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(subscribe(h, 1, NULL), SSE_REPLAY_LIVE);
	for (int i = 0; i < 10; i++)
		publish_live(h); /* ring: 27..30 */
	while (loop_turn() > 0)
		;
	publish_live(h);
	expect_got(0, range("", 11, 31));
	expect_got(1, range("", 21, 31));
	ck_assert_int_eq(nq, 2); /* 11..18, 19..26, then 27 on is the ring's */
	free_all(h);
}
END_TEST

START_TEST(test_history_node_behind_log)
{
	/* The log has 1..20, this node only 1..10; a client saw 15 on
	 * another node. It gets 16..20 from the log, then waits for the
	 * ring, which then carries 11..20 it must not repeat, and 21 on. */
	struct sse_hub *h = new_hub(8);

	fill_log(h, 10);
	for (int i = 0; i < 10; i++)
		log_append_sized(0);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "15"), SSE_REPLAY_HISTORY);
	ck_assert_uint_eq(qs[0].from, 16);
	ck_assert_int_eq(loop_turn(), 1);
	expect_got(0, range("", 16, 20));
	for (uint64_t n = 11; n <= 20; n++) {
		node_gets(h, n);
		ck_assert_int_eq(sse_hub_flush(h), 0);
	}
	publish_live(h);
	publish_live(h);
	expect_got(0, range("", 16, 22));
	ck_assert_int_eq(nq, 1);
	ck_assert_int_eq(drops, 0);
	free_all(h);
}
END_TEST

START_TEST(test_history_answer_within_fetch)
{
	/* A provider that answers at once: the whole history is written by
	 * the time subscribe returns. */
	struct sse_hub *h = new_hub(4);

	fill_log(h, 30);
	answer_within = true;
	page_frames = 4;
	ck_assert_int_eq(subscribe(h, 0, EPOCH "2"), SSE_REPLAY_HISTORY);
	expect_got(0, range("", 3, 30));
	publish_live(h);
	expect_got(0, range("", 3, 31));
	ck_assert_int_eq(open_count(), 0);
	free_all(h);
}
END_TEST

/* ---- gap, unknown, errors */

START_TEST(test_history_gap_gets_reset)
{
	struct sse_hub *h = new_hub(4);

	fill_log(h, 20);
	log_first = 10; /* the log trimmed 1..9 */
	ck_assert_int_eq(subscribe(h, 0, EPOCH "3"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(loop_turn(), 1);
	publish_live(h);
	/* The reset carries the newest id: 20, the point it resumes from. */
	expect_got(0, "R 21 ");
	expect_bytes(0, ":\nid: " EPOCH "20\nevent: sse-reset\n");
	free_all(h);
}
END_TEST

START_TEST(test_history_unknown_gets_reset)
{
	struct sse_hub *h = new_hub(4);

	fill_log(h, 20);
	/* Past the log's end as well as the ring's: the log says unknown. */
	ck_assert_int_eq(subscribe(h, 0, EPOCH "99"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(loop_turn(), 1);
	/* Another epoch: the ring knows, at once, without asking. */
	ck_assert_int_eq(subscribe(h, 1, "e0-5"), SSE_REPLAY_UNKNOWN);
	ck_assert_int_eq(subscribe(h, 2, "garbage"), SSE_REPLAY_UNKNOWN);
	ck_assert_int_eq(nq, 1);
	publish_live(h);
	expect_got(0, "R 21 ");
	expect_got(1, "R 21 ");
	expect_got(2, "R 21 ");
	free_all(h);
}
END_TEST

START_TEST(test_history_error_drops_subscriber)
{
	struct sse_hub *h = new_hub(4);

	fill_log(h, 20);
	/* The log cannot be read: the subscriber leaves with that error, and
	 * nothing in between is made up. */
	ck_assert_int_eq(subscribe(h, 0, EPOCH "3"), SSE_REPLAY_HISTORY);
	answer_error = SSE_ERR_IO;
	ck_assert_int_eq(loop_turn(), 1);
	ck_assert_int_eq(drops, 1);
	ck_assert_int_eq(drop_err[0], SSE_ERR_IO);
	ck_assert_uint_eq(sse_hub_count(h), 0);
	expect_got(0, "");
	/* A fetch refused at once fails the subscribe itself. */
	fetch_error = SSE_ERR_IO;
	ck_assert_int_eq(sse_hub_subscribe(h, ss[1], EPOCH "3", 4, NULL), SSE_ERR_IO);
	ck_assert_uint_eq(sse_hub_count(h), 0);
	ck_assert_int_eq(drops, 1);
	free_all(h);
}
END_TEST

START_TEST(test_history_malformed_answer_drops_subscriber)
{
	static const char bad[] = "id: " EPOCH "4\ndata: a\n\ndata: smuggled\n\n";
	struct sse_hub *h = new_hub(4);
	int status = -1;

	fill_log(h, 20);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "3"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(sse_history_frame(qs[0].f, 4, bad, sizeof(bad) - 1), SSE_ERR_INVALID);
	qs[0].open = false;
	sse_history_done(qs[0].f, SSE_HISTORY_FRAMES);
	ck_assert_int_eq(drop_err[0], SSE_ERR_INVALID);
	expect_got(0, "");
	/* A hole in the answer (5 before 4) is refused too. */
	ck_assert_int_eq(sse_hub_subscribe(h, ss[1], EPOCH "3", 4, &status), 0);
	ck_assert_int_eq(sse_history_frame(qs[1].f, 5, log_frame[5], log_size[5]),
			 SSE_ERR_INVALID);
	qs[1].open = false;
	sse_history_done(qs[1].f, SSE_HISTORY_FRAMES);
	ck_assert_int_eq(drop_err[1], SSE_ERR_INVALID);
	ck_assert_int_eq(drops, 2);
	free_all(h);
}
END_TEST

/* ---- leaving before the answer */

START_TEST(test_history_leaving_cancels)
{
	struct sse_hub *h = new_hub(4);

	fill_log(h, 20);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "3"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(subscribe(h, 1, EPOCH "4"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(subscribe(h, 2, EPOCH "5"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(subscribe(h, 3, EPOCH "6"), SSE_REPLAY_HISTORY);
	sse_hub_unsubscribe(h, ss[0]);
	ck_assert_int_eq(cancels, 1);
	sse_stream_free(ss[1]);
	ss[1] = NULL;
	ck_assert_int_eq(cancels, 2);
	ck_assert_uint_eq(stats_of(h).unsubscribes, 2);
	ck_assert_uint_eq(stats_of(h).parked, 2);
	ck_assert_uint_eq(sse_hub_lag(h, ss[2]), 20 - 5); /* 6..20 */
	/* The provider asserts it is never used after cancel: the turn
	 * answers only the two questions still open. */
	ck_assert_int_eq(loop_turn(), 2);
	expect_got(2, range("", 6, 20));
	/* A question out when the hub goes: cancelled too. */
	ck_assert_int_eq(sse_hub_subscribe(h, ss[0], EPOCH "3", 4, NULL), 0);
	sse_hub_free(h);
	ck_assert_int_eq(cancels, 3);
	ck_assert_int_eq(open_count(), 0);
	ck_assert_int_eq(drops, 0);
	for (int i = 0; i < SUBS; i++) {
		sse_stream_free(ss[i]);
		test_writer_fini(&ws[i]);
	}
	log_reset();
}
END_TEST

/* ---- queue room, heartbeats */

/* Taking the provider off drops whoever is parked on it: one with a
 * question out (cancelled) and one waiting for its queue to drain before
 * asking again; the provider is never called after that. */
START_TEST(test_history_provider_taken_off_drops_parked)
{
	struct sse_hub *h = new_hub(4);
	int asked;

	for (int i = 0; i < 4; i++)
		log_append_sized(i == 2 ? 1500 : 700);
	fill_log(h, 0);
	for (uint64_t n = 1; n <= 4; n++)
		node_gets(h, n);
	fill_log(h, 10);
	ck_assert_int_eq(sse_stream_set_queue_limit(ss[0], 2048), 0);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "0"), SSE_REPLAY_HISTORY);
	ws[0].wouldblock_left = 1000;
	ck_assert_int_eq(loop_turn(), 1);
	ck_assert_int_eq(open_count(), 0); /* parked, waiting to drain */
	ck_assert_int_eq(subscribe(h, 1, EPOCH "1"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(open_count(), 1); /* parked, asking */
	asked = nq;
	ck_assert_int_eq(sse_hub_set_history(h, NULL), 0);
	ck_assert_int_eq(drops, 2);
	ck_assert_int_eq(drop_err[0], SSE_ERR_IO);
	ck_assert_int_eq(drop_err[1], SSE_ERR_IO);
	ck_assert_int_eq(cancels, 1);
	ck_assert_uint_eq(sse_hub_count(h), 0);
	ws[0].wouldblock_left = 0;
	publish_live(h);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(nq, asked); /* nobody asked the provider again */
	free_all(h);
}
END_TEST

START_TEST(test_history_frame_larger_than_room)
{
	/* Queue limit 2048, a transport that takes nothing: 700 + 700 fit,
	 * the 1500-byte frame does not: it goes in the next page, alone,
	 * once the queue drained; the rest follows. */
	struct sse_hub *h = new_hub(4);

	for (int i = 0; i < 4; i++)
		log_append_sized(i == 2 ? 1500 : 700);
	fill_log(h, 0);
	for (uint64_t n = 1; n <= 4; n++)
		node_gets(h, n);
	fill_log(h, 10); /* ring: 11..14 */
	ck_assert_int_eq(sse_stream_set_queue_limit(ss[0], 2048), 0);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "0"), SSE_REPLAY_HISTORY);
	ws[0].wouldblock_left = 1000;
	ck_assert_int_eq(loop_turn(), 1);
	ck_assert_uint_eq(sse_stream_pending(ss[0]), log_size[1] + log_size[2]);
	ck_assert_int_eq(open_count(), 0); /* waiting for the queue to drain */
	ws[0].wouldblock_left = 0;
	ws[0].max_per_call = 0;
	ck_assert_int_eq(sse_hub_writable(h, ss[0]), 0);
	ck_assert_int_eq(nq, 2);
	ck_assert_uint_eq(qs[1].from, 3);
	while (loop_turn() > 0)
		;
	publish_live(h);
	expect_got(0, range("", 1, 15));
	ck_assert_int_eq(drops, 0);
	free_all(h);
}
END_TEST

START_TEST(test_history_frame_larger_than_queue_limit_drops)
{
	struct sse_hub *h = new_hub(4);

	log_append_sized(3000);
	node_gets(h, 1);
	fill_log(h, 10);
	ck_assert_int_eq(sse_stream_set_queue_limit(ss[0], 2048), 0);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "0"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(loop_turn(), 1);
	ck_assert_int_eq(drop_err[0], SSE_ERR_TOO_LARGE);
	free_all(h);
}
END_TEST

START_TEST(test_history_heartbeats_while_parked)
{
	struct sse_hub *h = new_hub(4);
	uint64_t next = 0;

	fill_log(h, 20);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "3"), SSE_REPLAY_HISTORY);
	ck_assert_uint_eq(ws[0].len, 2); /* ":\n" */
	ck_assert_int_eq(sse_hub_tick(h, 500, &next), 0);
	ck_assert_uint_eq(ws[0].len, 2);
	ck_assert_uint_le(next, 1000);
	ck_assert_int_eq(sse_hub_tick(h, 1000, &next), 0);
	ck_assert_uint_eq(ws[0].len, 4); /* a heartbeat: the connection lives */
	ck_assert_mem_eq(ws[0].buf, ":\n:\n", 4);
	ck_assert_int_eq(loop_turn(), 1);
	publish_live(h);
	expect_got(0, range("", 4, 21));
	free_all(h);
}
END_TEST

/* ---- counters */

START_TEST(test_history_counters)
{
	/* The ring holds 37..40; the client saw 3. */
	struct sse_hub *h = new_hub(4);
	struct sse_hub_stats st;
	uint64_t read;

	fill_log(h, 40);
	page_frames = 5;
	ck_assert_int_eq(subscribe(h, 0, EPOCH "3"), SSE_REPLAY_HISTORY);
	st = stats_of(h);
	ck_assert_uint_eq(st.published_events, 40);
	ck_assert_uint_eq(st.subscribes, 1);
	ck_assert_uint_eq(st.replay_history, 1);
	ck_assert_uint_eq(st.replay_found + st.replay_gap + st.replay_unknown, 0);
	ck_assert_uint_eq(st.history_fetches, 1);
	ck_assert_uint_eq(st.parked, 1);
	ck_assert_uint_eq(st.subscribers, 1);
	ck_assert_uint_eq(sse_hub_lag(h, ss[0]), 41 - 4); /* 4..40 */
	/* Published while parked: owed to no follower. */
	publish_live(h);
	ck_assert_uint_eq(stats_of(h).deliveries, 0);
	ck_assert_int_eq(loop_turn(), 1); /* 4..8 */
	ck_assert_uint_eq(stats_of(h).history_frames, 5);
	ck_assert_uint_eq(sse_hub_lag(h, ss[0]), 42 - 9);
	while (loop_turn() > 0)
		publish_live(h);
	publish_live(h);
	expect_got(0, range("", 4, log_len));
	/* Every event it read came once: from the log or from the ring. */
	read = events_in(got(0));
	st = stats_of(h);
	ck_assert_uint_eq(read, log_len - 3);
	ck_assert_uint_eq(st.history_frames + st.deliveries, read);
	ck_assert_uint_gt(st.deliveries, 0);
	ck_assert_uint_eq(st.history_fetches, (uint64_t)nq);
	ck_assert_uint_eq(st.parked, 0);
	ck_assert_uint_eq(sse_hub_lag(h, ss[0]), 0);

	/* The log lost 3: gap, the reset event. */
	log_first = 10;
	ck_assert_int_eq(subscribe(h, 1, EPOCH "3"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(loop_turn(), 1);
	ck_assert_uint_eq(stats_of(h).history_resets, 1);
	/* The log cannot be read: dropped with its error. */
	ck_assert_int_eq(subscribe(h, 2, EPOCH "12"), SSE_REPLAY_HISTORY);
	answer_error = SSE_ERR_IO;
	ck_assert_int_eq(loop_turn(), 1);
	ck_assert_int_eq(drop_err[2], SSE_ERR_IO);
	answer_error = 0;
	/* A new epoch: the parked one now, the followers at the next pass. */
	ck_assert_int_eq(subscribe(h, 3, EPOCH "12"), SSE_REPLAY_HISTORY);
	ck_assert_uint_eq(stats_of(h).parked, 1);
	ck_assert_int_eq(sse_hub_restart(h, "e2-", 1), 0);
	ck_assert_int_eq(drop_err[3], SSE_ERR_GAP);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(drops, 4);
	st = stats_of(h);
	ck_assert_uint_eq(st.subscribes, 4);
	ck_assert_uint_eq(st.replay_history, 4);
	ck_assert_uint_eq(st.history_resets, 1);
	ck_assert_uint_eq(st.drops_error, 1);
	ck_assert_uint_eq(st.drops_gap, 3);
	ck_assert_uint_eq(st.drops_stall + st.drops_lifetime + st.unsubscribes, 0);
	ck_assert_uint_eq(st.subscribers + st.parked, 0);
	free_all(h);
}
END_TEST

/* ---- restarts */

START_TEST(test_history_restart_new_epoch)
{
	struct sse_hub *h = new_hub(4);
	int status = -1;

	fill_log(h, 20);
	ck_assert_int_eq(subscribe(h, 0, NULL), SSE_REPLAY_LIVE);
	ck_assert_int_eq(subscribe(h, 1, EPOCH "18"), SSE_REPLAY_FOUND);
	ck_assert_int_eq(subscribe(h, 2, EPOCH "3"), SSE_REPLAY_HISTORY);
	/* The log lost its data: a new epoch, from 1. The parked one fails
	 * now (its numbers mean nothing), its question cancelled... */
	ck_assert_int_eq(sse_hub_restart(h, "e2-", 1), 0);
	ck_assert_int_eq(cancels, 1);
	ck_assert_int_eq(drop_err[2], SSE_ERR_GAP);
	ck_assert_uint_eq(sse_replay_next_number(sse_hub_ring(h)), 1);
	/* ...the followers, caught up or not, at the next pass. */
	ck_assert_int_eq(sse_hub_flush(h), 0);
	ck_assert_int_eq(drop_err[0], SSE_ERR_GAP);
	ck_assert_int_eq(drop_err[1], SSE_ERR_GAP);
	ck_assert_int_eq(drops, 3);
	/* A client back with an old id gets the reset, named "e2-0". */
	ck_assert_int_eq(sse_hub_subscribe(h, ss[3], EPOCH "20", 6, &status), 0);
	ck_assert_int_eq(status, SSE_REPLAY_UNKNOWN);
	ck_assert_int_eq(nq, 1);
	ck_assert_int_eq(sse_hub_publish_frame(h, "id: e2-1\ndata: new\n\n", 20, 0, NULL), 0);
	ck_assert_int_eq(sse_hub_flush(h), 0);
	expect_bytes(3, ":\nid: e2-0\nevent: sse-reset\ndata:\n\nid: e2-1\ndata: new\n\n");
	ck_assert_uint_eq(ws[3].len, strlen(":\nid: e2-0\nevent: sse-reset\ndata:\n\nid: e2-1\ndata: new\n\n"));
	free_all(h);
}
END_TEST

START_TEST(test_history_restart_same_epoch_keeps_parked)
{
	/* The node skips ahead in the same log (it could not fill 21..29 in
	 * itself): a parked subscriber keeps its place and gets them from
	 * the log. */
	struct sse_hub *h = new_hub(4);

	fill_log(h, 20);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "3"), SSE_REPLAY_HISTORY);
	for (int i = 0; i < 9; i++)
		log_append_sized(0);
	ck_assert_int_eq(sse_hub_restart(h, NULL, 30), 0);
	ck_assert_int_eq(sse_hub_restart(h, NULL, 29), SSE_ERR_INVALID);
	publish_live(h); /* 30 */
	while (loop_turn() > 0)
		;
	publish_live(h);
	expect_got(0, range("", 4, 31));
	ck_assert_int_eq(drops, 0);
	free_all(h);
}
END_TEST

START_TEST(test_history_config_checks)
{
	struct sse_hub *h = new_hub(16);
	struct sse_history bad = provider;

	bad.cancel = NULL;
	ck_assert_int_eq(sse_hub_set_history(h, &bad), SSE_ERR_INVALID);
	bad = provider;
	bad.size = 1;
	ck_assert_int_eq(sse_hub_set_history(h, &bad), SSE_ERR_INVALID);
	fill_log(h, 10);
	ck_assert_int_eq(subscribe(h, 0, EPOCH "1"), SSE_REPLAY_FOUND);
	ck_assert_int_eq(sse_hub_set_history(h, NULL), 0);
	ck_assert_int_eq(sse_hub_set_history(h, &provider), 0);
	/* Not another provider while one is parked on this one. */
	ck_assert_int_eq(subscribe(h, 1, EPOCH "0"), SSE_REPLAY_FOUND);
	fill_log(h, 10);
	ck_assert_int_eq(subscribe(h, 2, EPOCH "1"), SSE_REPLAY_HISTORY);
	ck_assert_int_eq(sse_hub_set_history(h, &provider), SSE_ERR_INVALID);
	/* Calls on a question not out are refused or ignored. */
	while (loop_turn() > 0)
		;
	ck_assert_int_eq(sse_history_frame(NULL, 1, "x", 1), SSE_ERR_INVALID);
	sse_history_done(NULL, 0);
	free_all(h);
}
END_TEST

Suite *history_suite(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("resume");

	tcase_add_test(tc, test_history_resume_deep_in_log_in_pages);
	tcase_add_test(tc, test_history_answer_overlapping_ring_is_merged);
	tcase_add_test(tc, test_history_live_publishes_before_the_answer);
	tcase_add_test(tc, test_history_node_behind_log);
	tcase_add_test(tc, test_history_answer_within_fetch);
	suite_add_tcase(s, tc);
	tc = tcase_create("answers");
	tcase_add_test(tc, test_history_gap_gets_reset);
	tcase_add_test(tc, test_history_unknown_gets_reset);
	tcase_add_test(tc, test_history_error_drops_subscriber);
	tcase_add_test(tc, test_history_malformed_answer_drops_subscriber);
	tcase_add_test(tc, test_history_leaving_cancels);
	suite_add_tcase(s, tc);
	tc = tcase_create("room");
	tcase_add_test(tc, test_history_frame_larger_than_room);
	tcase_add_test(tc, test_history_provider_taken_off_drops_parked);
	tcase_add_test(tc, test_history_frame_larger_than_queue_limit_drops);
	tcase_add_test(tc, test_history_heartbeats_while_parked);
	suite_add_tcase(s, tc);
	tc = tcase_create("restart");
	tcase_add_test(tc, test_history_restart_new_epoch);
	tcase_add_test(tc, test_history_restart_same_epoch_keeps_parked);
	tcase_add_test(tc, test_history_config_checks);
	suite_add_tcase(s, tc);
	tc = tcase_create("counters");
	tcase_add_test(tc, test_history_counters);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(history_suite());
}
