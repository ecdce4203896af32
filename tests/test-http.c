/*
 * The HTTP helpers against RFC 9110/9112 and the WHATWG EventSource text.
 * Expected bytes are written by hand from those texts, never taken from
 * the helpers' own output. Inputs to the parser are copied into buffers of
 * their exact size, so a read past the end shows under ASan and valgrind.
 *
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

#define SENTINEL 0x5A

/* ---- writers ------------------------------------------------------------ */

/* One writer call, so a single checker can try it at every capacity. */
struct writer_call {
	enum { HEAD, STOP, RETRY, CHUNK } kind;
	const struct sse_http_options *o;
	long ms;
	size_t len;
};

static int call_writer(const struct writer_call *c, char *buf, size_t cap, size_t *written)
{
	switch (c->kind) {
	case HEAD:
		return sse_http_response_head(c->o, buf, cap, written);
	case STOP:
		return sse_http_stop(NULL, buf, cap, written);
	case RETRY:
		return sse_http_retry_later(NULL, c->ms, buf, cap, written);
	default:
		return sse_http_chunk_head(c->len, buf, cap, written);
	}
}

/* The exact bytes with an exact fit; with one byte less, SSE_ERR_BUFFER,
 * the size needed, and not a byte written; NULL with cap 0 sizes it. */
static void expect_writer(const struct writer_call *c, const char *want, size_t want_len)
{
	char buf[1024];
	size_t written = 0;

	memset(buf, SENTINEL, sizeof(buf));
	ck_assert_int_eq(call_writer(c, buf, want_len, &written), 0);
	ck_assert_uint_eq(written, want_len);
	ck_assert_mem_eq(buf, want, want_len);
	ck_assert_int_eq((unsigned char)buf[want_len], SENTINEL);

	memset(buf, SENTINEL, sizeof(buf));
	written = 0;
	ck_assert_int_eq(call_writer(c, buf, want_len - 1, &written), SSE_ERR_BUFFER);
	ck_assert_uint_eq(written, want_len);
	for (size_t i = 0; i < want_len; i++)
		ck_assert_int_eq((unsigned char)buf[i], SENTINEL);

	written = 0;
	ck_assert_int_eq(call_writer(c, NULL, 0, &written), SSE_ERR_BUFFER);
	ck_assert_uint_eq(written, want_len);
}

#define EXPECT_WRITER(c, lit) expect_writer((c), (lit), sizeof(lit) - 1)

static void expect_head(const struct sse_http_options *o, const char *want, size_t want_len)
{
	struct writer_call c = {HEAD, o, 0, 0};

	expect_writer(&c, want, want_len);
}

#define EXPECT_HEAD(o, lit) expect_head((o), (lit), sizeof(lit) - 1)

#define BASE_HEAD                                                              \
	"HTTP/1.1 200 OK\r\n"                                                  \
	"Content-Type: text/event-stream\r\n"                                  \
	"Cache-Control: no-cache, no-transform\r\n"                            \
	"X-Accel-Buffering: no\r\n"

START_TEST(test_http_head_defaults)
{
	struct sse_http_options zero = {0};

	/* No Content-Length (the body never ends), no Connection (keep-alive
	 * is HTTP/1.1's default). NULL and zeroed options are the same. */
	EXPECT_HEAD(NULL, BASE_HEAD "\r\n");
	EXPECT_HEAD(&zero, BASE_HEAD "\r\n");
}
END_TEST

START_TEST(test_http_head_cors)
{
	struct sse_http_options o = {.cors_origin = "https://app.example"};

	EXPECT_HEAD(&o, BASE_HEAD "Access-Control-Allow-Origin: https://app.example\r\n\r\n");
	o.cors_credentials = 1;
	EXPECT_HEAD(&o, BASE_HEAD "Access-Control-Allow-Origin: https://app.example\r\n"
				  "Access-Control-Allow-Credentials: true\r\n\r\n");
	o.cors_origin = "*";
	o.cors_credentials = 0;
	EXPECT_HEAD(&o, BASE_HEAD "Access-Control-Allow-Origin: *\r\n\r\n");
	/* Credentials mean nothing without an origin. */
	o.cors_origin = NULL;
	o.cors_credentials = 1;
	EXPECT_HEAD(&o, BASE_HEAD "\r\n");
}
END_TEST

START_TEST(test_http_head_chunked)
{
	struct sse_http_options o = {.chunked = 1};

	EXPECT_HEAD(&o, BASE_HEAD "Transfer-Encoding: chunked\r\n\r\n");
	o.cors_origin = "null";
	o.cors_credentials = 1;
	EXPECT_HEAD(&o, BASE_HEAD "Access-Control-Allow-Origin: null\r\n"
				  "Access-Control-Allow-Credentials: true\r\n"
				  "Transfer-Encoding: chunked\r\n\r\n");
}
END_TEST

