/*
 * The encoder against the WHATWG event-stream format. Every expected byte
 * string below is written by hand from the standard's parsing rules (see
 * SSE-NOTES.md), or built by model_lines(), a plain reading of those rules,
 * never taken from the encoder's own output. The library's unchecked
 * writers (lib/encode.h) must give the same bytes as sse_encode(), and the
 * check an event gets must run once on the paths its callers take.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "scan.h"
#include "test-common.h"

#define SENTINEL 0x5A

/*
 * The encoder once more, built into this program with its validator
 * counted: every call it makes to sse_utf8_valid() goes through
 * counted_utf8_valid(). Its public names are renamed too, so the library's
 * own encode.c is still the one every other test runs (a name left out
 * here would be defined twice, and the link would fail).
 */
static int utf8_calls;
static size_t utf8_bytes;

static int counted_utf8_valid(const char *s, size_t len)
{
	utf8_calls++;
	utf8_bytes += len;
	return sse_utf8_valid(s, len);
}

#define sse_utf8_valid counted_utf8_valid
#define sse_encode_size counted_encode_size
#define sse_encode counted_encode
#define sse_comment_size counted_comment_size
#define sse_encode_comment counted_encode_comment
#define sse__encode_unchecked counted_encode_unchecked
#define sse__encode_comment_unchecked counted_encode_comment_unchecked
#include "encode.c"
#undef sse_utf8_valid
#undef sse_encode_size
#undef sse_encode
#undef sse_comment_size
#undef sse_encode_comment
#undef sse__encode_unchecked
#undef sse__encode_comment_unchecked

int counted_encode_size(const struct sse_event *ev, unsigned flags, size_t *size);
int counted_encode(const struct sse_event *ev, unsigned flags, char *buf, size_t cap,
		   size_t *written);
int counted_comment_size(const char *text, size_t len, unsigned flags, size_t *size);
int counted_encode_comment(const char *text, size_t len, unsigned flags, char *buf, size_t cap,
			   size_t *written);
int counted_encode_unchecked(const struct sse_event *ev, char *buf, size_t size);
int counted_encode_comment_unchecked(const char *text, size_t len, char *buf, size_t size);

/* An event with only data set; strings are NUL-terminated for brevity. */
static struct sse_event data_event(const char *data, size_t len)
{
	return (struct sse_event){.data = data, .data_len = len, .retry = SSE_RETRY_NONE};
}

/* Room for the longest expected encoding, and past it what the encoder is
 * offered but must not touch (more than its widest run of stores). */
#define OUT_MAX 24576
#define PAST 1024

static void expect_untouched(const char *buf, size_t from, size_t to)
{
	size_t i = from;

	while (i < to && (unsigned char)buf[i] == SENTINEL)
		i++;
	ck_assert_msg(i == to, "byte %zu of [%zu, %zu) was written", i, from, to);
}

/* Encode ev and compare with the expected wire bytes, also checking that
 * sse_encode_size agrees, that the unchecked writer given that size writes
 * the same bytes, and that nothing past the encoding is touched. */
