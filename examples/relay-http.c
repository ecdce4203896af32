/*
 * sse-relay: the bits of HTTP that libsse leaves to the application.
 *
 * libsse parses the request head, reads the resume point and decodes
 * query parameters; a server still has to route, to frame a request body
 * and to check credentials.
 * These helpers do that on a parsed struct sse_http_request, whose
 * pointers all point into the connection's head buffer.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <string.h>
#include <strings.h>

#include "relay.h"

bool http_span_is(const char *s, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

static bool name_is(const struct sse_http_header *h, const char *name)
{
	return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* An absolute-form target ("http://host/path?q", RFC 9112 3.2.2) names
 * the same resource as its path: skip the scheme and authority. */
static size_t skip_authority(const char *t, size_t len)
{
	const char *p;

	if (len == 0 || t[0] == '/')
		return 0;
	p = memchr(t, ':', len);
	if (p == NULL || (size_t)(p - t) + 3 > len || p[1] != '/' || p[2] != '/')
		return 0; /* not absolute-form: the path check will refuse it */
	p += 3;
	while (p < t + len && *p != '/' && *p != '?')
		p++;
	return (size_t)(p - t);
}

/* Path and query of the target; a fragment is not part of either (a
 * client should not send one, but some do). */
void http_split_target(const struct sse_http_request *req, const char **path, size_t *path_len,
		       const char **query, size_t *query_len)
{
	size_t skip = skip_authority(req->target, req->target_len);
	const char *t = req->target + skip;
	size_t len = req->target_len - skip;
	const char *hash = memchr(t, '#', len);
	const char *q;

	if (hash != NULL)
		len = (size_t)(hash - t);
	q = memchr(t, '?', len);
	*path = t;
	*path_len = q != NULL ? (size_t)(q - t) : len;
	*query = q != NULL ? q + 1 : t + len;
	*query_len = q != NULL ? len - *path_len - 1 : 0;
	if (skip > 0 && *path_len == 0) { /* "http://host" */
		*path = "/";
		*path_len = 1;
	}
}

/* Digits only, so "+5", " 5" or "5, 5" never mean five. The value is
 * capped while reading, so no count of digits can overflow it. */
static enum http_length parse_length(const char *s, size_t len, size_t max, size_t *out)
{
	size_t v = 0;

	if (len == 0)
		return HTTP_LENGTH_BAD;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return HTTP_LENGTH_BAD;
		if (v <= max)
			v = v * 10 + (size_t)(s[i] - '0');
	}
	if (v > max)
		return HTTP_LENGTH_TOO_LARGE;
	*out = v;
	return HTTP_LENGTH_OK;
}

/* Content-Length, or why there is none we can use. Two of them are
 * refused outright: a proxy in front might have used the other one
 * (request smuggling, RFC 9112 6.3). */
enum http_length http_content_length(const struct sse_http_request *req, size_t max,
				     size_t *len)
{
	const struct sse_http_header *found = NULL;

	for (size_t i = 0; i < req->header_count; i++) {
		if (!name_is(&req->headers[i], "Content-Length"))
			continue;
		if (found != NULL)
			return HTTP_LENGTH_BAD;
		found = &req->headers[i];
	}
	if (found == NULL)
		return HTTP_LENGTH_NONE;
	return parse_length(found->value, found->value_len, max, len);
}

/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host field, and a
 * server answers 400 otherwise; HTTP/1.0 may have none, but not two. */
bool http_host_ok(const struct sse_http_request *req)
{
	size_t hosts = 0;

	for (size_t i = 0; i < req->header_count; i++)
		if (name_is(&req->headers[i], "Host"))
			hosts++;
	return hosts == 1 || (hosts == 0 && req->minor_version == 0);
}

/* Does the client let the connection carry its next request? HTTP/1.1
 * does unless a Connection field lists "close" (RFC 9112 9.3); HTTP/1.0
 * connections close (its keep-alive extension is not worth it here). */
bool http_keep_alive(const struct sse_http_request *req)
{
	if (req->minor_version < 1)
		return false;
	for (size_t i = 0; i < req->header_count; i++) {
		const struct sse_http_header *h = &req->headers[i];
		size_t j = 0;

		if (!name_is(h, "Connection"))
			continue;
		while (j < h->value_len) { /* a list of tokens: "close", "TE, close" */
			size_t k = j;

			while (k < h->value_len && h->value[k] != ',')
				k++;
			while (j < k && (h->value[j] == ' ' || h->value[j] == '\t'))
				j++;
			while (k > j && (h->value[k - 1] == ' ' || h->value[k - 1] == '\t'))
				k--;
			if (k - j == 5 && strncasecmp(h->value + j, "close", 5) == 0)
				return false;
			while (j < h->value_len && h->value[j] != ',')
				j++;
			j++;
		}
	}
	return true;
}

/* curl and others ask before sending a large body; without an answer
 * they wait a second, then send it anyway. */
bool http_expects_continue(const struct sse_http_request *req)
{
	const struct sse_http_header *h = sse_http_find_header(req, "Expect");

	return req->minor_version >= 1 && h != NULL && h->value_len == strlen("100-continue") &&
	       strncasecmp(h->value, "100-continue", h->value_len) == 0;
}

/* Compare a secret in time that depends on neither where the first
 * difference is nor the length of what was given: the loop always runs
 * over the whole secret, and the length mismatch is folded in, not
 * branched on. */
static bool same_secret(const char *given, size_t given_len, const char *secret,
			size_t secret_len)
{
	volatile unsigned char diff = given_len != secret_len;

	for (size_t i = 0; i < secret_len; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;

		diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
	}
	return diff == 0;
}

/* "Authorization: Bearer <token>" (RFC 6750): the scheme name is
 * case-insensitive, the token is not. */
bool http_bearer_matches(const struct sse_http_request *req, const char *token)
{
	const struct sse_http_header *h = sse_http_find_header(req, "Authorization");
	size_t i = strlen("Bearer");

	if (h == NULL || h->value_len <= i || strncasecmp(h->value, "Bearer", i) != 0 ||
	    h->value[i] != ' ')
		return false;
	while (i < h->value_len && h->value[i] == ' ')
		i++;
	return same_secret(h->value + i, h->value_len - i, token, strlen(token));
}
