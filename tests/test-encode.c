/*
 * The encoder against the WHATWG event-stream format. Every expected byte
 * string below is written by hand from the standard's parsing rules (see
 * SSE-NOTES.md), never taken from the encoder's own output.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "test-common.h"

#define SENTINEL 0x5A

/* An event with only data set; strings are NUL-terminated for brevity. */
static struct sse_event data_event(const char *data, size_t len)
{
	return (struct sse_event){.data = data, .data_len = len, .retry = SSE_RETRY_NONE};
}

/* Encode ev and compare with the expected wire bytes, also checking that
 * sse_encode_size agrees and that nothing past the encoding is touched. */
static void expect_encoding(const struct sse_event *ev, const char *expected, size_t expected_len)
{
	char buf[4096];
	size_t size = 0, written = 0;

	memset(buf, SENTINEL, sizeof(buf));
	ck_assert_int_eq(sse_encode_size(ev, 0, &size), 0);
	ck_assert_uint_eq(size, expected_len);
	ck_assert_int_eq(sse_encode(ev, 0, buf, sizeof(buf), &written), 0);
	ck_assert_uint_eq(written, expected_len);
	ck_assert_mem_eq(buf, expected, expected_len);
	for (size_t i = expected_len; i < sizeof(buf); i++)
		ck_assert_int_eq((unsigned char)buf[i], SENTINEL);
}

#define EXPECT(ev, lit) expect_encoding((ev), (lit), sizeof(lit) - 1)

static void expect_data(const char *data, size_t len, const char *expected, size_t expected_len)
{
	struct sse_event ev = data_event(data, len);

	expect_encoding(&ev, expected, expected_len);
}

#define EXPECT_DATA(data, lit) expect_data((data), sizeof(data) - 1, (lit), sizeof(lit) - 1)

/* An invalid event: the given code from both calls, nothing written. */
static void expect_refused(const struct sse_event *ev, unsigned flags, int code)
{
	char buf[256];
	size_t size = 12345, written = 12345;

	memset(buf, SENTINEL, sizeof(buf));
	ck_assert_int_eq(sse_encode_size(ev, flags, &size), code);
	ck_assert_uint_eq(size, 12345);
	ck_assert_int_eq(sse_encode(ev, flags, buf, sizeof(buf), &written), code);
	ck_assert_uint_eq(written, 12345);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq((unsigned char)buf[i], SENTINEL);
}

START_TEST(test_encode_single_line)
{
	EXPECT_DATA("hello", "data: hello\n\n");
}
END_TEST

START_TEST(test_encode_splits_lf)
{
	/* The client joins data lines with LF: "a\nb" needs two lines. */
	EXPECT_DATA("a\nb", "data: a\ndata: b\n\n");
}
END_TEST

START_TEST(test_encode_splits_lone_cr)
{
	/* A lone CR ends a line for the client too; left in, it would cut
	 * the value short and turn the rest into a bogus field. */
	EXPECT_DATA("a\rb", "data: a\ndata: b\n\n");
}
END_TEST

START_TEST(test_encode_crlf_is_one_break)
{
	EXPECT_DATA("a\r\nb", "data: a\ndata: b\n\n");
}
END_TEST

START_TEST(test_encode_lf_cr_is_two_breaks)
{
	/* LF then CR is two line endings: an empty line between. */
	EXPECT_DATA("a\n\rb", "data: a\ndata:\ndata: b\n\n");
}
END_TEST

START_TEST(test_encode_runs_of_breaks)
{
	EXPECT_DATA("a\n\n\r\n\rb", "data: a\ndata:\ndata:\ndata:\ndata: b\n\n");
}
END_TEST

START_TEST(test_encode_trailing_break_kept)
{
	/* The client strips one final LF from the joined data, so "x\n"
	 * needs a last empty line to arrive as "x\n". */
	EXPECT_DATA("x\n", "data: x\ndata:\n\n");
	EXPECT_DATA("x\r\n", "data: x\ndata:\n\n");
	EXPECT_DATA("x\r", "data: x\ndata:\n\n");
}
END_TEST

