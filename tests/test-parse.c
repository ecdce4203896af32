/*
 * The parser against the WHATWG HTML standard, "Server-sent events":
 * "Parsing an event stream" and "Interpreting an event stream".
 *
 * Every stream is fed whole, one byte at a time, and split in two at every
 * position; all must report the same thing. What is reported is written
 * into a log whose expected text comes from the standard, one entry a line:
 *
 *     message[<type>][<data>][<last id>]   a dispatched event
 *     retry[<ms>]  comment[<text>]         the optional callbacks
 *     error[<code>]                        feed failed (then it must stick)
 *     last_id[<id>]                        sse_parser_last_id() at the end
 *
 * Bytes are escaped in the log as \n \r \\ and \xNN.
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

/* ---- what the callbacks saw ---- */

struct rec {
	char *log;
	size_t len, cap;
	struct sse_parser *p;
	int stop_message_at; /* that call (1-based) returns non-zero; 0: never */
	int stop_retry_at;
	int stop_comment_at;
	int messages, retries, comments;
};

static void rec_put(struct rec *r, const char *s, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap != 0 ? r->cap : 256;

		while (cap < r->len + n + 1)
			cap *= 2;
		r->log = realloc(r->log, cap);
		ck_assert_ptr_nonnull(r->log);
		r->cap = cap;
	}
	memcpy(r->log + r->len, s, n);
	r->len += n;
	r->log[r->len] = '\0';
}

static void rec_str(struct rec *r, const char *s)
{
	rec_put(r, s, strlen(s));
}

static void rec_text(struct rec *r, const char *s, size_t n)
{
	char esc[8];
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			rec_str(r, "\\n");
		else if (c == '\r')
			rec_str(r, "\\r");
		else if (c == '\\')
			rec_str(r, "\\\\");
		else if (c < 0x20 || c >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			rec_str(r, esc);
		} else
			rec_put(r, s + i, 1);
	}
}

static void rec_field(struct rec *r, const char *s, size_t n)
{
	rec_str(r, "[");
	rec_text(r, s, n);
	rec_str(r, "]");
}

static int on_message(const struct sse_message *m, void *user)
{
	struct rec *r = user;
	size_t id_len;
	const char *id = sse_parser_last_id(r->p, &id_len);

	ck_assert_ptr_nonnull(m->type);
	ck_assert_ptr_nonnull(m->data);
	ck_assert_ptr_nonnull(m->last_id);
	/* the parser NUL-terminates all three, for C callers' convenience */
	ck_assert_int_eq(m->type[m->type_len], '\0');
	ck_assert_int_eq(m->data[m->data_len], '\0');
	ck_assert_int_eq(m->last_id[m->last_id_len], '\0');
	/* dispatch sets the last event ID string before firing the event */
	ck_assert_uint_eq(id_len, m->last_id_len);
	ck_assert_int_eq(memcmp(id, m->last_id, id_len), 0);
	rec_str(r, "message");
	rec_field(r, m->type, m->type_len);
	rec_field(r, m->data, m->data_len);
	rec_field(r, m->last_id, m->last_id_len);
	rec_str(r, "\n");
	return ++r->messages == r->stop_message_at;
}

static int on_retry(uint64_t ms, void *user)
{
	struct rec *r = user;
	char text[32];

	snprintf(text, sizeof(text), "retry[%" PRIu64 "]\n", ms);
	rec_str(r, text);
	return ++r->retries == r->stop_retry_at;
}

static int on_comment(const char *text, size_t len, void *user)
{
	struct rec *r = user;

	ck_assert(text != NULL || len == 0);
	rec_str(r, "comment");
	rec_field(r, text, len);
	rec_str(r, "\n");
	return ++r->comments == r->stop_comment_at;
}

static const char *err_name(int rc)
{
	switch (rc) {
	case SSE_ERR_CALLBACK:
		return "CALLBACK";
	case SSE_ERR_TOO_LARGE:
		return "TOO_LARGE";
	case SSE_ERR_NOMEM:
		return "NOMEM";
	case SSE_ERR_INVALID:
		return "INVALID";
	}
	return "other";
}

/* ---- running a stream ---- */

struct opts {
	size_t limit; /* 0: leave the default */
	int stop_message_at, stop_retry_at, stop_comment_at;
	int no_retry, no_comment; /* leave the optional callbacks unset */
};

static const struct opts defaults;

struct harness {
	struct test_alloc ta;
	struct rec r;
	struct sse_parser *p;
};

