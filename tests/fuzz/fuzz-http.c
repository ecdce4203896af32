/*
 * libFuzzer target for the HTTP request-head parser and the resume point.
 * The input is the bytes a client sent. Checked, aborting on any breach:
 *
 * - the code is one sse_http_parse_request() documents;
 * - on success every span lies inside the head, holds only the bytes its
 *   grammar allows (RFC 9110/9112, checked by plain code here), and
 *   parsing exactly head_len bytes gives the same request;
 * - prefixes agree with the whole: a prefix shorter than the head needs
 *   more input, a longer one gives the same head; for an error, prefixes
 *   are incomplete until the error shows, then keep that error (so bad
 *   bytes are refused as soon as they arrive);
 * - the caller's header array is honoured: a head of n fields parses the
 *   same into an array of exactly n, gives SSE_ERR_TOO_LARGE with n - 1,
 *   and any code but 0 or SSE_ERR_TOO_LARGE does not depend on the size;
 * - sse_http_last_event_id() and sse_http_resume_id() match a plain
 *   reference, report the size they need, and fit an exact buffer;
 * - sse_http_query_param() matches a plain reference for every name in
 *   the target's query and in the raw input read as a query, also when
 *   decoding in place.
 *
 * Every parse reads from an exact-size heap copy, and writes its fields
 * into an exact-size heap array, so ASan sees any access past either.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs up to this size have every prefix parsed; longer ones a sample. */
#define ALL_PREFIXES 300
#define PREFIX_SAMPLES 256

static void die(const char *what)
{
	fprintf(stderr, "fuzz-http: %s\n", what);
	abort();
}

static char *copy_of(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	if (n)
		memcpy(p, s, n);
	else
		*p = '\0'; /* never read; keeps gcc's uninitialized warning quiet */
	return p;
}

/* The fields n bytes can hold: each takes at least three ("a:\n"). */
static size_t room_for(size_t n)
{
	return n / 3 + 1;
}

/* Parse n bytes from an exact-size copy into an array of cap fields;
 * *base receives the copy (freed by the caller, with req->headers) so
 * spans can be compared as offsets. */
static int parse_cap(const char *s, size_t n, size_t cap, struct sse_http_request *req,
		     char **base)
{
	struct sse_http_header *h = cap ? malloc(cap * sizeof(*h)) : NULL;

	if (cap && h == NULL)
		die("out of memory");
	*req = (struct sse_http_request){.headers = h, .header_cap = cap};
	*base = copy_of(s, n);
	return sse_http_parse_request(*base, n, req);
}

/* With room for every field the input can hold: never too many. */
static int parse_copy(const char *s, size_t n, struct sse_http_request *req, char **base)
{
	return parse_cap(s, n, room_for(n), req, base);
}

static void release(struct sse_http_request *req, char *base)
{
	free(req->headers);
	free(base);
}

/* ---- the grammar, read plainly ------------------------------------------ */

static int tchar(unsigned char c)
{
	return c != 0 && memchr("!#$%&'*+-.^_`|~0123456789"
				"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
				c, 77) != NULL;
}

static int all(const char *s, size_t n, int (*ok)(unsigned char))
{
	for (size_t i = 0; i < n; i++)
		if (!ok((unsigned char)s[i]))
			return 0;
	return 1;
}

static int vchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

static int value_char(unsigned char c)
{
	return c == '\t' || c == ' ' || vchar(c) || c >= 0x80;
}

/* A span of the head: inside it, and of the right bytes. */
static void check_span(const char *base, size_t head_len, const char *p, size_t n,
		       int (*ok)(unsigned char), const char *what)
{
	if (p < base || p > base + head_len || n > (size_t)(base + head_len - p))
		die(what);
	if (!all(p, n, ok))
		die(what);
}

static void check_request(const struct sse_http_request *r, const char *base, size_t len)
{
	if (r->head_len == 0 || r->head_len > len || base[r->head_len - 1] != '\n')
		die("head_len out of range or not at a line end");
	if (r->method_len == 0 || r->target_len == 0)
		die("empty method or target");
	check_span(base, r->head_len, r->method, r->method_len, tchar, "method");
	check_span(base, r->head_len, r->target, r->target_len, vchar, "target");
	if (r->minor_version < 0 || r->minor_version > 9)
		die("minor version");
	if (r->header_count > r->header_cap)
		die("header_count");
	for (size_t i = 0; i < r->header_count; i++) {
		const struct sse_http_header *h = &r->headers[i];
		size_t n = h->value_len;

		if (h->name_len == 0)
			die("empty field name");
		check_span(base, r->head_len, h->name, h->name_len, tchar, "field name");
		check_span(base, r->head_len, h->value, n, value_char, "field value");
		if (n && (h->value[0] == ' ' || h->value[0] == '\t' || h->value[n - 1] == ' ' ||
			  h->value[n - 1] == '\t'))
			die("field value not trimmed");
	}
}

