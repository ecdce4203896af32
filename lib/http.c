/*
 * HTTP helpers: what an SSE endpoint needs from HTTP/1.x and no more. The
 * writers build a response from a few fixed pieces and write nothing
 * unless all of it fits; the reader is a one-pass RFC 9112 request-head
 * parser that refuses a bad byte as soon as it sees it, even before the
 * head is complete, so a client sending garbage slowly is turned away
 * early. It never reads past buf + len. The query readers take plain
 * spans, so they serve the result of any HTTP parser, ours included.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "sse-private.h"

/* ---- writing ------------------------------------------------------------ */

struct piece {
	const char *s;
	size_t n;
};

/* A string literal as a piece, in an initializer. */
#define LIT(s) {(s), sizeof(s) - 1}
#define MAX_PIECES 8

/* Every successful response of an event stream starts so. Cache-Control
 * no-transform keeps compressing proxies from gathering the stream. */
#define STREAM_HEAD                                                            \
	"HTTP/1.1 200 OK\r\n"                                                  \
	"Content-Type: text/event-stream\r\n"                                  \
	"Cache-Control: no-cache, no-transform\r\n"

/* Write the pieces in order, or nothing when they do not all fit (then
 * *written is the size needed, as snprintf does). */
static int emit(const struct piece *pc, size_t n, char *buf, size_t cap, size_t *written)
{
	size_t total = 0;

	if (written == NULL || (buf == NULL && cap > 0))
		return SSE_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		total += pc[i].n; /* objects in memory: their sum fits */
	*written = total;
	if (total > cap)
		return SSE_ERR_BUFFER;
	for (size_t i = 0; i < n; i++) {
		memcpy(buf, pc[i].s, pc[i].n);
		buf += pc[i].n;
	}
	return 0;
}


/* A header value we write must be a valid field value (RFC 9110 §5.5):
 * no control character but HTAB, so a caller's string can never end the
 * line early and smuggle in headers of its own. Empty never passes CORS. */
static int origin_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

static int check_options(const struct sse_http_options *o)
{
	/* HTTP/2 frames the body itself and forbids Transfer-Encoding. */
	if (o->chunked && o->http2)
		return SSE_ERR_INVALID;
	if (o->cors_origin == NULL)
		return 0;
	if (!origin_ok(o->cors_origin))
		return SSE_ERR_INVALID;
	/* Fetch refuses credentials with a wildcard origin: the client
	 * would only see a network error, and reconnect forever. */
	if (o->cors_credentials && strcmp(o->cors_origin, "*") == 0)
		return SSE_ERR_INVALID;
	return 0;
}

/* The options in force: the caller's, or the defaults for NULL, checked. */
static int options(const struct sse_http_options **o)
{
	static const struct sse_http_options defaults = {NULL, 0, 0, 0};

	if (*o == NULL)
		*o = &defaults;
	return check_options(*o);
}

/* The CORS lines, if any. Every answer carries them: a cross-origin
 * EventSource treats a response without them as a network error, and
 * reconnects, so even a 204 would not stop it. */
static size_t cors_pieces(const struct sse_http_options *o, struct piece *pc)
{
	size_t n = 0;

	if (o->cors_origin == NULL)
		return 0;
	pc[n++] = (struct piece)LIT("Access-Control-Allow-Origin: ");
	pc[n++] = (struct piece){o->cors_origin, strlen(o->cors_origin)};
	pc[n++] = (struct piece)LIT("\r\n");
	if (o->cors_credentials)
		pc[n++] = (struct piece)LIT("Access-Control-Allow-Credentials: true\r\n");
	return n;
}

/*
 * No Connection header: keep-alive is HTTP/1.1's default, and HTTP/2
 * forbids it, so leaving it out serves both. With http2 the head is still
 * written as HTTP/1.1 text, for the caller to turn into a HEADERS frame.
 */