static void harness_init(struct harness *h, const struct opts *o)
{
	struct sse_parser_callbacks cb = {on_message, on_retry, on_comment};

	if (o->no_retry)
		cb.on_retry = NULL;
	if (o->no_comment)
		cb.on_comment = NULL;
	memset(&h->r, 0, sizeof(h->r));
	h->r.stop_message_at = o->stop_message_at;
	h->r.stop_retry_at = o->stop_retry_at;
	h->r.stop_comment_at = o->stop_comment_at;
	rec_str(&h->r, "");
	test_alloc_init(&h->ta, 0);
	ck_assert_int_eq(sse_parser_new(&h->p, &cb, &h->r, &h->ta.hooks), 0);
	h->r.p = h->p;
	if (o->limit != 0)
		ck_assert_int_eq(sse_parser_set_limit(h->p, o->limit), 0);
}

/* A failed parser must keep failing the same way. */
static void harness_failed(struct harness *h, int rc)
{
	ck_assert_int_eq(sse_parser_feed(h->p, "data:x\n\n", 8), rc);
	ck_assert_int_eq(sse_parser_end(h->p), rc);
	rec_str(&h->r, "error[");
	rec_str(&h->r, err_name(rc));
	rec_str(&h->r, "]\n");
}

/* Record the last id, free the parser, prove nothing leaked; the log is
 * the caller's to free. */
static char *harness_fini(struct harness *h)
{
	size_t len;
	const char *id = sse_parser_last_id(h->p, &len);

	rec_str(&h->r, "last_id");
	rec_field(&h->r, id, len);
	rec_str(&h->r, "\n");
	sse_parser_free(h->p);
	ck_assert_int_eq(h->ta.live_blocks, 0);
	ck_assert_int_eq(h->ta.live_bytes, 0);
	return h->r.log;
}

/* Feed in pieces ending at cuts[0..ncuts) and then the rest, then end. */
static int feed_pieces(struct harness *h, const char *in, size_t len,
		       const size_t *cuts, size_t ncuts)
{
	size_t at = 0, i;
	int rc = 0;

	for (i = 0; i <= ncuts && rc == 0; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		rc = sse_parser_feed(h->p, in + at, to - at);
		at = to;
	}
	return rc != 0 ? rc : sse_parser_end(h->p);
}

static char *run(const char *in, size_t len, const size_t *cuts, size_t ncuts,
		 const struct opts *o)
{
	struct harness h;
	int rc;

	harness_init(&h, o);
	rc = feed_pieces(&h, in, len, cuts, ncuts);
	if (rc != 0)
		harness_failed(&h, rc);
	return harness_fini(&h);
}

static void check_log(char *got, const char *want, const char *how, size_t at)
{
	ck_assert_msg(strcmp(got, want) == 0, "fed %s %zu:\n--- got:\n%s--- want:\n%s",
		      how, at, got, want);
	free(got);
}

static void expect_opts(const char *in, size_t len, const struct opts *o, const char *want)
{
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));
	size_t i;

	ck_assert_ptr_nonnull(cuts);
	check_log(run(in, len, NULL, 0, o), want, "whole, length", len);
	for (i = 1; i < len; i++)
		cuts[i - 1] = i;
	check_log(run(in, len, cuts, len > 0 ? len - 1 : 0, o), want, "bytewise, length", len);
	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		check_log(run(in, len, cuts, 1, o), want, "in two, split at", i);
	}
	free(cuts);
}

/* in must be a string literal: its size counts embedded NULs. */
#define EXPECT_OPTS(in, o, want) expect_opts("" in, sizeof(in) - 1, (o), (want))
#define EXPECT(in, want) EXPECT_OPTS(in, &defaults, want)

/* Several connections: each segment is fed (whole, or bytewise) and then
 * sse_parser_end() is called, as when a client reconnects. */
static void expect_connections(const char *const *segs, size_t n, const char *want)
{
	int bytewise;

	for (bytewise = 0; bytewise <= 1; bytewise++) {
		struct harness h;
		size_t i, j;

		harness_init(&h, &defaults);
		for (i = 0; i < n; i++) {
			size_t len = strlen(segs[i]);

			for (j = 0; bytewise && j < len; j++)
				ck_assert_int_eq(sse_parser_feed(h.p, segs[i] + j, 1), 0);
			if (!bytewise)
				ck_assert_int_eq(sse_parser_feed(h.p, segs[i], len), 0);
			ck_assert_int_eq(sse_parser_end(h.p), 0);
		}
		check_log(harness_fini(&h), want, "connections, bytewise", (size_t)bytewise);
	}
}

/* ---- the standard's own examples ---- */

START_TEST(test_parse_spec_stock_ticker)
{
	/* "would cause an event message with the interface MessageEvent to be
	 * dispatched on the EventSource object. The event's data attribute
	 * would contain the string "YHOO\n+2\n10"" */
	EXPECT("data: YHOO\ndata: +2\ndata: 10\n\n",
	       "message[message][YHOO\\n+2\\n10][]\n"
	       "last_id[]\n");
}
END_TEST

