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

/* The fields by name: exactly the head's fields, lowercase, no framing. */
START_TEST(test_http_fields_match_the_head)
{
	struct sse_http_options o = {.cors_origin = "https://a.example", .cors_credentials = 1,
				     .chunked = 1};
	struct sse_http_field f[SSE_HTTP_FIELDS_MAX];
	int n = sse_http_response_fields(&o, f, SSE_HTTP_FIELDS_MAX);

	ck_assert_int_eq(n, 5);
	ck_assert_str_eq(f[0].name, "content-type");
	ck_assert_str_eq(f[0].value, "text/event-stream");
	ck_assert_str_eq(f[1].name, "cache-control");
	ck_assert_str_eq(f[1].value, "no-cache, no-transform");
	ck_assert_str_eq(f[2].name, "x-accel-buffering");
	ck_assert_str_eq(f[2].value, "no");
	ck_assert_str_eq(f[3].name, "access-control-allow-origin");
	ck_assert_ptr_eq(f[3].value, o.cors_origin);
	ck_assert_str_eq(f[4].name, "access-control-allow-credentials");
	ck_assert_str_eq(f[4].value, "true");
	/* Defaults: the three stream fields only. */
	ck_assert_int_eq(sse_http_response_fields(NULL, f, SSE_HTTP_FIELDS_MAX), 3);
	/* Too small: nothing written. */
	f[0].name = NULL;
	ck_assert_int_eq(sse_http_response_fields(&o, f, 4), SSE_ERR_BUFFER);
	ck_assert_ptr_null(f[0].name);
	/* The head's refusals hold here too. */
	o.cors_origin = "a\r\nSet-Cookie: x=1";
	ck_assert_int_eq(sse_http_response_fields(&o, f, SSE_HTTP_FIELDS_MAX), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_response_fields(NULL, NULL, 3), SSE_ERR_INVALID);
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

/* The input of the last parse: *req points into it until the next one,
 * and its fields into this array. */
static char *held;
static struct sse_http_header fields[SSE_HTTP_DEFAULT_HEADERS];

static void release_held(void)
{
	free(held);
	held = NULL;
}

/* Parse n bytes from an exact-size heap copy, into the shared array. */
static int parse_n(const char *s, size_t n, struct sse_http_request *req)
{
	req->headers = fields;
	req->header_cap = SSE_HTTP_DEFAULT_HEADERS;
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

	/* A request with exactly as many fields as the suggested array. */
	n = make_fields(buf, SSE_HTTP_DEFAULT_HEADERS, 1);
	ck_assert_int_eq(parse_n(buf, n, &req), 0);
	ck_assert_uint_eq(req.header_count, SSE_HTTP_DEFAULT_HEADERS);
	expect_header(&req, SSE_HTTP_DEFAULT_HEADERS - 1, "X-31", "v31");
	n = make_fields(buf, SSE_HTTP_DEFAULT_HEADERS + 1, 1);
	ck_assert_int_eq(parse_n(buf, n, &req), SSE_ERR_TOO_LARGE);
	/* Known as soon as the extra field starts. */
	n = make_fields(buf, SSE_HTTP_DEFAULT_HEADERS, 0);
	ck_assert_int_eq(parse_n(buf, n, &req), SSE_ERR_INCOMPLETE);
	ck_assert_int_eq(parse_n(strcat(buf, "X"), n + 1, &req), SSE_ERR_TOO_LARGE);
}
END_TEST

/* Parse from a string into the caller's array of cap fields. */
static int parse_into(const char *s, struct sse_http_request *req, struct sse_http_header *h,
		      size_t cap)
{
	*req = (struct sse_http_request){.headers = h, .header_cap = cap};
	release_held();
	held = malloc(strlen(s) + 1);
	ck_assert_ptr_nonnull(held);
	memcpy(held, s, strlen(s));
	return sse_http_parse_request(held, strlen(s), req);
}

START_TEST(test_http_parse_caller_array)
{
	static const char three[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	static const char four[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
	struct sse_http_header h[4];
	struct sse_http_request req;

	/* Three fields in an array of three: an exact fit. The element
	 * past the capacity is not the parser's to touch. */
	memset(h, SENTINEL, sizeof(h));
	ck_assert_int_eq(parse_into(three, &req, h, 3), 0);
	ck_assert_ptr_eq(req.headers, h);
	ck_assert_uint_eq(req.header_cap, 3);
	ck_assert_uint_eq(req.header_count, 3);
	expect_header(&req, 0, "A", "1");
	expect_header(&req, 2, "C", "3");
	for (size_t i = 0; i < sizeof(h[3]); i++)
		ck_assert_int_eq(((unsigned char *)&h[3])[i], SENTINEL);

	/* Four fields do not fit in three; the array and its size stay. */
	ck_assert_int_eq(parse_into(four, &req, h, 3), SSE_ERR_TOO_LARGE);
	ck_assert_ptr_eq(req.headers, h);
	ck_assert_uint_eq(req.header_cap, 3);
	for (size_t i = 0; i < sizeof(h[3]); i++)
		ck_assert_int_eq(((unsigned char *)&h[3])[i], SENTINEL);
	ck_assert_int_eq(parse_into(four, &req, h, 4), 0);
	ck_assert_uint_eq(req.header_count, 4);
	expect_header(&req, 3, "D", "4");

	/* One field, an array of one; then none at all. */
	ck_assert_int_eq(parse_into("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req, h, 1), 0);
	ck_assert_uint_eq(req.header_count, 1);
	ck_assert_int_eq(parse_into("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req, h, 0),
			 SSE_ERR_TOO_LARGE);
	ck_assert_int_eq(parse_into("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req, NULL, 0),
			 SSE_ERR_TOO_LARGE);
	ck_assert_int_eq(parse_into("GET / HTTP/1.1\r\n\r\n", &req, NULL, 0), 0);
	ck_assert_uint_eq(req.header_count, 0);
	ck_assert_ptr_null(sse_http_find_header(&req, "Host"));
	/* A malformed field is still malformed when there is no room for it:
	 * the room runs out first only once a field begins. */
	ck_assert_int_eq(parse_into("GET / HTTP/1.1\r\n Host: h\r\n\r\n", &req, NULL, 0),
			 SSE_ERR_HTTP);
}
END_TEST

START_TEST(test_http_parse_has_no_limit_of_its_own)
{
	enum { MANY = 100 };
	struct sse_http_header h[MANY];
	struct sse_http_request req;
	char buf[4096];

	make_fields(buf, MANY, 1);
	ck_assert_int_eq(parse_into(buf, &req, h, MANY), 0);
	ck_assert_uint_eq(req.header_count, MANY);
	expect_header(&req, MANY - 1, "X-99", "v99");
	ck_assert_ptr_eq(sse_http_find_header(&req, "x-99"), &h[MANY - 1]);
	ck_assert_int_eq(parse_into(buf, &req, h, MANY - 1), SSE_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_http_parse_null_arguments)
{
	struct sse_http_header h[1];
	struct sse_http_request req = {.headers = h, .header_cap = 1};

	ck_assert_int_eq(sse_http_parse_request(NULL, 0, &req), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_parse_request(NULL, 5, &req), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_parse_request("GET / HTTP/1.1\r\n\r\n", 18, NULL),
			 SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_parse_request("", 0, &req), SSE_ERR_INCOMPLETE);
	/* Room for a field, but no array to put it in. */
	req = (struct sse_http_request){.headers = NULL, .header_cap = 1};
	ck_assert_int_eq(sse_http_parse_request("GET / HTTP/1.1\r\n\r\n", 18, &req),
			 SSE_ERR_INVALID);
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
	/* RFC 3986: '+' is data, not a space; "%20" is the space. */
	EXPECT_ID("GET /?lastEventId=a+b%20c HTTP/1.1\r\n\r\n", "a+b c");
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

/* ---- the resume point from any parser's parts -------------------------- */

/* What a reader gave: its code, and the bytes it wrote (want_len of them
 * when it found something). The byte after them must be untouched. */
struct got {
	int rc;
	size_t len;
	char out[64];
};

/* sse_http_resume_id() on a header (NULL: absent) and a query, from
 * exact-size heap copies so a read past either shows under ASan. */
static char *exact_copy(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, s, n);
	return p;
}

static struct got resume(const char *header, const char *query)
{
	struct got g = {0};
	char *h = header ? exact_copy(header) : NULL;
	char *q = query ? exact_copy(query) : NULL;

	g.len = 999;
	memset(g.out, SENTINEL, sizeof(g.out));
	g.rc = sse_http_resume_id(h, header ? strlen(header) : 0, q, query ? strlen(query) : 0,
				  g.out, sizeof(g.out) - 1, &g.len);
	free(h);
	free(q);
	return g;
}

static void expect_found(struct got g, const char *want, size_t want_len)
{
	ck_assert_int_eq(g.rc, 1);
	ck_assert_uint_eq(g.len, want_len);
	ck_assert_mem_eq(g.out, want, want_len);
	ck_assert_int_eq((unsigned char)g.out[want_len], SENTINEL);
}

#define EXPECT_RESUME(header, query, lit) expect_found(resume((header), (query)), (lit), sizeof(lit) - 1)

static void expect_rc(struct got g, int rc)
{
	ck_assert_int_eq(g.rc, rc);
	ck_assert_int_eq((unsigned char)g.out[0], SENTINEL);
	if (rc == 0)
		ck_assert_uint_eq(g.len, 999); /* left alone */
}

START_TEST(test_http_resume_id_from_header)
{
	EXPECT_RESUME("42", NULL, "42");
	EXPECT_RESUME("k3f9-17", "", "k3f9-17");
	/* A field value as the parser gave it: never decoded. */
	EXPECT_RESUME("a%41+b", NULL, "a%41+b");
	EXPECT_RESUME("caf\xc3\xa9", NULL, "caf\xc3\xa9");
	/* Present but empty: an empty id, not an absent one. */
	EXPECT_RESUME("", NULL, "");
	EXPECT_RESUME("", "lastEventId=5", "");
}
END_TEST

START_TEST(test_http_resume_id_from_query)
{
	EXPECT_RESUME(NULL, "lastEventId=42", "42");
	EXPECT_RESUME(NULL, "last_event_id=42", "42");
	EXPECT_RESUME(NULL, "a=1&lastEventId=7&b=2", "7");
	EXPECT_RESUME(NULL, "a=1&b=2&last_event_id=x9", "x9");
	/* The first parameter of either name wins. */
	EXPECT_RESUME(NULL, "last_event_id=1&lastEventId=2", "1");
	EXPECT_RESUME(NULL, "lastEventId=1&last_event_id=2", "1");
	EXPECT_RESUME(NULL, "lastEventId=1&lastEventId=2", "1");
	/* A longer name that starts with one of them is another name. */
	EXPECT_RESUME(NULL, "lastEventIdX=1&lastEventId=2", "2");
	EXPECT_RESUME(NULL, "last_event_id_=1&xlast_event_id=2&last_event_id=3", "3");
	/* Percent-decoded (RFC 3986 §2.1), either case of hex digit. */
	EXPECT_RESUME(NULL, "lastEventId=%41%62%2a", "Ab*");
	EXPECT_RESUME(NULL, "last_event_id=%2B%26%3D%25%23", "+&=%#");
	EXPECT_RESUME(NULL, "lastEventId=caf%C3%a9", "caf\xc3\xa9");
	EXPECT_RESUME(NULL, "lastEventId=a%00b", "a\0b");
	/* '+' is a plus: only HTML forms read it as a space. */
	EXPECT_RESUME(NULL, "lastEventId=1+2", "1+2");
	EXPECT_RESUME(NULL, "lastEventId=2024-01-01T00:00:00+01:00",
		      "2024-01-01T00:00:00+01:00");
	/* Empty, or without '=': found, and empty. */
	EXPECT_RESUME(NULL, "lastEventId=", "");
	EXPECT_RESUME(NULL, "lastEventId&x=1", "");
}
END_TEST

START_TEST(test_http_resume_id_absent)
{
	expect_rc(resume(NULL, NULL), 0);
	expect_rc(resume(NULL, ""), 0);
	expect_rc(resume(NULL, "a=1&b=2"), 0);
	expect_rc(resume(NULL, "lasteventid=1&LastEventId=2&last-event-id=3"), 0);
	expect_rc(resume(NULL, "last%5Fevent%5Fid=1"), 0); /* names are not decoded */
	expect_rc(resume(NULL, "x=lastEventId&lastEventId%3D1"), 0);
	expect_rc(resume(NULL, "a=1;lastEventId=1"), 0); /* only '&' separates */
}
END_TEST

START_TEST(test_http_resume_id_malformed_escape)
{
	static const char *const bad[] = {
		"lastEventId=%",       "lastEventId=%4",      "lastEventId=%4g",
		"lastEventId=%g4",     "lastEventId=ab%&x=1", "last_event_id=%%41",
		"lastEventId=%-1",     "lastEventId=% 41",    "a=1&lastEventId=1%",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(resume(NULL, bad[i]).rc == SSE_ERR_HTTP, "%s", bad[i]);
	/* A bad escape in another parameter, or in a later one of the same
	 * name, is none of our business. */
	EXPECT_RESUME(NULL, "x=%zz&lastEventId=1", "1");
	EXPECT_RESUME(NULL, "lastEventId=1&lastEventId=%zz", "1");
}
END_TEST

START_TEST(test_http_resume_id_header_beats_query)
{
	EXPECT_RESUME("9", "lastEventId=1", "9");
	EXPECT_RESUME("9", "last_event_id=1", "9");
	/* Even over a query it makes irrelevant, bad escape or not. */
	EXPECT_RESUME("9", "lastEventId=%zz", "9");
}
END_TEST

START_TEST(test_http_resume_id_buffer_too_small)
{
	char out[8];
	size_t len = 0;

	/* The header's length, then the decoded length: 9 escapes are 9
	 * bytes, not 27. Nothing is written either time. */
	memset(out, SENTINEL, sizeof(out));
	ck_assert_int_eq(sse_http_resume_id("123456789", 9, NULL, 0, out, 8, &len), SSE_ERR_BUFFER);
	ck_assert_uint_eq(len, 9);
	ck_assert_int_eq(sse_http_resume_id("123456789", 9, NULL, 0, NULL, 0, &len),
			 SSE_ERR_BUFFER);
	ck_assert_uint_eq(len, 9);
	len = 0;
	ck_assert_int_eq(sse_http_resume_id(NULL, 0, "lastEventId=%31%32%33%34%35%36%37%38%39", 39,
					    out, 8, &len),
			 SSE_ERR_BUFFER);
	ck_assert_uint_eq(len, 9);
	for (size_t i = 0; i < sizeof(out); i++)
		ck_assert_int_eq((unsigned char)out[i], SENTINEL);
	/* An exact fit, and an empty id in no buffer at all. */
	ck_assert_int_eq(sse_http_resume_id(NULL, 0, "lastEventId=%31%32%33%34%35%36%37%38", 36,
					    out, 8, &len),
			 1);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(out, "12345678", 8);
	ck_assert_int_eq(sse_http_resume_id("", 0, NULL, 0, NULL, 0, &len), 1);
	ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_http_resume_id_null_arguments)
{
	char out[8];
	size_t len = 5;

	ck_assert_int_eq(sse_http_resume_id("1", 1, NULL, 0, out, sizeof(out), NULL),
			 SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_resume_id("1", 1, NULL, 0, NULL, 4, &len), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_resume_id(NULL, 1, NULL, 0, out, sizeof(out), &len),
			 SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_resume_id(NULL, 0, NULL, 3, out, sizeof(out), &len),
			 SSE_ERR_INVALID);
	ck_assert_uint_eq(len, 5);
}
END_TEST

/* ---- any query parameter ------------------------------------------------ */

/* sse_http_query_param() for a NUL-terminated name, on an exact-size copy. */
static struct got param(const char *query, const char *name)
{
	struct got g = {0};
	size_t n = strlen(query);
	char *q = exact_copy(query);

	g.len = 999;
	memset(g.out, SENTINEL, sizeof(g.out));
	g.rc = sse_http_query_param(q, n, name, strlen(name), g.out, sizeof(g.out) - 1, &g.len);
	free(q);
	return g;
}

#define EXPECT_PARAM(query, name, lit) expect_found(param((query), (name)), (lit), sizeof(lit) - 1)

START_TEST(test_http_query_param_names)
{
	EXPECT_PARAM("a=1&b=2", "a", "1");
	EXPECT_PARAM("a=1&b=2", "b", "2");
	/* A name is a whole name: no prefix, no suffix, case matters. */
	EXPECT_PARAM("ab=1&a=2", "a", "2");
	EXPECT_PARAM("a=1&ab=2", "ab", "2");
	expect_rc(param("ab=1", "a"), 0);
	expect_rc(param("a=1", "ab"), 0);
	expect_rc(param("A=1", "a"), 0);
	expect_rc(param("xa=1", "a"), 0);
	/* A name is compared as it appears, not decoded. */
	expect_rc(param("a%62=1", "ab"), 0);
	EXPECT_PARAM("a%62=1", "a%62", "1");
	/* The first '=' ends the name; the first of a name wins. */
	EXPECT_PARAM("a=b=c", "a", "b=c");
	EXPECT_PARAM("a=1&a=2", "a", "1");
	/* '=' and '&' in a value are escaped, and decode to themselves. */
	EXPECT_PARAM("a=%3D%26&b=2", "a", "=&");
	/* Only '&' separates, and a value is not searched for names. */
	expect_rc(param("a=1;b=2", "b"), 0);
	EXPECT_PARAM("a=1;b=2", "a", "1;b=2");
	expect_rc(param("x=b=2", "b"), 0);
}
END_TEST

START_TEST(test_http_query_param_empty_parts)
{
	/* Empty values, with '=' or without. */
	EXPECT_PARAM("a=&b=2", "a", "");
	EXPECT_PARAM("a&b=2", "a", "");
	EXPECT_PARAM("b=2&a", "a", "");
	/* Empty parts between, before or after are skipped. */
	EXPECT_PARAM("a=1&&b=2", "b", "2");
	EXPECT_PARAM("a=1&&b=2", "a", "1");
	EXPECT_PARAM("&&a=1", "a", "1");
	EXPECT_PARAM("a=1&", "a", "1");
	expect_rc(param("a=1&", "b"), 0);
	expect_rc(param("&", "a"), 0);
	expect_rc(param("", "a"), 0);
	/* The empty name is the name of a part such as "=v", and of no
	 * empty part. */
	EXPECT_PARAM("a=1&=v", "", "v");
	expect_rc(param("a=1&&b=2&", ""), 0);
	/* The query is what the caller says it is: '#' and '?' are bytes. */
	EXPECT_PARAM("a=1#x", "a", "1#x");
	EXPECT_PARAM("?a=1", "?a", "1");
}
END_TEST

START_TEST(test_http_query_param_decoding)
{
	EXPECT_PARAM("v=%41%62%2a", "v", "Ab*");
	EXPECT_PARAM("v=%e2%82%AC", "v", "\xe2\x82\xac");
	EXPECT_PARAM("v=%ff%00%7F", "v", "\xff\0\x7f");
	EXPECT_PARAM("v=%2541", "v", "%41"); /* decoded once only */
	EXPECT_PARAM("v=a%20b", "v", "a b");
	/* '+' stays '+' (RFC 3986); "%2B" is one too. */
	EXPECT_PARAM("v=a+b", "v", "a+b");
	EXPECT_PARAM("v=a%2Bb", "v", "a+b");
	EXPECT_PARAM("v=+", "v", "+");
	/* Bytes that are not escapes pass as they are, even unusual ones. */
	EXPECT_PARAM("v=\xc3\xa9 \t/?:@", "v", "\xc3\xa9 \t/?:@");
	ck_assert_int_eq(param("v=%", "v").rc, SSE_ERR_HTTP);
	ck_assert_int_eq(param("v=%4", "v").rc, SSE_ERR_HTTP);
	ck_assert_int_eq(param("v=%4G", "v").rc, SSE_ERR_HTTP);
	ck_assert_int_eq(param("v=%G4", "v").rc, SSE_ERR_HTTP);
	ck_assert_int_eq(param("v=%4&w=1", "v").rc, SSE_ERR_HTTP);
	ck_assert_int_eq(param("v=%+1", "v").rc, SSE_ERR_HTTP);
	/* Only the value found is decoded. */
	EXPECT_PARAM("w=%&v=1", "v", "1");
	EXPECT_PARAM("v=1&w=%", "v", "1");
}
END_TEST

START_TEST(test_http_query_param_buffer)
{
	static const char q[] = "x=1&v=%31%32%33";
	char out[4];
	size_t len = 0;

	memset(out, SENTINEL, sizeof(out));
	ck_assert_int_eq(sse_http_query_param(q, sizeof(q) - 1, "v", 1, out, 2, &len),
			 SSE_ERR_BUFFER);
	ck_assert_uint_eq(len, 3);
	for (size_t i = 0; i < sizeof(out); i++)
		ck_assert_int_eq((unsigned char)out[i], SENTINEL);
	len = 0;
	ck_assert_int_eq(sse_http_query_param(q, sizeof(q) - 1, "v", 1, NULL, 0, &len),
			 SSE_ERR_BUFFER);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(sse_http_query_param(q, sizeof(q) - 1, "v", 1, out, 3, &len), 1);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(out, "123", 3);
	ck_assert_int_eq((unsigned char)out[3], SENTINEL);
	/* An empty value needs no room; an absent one leaves *len alone. */
	ck_assert_int_eq(sse_http_query_param("v=", 2, "v", 1, NULL, 0, &len), 1);
	ck_assert_uint_eq(len, 0);
	len = 7;
	ck_assert_int_eq(sse_http_query_param("v=", 2, "w", 1, NULL, 0, &len), 0);
	ck_assert_int_eq(sse_http_query_param(NULL, 0, "w", 1, NULL, 0, &len), 0);
	ck_assert_uint_eq(len, 7);
}
END_TEST

START_TEST(test_http_query_param_in_place)
{
	char q[] = "a=1&event=caf%C3%A9%20x&b=2";
	size_t len = 0;

	/* Decoding into the query itself: the value lands at its start. */
	ck_assert_int_eq(sse_http_query_param(q, sizeof(q) - 1, "event", 5, q, sizeof(q) - 1, &len),
			 1);
	ck_assert_uint_eq(len, 7);
	ck_assert_mem_eq(q, "caf\xc3\xa9 x", 7);
	/* The resume point too, from the query or from the header. */
	strcpy(q, "lastEventId=%41%42");
	ck_assert_int_eq(sse_http_resume_id(NULL, 0, q, strlen(q), q, strlen(q), &len), 1);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(q, "AB", 2);
	strcpy(q, "xx12");
	ck_assert_int_eq(sse_http_resume_id(q + 2, 2, q, 4, q, 4, &len), 1);
	ck_assert_mem_eq(q, "12", 2);
}
END_TEST

START_TEST(test_http_query_param_null_arguments)
{
	char out[8];
	size_t len = 5;

	ck_assert_int_eq(sse_http_query_param("a=1", 3, "a", 1, out, sizeof(out), NULL),
			 SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_query_param("a=1", 3, "a", 1, NULL, 1, &len), SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_query_param(NULL, 3, "a", 1, out, sizeof(out), &len),
			 SSE_ERR_INVALID);
	ck_assert_int_eq(sse_http_query_param("a=1", 3, NULL, 1, out, sizeof(out), &len),
			 SSE_ERR_INVALID);
	ck_assert_uint_eq(len, 5);
	/* A NULL name of length 0 is the empty name. */
	ck_assert_int_eq(sse_http_query_param("=z", 2, NULL, 0, out, sizeof(out), &len), 1);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(out[0], 'z');
}
END_TEST

START_TEST(test_http_last_event_id_wraps_resume_id)
{
	struct sse_http_request req = {0};
	char out[8];
	size_t len = 0;

	/* A request filled in by hand, as an application with its own
	 * parser might: the first Last-Event-ID field, else the target's
	 * query, up to a '#'. */
	struct sse_http_header h[2] = {
		{"last-event-id", 13, "7", 1},
		{"Last-Event-ID", 13, "8", 1},
	};
	req.target = "/ev?lastEventId=3#lastEventId=4";
	req.target_len = strlen(req.target);
	ck_assert_int_eq(sse_http_last_event_id(&req, out, sizeof(out), &len), 1);
	ck_assert_mem_eq(out, "3", len);
	req.headers = h;
	req.header_count = 2;
	ck_assert_int_eq(sse_http_last_event_id(&req, out, sizeof(out), &len), 1);
	ck_assert_mem_eq(out, "7", len);
	/* No target at all: no query. */
	req = (struct sse_http_request){0};
	ck_assert_int_eq(sse_http_last_event_id(&req, out, sizeof(out), &len), 0);
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *head = tcase_create("response");
	TCase *parse = tcase_create("parse");
	TCase *refuse = tcase_create("refuse");
	TCase *id = tcase_create("last-event-id");
	TCase *resume = tcase_create("resume-id");
	TCase *query = tcase_create("query-param");

	tcase_add_test(head, test_http_head_defaults);
	tcase_add_test(head, test_http_head_cors);
	tcase_add_test(head, test_http_fields_match_the_head);
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
	tcase_add_test(parse, test_http_parse_caller_array);
	tcase_add_test(parse, test_http_parse_has_no_limit_of_its_own);
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
	tcase_add_test(id, test_http_last_event_id_wraps_resume_id);
	tcase_add_test(resume, test_http_resume_id_from_header);
	tcase_add_test(resume, test_http_resume_id_from_query);
	tcase_add_test(resume, test_http_resume_id_absent);
	tcase_add_test(resume, test_http_resume_id_malformed_escape);
	tcase_add_test(resume, test_http_resume_id_header_beats_query);
	tcase_add_test(resume, test_http_resume_id_buffer_too_small);
	tcase_add_test(resume, test_http_resume_id_null_arguments);
	tcase_add_test(query, test_http_query_param_names);
	tcase_add_test(query, test_http_query_param_empty_parts);
	tcase_add_test(query, test_http_query_param_decoding);
	tcase_add_test(query, test_http_query_param_buffer);
	tcase_add_test(query, test_http_query_param_in_place);
	tcase_add_test(query, test_http_query_param_null_arguments);
	tcase_add_checked_fixture(parse, NULL, release_held);
	tcase_add_checked_fixture(refuse, NULL, release_held);
	tcase_add_checked_fixture(id, NULL, release_held);
	suite_add_tcase(s, head);
	suite_add_tcase(s, parse);
	suite_add_tcase(s, refuse);
	suite_add_tcase(s, id);
	suite_add_tcase(s, resume);
	suite_add_tcase(s, query);
	return s;
}

int main(void)
{
	return test_run_suite(http_suite());
}