int sse_http_response_head(const struct sse_http_options *o, char *buf, size_t cap,
			   size_t *written)
{
	struct piece pc[MAX_PIECES];
	size_t n = 0;
	int rc = options(&o);

	if (rc)
		return rc;
	pc[n++] = (struct piece)LIT(STREAM_HEAD "X-Accel-Buffering: no\r\n");
	n += cors_pieces(o, pc + n);
	if (o->chunked)
		pc[n++] = (struct piece)LIT("Transfer-Encoding: chunked\r\n");
	pc[n++] = (struct piece)LIT("\r\n");
	return emit(pc, n, buf, cap, written);
}

/* The same fields as sse_http_response_head() writes, by name. */
int sse_http_response_fields(const struct sse_http_options *o, struct sse_http_field *fields,
			     size_t cap)
{
	struct sse_http_field f[SSE_HTTP_FIELDS_MAX];
	size_t n = 0;
	int rc = options(&o);

	if (rc)
		return rc;
	if (fields == NULL)
		return SSE_ERR_INVALID;
	f[n++] = (struct sse_http_field){"content-type", "text/event-stream"};
	f[n++] = (struct sse_http_field){"cache-control", "no-cache, no-transform"};
	f[n++] = (struct sse_http_field){"x-accel-buffering", "no"};
	if (o->cors_origin != NULL) {
		f[n++] = (struct sse_http_field){"access-control-allow-origin", o->cors_origin};
		if (o->cors_credentials)
			f[n++] = (struct sse_http_field){"access-control-allow-credentials", "true"};
	}
	if (n > cap)
		return SSE_ERR_BUFFER;
	memcpy(fields, f, n * sizeof f[0]);
	return (int)n;
}

/* No Content-Length: RFC 9110 §8.6 forbids it on a 204, whose head alone
 * is the whole message. No Connection header either, so the connection
 * may serve other requests (and the bytes stay valid for HTTP/2). */
int sse_http_stop(const struct sse_http_options *o, char *buf, size_t cap, size_t *written)
{
	struct piece pc[MAX_PIECES];
	size_t n = 0;
	int rc = options(&o);

	if (rc)
		return rc;
	pc[n++] = (struct piece)LIT("HTTP/1.1 204 No Content\r\n");
	n += cors_pieces(o, pc + n);
	pc[n++] = (struct piece)LIT("\r\n");
	return emit(pc, n, buf, cap, written);
}

/* The body's length is known, so Content-Length delimits it: the client
 * sees a complete response, takes its retry, and the close is clean.
 * Connection: close asks HTTP/1.1 to close; HTTP/2 forbids the header. */
int sse_http_retry_later(const struct sse_http_options *o, long retry_ms, char *buf, size_t cap,
			 size_t *written)
{
	char ms[SSE__U64_DIGITS], body_len[SSE__U64_DIGITS];
	struct piece pc[MAX_PIECES + 4];
	size_t n = 0, ms_n;
	int rc = options(&o);

	if (rc)
		return rc;
	if (retry_ms < 0 || retry_ms > SSE_RETRY_MAX)
		return SSE_ERR_RETRY;
	ms_n = sse__format_u64((size_t)retry_ms, 10, ms);
	pc[n++] = (struct piece)LIT(STREAM_HEAD);
	n += cors_pieces(o, pc + n);
	if (!o->http2)
		pc[n++] = (struct piece)LIT("Connection: close\r\n");
	pc[n++] = (struct piece)LIT("Content-Length: ");
	/* the body: "retry: " + digits + "\n\n" */
	pc[n++] = (struct piece){body_len, sse__format_u64(7 + ms_n + 2, 10, body_len)};
	pc[n++] = (struct piece)LIT("\r\n\r\nretry: ");
	pc[n++] = (struct piece){ms, ms_n};
	pc[n++] = (struct piece)LIT("\n\n");
	return emit(pc, n, buf, cap, written);
}