static void expect_encoding(const struct sse_event *ev, const char *expected, size_t expected_len)
{
	static char buf[OUT_MAX + PAST];
	size_t size = 0, written = 0, cap = expected_len + PAST;

	ck_assert_uint_le(expected_len, OUT_MAX);
	memset(buf, SENTINEL, cap);
	ck_assert_int_eq(sse_encode_size(ev, 0, &size), 0);
	ck_assert_uint_eq(size, expected_len);
	ck_assert_int_eq(sse_encode(ev, 0, buf, cap, &written), 0);
	ck_assert_uint_eq(written, expected_len);
	ck_assert_mem_eq(buf, expected, expected_len);
	expect_untouched(buf, expected_len, cap);
	memset(buf, SENTINEL, cap);
	ck_assert_int_eq(sse__encode_unchecked(ev, buf, size), 0);
	ck_assert_mem_eq(buf, expected, expected_len);
	expect_untouched(buf, expected_len, cap);
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
	static char buf[OUT_MAX + PAST];
	size_t size = 0, written = 0, cap = want_len + PAST;

	ck_assert_uint_le(want_len, OUT_MAX);
	memset(buf, SENTINEL, cap);
	ck_assert_int_eq(sse_comment_size(text, len, 0, &size), 0);
	ck_assert_uint_eq(size, want_len);
	ck_assert_int_eq(sse_encode_comment(text, len, 0, buf, cap, &written), 0);
	ck_assert_uint_eq(written, want_len);
	ck_assert_mem_eq(buf, want, want_len);
	expect_untouched(buf, want_len, cap);
	memset(buf, SENTINEL, cap);
	ck_assert_int_eq(sse__encode_comment_unchecked(text, len, buf, size), 0);
	ck_assert_mem_eq(buf, want, want_len);
	expect_untouched(buf, want_len, cap);
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

/*
 * The standard's reading, written out plainly for text of any length: the
 * text splits at CRLF, CR or LF; each piece becomes "name:", a space and
 * the piece unless it is empty, and LF. Independent of the encoder's block
 * loops, so lengths around 64 bytes can be checked by the thousand.
 */
static size_t model_lines(const char *name, const char *text, size_t len, char *out)
{
	size_t n = 0, start = 0, name_len = strlen(name);

	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != '\n' && text[i] != '\r')
			continue;
		memcpy(out + n, name, name_len);
		n += name_len;
		if (i > start) {
			out[n++] = ' ';
			memcpy(out + n, text + start, i - start);
			n += i - start;
		}
		out[n++] = '\n';
		if (i + 1 < len && text[i] == '\r' && text[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	return n;
}

/* Data and the same text as a comment, each checked against the model
 * through sizing, sse_encode and the unchecked writers. The text is read
 * from a block of exactly its length, so ASan and valgrind see any load
 * past its end (the vector loops load whole blocks). */
static void expect_model(const char *text, size_t len)
{
	static char want[OUT_MAX];
	char *exact = malloc(len ? len : 1);
	struct sse_event ev;
	size_t n;

	ck_assert_ptr_nonnull(exact);
	memcpy(exact, text, len);
	ev = data_event(exact, len);
	n = model_lines("data:", exact, len, want);
	want[n++] = '\n';
	expect_encoding(&ev, want, n);
	n = model_lines(":", exact, len, want);
	expect_comment(exact, len, want, n);
	free(exact);
}

/* A break of every kind at every offset of texts around one and two
 * 64-byte blocks: the sizing loop counts from block masks, whose carries
 * (a CRLF cut by a block's end, an empty line after a block's last byte)
 * and partial last blocks these place at every bit. */
START_TEST(test_encode_breaks_at_every_offset)
{
	static const char *const kinds[] = {"\n", "\r", "\r\n", "\n\n", "\r\r\n", "\n\r"};
	static const size_t lens[] = {1, 2, 15, 16, 17, 31, 32, 33, 62, 63, 64, 65, 66,
				      100, 127, 128, 129, 130, 191, 192, 193};
	static char text[256];

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t klen = strlen(kinds[k]);

		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			for (size_t at = 0; at + klen <= lens[l]; at++) {
				memset(text, 'x', lens[l]);
				memcpy(text + at, kinds[k], klen);
				expect_model(text, lens[l]);
			}
		}
	}
}
END_TEST

/* Dense and sparse breaks of fixed pseudo-random texts up to 3000 bytes. */
START_TEST(test_encode_mixed_breaks_match_model)
{
	static char text[3000];
	uint64_t x = 0x9e3779b97f4a7c15u;

	for (int round = 0; round < 600; round++) {
		size_t len = (size_t)(x >> 40) % (round < 500 ? 300 : sizeof(text));
		unsigned sparse = round % 3 == 0 ? 40 : 4;

		for (size_t i = 0; i < len; i++) {
			unsigned r;

			x = x * 6364136223846793005u + 1442695040888963407u;
			r = (unsigned)(x >> 33) % sparse;
			text[i] = r == 0 ? '\n' : r == 1 ? '\r' : (char)('a' + r);
		}
		x = x * 6364136223846793005u + 1442695040888963407u;
		expect_model(text, len);
	}
}
END_TEST

/* The unchecked writer runs no check: an event no check would pass, given
 * the size its bytes take, is written as it is. (So the check a caller made
 * first is the only one.) */