/* ---- re-parsing --------------------------------------------------------- */

static int same_span(const char *a, const char *abase, size_t alen, const char *b,
		     const char *bbase, size_t blen)
{
	return alen == blen && a - abase == b - bbase;
}

static void check_same(const struct sse_http_request *a, const char *abase,
		       const struct sse_http_request *b, const char *bbase)
{
	if (!same_span(a->method, abase, a->method_len, b->method, bbase, b->method_len) ||
	    !same_span(a->target, abase, a->target_len, b->target, bbase, b->target_len) ||
	    a->minor_version != b->minor_version || a->header_count != b->header_count ||
	    a->head_len != b->head_len)
		die("re-parsing gave another request line or head length");
	for (size_t i = 0; i < a->header_count; i++) {
		const struct sse_http_header *x = &a->headers[i], *y = &b->headers[i];

		if (!same_span(x->name, abase, x->name_len, y->name, bbase, y->name_len) ||
		    !same_span(x->value, abase, x->value_len, y->value, bbase, y->value_len))
			die("re-parsing gave another field");
	}
}

/* What a prefix of k bytes must give, knowing the whole gave rc. Returns
 * the new "error seen" state: after an error shows, it must stay. */
static int check_prefix(const char *s, size_t k, int rc, const struct sse_http_request *whole,
			const char *wbase, int error_seen)
{
	struct sse_http_request req;
	char *base;
	int got = parse_copy(s, k, &req, &base);

	if (rc == 0 && k < whole->head_len && got != SSE_ERR_INCOMPLETE)
		die("a strict prefix of a valid head did not ask for more");
	if (rc == 0 && k >= whole->head_len) {
		if (got != 0)
			die("a longer prefix lost a valid head");
		check_same(whole, wbase, &req, base);
	}
	if (rc != 0 && got != SSE_ERR_INCOMPLETE && got != rc)
		die("a prefix gave another code than the whole");
	if (error_seen && got != rc)
		die("an error went away with more input");
	release(&req, base);
	return rc != 0 && got == rc;
}

static void check_prefixes(const char *s, size_t n, int rc, const struct sse_http_request *whole,
			   const char *wbase)
{
	size_t step = n <= ALL_PREFIXES ? 1 : n / PREFIX_SAMPLES;
	int error_seen = 0;

	for (size_t k = 0; k < n; k += step)
		error_seen = check_prefix(s, k, rc, whole, wbase, error_seen);
	if (rc == 0 && whole->head_len > 1) /* the edge, when sampling */
		check_prefix(s, whole->head_len - 1, rc, whole, wbase, 0);
}

/* ---- the resume point, read plainly ------------------------------------- */

static int same_ci(const char *a, size_t n, const char *b)
{
	if (strlen(b) != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return 0;
	}
	return 1;
}

static int hexval(char c)
{
	static const char digits[] = "0123456789abcdef0123456789ABCDEF";
	const char *d = memchr(digits, c, 32);

	return d ? (int)((d - digits) % 16) : -1;
}

/* Decode one raw parameter value into out (room for n bytes); returns
 * the decoded length or -1 for a bad escape. */
static long decode(const char *v, size_t n, char *out)
{
	long m = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i] == '%') {
			if (i + 2 >= n || hexval(v[i + 1]) < 0 || hexval(v[i + 2]) < 0)
				return -1;
			out[m++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
			i += 2;
		} else {
			out[m++] = v[i]; /* '+' too: RFC 3986 has no space for it */
		}
	}
	return m;
}

/* The query's parameters one by one: name up to '=' (or the end), value
 * after it. Returns 1 and the value of the first resume parameter. */
static int ref_query(const char *t, size_t n, const char **v, size_t *vn)
{
	size_t i = 0, start, eq, name_len;

	while (i < n && t[i] != '?' && t[i] != '#')
		i++;
	if (i == n || t[i] == '#')
		return 0;
	for (;;) {
		start = ++i; /* past the '?' or '&' */
		for (eq = SIZE_MAX; i < n && t[i] != '&' && t[i] != '#'; i++)
			if (t[i] == '=' && eq == SIZE_MAX)
				eq = i;
		name_len = (eq == SIZE_MAX ? i : eq) - start;
		if ((name_len == 11 && memcmp(t + start, "lastEventId", 11) == 0) ||
		    (name_len == 13 && memcmp(t + start, "last_event_id", 13) == 0)) {
			*v = eq == SIZE_MAX ? t + i : t + eq + 1;
			*vn = (size_t)(t + i - *v);
			return 1;
		}
		if (i == n || t[i] == '#')
			return 0;
	}
}