/* The body then ends with the zero-size chunk "0\r\n" and the empty
 * trailer section's "\r\n" (RFC 9112 §7.1). */
int sse_http_chunk_head(size_t len, char *buf, size_t cap, size_t *written)
{
	char hex[SSE__U64_DIGITS];
	size_t n = sse__format_u64(len, 16, hex);
	const struct piece pc[] = {{hex, n}, LIT("\r\n")};

	return emit(pc, 2, buf, cap, written);
}

/* ---- reading ------------------------------------------------------------ */

/* The unread part of the caller's buffer. */
struct scan {
	const char *p, *end;
};

/* tchar of RFC 9110 §5.6.2: what methods and field names are made of. */
static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value's bytes (RFC 9110 §5.5): VCHAR, SP, HTAB and obs-text. */
static int is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Step over a run of bytes of one class; returns where it started. */
static const char *span(struct scan *s, int (*in_class)(unsigned char))
{
	const char *start = s->p;

	while (s->p < s->end && in_class((unsigned char)*s->p))
		s->p++;
	return start;
}

/* Take byte c, or say why not: input ran out, or another byte is there. */
static int expect(struct scan *s, char c)
{
	if (s->p == s->end)
		return SSE_ERR_INCOMPLETE;
	if (*s->p != c)
		return SSE_ERR_HTTP;
	s->p++;
	return 0;
}

/* A line end: CRLF, or a bare LF (RFC 9112 §2.2 lets us accept it). */
static int line_end(struct scan *s)
{
	if (s->p < s->end && *s->p == '\r')
		s->p++;
	return expect(s, '\n');
}

/* RFC 9112 §2.2: empty lines before the request line are ignored (a
 * client may send one after a POST body). The caller bounds the head. */
static int skip_empty_lines(struct scan *s)
{
	while (s->p < s->end && (*s->p == '\r' || *s->p == '\n')) {
		int rc = line_end(s);

		if (rc)
			return rc;
	}
	return s->p == s->end ? SSE_ERR_INCOMPLETE : 0;
}

/* A non-empty run of a class, followed by byte sep. */
static int field(struct scan *s, int (*in_class)(unsigned char), char sep, const char **out,
		 size_t *len)
{
	*out = span(s, in_class);
	*len = (size_t)(s->p - *out);
	if (*len == 0)
		return s->p == s->end ? SSE_ERR_INCOMPLETE : SSE_ERR_HTTP;
	return expect(s, sep);
}

/* "HTTP/1." DIGIT: case-sensitive (RFC 9112 §2.3); 1.x only. A prefix of
 * it is only incomplete; a wrong byte is an error however early. */
static int version(struct scan *s, int *minor)
{
	static const char name[] = "HTTP/1.";
	int rc;

	for (size_t i = 0; i < sizeof(name) - 1; i++) {
		rc = expect(s, name[i]);
		if (rc)
			return rc;
	}
	if (s->p == s->end)
		return SSE_ERR_INCOMPLETE;
	if (*s->p < '0' || *s->p > '9')
		return SSE_ERR_HTTP;
	*minor = *s->p++ - '0';
	return line_end(s);
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3).
 * The target is any non-empty run of visible ASCII: origin-, absolute-,
 * authority- or asterisk-form; telling them apart is the caller's job. */
static int request_line(struct scan *s, struct sse_http_request *req)
{
	int rc = skip_empty_lines(s);

	if (rc == 0)
		rc = field(s, is_tchar, ' ', &req->method, &req->method_len);
	if (rc == 0)
		rc = field(s, is_vchar, ' ', &req->target, &req->target_len);
	if (rc == 0)
		rc = version(s, &req->minor_version);
	return rc;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 §5). No
 * space before the colon (§5.1: it has smuggled requests past proxies). */