START_TEST(test_encode_unchecked_writes_unchecked_event)
{
	static const char want[] = "id: a\nb\nevent: t\rx\nretry: 2147483648\n"
				   "data: \xff\xfe\xc0\xaf\n\n";
	struct sse_event ev = {.id = "a\nb", .id_len = 3, .type = "t\rx", .type_len = 3,
			       .data = "\xff\xfe\xc0\xaf", .data_len = 4,
			       .retry = SSE_RETRY_MAX + 1L};
	char buf[128];
	size_t n = sizeof(want) - 1;

	memset(buf, SENTINEL, sizeof(buf));
	ck_assert_int_eq(sse_encode(&ev, SSE_ENCODE_STRICT_UTF8, buf, sizeof(buf), &n),
			 SSE_ERR_ID_LINEBREAK);
	ck_assert_int_eq(sse__encode_unchecked(&ev, buf, sizeof(want) - 1), 0);
	ck_assert_mem_eq(buf, want, sizeof(want) - 1);
	expect_untouched(buf, sizeof(want) - 1, sizeof(buf));
	memset(buf, SENTINEL, sizeof(buf));
	ck_assert_int_eq(sse__encode_comment_unchecked("\xc0\xaf", 2, buf, 5), 0);
	ck_assert_mem_eq(buf, ": \xc0\xaf\n", 5);
	expect_untouched(buf, 5, sizeof(buf));
}
END_TEST

/* A size that is not the event's is a caller's bug: reported, and no byte
 * written outside the size given. */
START_TEST(test_encode_unchecked_wrong_size)
{
	struct sse_event ev = {.id = "7", .id_len = 1, .data = "a\nb\r\nc", .data_len = 6,
			       .retry = 10};
	static const char want[] = "id: 7\nretry: 10\ndata: a\ndata: b\ndata: c\n\n";
	char buf[128];

	for (size_t size = 0; size < sizeof(want) + 8; size++) {
		if (size == sizeof(want) - 1)
			continue;
		memset(buf, SENTINEL, sizeof(buf));
		ck_assert_int_eq(sse__encode_unchecked(&ev, size ? buf : NULL, size),
				 SSE_ERR_BUFFER);
		expect_untouched(buf, size, sizeof(buf));
		memset(buf, SENTINEL, sizeof(buf));
		ck_assert_int_eq(sse__encode_comment_unchecked("a\nb", 3, size ? buf : NULL, size),
				 size == 8 ? 0 : SSE_ERR_BUFFER);
		expect_untouched(buf, size, sizeof(buf));
	}
	ck_assert_int_eq(sse__encode_unchecked(&ev, buf, sizeof(want) - 1), 0);
	ck_assert_mem_eq(buf, want, sizeof(want) - 1);
}
END_TEST

/* Too little room, by a little or by a lot: the size needed comes back,
 * and nothing past the room is written. */
START_TEST(test_encode_short_room_untouched_past_cap)
{
	static char data[300], buf[1024];
	struct sse_event ev = {.type = "t", .type_len = 1, .retry = SSE_RETRY_NONE};
	size_t size, csize, written;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = i % 7 == 3 ? '\n' : i % 11 == 5 ? '\r' : 'd';
	ev.data = data;
	ev.data_len = sizeof(data);
	ck_assert_int_eq(sse_encode_size(&ev, 0, &size), 0);
	ck_assert_int_eq(sse_comment_size(data, sizeof(data), 0, &csize), 0);
	ck_assert_uint_lt(size, sizeof(buf));
	for (size_t cap = 0; cap < size; cap++) {
		memset(buf, SENTINEL, sizeof(buf));
		written = 0;
		ck_assert_int_eq(sse_encode(&ev, 0, buf, cap, &written), SSE_ERR_BUFFER);
		ck_assert_uint_eq(written, size);
		expect_untouched(buf, cap, sizeof(buf));
		if (cap >= csize)
			continue;
		memset(buf, SENTINEL, sizeof(buf));
		ck_assert_int_eq(sse_encode_comment(data, sizeof(data), 0, buf, cap, &written),
				 SSE_ERR_BUFFER);
		ck_assert_uint_eq(written, csize);
		expect_untouched(buf, cap, sizeof(buf));
	}
}
END_TEST