/* The reference answer: 1 with out/len, 0, or SSE_ERR_HTTP. out has room
 * for the target's or the header's length. */
static int ref_last_id(const struct sse_http_request *r, char *out, size_t *len)
{
	const char *v;
	size_t vn;
	long m;

	for (size_t i = 0; i < r->header_count; i++) {
		if (same_ci(r->headers[i].name, r->headers[i].name_len, "last-event-id")) {
			*len = r->headers[i].value_len;
			memcpy(out, r->headers[i].value, *len);
			return 1;
		}
	}
	if (!ref_query(r->target, r->target_len, &v, &vn))
		return 0;
	m = decode(v, vn, out);
	if (m < 0)
		return SSE_ERR_HTTP;
	*len = (size_t)m;
	return 1;
}

static void check_last_id(const struct sse_http_request *r)
{
	char *want = malloc(r->head_len), *got;
	size_t want_len = 0, need = SIZE_MAX, len = SIZE_MAX;
	int rc_want = ref_last_id(r, want, &want_len);
	int rc = sse_http_last_event_id(r, NULL, 0, &need);

	if (rc_want == 1 && want_len > 0 ? rc != SSE_ERR_BUFFER || need != want_len : rc != rc_want)
		die("last_event_id into no buffer differs from the reference");
	if (rc_want == 1 && want_len > 0) {
		got = malloc(want_len); /* exactly its size */
		if (got == NULL)
			die("out of memory");
		memset(got, ~want[0], want_len); /* so a missing write shows */
		if (sse_http_last_event_id(r, got, want_len, &len) != 1 || len != want_len ||
		    memcmp(got, want, len) != 0)
			die("last_event_id differs from the reference");
		free(got);
	}
	free(want);
}

/* find_header gives the first field of a name, whatever its case. */
static void check_find(const struct sse_http_request *r)
{
	for (size_t i = 0; i < r->header_count; i++) {
		char name[256];
		const struct sse_http_header *h;

		if (r->headers[i].name_len >= sizeof(name))
			continue;
		memcpy(name, r->headers[i].name, r->headers[i].name_len);
		name[r->headers[i].name_len] = '\0';
		h = sse_http_find_header(r, name);
		if (h == NULL || h > &r->headers[i] ||
		    !same_ci(h->name, h->name_len, name))
			die("find_header missed a field");
	}
}

/* ---- the caller's array ------------------------------------------------ */

/* The head again into arrays of other sizes. */
static void check_capacity(const char *s, size_t n, int rc, const struct sse_http_request *whole,
			   const char *wbase)
{
	struct sse_http_request req;
	char *base;
	int got;

	if (rc == SSE_ERR_TOO_LARGE)
		die("too many fields for an array with room for all");
	if (rc == 0) {
		if (parse_cap(s, n, whole->header_count, &req, &base) != 0)
			die("an exact-size array did not fit");
		check_same(whole, wbase, &req, base);
		release(&req, base);
		if (whole->header_count > 0 &&
		    parse_cap(s, n, whole->header_count - 1, &req, &base) != SSE_ERR_TOO_LARGE)
			die("one field too many was not SSE_ERR_TOO_LARGE");
		if (whole->header_count > 0)
			release(&req, base);
	}
	got = parse_cap(s, n, SSE_HTTP_DEFAULT_HEADERS, &req, &base);
	if (rc == 0 && whole->header_count <= SSE_HTTP_DEFAULT_HEADERS ? got != 0
	    : rc == 0 ? got != SSE_ERR_TOO_LARGE
		      : got != rc && got != SSE_ERR_TOO_LARGE)
		die("the default array gave an unexpected code");
	if (got == 0)
		check_same(whole, wbase, &req, base);
	release(&req, base);
}

/* ---- query parameters, read plainly ------------------------------------- */

/* The first parameter called name: 1 with its decoded value in out (room
 * for n bytes), 0, or SSE_ERR_HTTP. Parts are split at '&', empty ones
 * skipped, the name runs to the first '='. */
static int ref_param(const char *q, size_t n, const char *name, size_t name_len, char *out,
		     size_t *len)
{
	size_t start = 0;

	while (start < n) {
		size_t end = start, eq = SIZE_MAX;
		long m;

		for (; end < n && q[end] != '&'; end++)
			if (q[end] == '=' && eq == SIZE_MAX)
				eq = end;
		if (end > start && (eq == SIZE_MAX ? end : eq) - start == name_len &&
		    memcmp(q + start, name, name_len) == 0) {
			size_t v = eq == SIZE_MAX ? end : eq + 1;

			m = decode(q + v, end - v, out);
			if (m < 0)
				return SSE_ERR_HTTP;
			*len = (size_t)m;
			return 1;
		}
		start = end + 1;
	}
	return 0;
}