START_TEST(test_parse_spec_four_blocks)
{
	/* The comment block fires nothing; "first event" with last id "1";
	 * "second event" after "id" with no value reset it to ""; the last
	 * block fires " third event", with a single leading space. */
	EXPECT(": test stream\n"
	       "\n"
	       "data: first event\n"
	       "id: 1\n"
	       "\n"
	       "data:second event\n"
	       "id\n"
	       "\n"
	       "data:  third event\n"
	       "\n",
	       "comment[ test stream]\n"
	       "message[message][first event][1]\n"
	       "message[message][second event][]\n"
	       "message[message][ third event][]\n"
	       "last_id[]\n");
}
END_TEST

START_TEST(test_parse_spec_four_blocks_interrupted)
{
	/* "if the connection died between this block and the next, the server
	 * would be sent a Last-Event-ID header with the value 1" */
	EXPECT(": test stream\n\ndata: first event\nid: 1\n\n",
	       "comment[ test stream]\n"
	       "message[message][first event][1]\n"
	       "last_id[1]\n");
	/* "the end of the stream is not enough to trigger the dispatch of the
	 * last event" */
	EXPECT("data:  third event\n", "last_id[]\n");
}
END_TEST

START_TEST(test_parse_spec_empty_data)
{
	/* "The first block fires events with the data set to the empty string,
	 * as would the last block if it was followed by a blank line. The middle
	 * block fires an event with the data set to a single newline character.
	 * The last block is discarded because it is not followed by a blank
	 * line." */
	EXPECT("data\n\ndata\ndata\n\ndata:",
	       "message[message][][]\n"
	       "message[message][\\n][]\n"
	       "last_id[]\n");
}
END_TEST

START_TEST(test_parse_spec_space_after_colon)
{
	/* "fires two identical events ... the space after the colon is ignored
	 * if present" */
	EXPECT("data:test\n\ndata: test\n\n",
	       "message[message][test][]\n"
	       "message[message][test][]\n"
	       "last_id[]\n");
}
END_TEST

START_TEST(test_parse_spec_introduction)
{
	EXPECT("data: This is the first message.\n\n"
	       "data: This is the second message, it\n"
	       "data: has two lines.\n\n"
	       "data: This is the third message.\n\n",
	       "message[message][This is the first message.][]\n"
	       "message[message][This is the second message, it\\nhas two lines.][]\n"
	       "message[message][This is the third message.][]\n"
	       "last_id[]\n");
	EXPECT("event: add\ndata: 73857293\n\n"
	       "event: remove\ndata: 2153\n\n"
	       "event: add\ndata: 113411\n\n",
	       "message[add][73857293][]\n"
	       "message[remove][2153][]\n"
	       "message[add][113411][]\n"
	       "last_id[]\n");
}
END_TEST

/* ---- line endings ---- */

START_TEST(test_parse_line_endings_each_kind)
{
	const char *want = "message[message][a\\nb][]\nlast_id[]\n";

	EXPECT("data:a\ndata:b\n\n", want);
	EXPECT("data:a\rdata:b\r\r", want);
	EXPECT("data:a\r\ndata:b\r\n\r\n", want);
	EXPECT("data:a\rdata:b\r\n\n", want);
	EXPECT("data:a\ndata:b\r\r\n", want);
}
END_TEST