/* Every field starts with a byte above ASCII, so each check of a field
 * hands all its bytes to the validator (a leading run of ASCII is skipped
 * before it). */
static char big_utf8[3 * 40000];

static struct sse_event utf8_event(void)
{
	for (size_t i = 0; i < sizeof(big_utf8); i += 3)
		memcpy(big_utf8 + i, i % 300 == 3 ? "\n\xc3\xa9" : "\xe2\x82\xac", 3);
	return (struct sse_event){.id = "\xc3\xa9", .id_len = 2, .type = "\xc3\xbc", .type_len = 2,
				  .data = big_utf8, .data_len = sizeof(big_utf8),
				  .retry = SSE_RETRY_NONE};
}

static void counters_reset(void)
{
	utf8_calls = 0;
	utf8_bytes = 0;
}

/* Sizing then the unchecked writer, as the replay ring publishes: one
 * strict check, each field's bytes validated once. */
START_TEST(test_encode_strict_validated_once_size_then_write)
{
	struct sse_event ev = utf8_event();
	static char out[2 * sizeof(big_utf8)], ref[2 * sizeof(big_utf8)];
	size_t size, n;

	counters_reset();
	ck_assert_int_eq(counted_encode_size(&ev, SSE_ENCODE_STRICT_UTF8, &size), 0);
	ck_assert_int_eq(utf8_calls, 3);
	ck_assert_uint_eq(utf8_bytes, 2 + 2 + sizeof(big_utf8));
	ck_assert_int_eq(counted_encode_unchecked(&ev, out, size), 0);
	ck_assert_int_eq(utf8_calls, 3);
	ck_assert_uint_eq(utf8_bytes, 2 + 2 + sizeof(big_utf8));
	/* The counted copy writes what the library writes. */
	ck_assert_int_eq(sse_encode(&ev, SSE_ENCODE_STRICT_UTF8, ref, sizeof(ref), &n), 0);
	ck_assert_uint_eq(n, size);
	ck_assert_mem_eq(out, ref, size);
}
END_TEST

/* sse_encode checks once, also when the room is short and the caller
 * grows its buffer and writes with the size it was told, as a stream's
 * queue does. */
START_TEST(test_encode_strict_validated_once_encode_then_grow)
{
	struct sse_event ev = utf8_event();
	static char out[2 * sizeof(big_utf8)];
	size_t n = 0;

	counters_reset();
	ck_assert_int_eq(counted_encode(&ev, SSE_ENCODE_STRICT_UTF8, out, sizeof(out), &n), 0);
	ck_assert_int_eq(utf8_calls, 3);
	counters_reset();
	ck_assert_int_eq(counted_encode(&ev, SSE_ENCODE_STRICT_UTF8, out, 100, &n), SSE_ERR_BUFFER);
	ck_assert_int_eq(counted_encode_unchecked(&ev, out, n), 0);
	ck_assert_int_eq(utf8_calls, 3);
	ck_assert_uint_eq(utf8_bytes, 2 + 2 + sizeof(big_utf8));
}
END_TEST

START_TEST(test_encode_strict_comment_validated_once)
{
	struct sse_event ev = utf8_event();
	static char out[2 * sizeof(big_utf8)];
	size_t size, n = 0;

	counters_reset();
	ck_assert_int_eq(counted_comment_size(ev.data, ev.data_len, SSE_ENCODE_STRICT_UTF8, &size),
			 0);
	ck_assert_int_eq(counted_encode_comment_unchecked(ev.data, ev.data_len, out, size), 0);
	ck_assert_int_eq(utf8_calls, 1);
	counters_reset();
	ck_assert_int_eq(counted_encode_comment(ev.data, ev.data_len, SSE_ENCODE_STRICT_UTF8, out,
						10, &n),
			 SSE_ERR_BUFFER);
	ck_assert_uint_eq(n, size);
	ck_assert_int_eq(counted_encode_comment_unchecked(ev.data, ev.data_len, out, n), 0);
	ck_assert_int_eq(utf8_calls, 1);
	ck_assert_uint_eq(utf8_bytes, sizeof(big_utf8));
}
END_TEST