START_TEST(test_encode_leading_break)
{
	EXPECT_DATA("\nx", "data:\ndata: x\n\n");
}
END_TEST

START_TEST(test_encode_empty_payload_dispatches)
{
	/* No data line at all would dispatch nothing; one empty line
	 * dispatches an event whose data is "". */
	EXPECT_DATA("", "data:\n\n");
	{
		struct sse_event ev = data_event("", 0);

		ev.data = "";
		EXPECT(&ev, "data:\n\n");
	}
}
END_TEST

START_TEST(test_encode_only_breaks)
{
	EXPECT_DATA("\n", "data:\ndata:\n\n");
	EXPECT_DATA("\r\n\r\n", "data:\ndata:\ndata:\n\n");
}
END_TEST

START_TEST(test_encode_leading_space_survives)
{
	/* The client removes exactly one space after the colon. */
	EXPECT_DATA(" x", "data:  x\n\n");
	EXPECT_DATA("  ", "data:   \n\n");
}
END_TEST

START_TEST(test_encode_colons_and_field_names_in_data)
{
	EXPECT_DATA("data: id: 5\n:not a comment\nretry: 1",
		    "data: data: id: 5\ndata: :not a comment\ndata: retry: 1\n\n");
}
END_TEST

START_TEST(test_encode_nul_in_data)
{
	/* NUL is an ordinary character in a data line. */
	expect_data("a\0b", 3, "data: a\0b\n\n", 11);
}
END_TEST