START_TEST(test_http_head_http2_has_no_connection_headers)
{
	struct sse_http_options o = {.http2 = 1};

	EXPECT_HEAD(&o, BASE_HEAD "\r\n");
	o.cors_origin = "https://a.example";
	EXPECT_HEAD(&o, BASE_HEAD "Access-Control-Allow-Origin: https://a.example\r\n\r\n");
}
END_TEST

START_TEST(test_http_head_refuses_bad_options)
{
	static const char *const bad_origins[] = {
		"", "https://a.example\r\nSet-Cookie: x=1", "a\rb", "a\nb", "a\x01", "a\x7f",
	};
	struct sse_http_options o = {0};
	size_t written = 77;
	char buf[512];

	for (size_t i = 0; i < sizeof(bad_origins) / sizeof(bad_origins[0]); i++) {
		o.cors_origin = bad_origins[i];
		ck_assert_int_eq(sse_http_response_head(&o, buf, sizeof(buf), &written),
				 SSE_ERR_INVALID);
	}
	/* Fetch refuses credentials with the wildcard origin. */
	o = (struct sse_http_options){.cors_origin = "*", .cors_credentials = 1};
	ck_assert_int_eq(sse_http_response_head(&o, buf, sizeof(buf), &written), SSE_ERR_INVALID);
	/* HTTP/2 forbids Transfer-Encoding. */
	o = (struct sse_http_options){.chunked = 1, .http2 = 1};
	ck_assert_int_eq(sse_http_response_head(&o, buf, sizeof(buf), &written), SSE_ERR_INVALID);
	ck_assert_uint_eq(written, 77);
	ck_assert_int_eq(sse_http_response_head(NULL, buf, sizeof(buf), NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_response_head(NULL, NULL, 10, &written), SSE_ERR_INVALID);
	/* A tab is allowed inside a field value. */
	o = (struct sse_http_options){.cors_origin = "a\tb"};
	ck_assert_int_eq(sse_http_response_head(&o, buf, sizeof(buf), &written), 0);
}
END_TEST

START_TEST(test_http_stop_is_bare_204)
{
	struct writer_call c = {STOP, NULL, 0, 0};
	size_t written;

	/* RFC 9110 §8.6: no Content-Length on a 204; its head is the message. */
	EXPECT_WRITER(&c, "HTTP/1.1 204 No Content\r\n\r\n");
	ck_assert_int_eq(sse_http_stop(NULL, NULL, 5, &written), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_stop(NULL, NULL, 0, NULL), SSE_ERR_INVALID);
}
END_TEST

#define RETRY_HEAD                                                             \
	"HTTP/1.1 200 OK\r\n"                                                  \
	"Content-Type: text/event-stream\r\n"                                  \
	"Cache-Control: no-cache, no-transform\r\n"                            \
	"Connection: close\r\n"

START_TEST(test_http_retry_later_response)
{
	struct writer_call c = {RETRY, NULL, 5000, 0};

	EXPECT_WRITER(&c, RETRY_HEAD "Content-Length: 13\r\n\r\nretry: 5000\n\n");
	c.ms = 0;
	EXPECT_WRITER(&c, RETRY_HEAD "Content-Length: 10\r\n\r\nretry: 0\n\n");
	c.ms = SSE_RETRY_MAX;
	EXPECT_WRITER(&c, RETRY_HEAD "Content-Length: 19\r\n\r\nretry: 2147483647\n\n");
}
END_TEST

/* Compare one answer's bytes with what HTTP and Fetch prescribe. */
static void expect_bytes(const char *buf, size_t written, const char *want)
{
	ck_assert_uint_eq(written, strlen(want));
	ck_assert_mem_eq(buf, want, written);
}

START_TEST(test_http_answers_carry_cors)
{
	/* A cross-origin EventSource reads a response without CORS headers
	 * as a network error and reconnects: the 204 that should stop it
	 * and the retry that should slow it need the headers too. */
	struct sse_http_options o = {.cors_origin = "https://app.example", .cors_credentials = 1};
	char buf[512];
	size_t written;

	ck_assert_int_eq(sse_http_stop(&o, buf, sizeof(buf), &written), 0);
	expect_bytes(buf, written,
		     "HTTP/1.1 204 No Content\r\n"
		     "Access-Control-Allow-Origin: https://app.example\r\n"
		     "Access-Control-Allow-Credentials: true\r\n\r\n");
	ck_assert_int_eq(sse_http_retry_later(&o, 250, buf, sizeof(buf), &written), 0);
	expect_bytes(buf, written,
		     "HTTP/1.1 200 OK\r\n"
		     "Content-Type: text/event-stream\r\n"
		     "Cache-Control: no-cache, no-transform\r\n"
		     "Access-Control-Allow-Origin: https://app.example\r\n"
		     "Access-Control-Allow-Credentials: true\r\n"
		     "Connection: close\r\n"
		     "Content-Length: 12\r\n\r\nretry: 250\n\n");
	o = (struct sse_http_options){.cors_origin = "*", .cors_credentials = 1};
	ck_assert_int_eq(sse_http_stop(&o, buf, sizeof(buf), &written), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_retry_later(&o, 1, buf, sizeof(buf), &written), SSE_ERR_INVALID);
}
END_TEST

START_TEST(test_http_retry_later_http2_has_no_connection_header)
{
	/* RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2. */
	struct sse_http_options o = {.http2 = 1};
	char buf[512];
	size_t written;

	ck_assert_int_eq(sse_http_retry_later(&o, 7, buf, sizeof(buf), &written), 0);
	expect_bytes(buf, written,
		     "HTTP/1.1 200 OK\r\n"
		     "Content-Type: text/event-stream\r\n"
		     "Cache-Control: no-cache, no-transform\r\n"
		     "Content-Length: 10\r\n\r\nretry: 7\n\n");
}
END_TEST

START_TEST(test_http_retry_later_refuses_out_of_range)
{
	char buf[256];
	size_t written = 3;

	ck_assert_int_eq(sse_http_retry_later(NULL, -1, buf, sizeof(buf), &written), SSE_ERR_RETRY);
	ck_assert_int_eq(sse_http_retry_later(NULL, SSE_RETRY_NONE, buf, sizeof(buf), &written),
			 SSE_ERR_RETRY);
#if LONG_MAX > SSE_RETRY_MAX
	ck_assert_int_eq(sse_http_retry_later(NULL, SSE_RETRY_MAX + 1, buf, sizeof(buf), &written),
			 SSE_ERR_RETRY);
#endif
	ck_assert_uint_eq(written, 3);
}
END_TEST

static void expect_chunk(size_t len, const char *want, size_t want_len)
{
	struct writer_call c = {CHUNK, NULL, 0, len};

	expect_writer(&c, want, want_len);
}

#define EXPECT_CHUNK(len, lit) expect_chunk((len), (lit), sizeof(lit) - 1)

START_TEST(test_http_chunk_heads)
{
	/* RFC 9112 §7.1: chunk-size is hex; "0" starts the last chunk. */
	EXPECT_CHUNK(0, "0\r\n");
	EXPECT_CHUNK(1, "1\r\n");
	EXPECT_CHUNK(15, "f\r\n");
	EXPECT_CHUNK(16, "10\r\n");
	EXPECT_CHUNK(255, "ff\r\n");
	EXPECT_CHUNK(4096, "1000\r\n");
	EXPECT_CHUNK(0xabcdef, "abcdef\r\n");
#if SIZE_MAX == 0xffffffffffffffffu
	EXPECT_CHUNK(SIZE_MAX, "ffffffffffffffff\r\n");
#else
	EXPECT_CHUNK(SIZE_MAX, "ffffffff\r\n");
#endif
}
END_TEST

/* ---- the request parser ------------------------------------------------- */

/* The input of the last parse: *req points into it until the next one. */
static char *held;

static void release_held(void)
{
	free(held);
	held = NULL;
}

/* Parse n bytes from an exact-size heap copy. */
static int parse_n(const char *s, size_t n, struct sse_http_request *req)
{
	release_held();
	held = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(held);
	if (n)
		memcpy(held, s, n);
	return sse_http_parse_request(held, n, req);
}

static int parse_str(const char *s, struct sse_http_request *req)
{
	return parse_n(s, strlen(s), req);
}

#define PARSE_LIT(lit, req) parse_n((lit), sizeof(lit) - 1, (req))

static void expect_span(const char *got, size_t got_len, const char *want)
{
	ck_assert_uint_eq(got_len, strlen(want));
	ck_assert_mem_eq(got, want, got_len);
}

static void expect_header(const struct sse_http_request *req, size_t i, const char *name,
			  const char *value)
{
	ck_assert_uint_lt(i, req->header_count);
	expect_span(req->headers[i].name, req->headers[i].name_len, name);
	expect_span(req->headers[i].value, req->headers[i].value_len, value);
}

static const char browser_request[] =
	"GET /events?topic=news HTTP/1.1\r\n"
	"Host: example.com\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
	"Accept: text/event-stream\r\n"
	"Accept-Language: en-US,en;q=0.5\r\n"
	"Accept-Encoding: gzip, deflate, br\r\n"
	"Referer: https://example.com/\r\n"
	"Cache-Control: no-cache\r\n"
	"Connection: keep-alive\r\n"
	"Cookie: session=abc123; theme=dark\r\n"
	"Sec-Fetch-Dest: empty\r\n"
	"Sec-Fetch-Mode: cors\r\n"
	"Last-Event-ID: 42\r\n"
	"\r\n";

START_TEST(test_http_parse_browser_request)
{
	struct sse_http_request req;
	char buf[sizeof(browser_request) + 16];
	size_t n = sizeof(browser_request) - 1;

	/* A body (or the next request) after the head is left alone. */
	memcpy(buf, browser_request, n);
	memcpy(buf + n, "BODY", 4);
	ck_assert_int_eq(parse_n(buf, n + 4, &req), 0);
	ck_assert_uint_eq(req.head_len, n);
	expect_span(req.method, req.method_len, "GET");
	expect_span(req.target, req.target_len, "/events?topic=news");
	ck_assert_int_eq(req.minor_version, 1);
	ck_assert_uint_eq(req.header_count, 12);
	expect_header(&req, 0, "Host", "example.com");
	expect_header(&req, 1, "User-Agent",
		      "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
	expect_header(&req, 4, "Accept-Encoding", "gzip, deflate, br");
	expect_header(&req, 8, "Cookie", "session=abc123; theme=dark");
	expect_header(&req, 11, "Last-Event-ID", "42");
}
END_TEST

START_TEST(test_http_parse_http10_and_other_minors)
{
	struct sse_http_request req;

	ck_assert_int_eq(PARSE_LIT("GET / HTTP/1.0\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.minor_version, 0);
	ck_assert_uint_eq(req.header_count, 0);
	ck_assert_uint_eq(req.head_len, 18);
	/* RFC 9112 §2.3: a higher minor version is still HTTP/1. */
	ck_assert_int_eq(PARSE_LIT("GET / HTTP/1.9\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.minor_version, 9);
}
END_TEST

START_TEST(test_http_parse_bare_lf)
{
	struct sse_http_request req;

	ck_assert_int_eq(PARSE_LIT("GET /a HTTP/1.1\nHost: h\n\n", &req), 0);
	ck_assert_uint_eq(req.head_len, 25);
	expect_header(&req, 0, "Host", "h");
	/* Mixed line ends. */
	ck_assert_int_eq(PARSE_LIT("GET /a HTTP/1.1\r\nHost: h\nX: y\r\n\n", &req), 0);
	ck_assert_uint_eq(req.header_count, 2);
	ck_assert_uint_eq(req.head_len, 32);
	expect_header(&req, 1, "X", "y");
}
END_TEST

START_TEST(test_http_parse_skips_leading_empty_lines)
{
	struct sse_http_request req;
	static const char in[] = "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n";

	ck_assert_int_eq(PARSE_LIT(in, &req), 0);
	ck_assert_uint_eq(req.head_len, sizeof(in) - 1);
	expect_span(req.method, req.method_len, "GET");
	/* Only empty lines so far: more is needed. */
	ck_assert_int_eq(PARSE_LIT("\r\n\r\n", &req), SSE_ERR_INCOMPLETE);
}
END_TEST

START_TEST(test_http_parse_trims_ows)
{
	struct sse_http_request req;

	ck_assert_int_eq(PARSE_LIT("GET / HTTP/1.1\r\n"
				   "A:   spaced \t \r\n"
				   "B:\t\ttabbed\r\n"
				   "C:\r\n"
				   "D: \t \r\n"
				   "E:inner  gap\there\r\n"
				   "\r\n",
				   &req),
			 0);
	ck_assert_uint_eq(req.header_count, 5);
	expect_header(&req, 0, "A", "spaced");
	expect_header(&req, 1, "B", "tabbed");
	expect_header(&req, 2, "C", "");
	expect_header(&req, 3, "D", "");
	expect_header(&req, 4, "E", "inner  gap\there");
}
END_TEST

START_TEST(test_http_parse_obs_text_and_token_chars)
{
	struct sse_http_request req;

	/* obs-text (0x80-0xFF) is allowed in values; every tchar in names
	 * and methods; any visible ASCII in the target. */
	ck_assert_int_eq(PARSE_LIT("M-S.E!#$%&'*+^_`|~9 *?a=[b]{c}\"d\" HTTP/1.1\r\n"
				   "x!#$%&'*+-.^_`|~0Z: caf\xc3\xa9 \xff\x80\r\n"
				   "\r\n",
				   &req),
			 0);
	expect_span(req.method, req.method_len, "M-S.E!#$%&'*+^_`|~9");
	expect_span(req.target, req.target_len, "*?a=[b]{c}\"d\"");
	expect_header(&req, 0, "x!#$%&'*+-.^_`|~0Z", "caf\xc3\xa9 \xff\x80");
	ck_assert_int_eq(PARSE_LIT("OPTIONS * HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert_int_eq(PARSE_LIT("GET http://h.example:8080/p?q HTTP/1.1\r\n\r\n", &req), 0);
	expect_span(req.target, req.target_len, "http://h.example:8080/p?q");
}
END_TEST

/* Every strict prefix needs more input; the whole parses. */
static void expect_prefixes_incomplete(const char *s, size_t n)
{
	struct sse_http_request req;

	for (size_t k = 0; k < n; k++)
		ck_assert_msg(parse_n(s, k, &req) == SSE_ERR_INCOMPLETE,
			      "prefix of %zu bytes of %zu", k, n);
	ck_assert_int_eq(parse_n(s, n, &req), 0);
	ck_assert_uint_eq(req.head_len, n);
}

START_TEST(test_http_parse_every_prefix_is_incomplete)
{
	static const char lf[] = "\nGET /x?lastEventId=1 HTTP/1.0\nA:b\nC: \n\n";

	expect_prefixes_incomplete(browser_request, sizeof(browser_request) - 1);
	expect_prefixes_incomplete(lf, sizeof(lf) - 1);
}
END_TEST

static void expect_malformed(const char *s, size_t n)
{
	struct sse_http_request req;

	ck_assert_msg(parse_n(s, n, &req) == SSE_ERR_HTTP, "accepted: %.*s", (int)n, s);
}

#define EXPECT_MALFORMED(lit) expect_malformed((lit), sizeof(lit) - 1)

START_TEST(test_http_parse_refuses_malformed_request_line)
{
	EXPECT_MALFORMED("GET  / HTTP/1.1\r\n\r\n");      /* two spaces */
	EXPECT_MALFORMED("GET /  HTTP/1.1\r\n\r\n");
	EXPECT_MALFORMED("GET HTTP/1.1\r\n\r\n");         /* missing target */
	EXPECT_MALFORMED("GET /\r\n\r\n");                /* HTTP/0.9 style */
	EXPECT_MALFORMED("GET / \r\n\r\n");               /* missing version */
	EXPECT_MALFORMED("GET / HTTP/2.0\r\n\r\n");
	EXPECT_MALFORMED("GET / HTTP/1.1 \r\n\r\n");      /* trailing space */
	EXPECT_MALFORMED("GET / HTTP/1.11\r\n\r\n");
	EXPECT_MALFORMED("GET / HTTP/1.x\r\n\r\n");
	EXPECT_MALFORMED("GET / http/1.1\r\n\r\n");       /* case-sensitive */
	EXPECT_MALFORMED("GET / HTTP/1.\r\n\r\n");
	EXPECT_MALFORMED(" GET / HTTP/1.1\r\n\r\n");
	EXPECT_MALFORMED("G(T / HTTP/1.1\r\n\r\n");      /* not tchars */
	EXPECT_MALFORMED("G\"T / HTTP/1.1\r\n\r\n");
	EXPECT_MALFORMED("GE@ / HTTP/1.1\r\n\r\n");
	EXPECT_MALFORMED("GET\t/ HTTP/1.1\r\n\r\n");
	EXPECT_MALFORMED("GET /\xc3\xa9 HTTP/1.1\r\n\r\n"); /* target is ASCII */
	EXPECT_MALFORMED("GET /\x7f HTTP/1.1\r\n\r\n");
	EXPECT_MALFORMED("GET / HTTP/1.1\rX\n\r\n");      /* CR without LF */
	EXPECT_MALFORMED("\rGET / HTTP/1.1\r\n\r\n");
}
END_TEST

START_TEST(test_http_parse_refuses_malformed_fields)
{
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nHost : h\r\n\r\n"); /* RFC 9112 §5.1 */
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n");
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"); /* obs-fold */
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n");
	EXPECT_MALFORMED("GET / HTTP/1.1\r\n Host: h\r\n\r\n");   /* §2.2 */
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nHost\r\n\r\n");       /* no colon */
	EXPECT_MALFORMED("GET / HTTP/1.1\r\n: h\r\n\r\n");        /* empty name */
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA(b: c\r\n\r\n");
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA\xc3\xa9: c\r\n\r\n"); /* name is a token */
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n");   /* CTL in value */
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n");
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: b\x1b[0m\r\n\r\n");
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n");    /* bare CR */
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: b\r\n\r\r\n");
}
END_TEST

START_TEST(test_http_parse_refuses_nul_anywhere)
{
	static const char good[] = "GET /p HTTP/1.1\r\nHost: h.example\r\n\r\n";
	char in[sizeof(good)];

	/* NUL is never allowed: put one at each position in turn. */
	for (size_t i = 0; i < sizeof(good) - 1; i++) {
		memcpy(in, good, sizeof(good));
		in[i] = '\0';
		expect_malformed(in, sizeof(good) - 1);
	}
}
END_TEST

START_TEST(test_http_parse_refuses_garbage_early)
{
	/* Malformed before the head is complete: refused at once, not after
	 * waiting for a blank line that a slowloris never sends. */
	EXPECT_MALFORMED("G\x01");
	EXPECT_MALFORMED("GET / HTTX");
	EXPECT_MALFORMED("GET / HTTP/3");
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nHost :");
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: b\r\n ");
	EXPECT_MALFORMED("GET / HTTP/1.1\r\nA: \x00");
	EXPECT_MALFORMED("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"); /* TLS hello */
}
END_TEST

static size_t make_fields(char *buf, size_t fields, int end_head)
{
	size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");

	for (size_t i = 0; i < fields; i++)
		n += (size_t)sprintf(buf + n, "X-%zu: v%zu\r\n", i, i);
	if (end_head)
		n += (size_t)sprintf(buf + n, "\r\n");
	return n;
}

START_TEST(test_http_parse_header_limit)
{
	struct sse_http_request req;
	char buf[4096];
	size_t n;

	n = make_fields(buf, SSE_HTTP_MAX_HEADERS, 1);
	ck_assert_int_eq(parse_n(buf, n, &req), 0);
	ck_assert_uint_eq(req.header_count, SSE_HTTP_MAX_HEADERS);
	expect_header(&req, SSE_HTTP_MAX_HEADERS - 1, "X-31", "v31");
	n = make_fields(buf, SSE_HTTP_MAX_HEADERS + 1, 1);
	ck_assert_int_eq(parse_n(buf, n, &req), SSE_ERR_TOO_LARGE);
	/* Known as soon as the extra field starts. */
	n = make_fields(buf, SSE_HTTP_MAX_HEADERS, 0);
	ck_assert_int_eq(parse_n(buf, n, &req), SSE_ERR_INCOMPLETE);
	ck_assert_int_eq(parse_n(strcat(buf, "X"), n + 1, &req), SSE_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_http_parse_null_arguments)
{
	struct sse_http_request req;

	ck_assert_int_eq(sse_http_parse_request(NULL, 0, &req), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_parse_request(NULL, 5, &req), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_parse_request("GET / HTTP/1.1\r\n\r\n", 18, NULL),
			 SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_parse_request("", 0, &req), SSE_ERR_INCOMPLETE);
}
END_TEST

START_TEST(test_http_find_header_ignores_case)
{
	struct sse_http_request req;
	const struct sse_http_header *h;

	ck_assert_int_eq(PARSE_LIT("GET / HTTP/1.1\r\nlast-event-id: 7\r\nACCEPT: a\r\n"
				   "Accept: b\r\n\r\n",
				   &req),
			 0);
	h = sse_http_find_header(&req, "Last-Event-ID");
	ck_assert_ptr_eq(h, &req.headers[0]);
	h = sse_http_find_header(&req, "accept"); /* the first one */
	ck_assert_ptr_eq(h, &req.headers[1]);
	ck_assert_ptr_null(sse_http_find_header(&req, "Accep"));
	ck_assert_ptr_null(sse_http_find_header(&req, "Accept-"));
	ck_assert_ptr_null(sse_http_find_header(&req, "Host"));
	ck_assert_ptr_null(sse_http_find_header(NULL, "Host"));
	ck_assert_ptr_null(sse_http_find_header(&req, NULL));
}
END_TEST

/* ---- the resume point --------------------------------------------------- */

/* The id of a request head, or the code that came back. */
static int last_id(const char *head, char *out, size_t cap, size_t *len)
{
	struct sse_http_request req;

	ck_assert_int_eq(parse_str(head, &req), 0);
	return sse_http_last_event_id(&req, out, cap, len);
}

static void expect_id(const char *head, const char *want, size_t want_len)
{
	char out[64];
	size_t len = 999;

	memset(out, SENTINEL, sizeof(out));
	ck_assert_msg(last_id(head, out, sizeof(out), &len) == 1, "no id in %s", head);
	ck_assert_uint_eq(len, want_len);
	ck_assert_mem_eq(out, want, want_len);
	ck_assert_int_eq((unsigned char)out[want_len], SENTINEL);
}

#define EXPECT_ID(head, lit) expect_id((head), (lit), sizeof(lit) - 1)

static void expect_no_id(const char *head)
{
	char out[64];
	size_t len = 999;

	ck_assert_msg(last_id(head, out, sizeof(out), &len) == 0, "found an id in %s", head);
}

START_TEST(test_http_last_event_id_from_header)
{
	EXPECT_ID("GET / HTTP/1.1\r\nLast-Event-ID: 42\r\n\r\n", "42");
	EXPECT_ID("GET / HTTP/1.1\r\nlast-event-id:  k3f9-17 \r\n\r\n", "k3f9-17");
	/* Sent as is: no percent-decoding of the header. */
	EXPECT_ID("GET / HTTP/1.1\r\nLast-Event-ID: a%41+b\r\n\r\n", "a%41+b");
	EXPECT_ID("GET / HTTP/1.1\r\nLast-Event-ID: caf\xc3\xa9\r\n\r\n", "caf\xc3\xa9");
	/* Present but empty: found, and empty. */
	EXPECT_ID("GET / HTTP/1.1\r\nLast-Event-ID:\r\n\r\n", "");
}
END_TEST

START_TEST(test_http_last_event_id_from_query)
{
	EXPECT_ID("GET /ev?lastEventId=42 HTTP/1.1\r\n\r\n", "42");
	EXPECT_ID("GET /ev?last_event_id=42 HTTP/1.1\r\n\r\n", "42");
	EXPECT_ID("GET /ev?a=1&lastEventId=7&b=2 HTTP/1.1\r\n\r\n", "7");
	EXPECT_ID("GET /ev?a=1&b=2&last_event_id=x9 HTTP/1.1\r\n\r\n", "x9");
	/* The first of several. */
	EXPECT_ID("GET /ev?last_event_id=1&lastEventId=2 HTTP/1.1\r\n\r\n", "1");
	/* Empty, or with no '=': found, and empty. */
	EXPECT_ID("GET /ev?lastEventId= HTTP/1.1\r\n\r\n", "");
	EXPECT_ID("GET /ev?lastEventId&x=1 HTTP/1.1\r\n\r\n", "");
	/* The first '=' ends the name; the rest is value. */
	EXPECT_ID("GET /ev?lastEventId=a=b HTTP/1.1\r\n\r\n", "a=b");
	/* A fragment is not part of the query. */
	EXPECT_ID("GET /ev?lastEventId=5#frag HTTP/1.1\r\n\r\n", "5");
	/* Absolute-form target. */
	EXPECT_ID("GET http://h.example/ev?lastEventId=3 HTTP/1.1\r\n\r\n", "3");
}
END_TEST

START_TEST(test_http_last_event_id_percent_decoding)
{
	EXPECT_ID("GET /?lastEventId=%41%62%2a HTTP/1.1\r\n\r\n", "Ab*");
	EXPECT_ID("GET /?lastEventId=a+b%20c HTTP/1.1\r\n\r\n", "a b c");
	EXPECT_ID("GET /?lastEventId=%2B%26%3D%25 HTTP/1.1\r\n\r\n", "+&=%");
	EXPECT_ID("GET /?lastEventId=caf%C3%A9 HTTP/1.1\r\n\r\n", "caf\xc3\xa9");
	EXPECT_ID("GET /?lastEventId=%e2%82%ac HTTP/1.1\r\n\r\n", "\xe2\x82\xac");
}
END_TEST

START_TEST(test_http_last_event_id_bad_escapes)
{
	static const char *const bad[] = {
		"GET /?lastEventId=% HTTP/1.1\r\n\r\n",
		"GET /?lastEventId=%4 HTTP/1.1\r\n\r\n",
		"GET /?lastEventId=%4g HTTP/1.1\r\n\r\n",
		"GET /?lastEventId=%g4 HTTP/1.1\r\n\r\n",
		"GET /?lastEventId=ab%&x=1 HTTP/1.1\r\n\r\n",
		"GET /?lastEventId=ab%2#x HTTP/1.1\r\n\r\n",
		"GET /?last_event_id=%%41 HTTP/1.1\r\n\r\n",
	};
	char out[64];
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(last_id(bad[i], out, sizeof(out), &len) == SSE_ERR_HTTP, "%s",
			      bad[i]);
	/* A bad escape in another parameter is none of our business. */
	EXPECT_ID("GET /?x=%zz&lastEventId=1 HTTP/1.1\r\n\r\n", "1");
}
END_TEST

START_TEST(test_http_last_event_id_header_overrides_query)
{
	EXPECT_ID("GET /?lastEventId=1 HTTP/1.1\r\nLast-Event-ID: 9\r\n\r\n", "9");
	EXPECT_ID("GET /?lastEventId=1 HTTP/1.1\r\nLast-Event-ID:\r\n\r\n", "");
	/* Even over a query the header makes irrelevant, bad escape or not. */
	EXPECT_ID("GET /?lastEventId=%zz HTTP/1.1\r\nLast-Event-ID: 9\r\n\r\n", "9");
}
END_TEST

START_TEST(test_http_last_event_id_absent)
{
	expect_no_id("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	expect_no_id("GET /ev? HTTP/1.1\r\n\r\n");
	expect_no_id("GET /ev?a=1&b=2 HTTP/1.1\r\n\r\n");
	/* Names are exact: case, decoding and prefixes do not match. */
	expect_no_id("GET /ev?lasteventid=1 HTTP/1.1\r\n\r\n");
	expect_no_id("GET /ev?LastEventId=1 HTTP/1.1\r\n\r\n");
	expect_no_id("GET /ev?last%5Fevent%5Fid=1 HTTP/1.1\r\n\r\n");
	expect_no_id("GET /ev?xlastEventId=1 HTTP/1.1\r\n\r\n");
	expect_no_id("GET /ev?lastEventIds=1 HTTP/1.1\r\n\r\n");
	expect_no_id("GET /ev?a=1;lastEventId=1 HTTP/1.1\r\n\r\n"); /* only '&' */
	expect_no_id("GET /ev#?lastEventId=1 HTTP/1.1\r\n\r\n");
	expect_no_id("GET /lastEventId=1 HTTP/1.1\r\n\r\n");
	expect_no_id("GET /ev?x=lastEventId HTTP/1.1\r\n\r\n");
}
END_TEST

START_TEST(test_http_last_event_id_buffer_too_small)
{
	struct sse_http_request req;
	char out[8];
	size_t len = 0;

	ck_assert_int_eq(parse_str("GET / HTTP/1.1\r\nLast-Event-ID: 123456789\r\n\r\n", &req),
			 0);
	memset(out, SENTINEL, sizeof(out));
	ck_assert_int_eq(sse_http_last_event_id(&req, out, sizeof(out), &len), SSE_ERR_BUFFER);
	ck_assert_uint_eq(len, 9);
	ck_assert_int_eq((unsigned char)out[0], SENTINEL);
	ck_assert_int_eq(sse_http_last_event_id(&req, NULL, 0, &len), SSE_ERR_BUFFER);
	ck_assert_uint_eq(len, 9);

	/* Decoded length counts: 9 escapes are 9 bytes, not 27. */
	ck_assert_int_eq(parse_str("GET /?lastEventId=%31%32%33%34%35%36%37%38%39 HTTP/1.1\r\n\r\n",
				   &req),
			 0);
	ck_assert_int_eq(sse_http_last_event_id(&req, out, sizeof(out), &len), SSE_ERR_BUFFER);
	ck_assert_uint_eq(len, 9);
	ck_assert_int_eq((unsigned char)out[0], SENTINEL);

	/* An empty id fits anywhere. */
	ck_assert_int_eq(parse_str("GET /?lastEventId= HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert_int_eq(sse_http_last_event_id(&req, NULL, 0, &len), 1);
	ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_http_last_event_id_exact_fit)
{
	struct sse_http_request req;
	char out[9];
	size_t len = 0;

	ck_assert_int_eq(parse_str("GET /?last_event_id=%31%32%33%34%35%36%37%38%39 HTTP/1.1\r\n\r\n",
				   &req),
			 0);
	ck_assert_int_eq(sse_http_last_event_id(&req, out, sizeof(out), &len), 1);
	ck_assert_uint_eq(len, 9);
	ck_assert_mem_eq(out, "123456789", 9);
}
END_TEST

START_TEST(test_http_last_event_id_null_arguments)
{
	struct sse_http_request req;
	char out[8];
	size_t len;

	ck_assert_int_eq(parse_str("GET / HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert_int_eq(sse_http_last_event_id(NULL, out, sizeof(out), &len), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_last_event_id(&req, out, sizeof(out), NULL), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_last_event_id(&req, NULL, 4, &len), SSE_ERR_INVALID);
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *head = tcase_create("response");
	TCase *parse = tcase_create("parse");
	TCase *refuse = tcase_create("refuse");
	TCase *id = tcase_create("last-event-id");

	tcase_add_test(head, test_http_head_defaults);
	tcase_add_test(head, test_http_head_cors);
	tcase_add_test(head, test_http_head_chunked);
	tcase_add_test(head, test_http_head_http2_has_no_connection_headers);
	tcase_add_test(head, test_http_head_refuses_bad_options);
	tcase_add_test(head, test_http_stop_is_bare_204);
	tcase_add_test(head, test_http_retry_later_response);
	tcase_add_test(head, test_http_retry_later_refuses_out_of_range);
	tcase_add_test(head, test_http_answers_carry_cors);
	tcase_add_test(head, test_http_retry_later_http2_has_no_connection_header);
	tcase_add_test(head, test_http_chunk_heads);
	tcase_add_test(parse, test_http_parse_browser_request);
	tcase_add_test(parse, test_http_parse_http10_and_other_minors);
	tcase_add_test(parse, test_http_parse_bare_lf);
	tcase_add_test(parse, test_http_parse_skips_leading_empty_lines);
	tcase_add_test(parse, test_http_parse_trims_ows);
	tcase_add_test(parse, test_http_parse_obs_text_and_token_chars);
	tcase_add_test(parse, test_http_parse_every_prefix_is_incomplete);
	tcase_add_test(parse, test_http_find_header_ignores_case);
	tcase_add_test(refuse, test_http_parse_refuses_malformed_request_line);
	tcase_add_test(refuse, test_http_parse_refuses_malformed_fields);
	tcase_add_test(refuse, test_http_parse_refuses_nul_anywhere);
	tcase_add_test(refuse, test_http_parse_refuses_garbage_early);
	tcase_add_test(refuse, test_http_parse_header_limit);
	tcase_add_test(refuse, test_http_parse_null_arguments);
	tcase_add_test(id, test_http_last_event_id_from_header);
	tcase_add_test(id, test_http_last_event_id_from_query);
	tcase_add_test(id, test_http_last_event_id_percent_decoding);
	tcase_add_test(id, test_http_last_event_id_bad_escapes);
	tcase_add_test(id, test_http_last_event_id_header_overrides_query);
	tcase_add_test(id, test_http_last_event_id_absent);
	tcase_add_test(id, test_http_last_event_id_buffer_too_small);
	tcase_add_test(id, test_http_last_event_id_exact_fit);
	tcase_add_test(id, test_http_last_event_id_null_arguments);
	tcase_add_checked_fixture(parse, NULL, release_held);
	tcase_add_checked_fixture(refuse, NULL, release_held);
	tcase_add_checked_fixture(id, NULL, release_held);
	suite_add_tcase(s, head);
	suite_add_tcase(s, parse);
	suite_add_tcase(s, refuse);
	suite_add_tcase(s, id);
	return s;
}

int main(void)
{
	return test_run_suite(http_suite());
}