/* Strict mode still refuses what it refused, with text found past long
 * runs of ASCII (the part the vector skip passes over). */
START_TEST(test_encode_strict_utf8_after_ascii)
{
	static char text[300];
	struct sse_event ev;
	size_t n;

	for (size_t at = 0; at < 200; at++) {
		memset(text, 'a', sizeof(text));
		text[at] = (char)0xc3; /* a lead byte without its continuation */
		ev = data_event(text, sizeof(text));
		ck_assert_int_eq(sse_encode_size(&ev, SSE_ENCODE_STRICT_UTF8, &n), SSE_ERR_UTF8);
		ck_assert_int_eq(sse_comment_size(text, sizeof(text), SSE_ENCODE_STRICT_UTF8, &n),
				 SSE_ERR_UTF8);
		text[at + 1] = (char)0xa9; /* now complete: U+00E9 */
		ck_assert_int_eq(sse_encode_size(&ev, SSE_ENCODE_STRICT_UTF8, &n), 0);
		ck_assert_uint_eq(n, 6 + sizeof(text) + 1 + 1);
	}
}
END_TEST

/*
 * Every vector path against the byte-by-byte model. The encoder picks the
 * widest path the CPU has (lib/scan.h); sse__scan_force() makes it take
 * each level in turn, and a level this CPU lacks is skipped, never faked.
 * _i is the level (a loop test: one process each).
 */
static const char *const level_name[] = {"base (SSE2 or C)", "AVX2", "AVX-512BW"};

/* After each test, pass or fail: back to the CPU's own level (without
 * fork, the next test runs in this process). */
static void unforce_level(void)
{
	sse__scan_force(-1);
}

static int force_level(int level)
{
	if (sse__scan_force(level) != level) {
		printf("encode paths: %s skipped: this CPU (or build) lacks it\n",
		       level_name[level]);
		return 0;
	}
	return 1;
}

/* A pseudo-random generator of the test's own, so every run checks the
 * same texts. */
static uint64_t next_rand(uint64_t *x)
{
	*x = *x * 6364136223846793005u + 1442695040888963407u;
	return *x >> 33;
}

/* Breaks of each kind at every offset of one 64-byte block, placed in the
 * first, a middle and the last block of texts that are long enough for
 * the block loop (it leaves BLOCK_TAIL bytes to the line loop), and each
 * right after a line as long as several blocks. */
START_TEST(test_encode_paths_breaks_in_blocks)
{
	static const char *const kinds[] = {"\n", "\r", "\r\n", "\n\n", "\r\r\n", "\n\r", "\r\n\r\n"};
	static const size_t lens[] = {64 * 4, 64 * 6 + 1, 64 * 9 - 1};
	static char text[1024];

	if (!force_level(_i))
		return;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t klen = strlen(kinds[k]);

		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			for (size_t block = 0; block * 64 + 64 <= lens[l]; block += 2) {
				for (size_t off = 0; off < 64 && block * 64 + off + klen <= lens[l];
				     off++) {
					memset(text, 'y', lens[l]);
					memcpy(text + block * 64 + off, kinds[k], klen);
					expect_model(text, lens[l]);
				}
			}
		}
	}
}
END_TEST

/* A CRLF cut by every block edge, with and without a line after it, and a
 * CR or LF as a block's last or first byte; at every length of text from
 * one block to a few past the block loop's tail. */
START_TEST(test_encode_paths_breaks_at_block_edges)
{
	static const char *const kinds[] = {"\r\n", "\r", "\n", "\r\n\n", "\r\r"};
	static char text[700];

	if (!force_level(_i))
		return;
	for (size_t len = 60; len < sizeof(text); len += len < 200 ? 1 : 11) {
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			size_t klen = strlen(kinds[k]);

			for (size_t edge = 64; edge < len; edge += 64) {
				for (size_t at = edge - 1; at <= edge && at + klen <= len; at++) {
					memset(text, 'z', len);
					memcpy(text + at, kinds[k], klen);
					expect_model(text, len);
				}
			}
		}
	}
}
END_TEST