/* One name: the sizing call, an exact buffer, and decoding in place. */
static void check_one_param(const char *q, size_t n, const char *name, size_t name_len)
{
	char *want = malloc(n ? n : 1), *got;
	size_t want_len = SIZE_MAX, need = SIZE_MAX, len = SIZE_MAX;
	int rc_want, rc;

	if (want == NULL)
		die("out of memory");
	rc_want = ref_param(q, n, name, name_len, want, &want_len);
	rc = sse_http_query_param(q, n, name, name_len, NULL, 0, &need);
	if (rc_want == 1 && want_len > 0 ? rc != SSE_ERR_BUFFER || need != want_len
	    : rc != rc_want || (rc == 1 && need != 0))
		die("query_param into no buffer differs from the reference");
	if (rc_want == 1 && want_len > 0) {
		got = copy_of(want, want_len); /* exactly its size */
		memset(got, ~want[0], want_len);
		if (sse_http_query_param(q, n, name, name_len, got, want_len, &len) != 1 ||
		    len != want_len || memcmp(got, want, len) != 0)
			die("query_param differs from the reference");
		free(got);
		got = copy_of(q, n); /* the query itself as the output */
		if (sse_http_query_param(got, n, name, name_len, got, n, &len) != 1 ||
		    len != want_len || memcmp(got, want, len) != 0)
			die("query_param in place differs from the reference");
		free(got);
	}
	free(want);
}

/* Every name in the query (up to a bound), and a few that may not be. */
static void check_params(const char *s, size_t n)
{
	char *q = copy_of(s, n);
	size_t start = 0, names = 0;

	check_one_param(q, n, "", 0);
	check_one_param(q, n, "lastEventId", 11);
	while (start < n && names < 16) {
		size_t end = start;

		while (end < n && q[end] != '&' && q[end] != '=')
			end++;
		check_one_param(q, n, q + start, end - start);
		names++;
		while (end < n && q[end] != '&')
			end++;
		start = end + 1;
	}
	free(q);
}

/* The query of a target as sse_http_last_event_id() documents it. */
static void target_query(const char *t, size_t n, const char **q, size_t *qn)
{
	size_t i = 0, end;

	while (i < n && t[i] != '?' && t[i] != '#')
		i++;
	*q = NULL;
	*qn = 0;
	if (i == n || t[i] == '#')
		return;
	for (end = i + 1; end < n && t[end] != '#'; end++)
		;
	*q = t + i + 1;
	*qn = end - i - 1;
}

/* resume_id on the parts of the request gives what last_event_id does. */
static void check_resume(const struct sse_http_request *r)
{
	const struct sse_http_header *h = sse_http_find_header(r, "Last-Event-ID");
	char *a = malloc(r->head_len), *b = malloc(r->head_len);
	size_t alen = SIZE_MAX, blen = SIZE_MAX, qn;
	const char *q;
	int ra, rb;

	if (a == NULL || b == NULL)
		die("out of memory");
	target_query(r->target, r->target_len, &q, &qn);
	ra = sse_http_last_event_id(r, a, r->head_len, &alen);
	rb = sse_http_resume_id(h ? h->value : NULL, h ? h->value_len : 0, q, qn, b, r->head_len,
				&blen);
	if (ra != rb || alen != blen || (ra == 1 && memcmp(a, b, alen) != 0))
		die("resume_id differs from last_event_id");
	if (q != NULL)
		check_params(q, qn);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct sse_http_request whole, again;
	char *base, *again_base;
	int rc = parse_copy(s, size, &whole, &base);

	if (rc != 0 && rc != SSE_ERR_INCOMPLETE && rc != SSE_ERR_HTTP && rc != SSE_ERR_TOO_LARGE)
		die("unexpected return code");
	if (rc == 0) {
		check_request(&whole, base, size);
		if (parse_copy(s, whole.head_len, &again, &again_base) != 0)
			die("the head alone did not parse");
		check_same(&whole, base, &again, again_base);
		release(&again, again_base);
		check_last_id(&whole);
		check_resume(&whole);
		check_find(&whole);
	}
	check_capacity(s, size, rc, &whole, base);
	check_prefixes(s, size, rc, &whole, base);
	check_params(s, size < 4096 ? size : 4096);
	release(&whole, base);
	return 0;
}