static int field_line(struct scan *s, struct sse_http_header *h)
{
	int rc = field(s, is_tchar, ':', &h->name, &h->name_len);

	if (rc)
		return rc;
	while (s->p < s->end && is_ows(*s->p))
		s->p++;
	h->value = span(s, is_value_char);
	h->value_len = (size_t)(s->p - h->value);
	while (h->value_len > 0 && is_ows(h->value[h->value_len - 1]))
		h->value_len--;
	return line_end(s);
}

/* Field lines up to the empty line that ends the head. */
static int field_lines(struct scan *s, struct sse_http_request *req)
{
	for (;;) {
		int rc;

		if (s->p == s->end)
			return SSE_ERR_INCOMPLETE;
		if (*s->p == '\r' || *s->p == '\n')
			return line_end(s);
		/* obs-fold, or whitespace before the first field: both are
		 * refused (RFC 9112 §5.2, §2.2). */
		if (is_ows(*s->p))
			return SSE_ERR_HTTP;
		if (req->header_count == req->header_cap)
			return SSE_ERR_TOO_LARGE;
		rc = field_line(s, &req->headers[req->header_count]);
		if (rc)
			return rc;
		req->header_count++;
	}
}

/*
 * One pass, left to right: any byte that cannot start a valid head is an
 * error as soon as it is seen, and SSE_ERR_INCOMPLETE means every byte so
 * far was fine. The caller parses again from the start with more bytes,
 * O(n) a call; its bound on the head's size bounds the total.
 */
int sse_http_parse_request(const char *buf, size_t len, struct sse_http_request *req)
{
	struct scan s;
	int rc;

	if (buf == NULL || req == NULL || (req->headers == NULL && req->header_cap > 0))
		return SSE_ERR_INVALID;
	s.p = buf;
	s.end = buf + len;
	/* The caller's array stays; everything else starts afresh. */
	*req = (struct sse_http_request){.headers = req->headers, .header_cap = req->header_cap};
	rc = request_line(&s, req);
	if (rc == 0)
		rc = field_lines(&s, req);
	if (rc)
		return rc;
	req->head_len = (size_t)(s.p - buf);
	return 0;
}

/* ASCII only: a locale must not change how header names match. */
static int ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int same_name(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

const struct sse_http_header *sse_http_find_header(const struct sse_http_request *req,
						   const char *name)
{
	size_t n;

	if (req == NULL || req->headers == NULL || name == NULL)
		return NULL;
	n = strlen(name);
	for (size_t i = 0; i < req->header_count; i++) {
		const struct sse_http_header *h = &req->headers[i];

		if (h->name_len == n && same_name(h->name, name, n))
			return h;
	}
	return NULL;
}

/* ---- query parameters and the resume point ----------------------------- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)ascii_lower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Percent-decode (RFC 3986 §2.1) n bytes into out, or only count them
 * when out is NULL. Returns the decoded length, or SIZE_MAX for a '%'
 * without two hex digits. '+' is left alone: in RFC 3986 it is data, and
 * only HTML forms read it as a space. out may be s itself: each output
 * byte lands at or before the input byte it came from, after that one
 * was read.
 */
static size_t percent_decode(const char *s, size_t n, char *out)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++, len++) {
		char c = s[i];

		if (c == '%') {
			if (n - i < 3 || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
				return SIZE_MAX;
			c = (char)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
			i += 2;
		}
		if (out)
			out[len] = c;
	}
	return len;
}

/* Decode a raw value into out, or report the length it needs. */
static int put_decoded(const char *val, size_t val_len, char *out, size_t cap, size_t *len)
{
	size_t n = percent_decode(val, val_len, NULL);

	if (n == SIZE_MAX)
		return SSE_ERR_HTTP;
	*len = n;
	if (n > cap)
		return SSE_ERR_BUFFER;
	if (n)
		percent_decode(val, val_len, out);
	return 1;
}

/* Copy n bytes out as they are, or report the length needed. memmove:
 * the caller may decode in place, so out may overlap the query. */