/* Randomized texts: line lengths from none to several blocks, breaks of
 * every kind, bytes of every value (NUL, above ASCII, CR and LF). */
START_TEST(test_encode_paths_random_texts)
{
	static char text[4000];
	uint64_t x = 0x2545f4914f6cdd1du + (uint64_t)_i;

	if (!force_level(_i))
		return;
	for (int round = 0; round < 1000; round++) {
		size_t len = next_rand(&x) % (round < 700 ? 400 : sizeof(text));
		size_t line_max = (size_t)1 << (next_rand(&x) % 10); /* 1 .. 512 */

		for (size_t i = 0; i < len; i++) {
			uint64_t r = next_rand(&x);

			if (r % line_max == 0)
				text[i] = r & 0x100 ? '\n' : '\r';
			else
				text[i] = (char)(r >> 12 & 0xff);
		}
		expect_model(text, len);
	}
}
END_TEST

/* One line of every length around the widths of the vector steps and the
 * block loop's bounds, with a break before and after it. */
START_TEST(test_encode_paths_long_lines)
{
	static char text[3 * 1024];

	if (!force_level(_i))
		return;
	for (size_t len = 0; len + 2 <= sizeof(text); len += len < 600 ? 1 : 61) {
		for (size_t i = 0; i < len; i++)
			text[i + 1] = (char)('A' + i % 50);
		text[0] = '\n';
		text[len + 1] = '\r';
		expect_model(text + 1, len);
		expect_model(text, len + 2);
	}
}
END_TEST

/* The text as the standard's well-formed UTF-8 (Unicode, table 3-7), one
 * byte at a time: the reference the strict check is held to. */
static int ref_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i], lo = 0x80, hi = 0xbf;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return 0;
		lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
		for (size_t k = 1; k <= n; k++, lo = 0x80, hi = 0xbf) {
			if (i + k >= len || s[i + k] < lo || s[i + k] > hi)
				return 0;
		}
		i += n + 1;
	}
	return 1;
}

/* Strict mode: one sequence, valid or not, at every offset of ASCII text
 * long enough for each level's ASCII skip, in data, id and comment; the
 * verdict must be the reference's, and a valid text encodes as the model. */
START_TEST(test_encode_paths_strict_utf8)
{
	static const char *const seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
					   "\xc3",     "\xe2\x82",     "\xed\xa0\x80",
					   "\xc0\xaf", "\xf4\x90\x80\x80", "\x80", "\xff"};
	static char text[400], out[4096];

	if (!force_level(_i))
		return;
	for (size_t s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++) {
		size_t slen = strlen(seqs[s]);

		for (size_t at = 0; at + slen <= sizeof(text); at++) {
			struct sse_event ev = data_event(text, sizeof(text));
			int want;
			size_t n;

			memset(text, at % 3 ? 'a' : '\n', sizeof(text));
			memset(text, 'b', at); /* ASCII without breaks before it */
			memcpy(text + at, seqs[s], slen);
			want = ref_utf8_valid((const unsigned char *)text, sizeof(text)) ? 0
											 : SSE_ERR_UTF8;
			ck_assert_int_eq(sse_encode_size(&ev, SSE_ENCODE_STRICT_UTF8, &n), want);
			ck_assert_int_eq(sse_encode(&ev, SSE_ENCODE_STRICT_UTF8, out, sizeof(out), &n),
					 want);
			ck_assert_int_eq(sse_encode_comment(text, sizeof(text),
							    SSE_ENCODE_STRICT_UTF8, out,
							    sizeof(out), &n),
					 want);
			ev = (struct sse_event){.id = text, .id_len = at + slen,
						.retry = SSE_RETRY_NONE};
			ck_assert_int_eq(sse_encode_size(&ev, SSE_ENCODE_STRICT_UTF8, &n),
					 ref_utf8_valid((const unsigned char *)text, at + slen)
						 ? 0
						 : SSE_ERR_UTF8);
			if (want == 0)
				expect_model(text, sizeof(text));
		}
	}
}
END_TEST