START_TEST(test_encode_utf8_passes_through)
{
	EXPECT_DATA("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "data: h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\n\n");
}
END_TEST

START_TEST(test_encode_all_fields)
{
	struct sse_event ev = {
		.id = "42", .id_len = 2, .type = "update", .type_len = 6,
		.data = "{\"a\":1}", .data_len = 7, .retry = 3000,
	};

	EXPECT(&ev, "id: 42\nevent: update\nretry: 3000\ndata: {\"a\":1}\n\n");
}
END_TEST

START_TEST(test_encode_empty_id_resets)
{
	/* "id:" with an empty value sets the last event id to "". */
	struct sse_event ev = {.id = "", .id_len = 0, .data = "x", .data_len = 1,
			       .retry = SSE_RETRY_NONE};

	EXPECT(&ev, "id:\ndata: x\n\n");
}
END_TEST

START_TEST(test_encode_id_only_block)
{
	/* No data line: the client commits the id and fires nothing. */
	struct sse_event ev = {.id = "7", .id_len = 1, .retry = SSE_RETRY_NONE};

	EXPECT(&ev, "id: 7\n\n");
}
END_TEST

START_TEST(test_encode_retry_only_block)
{
	struct sse_event ev = {.retry = 0};

	EXPECT(&ev, "retry: 0\n\n");
	ev.retry = SSE_RETRY_MAX;
	EXPECT(&ev, "retry: 2147483647\n\n");
}
END_TEST

START_TEST(test_encode_id_with_spaces_and_colons)
{
	struct sse_event ev = {.id = " a:b ", .id_len = 5, .data = "x", .data_len = 1,
			       .retry = SSE_RETRY_NONE};

	EXPECT(&ev, "id:  a:b \ndata: x\n\n");
}
END_TEST

START_TEST(test_encode_refuses_id_with_linebreak)
{
	struct sse_event ev = {.id = "a\nb", .id_len = 3, .data = "x", .data_len = 1,
			       .retry = SSE_RETRY_NONE};

	expect_refused(&ev, 0, SSE_ERR_ID_LINEBREAK);
	ev.id = "a\rb";
	expect_refused(&ev, 0, SSE_ERR_ID_LINEBREAK);
	ev.id = "\r\n";
	ev.id_len = 2;
	expect_refused(&ev, 0, SSE_ERR_ID_LINEBREAK);
}
END_TEST

START_TEST(test_encode_refuses_id_with_nul)
{
	/* Clients ignore an id containing NUL: refusing is the only honest
	 * answer, since the resume point would silently not move. */
	struct sse_event ev = {.id = "a\0b", .id_len = 3, .data = "x", .data_len = 1,
			       .retry = SSE_RETRY_NONE};

	expect_refused(&ev, 0, SSE_ERR_ID_NUL);
}
END_TEST

START_TEST(test_encode_refuses_type_with_linebreak)
{
	struct sse_event ev = {.type = "a\nb", .type_len = 3, .data = "x", .data_len = 1,
			       .retry = SSE_RETRY_NONE};

	expect_refused(&ev, 0, SSE_ERR_TYPE_LINEBREAK);
	ev.type = "ab\r";
	expect_refused(&ev, 0, SSE_ERR_TYPE_LINEBREAK);
}
END_TEST

START_TEST(test_encode_refuses_bad_retry)
{
	struct sse_event ev = {.data = "x", .data_len = 1, .retry = -2};

	expect_refused(&ev, 0, SSE_ERR_RETRY);
	ev.retry = SSE_RETRY_MAX + 1L;
	expect_refused(&ev, 0, SSE_ERR_RETRY);
}
END_TEST

START_TEST(test_encode_refuses_null_with_length)
{
	struct sse_event ev = {.data = NULL, .data_len = 3, .retry = SSE_RETRY_NONE};
	size_t n;

	expect_refused(&ev, 0, SSE_ERR_INVALID);
	ck_assert_int_eq(sse_encode_size(NULL, 0, &n), SSE_ERR_INVALID);
	ev.data_len = 0;
	ck_assert_int_eq(sse_encode_size(&ev, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_encode(&ev, 0, NULL, 5, &n), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_encode(&ev, 0, NULL, 0, NULL), SSE_ERR_INVALID);
}
END_TEST

START_TEST(test_encode_strict_utf8)
{
	static const char *const bad[] = {
		"\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xe2\x82", "ok\xc3",
	};
	struct sse_event ev = data_event("x", 1);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ev.data = bad[i];
		ev.data_len = strlen(bad[i]);
		expect_refused(&ev, SSE_ENCODE_STRICT_UTF8, SSE_ERR_UTF8);
	}
	ev = data_event("ok", 2);
	ev.id = "\xc3";
	ev.id_len = 1;
	expect_refused(&ev, SSE_ENCODE_STRICT_UTF8, SSE_ERR_UTF8);
	ev = data_event("ok", 2);
	ev.type = "\xed\xbf\xbf";
	ev.type_len = 3;
	expect_refused(&ev, SSE_ENCODE_STRICT_UTF8, SSE_ERR_UTF8);
}
END_TEST

START_TEST(test_encode_strict_utf8_accepts_valid)
{
	static const char text[] = "a \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 "
				   "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf";
	struct sse_event ev = data_event(text, sizeof(text) - 1);
	size_t size;

	ck_assert_int_eq(sse_encode_size(&ev, SSE_ENCODE_STRICT_UTF8, &size), 0);
	ck_assert_uint_eq(size, sizeof(text) - 1 + 8);
	ck_assert_int_eq(sse_utf8_valid(text, sizeof(text) - 1), 1);
	/* Without strict mode, invalid bytes pass: the client shows U+FFFD. */
	ev = data_event("\xff", 1);
	EXPECT(&ev, "data: \xff\n\n");
}
END_TEST

START_TEST(test_encode_buffer_too_small_reports_size)
{
	struct sse_event ev = {.id = "1", .id_len = 1, .data = "ab\ncd", .data_len = 5,
			       .retry = SSE_RETRY_NONE};
	static const char want[] = "id: 1\ndata: ab\ndata: cd\n\n";
	char buf[64];
	size_t written;

	/* Every capacity below the exact size fails and reports that size;
	 * the exact size succeeds. */
	for (size_t cap = 0; cap < sizeof(want) - 1; cap++) {
		written = 0;
		ck_assert_int_eq(sse_encode(&ev, 0, cap ? buf : NULL, cap, &written), SSE_ERR_BUFFER);
		ck_assert_uint_eq(written, sizeof(want) - 1);
	}
	ck_assert_int_eq(sse_encode(&ev, 0, buf, sizeof(want) - 1, &written), 0);
	ck_assert_mem_eq(buf, want, sizeof(want) - 1);
}
END_TEST

START_TEST(test_encode_exact_fit_with_empty_lines)
{
	/* Exact capacity must work when the last line is empty. */
	struct sse_event ev = data_event("a\n", 2);
	static const char want[] = "data: a\ndata:\n\n";
	char buf[sizeof(want) - 1];
	size_t written;

	ck_assert_int_eq(sse_encode(&ev, 0, buf, sizeof(buf), &written), 0);
	ck_assert_uint_eq(written, sizeof(want) - 1);
	ck_assert_mem_eq(buf, want, sizeof(want) - 1);
}
END_TEST

/* Lines of every length up to 99 put the break at every offset of a
 * 16-byte block, so the block copy and its tail are both exercised. */
START_TEST(test_encode_long_lines_every_length)
{
	static char data[200], want[512];

	for (size_t len = 0; len < 100; len++) {
		for (size_t i = 0; i < len; i++)
			data[i] = (char)('a' + i % 26);
		data[len] = '\r';
		data[len + 1] = 'Z';
		/* "data: " + len bytes + LF + "data: Z" + LF + LF */
		size_t n = 0;

		memcpy(want + n, len ? "data: " : "data:", len ? 6 : 5);
		n += len ? 6 : 5;
		memcpy(want + n, data, len);
		n += len;
		memcpy(want + n, "\ndata: Z\n\n", 10);
		n += 10;
		expect_data(data, len + 2, want, n);
	}
}
END_TEST

START_TEST(test_encode_large_payload)
{
	enum { N = 70000 };
	static char data[N], buf[N + 64];
	struct sse_event ev = data_event(data, N);
	size_t written;

	memset(data, 'x', N);
	data[40000] = '\n';
	ck_assert_int_eq(sse_encode(&ev, 0, buf, sizeof(buf), &written), 0);
	ck_assert_uint_eq(written, 6 + 40000 + 1 + 6 + (N - 40001) + 1 + 1);
	ck_assert_mem_eq(buf, "data: xxx", 9);
	ck_assert_mem_eq(buf + 6 + 40000, "\ndata: xx", 9);
	ck_assert_mem_eq(buf + written - 3, "x\n\n", 3);
}
END_TEST

static void expect_comment(const char *text, size_t len, const char *want, size_t want_len)
{
	char buf[256];
	size_t size = 0, written = 0;

	memset(buf, SENTINEL, sizeof(buf));
	ck_assert_int_eq(sse_comment_size(text, len, 0, &size), 0);
	ck_assert_uint_eq(size, want_len);
	ck_assert_int_eq(sse_encode_comment(text, len, 0, buf, sizeof(buf), &written), 0);
	ck_assert_uint_eq(written, want_len);
	ck_assert_mem_eq(buf, want, want_len);
	ck_assert_int_eq((unsigned char)buf[want_len], SENTINEL);
}

#define EXPECT_COMMENT(text, lit) expect_comment((text), sizeof(text) - 1, (lit), sizeof(lit) - 1)

START_TEST(test_encode_comment)
{
	EXPECT_COMMENT("keep-alive", ": keep-alive\n");
	expect_comment(NULL, 0, ":\n", 2);
	EXPECT_COMMENT("", ":\n");
}
END_TEST

START_TEST(test_encode_comment_breaks_start_comment_lines)
{
	/* A line break in a comment must not end it: the rest would be
	 * read as a field ("data: x" would become an event). */
	EXPECT_COMMENT("a\ndata: x", ": a\n: data: x\n");
	EXPECT_COMMENT("a\rb\r\nc", ": a\n: b\n: c\n");
	EXPECT_COMMENT("a\n", ": a\n:\n");
}
END_TEST

START_TEST(test_encode_comment_errors)
{
	char buf[4];
	size_t n = 99;

	ck_assert_int_eq(sse_comment_size(NULL, 1, 0, &n), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_comment_size("x", 1, 0, NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_comment_size("\xc0\xaf", 2, SSE_ENCODE_STRICT_UTF8, &n), SSE_ERR_UTF8);
	ck_assert_uint_eq(n, 99);
	ck_assert_int_eq(sse_encode_comment("hello", 5, 0, buf, sizeof(buf), &n), SSE_ERR_BUFFER);
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(sse_encode_comment("x", 1, 0, NULL, 0, &n), SSE_ERR_BUFFER);
	ck_assert_uint_eq(n, 4);
}
END_TEST

static Suite *encode_suite(void)
{
	Suite *s = suite_create("encode");
	TCase *data = tcase_create("data");
	TCase *fields = tcase_create("fields");
	TCase *refuse = tcase_create("refuse");
	TCase *buffer = tcase_create("buffer");
	TCase *comment = tcase_create("comment");

	tcase_add_test(data, test_encode_single_line);
	tcase_add_test(data, test_encode_splits_lf);
	tcase_add_test(data, test_encode_splits_lone_cr);
	tcase_add_test(data, test_encode_crlf_is_one_break);
	tcase_add_test(data, test_encode_lf_cr_is_two_breaks);
	tcase_add_test(data, test_encode_runs_of_breaks);
	tcase_add_test(data, test_encode_trailing_break_kept);
	tcase_add_test(data, test_encode_leading_break);
	tcase_add_test(data, test_encode_empty_payload_dispatches);
	tcase_add_test(data, test_encode_only_breaks);
	tcase_add_test(data, test_encode_leading_space_survives);
	tcase_add_test(data, test_encode_colons_and_field_names_in_data);
	tcase_add_test(data, test_encode_nul_in_data);
	tcase_add_test(data, test_encode_utf8_passes_through);
	tcase_add_test(data, test_encode_long_lines_every_length);
	tcase_add_test(data, test_encode_large_payload);
	tcase_add_test(fields, test_encode_all_fields);
	tcase_add_test(fields, test_encode_empty_id_resets);
	tcase_add_test(fields, test_encode_id_only_block);
	tcase_add_test(fields, test_encode_retry_only_block);
	tcase_add_test(fields, test_encode_id_with_spaces_and_colons);
	tcase_add_test(refuse, test_encode_refuses_id_with_linebreak);
	tcase_add_test(refuse, test_encode_refuses_id_with_nul);
	tcase_add_test(refuse, test_encode_refuses_type_with_linebreak);
	tcase_add_test(refuse, test_encode_refuses_bad_retry);
	tcase_add_test(refuse, test_encode_refuses_null_with_length);
	tcase_add_test(refuse, test_encode_strict_utf8);
	tcase_add_test(refuse, test_encode_strict_utf8_accepts_valid);
	tcase_add_test(buffer, test_encode_buffer_too_small_reports_size);
	tcase_add_test(buffer, test_encode_exact_fit_with_empty_lines);
	tcase_add_test(comment, test_encode_comment);
	tcase_add_test(comment, test_encode_comment_breaks_start_comment_lines);
	tcase_add_test(comment, test_encode_comment_errors);
	suite_add_tcase(s, data);
	suite_add_tcase(s, fields);
	suite_add_tcase(s, refuse);
	suite_add_tcase(s, buffer);
	suite_add_tcase(s, comment);
	return s;
}

int main(void)
{
	return test_run_suite(encode_suite());
}