static int put_raw(const char *s, size_t n, char *out, size_t cap, size_t *len)
{
	*len = n;
	if (n > cap)
		return SSE_ERR_BUFFER;
	if (n)
		memmove(out, s, n);
	return 1;
}

static int name_is_one_of(const char *p, size_t n, const struct piece *names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (names[i].n == n && (n == 0 || memcmp(p, names[i].s, n) == 0))
			return 1;
	return 0;
}

/* The raw value of the first parameter whose name is one of names: 1
 * and its span, or 0. Parts are '&'-separated; an empty part is no
 * parameter; without '=' the value is empty. */
static int find_param(const char *q, size_t n, const struct piece *names, size_t count,
		      const char **val, size_t *val_len)
{
	const char *p = q, *end = q + n;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *name_end = eq ? eq : stop;

		if (stop > p && name_is_one_of(p, (size_t)(name_end - p), names, count)) {
			*val = eq ? eq + 1 : stop;
			*val_len = (size_t)(stop - *val);
			return 1;
		}
		if (amp == NULL)
			return 0;
		p = amp + 1;
	}
	return 0; /* the query was empty, or ended with '&' */
}

/* The arguments every reader takes: a span may be NULL only when empty. */
static int bad_args(const char *query, size_t query_len, char *out, size_t cap, size_t *len)
{
	return len == NULL || (out == NULL && cap > 0) || (query == NULL && query_len > 0);
}

static int query_param(const char *query, size_t query_len, const struct piece *names,
		       size_t count, char *out, size_t cap, size_t *len)
{
	const char *val;
	size_t val_len;

	if (query == NULL || !find_param(query, query_len, names, count, &val, &val_len))
		return 0;
	return put_decoded(val, val_len, out, cap, len);
}

int sse_http_query_param(const char *query, size_t query_len, const char *name, size_t name_len,
			 char *out, size_t cap, size_t *len)
{
	const struct piece names[] = {{name, name_len}};

	if (bad_args(query, query_len, out, cap, len) || (name == NULL && name_len > 0))
		return SSE_ERR_INVALID;
	return query_param(query, query_len, names, 1, out, cap, len);
}

/* The header wins: a reconnecting EventSource sends it, and it is newer
 * than whatever the page put in the URL when it first connected. Either
 * query name counts, whichever comes first. */
int sse_http_resume_id(const char *header, size_t header_len, const char *query,
		       size_t query_len, char *out, size_t cap, size_t *len)
{
	static const struct piece names[] = {LIT("lastEventId"), LIT("last_event_id")};

	if (bad_args(query, query_len, out, cap, len) || (header == NULL && header_len > 0))
		return SSE_ERR_INVALID;
	if (header)
		return put_raw(header, header_len, out, cap, len);
	return query_param(query, query_len, names, 2, out, cap, len);
}

/* The query of a request target: between its first '?' and a '#' (which
 * a client should not send, but some do). NULL when there is none. */
static const char *target_query(const char *t, size_t n, size_t *query_len)
{
	const char *hash, *end, *q;

	*query_len = 0;
	if (t == NULL)
		return NULL;
	hash = memchr(t, '#', n);
	end = hash ? hash : t + n;
	q = memchr(t, '?', (size_t)(end - t));
	if (q == NULL)
		return NULL;
	*query_len = (size_t)(end - q - 1);
	return q + 1;
}

int sse_http_last_event_id(const struct sse_http_request *req, char *out, size_t cap,
			   size_t *len)
{
	const struct sse_http_header *h;
	const char *query;
	size_t query_len;

	if (req == NULL)
		return SSE_ERR_INVALID;
	h = sse_http_find_header(req, "Last-Event-ID");
	query = target_query(req->target, req->target_len, &query_len);
	return sse_http_resume_id(h ? h->value : NULL, h ? h->value_len : 0, query, query_len, out,
				  cap, len);
}