/* Too little room at each level: the size needed, nothing past the room. */
START_TEST(test_encode_paths_short_room)
{
	static char data[700], buf[2048];
	struct sse_event ev = data_event(data, sizeof(data));
	size_t size, written;

	if (!force_level(_i))
		return;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = i % 97 == 5 ? '\n' : i % 131 == 63 ? '\r' : 'd';
	ck_assert_int_eq(sse_encode_size(&ev, 0, &size), 0);
	for (size_t cap = 0; cap < size; cap++) {
		memset(buf, SENTINEL, sizeof(buf));
		written = 0;
		ck_assert_int_eq(sse_encode(&ev, 0, buf, cap, &written), SSE_ERR_BUFFER);
		ck_assert_uint_eq(written, size);
		expect_untouched(buf, cap, sizeof(buf));
	}
}
END_TEST

/* The hook itself: the base level is always there, levels past the
 * widest are refused, and -1 gives back what the CPU has. */
START_TEST(test_encode_paths_force_hook)
{
	int detected = sse__scan_force(-1);

	ck_assert_int_ge(detected, SSE__SCAN_BASE);
	ck_assert_int_le(detected, SSE__SCAN_AVX512);
	ck_assert_int_eq(sse__scan_force(SSE__SCAN_BASE), SSE__SCAN_BASE);
	ck_assert_int_eq(sse__scan_level(), SSE__SCAN_BASE);
	ck_assert_int_eq(sse__scan_force(SSE__SCAN_AVX512 + 1), -1);
	ck_assert_int_eq(sse__scan_level(), SSE__SCAN_BASE);
	ck_assert_int_eq(sse__scan_force(-1), detected);
	ck_assert_int_eq(sse__scan_level(), detected);
	printf("encode paths: this CPU runs %s\n", level_name[detected]);
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
	TCase *model = tcase_create("model");
	TCase *unchecked = tcase_create("unchecked");
	TCase *once = tcase_create("once");
	TCase *paths = tcase_create("paths");

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
	tcase_add_test(model, test_encode_breaks_at_every_offset);
	tcase_add_test(model, test_encode_mixed_breaks_match_model);
	tcase_add_test(buffer, test_encode_short_room_untouched_past_cap);
	tcase_add_test(unchecked, test_encode_unchecked_writes_unchecked_event);
	tcase_add_test(unchecked, test_encode_unchecked_wrong_size);
	tcase_add_test(once, test_encode_strict_validated_once_size_then_write);
	tcase_add_test(once, test_encode_strict_validated_once_encode_then_grow);
	tcase_add_test(once, test_encode_strict_comment_validated_once);
	tcase_add_test(refuse, test_encode_strict_utf8_after_ascii);
	tcase_add_checked_fixture(paths, NULL, unforce_level);
	tcase_add_test(paths, test_encode_paths_force_hook);
	tcase_add_loop_test(paths, test_encode_paths_breaks_in_blocks, SSE__SCAN_BASE,
			    SSE__SCAN_AVX512 + 1);
	tcase_add_loop_test(paths, test_encode_paths_breaks_at_block_edges, SSE__SCAN_BASE,
			    SSE__SCAN_AVX512 + 1);
	tcase_add_loop_test(paths, test_encode_paths_random_texts, SSE__SCAN_BASE,
			    SSE__SCAN_AVX512 + 1);
	tcase_add_loop_test(paths, test_encode_paths_long_lines, SSE__SCAN_BASE,
			    SSE__SCAN_AVX512 + 1);
	tcase_add_loop_test(paths, test_encode_paths_strict_utf8, SSE__SCAN_BASE,
			    SSE__SCAN_AVX512 + 1);
	tcase_add_loop_test(paths, test_encode_paths_short_room, SSE__SCAN_BASE,
			    SSE__SCAN_AVX512 + 1);
	tcase_set_timeout(model, 60);
	tcase_set_timeout(paths, 100);
	suite_add_tcase(s, data);
	suite_add_tcase(s, fields);
	suite_add_tcase(s, refuse);
	suite_add_tcase(s, buffer);
	suite_add_tcase(s, comment);
	suite_add_tcase(s, model);
	suite_add_tcase(s, unchecked);
	suite_add_tcase(s, once);
	suite_add_tcase(s, paths);
	return s;
}

int main(void)
{
	return test_run_suite(encode_suite());
}