START_TEST(test_parse_line_endings_crlf_is_one_ending)
{
	/* were the LF of a CRLF a line of its own, "a" would fire alone */
	EXPECT("data:a\r\ndata:b\r\n\r\n", "message[message][a\\nb][]\nlast_id[]\n");
	EXPECT("\r\n\r\ndata:x\r\n\r\n", "message[message][x][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_line_endings_lf_then_cr)
{
	/* LF then CR is two line endings: a blank line follows "x" */
	EXPECT("data:x\n\rdata:y\n\n",
	       "message[message][x][]\nmessage[message][y][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_line_endings_cr_before_non_lf)
{
	/* a CR ending a chunk ends the line; the next chunk starts a new one */
	static const size_t cut[] = {7};

	check_log(run("data:a\rdata:b\r\r", 15, cut, 1, &defaults),
		  "message[message][a\\nb][]\nlast_id[]\n", "cut at", 7);
	EXPECT("data:a\r\rdata:b\r\r",
	       "message[message][a][]\nmessage[message][b][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_line_endings_crlf_split_across_feeds)
{
	/* CR | LF, and CR | (empty feed) | LF: the LF is still the CR's */
	static const size_t cut[] = {7};
	static const size_t cuts[] = {7, 7, 7};
	const char *in = "data:a\r\ndata:b\r\n\r\n";
	const char *want = "message[message][a\\nb][]\nlast_id[]\n";

	check_log(run(in, strlen(in), cut, 1, &defaults), want, "cut at", 7);
	check_log(run(in, strlen(in), cuts, 3, &defaults), want, "empty feeds at", 7);
}
END_TEST

/* ---- byte order mark ---- */

START_TEST(test_parse_bom_at_start_skipped)
{
	/* splitting at every position also splits the BOM itself */
	EXPECT("\xEF\xBB\xBF" "data:x\n\n", "message[message][x][]\nlast_id[]\n");
	EXPECT("\xEF\xBB\xBF", "last_id[]\n");
	EXPECT("\xEF\xBB\xBF" "\n" "data:x\n\n", "message[message][x][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_bom_only_once)
{
	/* a second BOM is part of the first line's field name: unknown field */
	EXPECT("\xEF\xBB\xBF\xEF\xBB\xBF" "data:x\n\ndata:y\n\n",
	       "message[message][y][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_bom_not_at_start_is_data)
{
	EXPECT("data:x\n\n\xEF\xBB\xBF" "data:y\n\n", "message[message][x][]\nlast_id[]\n");
	EXPECT("data:\xEF\xBB\xBF\n\n", "message[message][\\xef\\xbb\\xbf][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_bom_partial_is_data)
{
	/* the bytes of a BOM that does not complete begin the first line */
	EXPECT("\xEF" "data:x\n\ndata:y\n\n", "message[message][y][]\nlast_id[]\n");
	EXPECT("\xEF\xBB" "data:x\n\ndata:y\n\n", "message[message][y][]\nlast_id[]\n");
	EXPECT("\xEF\xBB\n\ndata:y\n\n", "message[message][y][]\nlast_id[]\n");
	EXPECT("\xEF\xBB:x\n\n", "last_id[]\n");
}
END_TEST

/* ---- fields ---- */

START_TEST(test_parse_fields_value_after_first_colon)
{
	EXPECT("data:a:b\n\n", "message[message][a:b][]\nlast_id[]\n");
	EXPECT("data::\n\n", "message[message][:][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_fields_one_space_removed)
{
	EXPECT("data:  x \n\n", "message[message][ x ][]\nlast_id[]\n");
	EXPECT("data: \n\n", "message[message][][]\nlast_id[]\n");
	EXPECT("data:\tx\n\n", "message[message][\\x09x][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_fields_no_colon_means_empty_value)
{
	EXPECT("data\ndata\n\n", "message[message][\\n][]\nlast_id[]\n");
	EXPECT("event\ndata:x\n\n", "message[message][x][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_fields_unknown_ignored)
{
	/* names are compared exactly: case and spaces matter */
	EXPECT("foo: bar\nData: x\nDATA:y\ndata :z\n data:w\n\n", "last_id[]\n");
	EXPECT("foo: bar\ndata: x\nbar\n\n", "message[message][x][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_fields_event_type)
{
	/* the type buffer is reset at every dispatch, fired or not */
	EXPECT("event: update\ndata: x\n\ndata: y\n\n",
	       "message[update][x][]\nmessage[message][y][]\nlast_id[]\n");
	EXPECT("event: a\n\ndata: x\n\n", "message[message][x][]\nlast_id[]\n");
	EXPECT("event: a\nevent: b\ndata: x\n\n", "message[b][x][]\nlast_id[]\n");
	EXPECT("event:\ndata: x\n\n", "message[message][x][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_fields_comments)
{
	EXPECT(":\n::x\n: y\n", "comment[]\ncomment[:x]\ncomment[ y]\nlast_id[]\n");
	/* a comment inside a block neither ends nor alters the event */
	EXPECT("data:a\n: c\ndata:b\n\n",
	       "comment[ c]\nmessage[message][a\\nb][]\nlast_id[]\n");
	EXPECT_OPTS("data:a\n: c\ndata:b\n\n", &(struct opts){.no_comment = 1},
		    "message[message][a\\nb][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_fields_raw_bytes)
{
	/* no UTF-8 decoding: NUL and invalid sequences pass through */
	EXPECT("data:a\0b\xff\n\n", "message[message][a\\x00b\\xff][]\nlast_id[]\n");
}
END_TEST

/* ---- id ---- */

START_TEST(test_parse_id_persists)
{
	EXPECT("id: 1\ndata: a\n\ndata: b\n\n",
	       "message[message][a][1]\nmessage[message][b][1]\nlast_id[1]\n");
	/* the id may come after the data in its block */
	EXPECT("data: a\nid: 3\n\n", "message[message][a][3]\nlast_id[3]\n");
}
END_TEST

START_TEST(test_parse_id_with_nul_ignored)
{
	EXPECT("id: 1\n\nid: 2\0x\ndata: a\n\n", "message[message][a][1]\nlast_id[1]\n");
}
END_TEST

START_TEST(test_parse_id_empty_resets)
{
	EXPECT("id: 1\ndata: a\n\nid:\ndata: b\n\n",
	       "message[message][a][1]\nmessage[message][b][]\nlast_id[]\n");
	EXPECT("id: 1\n\nid\n\n", "last_id[]\n");
}
END_TEST

START_TEST(test_parse_id_only_block)
{
	/* no data: nothing fires, but the last event ID string is set */
	EXPECT("id: 5\n\n", "last_id[5]\n");
	EXPECT("id: 5\n\ndata: x\n\n", "message[message][x][5]\nlast_id[5]\n");
}
END_TEST

START_TEST(test_parse_id_set_only_at_dispatch)
{
	/* an id in a block that never ends is never committed */
	EXPECT("id: 1\ndata: a\n\nid: 2\ndata: b\n", "message[message][a][1]\nlast_id[1]\n");
	EXPECT("id: 2\n", "last_id[]\n");
}
END_TEST

START_TEST(test_parse_id_value_kept_verbatim)
{
	EXPECT("id:  7 \n\n", "last_id[ 7 ]\n");
	EXPECT("id: \xC3\xA9\n\n", "last_id[\\xc3\\xa9]\n");
}
END_TEST

/* ---- retry ---- */

START_TEST(test_parse_retry_digits)
{
	EXPECT("retry: 1000\n", "retry[1000]\nlast_id[]\n");
	EXPECT("retry:0\n", "retry[0]\nlast_id[]\n");
	EXPECT("retry: 007\n", "retry[7]\nlast_id[]\n");
	/* retry neither dispatches nor touches the data */
	EXPECT("data: x\nretry: 5\n\n", "retry[5]\nmessage[message][x][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_retry_not_digits_ignored)
{
	EXPECT("retry: 10a\nretry: -1\nretry: +5\nretry: 1.5\nretry:  5\nretry: 5 \n"
	       "retry: \xD9\xA3\n",
	       "last_id[]\n");
}
END_TEST

START_TEST(test_parse_retry_empty_ignored)
{
	EXPECT("retry:\nretry: \nretry\n", "last_id[]\n");
}
END_TEST

START_TEST(test_parse_retry_saturates)
{
	EXPECT("retry: 18446744073709551615\n", "retry[18446744073709551615]\nlast_id[]\n");
	EXPECT("retry: 18446744073709551616\n", "retry[18446744073709551615]\nlast_id[]\n");
	EXPECT("retry: 99999999999999999999999999999999\n",
	       "retry[18446744073709551615]\nlast_id[]\n");
	/* saturated or not, a non-digit still makes it invalid */
	EXPECT("retry: 99999999999999999999999999999999x\n", "last_id[]\n");
}
END_TEST

START_TEST(test_parse_retry_without_callback)
{
	EXPECT_OPTS("retry: 5\ndata: x\n\n", &(struct opts){.no_retry = 1},
		    "message[message][x][]\nlast_id[]\n");
}
END_TEST

/* ---- end of stream ---- */

START_TEST(test_parse_end_discards_unterminated_event)
{
	/* without the discard, the blank line of the next connection would
	 * fire "a" */
	static const char *const segs[] = {"data: a\n", "\n"};

	expect_connections(segs, 2, "last_id[]\n");
}
END_TEST

START_TEST(test_parse_end_discards_partial_line)
{
	static const char *const segs[] = {"data: a", "\n\n"};
	static const char *const segs2[] = {"data: a", "b\n\n"};

	expect_connections(segs, 2, "last_id[]\n");
	expect_connections(segs2, 2, "last_id[]\n");
}
END_TEST

START_TEST(test_parse_end_discards_event_type)
{
	static const char *const segs[] = {"event: t\n", "data: x\n\n"};

	expect_connections(segs, 2, "message[message][x][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_end_keeps_last_id)
{
	static const char *const segs[] = {"id: 9\n\n", "data: x\n\n"};
	static const char *const uncommitted[] = {"id: 1\n\nid: 2\n", "data: x\n\n"};

	expect_connections(segs, 2, "message[message][x][9]\nlast_id[9]\n");
	expect_connections(uncommitted, 2, "message[message][x][1]\nlast_id[1]\n");
}
END_TEST

START_TEST(test_parse_end_resets_bom)
{
	static const char *const segs[] = {
		"\xEF\xBB\xBF" "data: a\n\n", "\xEF\xBB\xBF" "data: b\n\n"};
	static const char *const mid_bom[] = {"\xEF\xBB", "\xEF\xBB\xBF" "data: b\n\n"};

	expect_connections(segs, 2,
			   "message[message][a][]\nmessage[message][b][]\nlast_id[]\n");
	expect_connections(mid_bom, 2, "message[message][b][]\nlast_id[]\n");
}
END_TEST

/* ---- callbacks that stop the parser ---- */

START_TEST(test_parse_callback_message_stops)
{
	/* nothing after the refusing callback is reported, even in the same chunk */
	EXPECT_OPTS("data: a\n\ndata: b\n\n", &(struct opts){.stop_message_at = 1},
		    "message[message][a][]\nerror[CALLBACK]\nlast_id[]\n");
	EXPECT_OPTS("id: 1\ndata: a\n\nid: 2\ndata: b\n\ndata: c\n\n",
		    &(struct opts){.stop_message_at = 2},
		    "message[message][a][1]\nmessage[message][b][2]\nerror[CALLBACK]\n"
		    "last_id[2]\n");
}
END_TEST

START_TEST(test_parse_callback_retry_stops)
{
	EXPECT_OPTS("retry: 5\ndata: a\n\n", &(struct opts){.stop_retry_at = 1},
		    "retry[5]\nerror[CALLBACK]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_callback_comment_stops)
{
	EXPECT_OPTS(": x\ndata: a\n\n", &(struct opts){.stop_comment_at = 1},
		    "comment[ x]\nerror[CALLBACK]\nlast_id[]\n");
}
END_TEST

/* ---- limits ---- */

START_TEST(test_parse_limit_line)
{
	const struct opts o = {.limit = 8};

	/* the limit counts the line without its ending */
	EXPECT_OPTS("data:123\r\n\r\n", &o, "message[message][123][]\nlast_id[]\n");
	EXPECT_OPTS("data:a\n\ndata:1234\n\n", &o,
		    "message[message][a][]\nerror[TOO_LARGE]\nlast_id[]\n");
	EXPECT_OPTS(":12345678\n", &o, "error[TOO_LARGE]\nlast_id[]\n");
	/* a line need not end to be too long */
	EXPECT_OPTS("data:1234", &o, "error[TOO_LARGE]\nlast_id[]\n");
	/* a skipped BOM is not part of the line */
	EXPECT_OPTS("\xEF\xBB\xBF" "data:123\n\n", &o, "message[message][123][]\nlast_id[]\n");
}
END_TEST

START_TEST(test_parse_limit_data)
{
	const struct opts o = {.limit = 8};

	/* the limit counts the data as delivered: "12\n12\n12" is 8 bytes */
	EXPECT_OPTS("data:12\ndata:12\ndata:12\n\n", &o,
		    "message[message][12\\n12\\n12][]\nlast_id[]\n");
	EXPECT_OPTS("data:12\ndata:12\ndata:12\ndata:\n\n", &o, "error[TOO_LARGE]\nlast_id[]\n");
}
END_TEST

/* Feed one data line of len bytes (without its LF) in 4 KiB pieces, then
 * the blank line; the first error, if any, must be want. */
static void feed_line_of(struct sse_parser *p, size_t len, int want)
{
	static char chunk[4096];
	size_t left = len - 5, n;
	int rc;

	memset(chunk, 'x', sizeof(chunk));
	rc = sse_parser_feed(p, "data:", 5);
	for (; left > 0 && rc == 0; left -= n) {
		n = left < sizeof(chunk) ? left : sizeof(chunk);
		rc = sse_parser_feed(p, chunk, n);
	}
	if (rc == 0)
		rc = sse_parser_feed(p, "\n\n", 2);
	ck_assert_int_eq(rc, want);
}

START_TEST(test_parse_limit_default)
{
	struct harness h;

	harness_init(&h, &defaults);
	feed_line_of(h.p, SSE_PARSER_DEFAULT_LIMIT, 0);
	ck_assert_int_eq(h.r.messages, 1);
	free(harness_fini(&h));
	harness_init(&h, &defaults);
	feed_line_of(h.p, SSE_PARSER_DEFAULT_LIMIT + 1, SSE_ERR_TOO_LARGE);
	ck_assert_int_eq(h.r.messages, 0);
	free(harness_fini(&h));
}
END_TEST

START_TEST(test_parse_limit_zero_means_default)
{
	struct harness h;

	harness_init(&h, &(struct opts){.limit = 4});
	ck_assert_int_eq(sse_parser_set_limit(h.p, 0), 0);
	feed_line_of(h.p, 1000, 0);
	ck_assert_int_eq(h.r.messages, 1);
	free(harness_fini(&h));
}
END_TEST

/* ---- arguments ---- */

static void *alloc_only(size_t size, void *ctx)
{
	(void)ctx;
	return malloc(size);
}

START_TEST(test_parse_args_new)
{
	struct sse_parser_callbacks cb = {on_message, NULL, NULL};
	struct sse_parser_callbacks no_msg = {NULL, on_retry, on_comment};
	struct sse_allocator partial = {alloc_only, NULL, NULL, NULL};
	struct sse_parser *sentinel = (struct sse_parser *)&cb;
	struct sse_parser *p = sentinel;

	ck_assert_int_eq(sse_parser_new(NULL, &cb, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_parser_new(&p, NULL, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_parser_new(&p, &no_msg, NULL, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_parser_new(&p, &cb, NULL, &partial), SSE_ERR_INVALID);
	ck_assert_ptr_eq(p, sentinel);
	/* NULL allocator: libc */
	ck_assert_int_eq(sse_parser_new(&p, &cb, NULL, NULL), 0);
	ck_assert_ptr_ne(p, sentinel);
	sse_parser_free(p);
	sse_parser_free(NULL);
}
END_TEST

START_TEST(test_parse_args_calls)
{
	struct harness h;
	size_t len = 99;

	ck_assert_int_eq(sse_parser_feed(NULL, "x", 1), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_parser_end(NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_parser_set_limit(NULL, 1), SSE_ERR_INVALID);
	ck_assert_ptr_null(sse_parser_last_id(NULL, &len));
	ck_assert_uint_eq(len, 0);
	harness_init(&h, &defaults);
	ck_assert_str_eq(sse_parser_last_id(h.p, NULL), "");
	/* a bad argument is refused without failing the parser */
	ck_assert_int_eq(sse_parser_feed(h.p, NULL, 1), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_parser_feed(h.p, NULL, 0), 0);
	ck_assert_int_eq(sse_parser_feed(h.p, "id: 4\ndata: x\n\n", 15), 0);
	ck_assert_str_eq(sse_parser_last_id(h.p, NULL), "4");
	check_log(harness_fini(&h), "message[message][x][4]\nlast_id[4]\n", "args", 0);
}
END_TEST

/* ---- allocation failure ---- */

/* Needs every buffer, growth past its first size, and lines spanning chunks. */
static const char workload[] =
	"id: 1\nevent: tick\ndata: "
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"\n\n: c\nretry: 5\nid: 22\ndata: y\n\nevent: e\nid: 333\ndata: z\n\n";

static int feed_workload(struct sse_parser *p)
{
	size_t len = sizeof(workload) - 1, at, n;
	int rc = 0;

	for (at = 0; at < len && rc == 0; at += n) {
		n = len - at < 7 ? len - at : 7;
		rc = sse_parser_feed(p, workload + at, n);
	}
	return rc;
}

/* One run whose allocator fails at call fail_at; returns whether any
 * allocation failed, after checking the failure was clean. */
static int run_failing_at(long fail_at, const char *full_log)
{
	struct sse_parser_callbacks cb = {on_message, on_retry, on_comment};
	struct sse_parser *sentinel = (struct sse_parser *)&cb, *p = sentinel;
	struct test_alloc ta;
	struct rec r = {0};
	int rc, failed;

	test_alloc_init(&ta, fail_at);
	rec_str(&r, "");
	rc = sse_parser_new(&p, &cb, &r, &ta.hooks);
	if (rc != 0) {
		ck_assert_int_eq(rc, SSE_ERR_NOMEM);
		ck_assert_ptr_eq(p, sentinel);
		ck_assert_int_eq(ta.live_blocks, 0);
		free(r.log);
		return 1;
	}
	r.p = p;
	rc = feed_workload(p);
	failed = ta.calls >= fail_at;
	ck_assert_int_eq(rc, failed ? SSE_ERR_NOMEM : 0);
	if (rc != 0)
		ck_assert_int_eq(sse_parser_feed(p, "\n", 1), SSE_ERR_NOMEM);
	/* what was reported before the failure is exactly what a good run reports */
	ck_assert_int_eq(strncmp(r.log, full_log, r.len), 0);
	sse_parser_free(p);
	ck_assert_int_eq(ta.live_blocks, 0);
	ck_assert_int_eq(ta.live_bytes, 0);
	free(r.log);
	return failed;
}

START_TEST(test_parse_nomem_every_allocation)
{
	const char *full = "message[tick][" /* 240 x */
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "][1]\ncomment[ c]\nretry[5]\nmessage[message][y][22]\nmessage[e][z][333]\n";
	long n;

	for (n = 1; n < 1000; n++)
		if (!run_failing_at(n, full))
			break;
	ck_assert_int_lt(n, 1000);
	ck_assert_int_gt(n, 5); /* the workload did allocate several times */
}
END_TEST

/* ---- volume ---- */

START_TEST(test_parse_volume_many_events)
{
	struct harness h;
	char frame[64];
	char *in = malloc(10000 * sizeof(frame));
	size_t len = 0, at, n;
	int i;

	ck_assert_ptr_nonnull(in);
	for (i = 0; i < 10000; i++) {
		n = (size_t)snprintf(frame, sizeof(frame), "id: %d\r\nevent: tick\rdata: %d\n\n", i, i);
		memcpy(in + len, frame, n);
		len += n;
	}
	harness_init(&h, &defaults);
	for (at = 0; at < len; at += n) {
		n = len - at < 4093 ? len - at : 4093;
		ck_assert_int_eq(sse_parser_feed(h.p, in + at, n), 0);
	}
	ck_assert_int_eq(h.r.messages, 10000);
	ck_assert_str_eq(sse_parser_last_id(h.p, NULL), "9999");
	ck_assert_ptr_nonnull(strstr(h.r.log, "message[tick][1234][1234]\n"));
	free(harness_fini(&h));
	free(in);
}
END_TEST

START_TEST(test_parse_volume_long_line_in_small_chunks)
{
	struct harness h;
	size_t i;

	harness_init(&h, &defaults);
	ck_assert_int_eq(sse_parser_feed(h.p, "data: ", 6), 0);
	for (i = 0; i < 100000; i += 10)
		ck_assert_int_eq(sse_parser_feed(h.p, "0123456789", 10), 0);
	ck_assert_int_eq(sse_parser_feed(h.p, "\r", 1), 0);
	ck_assert_int_eq(sse_parser_feed(h.p, "\n\r\n", 3), 0);
	ck_assert_int_eq(h.r.messages, 1);
	ck_assert_uint_eq(strlen(h.r.log), strlen("message[message][][]\n") + 100000);
	free(harness_fini(&h));
}
END_TEST

/* ---- suite ---- */

static Suite *parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc;

	tc = tcase_create("spec-examples");
	tcase_add_test(tc, test_parse_spec_stock_ticker);
	tcase_add_test(tc, test_parse_spec_four_blocks);
	tcase_add_test(tc, test_parse_spec_four_blocks_interrupted);
	tcase_add_test(tc, test_parse_spec_empty_data);
	tcase_add_test(tc, test_parse_spec_space_after_colon);
	tcase_add_test(tc, test_parse_spec_introduction);
	suite_add_tcase(s, tc);

	tc = tcase_create("line-endings");
	tcase_add_test(tc, test_parse_line_endings_each_kind);
	tcase_add_test(tc, test_parse_line_endings_crlf_is_one_ending);
	tcase_add_test(tc, test_parse_line_endings_lf_then_cr);
	tcase_add_test(tc, test_parse_line_endings_cr_before_non_lf);
	tcase_add_test(tc, test_parse_line_endings_crlf_split_across_feeds);
	suite_add_tcase(s, tc);

	tc = tcase_create("bom");
	tcase_add_test(tc, test_parse_bom_at_start_skipped);
	tcase_add_test(tc, test_parse_bom_only_once);
	tcase_add_test(tc, test_parse_bom_not_at_start_is_data);
	tcase_add_test(tc, test_parse_bom_partial_is_data);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, test_parse_fields_value_after_first_colon);
	tcase_add_test(tc, test_parse_fields_one_space_removed);
	tcase_add_test(tc, test_parse_fields_no_colon_means_empty_value);
	tcase_add_test(tc, test_parse_fields_unknown_ignored);
	tcase_add_test(tc, test_parse_fields_event_type);
	tcase_add_test(tc, test_parse_fields_comments);
	tcase_add_test(tc, test_parse_fields_raw_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("id");
	tcase_add_test(tc, test_parse_id_persists);
	tcase_add_test(tc, test_parse_id_with_nul_ignored);
	tcase_add_test(tc, test_parse_id_empty_resets);
	tcase_add_test(tc, test_parse_id_only_block);
	tcase_add_test(tc, test_parse_id_set_only_at_dispatch);
	tcase_add_test(tc, test_parse_id_value_kept_verbatim);
	suite_add_tcase(s, tc);

	tc = tcase_create("retry");
	tcase_add_test(tc, test_parse_retry_digits);
	tcase_add_test(tc, test_parse_retry_not_digits_ignored);
	tcase_add_test(tc, test_parse_retry_empty_ignored);
	tcase_add_test(tc, test_parse_retry_saturates);
	tcase_add_test(tc, test_parse_retry_without_callback);
	suite_add_tcase(s, tc);

	tc = tcase_create("end");
	tcase_add_test(tc, test_parse_end_discards_unterminated_event);
	tcase_add_test(tc, test_parse_end_discards_partial_line);
	tcase_add_test(tc, test_parse_end_discards_event_type);
	tcase_add_test(tc, test_parse_end_keeps_last_id);
	tcase_add_test(tc, test_parse_end_resets_bom);
	suite_add_tcase(s, tc);

	tc = tcase_create("callbacks");
	tcase_add_test(tc, test_parse_callback_message_stops);
	tcase_add_test(tc, test_parse_callback_retry_stops);
	tcase_add_test(tc, test_parse_callback_comment_stops);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_parse_limit_line);
	tcase_add_test(tc, test_parse_limit_data);
	tcase_add_test(tc, test_parse_limit_default);
	tcase_add_test(tc, test_parse_limit_zero_means_default);
	suite_add_tcase(s, tc);

	tc = tcase_create("arguments");
	tcase_add_test(tc, test_parse_args_new);
	tcase_add_test(tc, test_parse_args_calls);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_add_test(tc, test_parse_nomem_every_allocation);
	suite_add_tcase(s, tc);

	tc = tcase_create("volume");
	tcase_add_test(tc, test_parse_volume_many_events);
	tcase_add_test(tc, test_parse_volume_long_line_in_small_chunks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(parse_suite());
}
