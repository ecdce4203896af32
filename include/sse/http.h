/*
 * libsse — HTTP helpers for an event-stream endpoint
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_HTTP_H
#define SSE_HTTP_H

#include <sse/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup http HTTP helpers
 * What an SSE endpoint needs from HTTP/1.1 and no more: the response head,
 * a request-head parser, the resume point of a request (from our parser's
 * result, or from the header value and query any other parser gives), the
 * answers that stop or defer a client's reconnection, and chunked framing.
 * Pure functions that allocate nothing and write into a caller's buffer:
 * on SSE_ERR_BUFFER nothing is written and *written (or *len) is the size
 * needed; SSE_ERR_INVALID when that size pointer is NULL or the buffer is
 * NULL with cap > 0.
 * @{
 */

/** Options of the response head; zero-initialise for the defaults. */
struct sse_http_options {
	const char *cors_origin; /**< NULL: no CORS; else Access-Control-Allow-Origin. */
	int cors_credentials;    /**< With cors_origin: allow cookies. */
	int chunked;             /**< Add Transfer-Encoding: chunked (HTTP/1.1). */
	int http2;               /**< The answer goes out over HTTP/2: chunked is refused and
				      sse_http_retry_later() leaves out Connection: close. (No
				      head ever has other connection-specific fields.) */
};

/**
 * @brief The 200 response head of an event stream: text/event-stream,
 * Cache-Control: no-cache, no-transform (proxies must neither buffer nor
 * compress), X-Accel-Buffering: no (nginx), no Content-Length, and the
 * blank line that ends the head. o NULL: defaults. No Connection header:
 * keep-alive is HTTP/1.1's default and HTTP/2 forbids it.
 * @param o       Options; NULL: the defaults.
 * @param buf     Output; may be NULL only when cap is 0.
 * @param cap     Bytes available at buf.
 * @param written Receives the bytes written, or on SSE_ERR_BUFFER the
 *                size needed.
 * @return 0, SSE_ERR_BUFFER (nothing written), or
 * @retval SSE_ERR_INVALID cors_origin is empty or holds a control character
 *         other than HTAB; cors_credentials with cors_origin "*"; chunked
 *         with http2.
 * @since 0.1
 */
SSE_API int sse_http_response_head(const struct sse_http_options *o, char *buf, size_t cap,
				   size_t *written);

/** One header field, for HTTP libraries that take fields by name
 * (evhttp, libmicrohttpd, nghttp2). */
struct sse_http_field {
	const char *name;  /**< lowercase, as HTTP/2 requires (HTTP/1.1 ignores case) */
	const char *value; /**< a static string, or the caller's cors_origin */
};

/** Entries sse_http_response_fields() writes at most. */
#define SSE_HTTP_FIELDS_MAX 6

/**
 * @brief The header fields of sse_http_response_head() as name/value
 * pairs, for a server that writes the head itself: the same fields, with
 * no status line and no framing (no Transfer-Encoding even with chunked:
 * the server frames the body). Nothing is allocated: the strings are
 * static or o->cors_origin, which must outlive their use.
 * @param o      Options; NULL: the defaults.
 * @param fields Receives the fields, in order.
 * @param cap    Entries @p fields holds (SSE_HTTP_FIELDS_MAX always suffices).
 * @return The number of fields written (> 0), or
 * @retval SSE_ERR_INVALID as sse_http_response_head(), or fields is NULL.
 * @retval SSE_ERR_BUFFER  cap is too small; nothing is written.
 * @since 0.2
 */
SSE_API int sse_http_response_fields(const struct sse_http_options *o,
				     struct sse_http_field *fields, size_t cap);

/**
 * @brief "204 No Content": the one answer that tells EventSource to stop
 * reconnecting for good. No Content-Length (RFC 9110 forbids it on a 204)
 * and no Connection header. @p o gives the CORS lines (NULL: none): a
 * cross-origin client that gets no CORS headers sees a network error and
 * reconnects, so the 204 must carry them too.
 * @param o, buf, cap, written As for sse_http_response_head().
 * @return As sse_http_response_head().
 * @since 0.1
 */
SSE_API int sse_http_stop(const struct sse_http_options *o, char *buf, size_t cap,
			  size_t *written);

/**
 * @brief Shed load but keep clients: a complete 200 event-stream response
 * (Content-Length set) that carries only "retry: @p retry_ms"; over
 * HTTP/1.1 it asks to close the connection: close it after writing.
 * Any other status would make a browser give up for good.
 * @param o        Options; NULL: the defaults. With http2 set, no
 *                 Connection header is written.
 * @param retry_ms The reconnection delay to ask for, in milliseconds.
 * @param buf, cap, written As for sse_http_response_head().
 * @return 0, SSE_ERR_BUFFER, an error of sse_http_response_head(), or
 * @retval SSE_ERR_RETRY retry_ms is outside 0..SSE_RETRY_MAX.
 * @since 0.1
 */
SSE_API int sse_http_retry_later(const struct sse_http_options *o, long retry_ms, char *buf,
				 size_t cap, size_t *written);

/**
 * A suggested capacity for the header array of sse_http_parse_request():
 * a browser sends an event stream about a dozen fields, so this many
 * leaves room for cookies, proxies and tracing. The caller decides; the
 * parser has no limit of its own.
 * @since 0.2 (replaces SSE_HTTP_MAX_HEADERS, the parser's fixed limit)
 */
#define SSE_HTTP_DEFAULT_HEADERS 32

/** One header field of a request, pointing into the caller's buffer. */
struct sse_http_header {
	const char *name; /**< As sent (compare without case). */
	size_t name_len;  /**< Bytes at name. */
	const char *value; /**< Without surrounding spaces and tabs. */
	size_t value_len;  /**< Bytes at value (may be 0). */
};

/**
 * A parsed request head. The caller sets @c headers and @c header_cap
 * before sse_http_parse_request(), which keeps those two and fills in the
 * rest; every pointer it sets points into the caller's buffer.
 *
 * @code
 * struct sse_http_header fields[SSE_HTTP_DEFAULT_HEADERS];
 * struct sse_http_request req = {.headers = fields, .header_cap = SSE_HTTP_DEFAULT_HEADERS};
 * int rc = sse_http_parse_request(buf, len, &req);
 * @endcode
 * @since 0.2 (the caller's header array; 0.1 had a fixed one inside)
 */
struct sse_http_request {
	struct sse_http_header *headers; /**< The caller's array: set before parsing. */
	size_t header_cap;   /**< Fields it has room for: set before parsing (may be 0). */
	size_t header_count; /**< Fields parsed, in order: headers[0..header_count). */
	const char *method; /**< The request method, as sent ("GET"). */
	size_t method_len;  /**< Bytes at method. */
	const char *target; /**< Path and query, as sent. */
	size_t target_len;  /**< Bytes at target. */
	int minor_version;  /**< 0 for HTTP/1.0, 1 for HTTP/1.1. */
	size_t head_len;    /**< Bytes of the head, blank line included. */
};

/**
 * @brief Parse an HTTP/1.x request head (RFC 9112): request line, header
 * fields, blank line; the body is the caller's. Strict: bare LF line ends
 * are accepted and leading empty lines skipped, anything else malformed is
 * refused as soon as its byte arrives, so SSE_ERR_INCOMPLETE means every
 * byte so far is valid. The caller parses from the start again as bytes
 * come in, so it must bound the head's size.
 * @param buf  The bytes received so far; must not be NULL. Not copied:
 *             every span of *req points into it.
 * @param len  Their number.
 * @param req  Must not be NULL; req->headers and req->header_cap say where
 *             the fields go (headers may be NULL when header_cap is 0).
 *             They are kept; every other member is set, and is
 *             unspecified after an error, as are the array's elements.
 * @return 0 and *req, or
 * @retval SSE_ERR_INCOMPLETE the head is not complete yet: read more.
 * @retval SSE_ERR_HTTP       malformed request line or header field.
 * @retval SSE_ERR_TOO_LARGE  more than req->header_cap fields; known as
 *                            soon as the first byte of the one too many
 *                            arrives.
 * @retval SSE_ERR_INVALID    buf or req is NULL, or req->headers is NULL
 *                            with req->header_cap > 0.
 * @since 0.1; the caller's header array since 0.2
 */
SSE_API int sse_http_parse_request(const char *buf, size_t len, struct sse_http_request *req);

/**
 * @brief The first header of a request named @p name, compared without
 * case (ASCII only, whatever the locale).
 * @param req   A request from sse_http_parse_request(), or one filled in
 *              by hand: headers[0..header_count) is read. NULL: none.
 * @param name  NUL-terminated; NULL: none.
 * @return A pointer into req->headers, or NULL when there is no such field.
 * @since 0.1
 */
SSE_API const struct sse_http_header *sse_http_find_header(const struct sse_http_request *req,
							   const char *name);

/**
 * @brief The first query parameter called @p name, percent-decoded: the
 * query helper of sse_http_resume_id(), for any parameter.
 *
 * The query is split at every '&' (never at ';'); in each part the name
 * runs to the first '=' and the value after it (no '=': an empty value).
 * Empty parts, as in "a=1&&b=2" or after a trailing '&', are skipped.
 * Names are compared byte for byte as they appear in the query: they are
 * not decoded, and case matters. The first parameter of that name wins.
 * Its value is percent-decoded as RFC 3986 §2.1 says: "%XX" (either case)
 * is one byte, which may be any byte, NUL included; every other byte is
 * itself. '+' stays '+': it is not a space (a form or URLSearchParams
 * writes a space as '+'; build URLs with encodeURIComponent(), which
 * writes "%20", when a value may hold one).
 *
 * @param query      The query component of a URL: after the '?', before
 *                   any '#', which are not part of it. NULL with
 *                   query_len 0: no query.
 * @param query_len  Its length.
 * @param name       The name, as it appears in the query; NULL only with
 *                   name_len 0, which finds a part such as "=v".
 * @param name_len   Its length.
 * @param out        Where the decoded value goes, not NUL-terminated; may
 *                   be NULL when cap is 0. It may be @p query itself, to
 *                   decode in place (decoding never lengthens; the query's
 *                   bytes are then overwritten).
 * @param cap        Bytes out has room for.
 * @param len        Receives the decoded value's length; must not be NULL.
 * @return 1 and the value in out[0..*len) (which may be empty), or
 * @retval 0               no parameter of that name (*len untouched).
 * @retval SSE_ERR_BUFFER  the value is longer than cap: *len is its
 *                         length, and nothing is written.
 * @retval SSE_ERR_HTTP    a '%' in the value is not followed by two hex
 *                         digits (a bad escape in another parameter does
 *                         not matter).
 * @retval SSE_ERR_INVALID len is NULL, out is NULL with cap > 0, or query
 *                         or name is NULL with a length > 0.
 * @since 0.2
 */
SSE_API int sse_http_query_param(const char *query, size_t query_len, const char *name,
				 size_t name_len, char *out, size_t cap, size_t *len);

/**
 * @brief The resume point of a request, from the parts any HTTP parser
 * gives (libmicrohttpd, nghttp2, evhttp or sse_http_parse_request()): the
 * Last-Event-ID header if there is one, or else the first lastEventId or
 * last_event_id query parameter (as sse_http_query_param() reads it),
 * since EventSource cannot set headers on its first connection.
 *
 * The header wins: a reconnecting EventSource sends it, and it is newer
 * than whatever the page put in the URL when it first connected. Its value
 * is taken as given, not decoded (parsers strip the spaces and tabs around
 * a field value). A decoded query id may hold any byte.
 *
 * @param header      The Last-Event-ID field's value; NULL when the
 *                    request has none (then header_len must be 0). An
 *                    empty value is an empty id, not an absent one.
 * @param header_len  Its length.
 * @param query       The query component (after the '?', without '#...');
 *                    NULL with query_len 0: no query.
 * @param query_len   Its length.
 * @param out         Where the id goes, not NUL-terminated; may be NULL
 *                    when cap is 0; may be @p query (decoding in place).
 * @param cap         Bytes out has room for.
 * @param len         Receives the id's length; must not be NULL.
 * @return 1 and the id in out[0..*len) (may be empty), or
 * @retval 0               neither the header nor a parameter: a first
 *                         connection (*len untouched).
 * @retval SSE_ERR_BUFFER  the id is longer than cap: *len is its length,
 *                         and nothing is written.
 * @retval SSE_ERR_HTTP    a malformed percent-escape in the id parameter.
 * @retval SSE_ERR_INVALID len is NULL, out is NULL with cap > 0, or header
 *                         or query is NULL with a length > 0.
 * @since 0.2
 */
SSE_API int sse_http_resume_id(const char *header, size_t header_len, const char *query,
			       size_t query_len, char *out, size_t cap, size_t *len);

/**
 * @brief sse_http_resume_id() on a request parsed by
 * sse_http_parse_request(): its Last-Event-ID field (the first, if
 * several), and the query of its target (between the first '?' and any
 * '#'; absolute-form targets work too).
 * @param req  Must not be NULL.
 * @param out, cap, len  As for sse_http_resume_id().
 * @return As sse_http_resume_id(); SSE_ERR_INVALID also for a NULL req.
 * @since 0.1
 */
SSE_API int sse_http_last_event_id(const struct sse_http_request *req, char *out, size_t cap,
				   size_t *len);

/**
 * @brief Chunked framing (Transfer-Encoding: chunked) for @p len bytes of
 * body: the size line to put before them (the CRLF after them is
 * "\r\n"); len 0 gives the last chunk: the body then ends with
 * "0\r\n\r\n", that head and the CRLF of the empty trailer section.
 * @param len     The chunk's size in bytes; 0 for the last chunk.
 * @param buf, cap, written As for sse_http_response_head().
 * @return 0, SSE_ERR_BUFFER or SSE_ERR_INVALID.
 * @since 0.1
 */
SSE_API int sse_http_chunk_head(size_t len, char *buf, size_t cap, size_t *written);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_HTTP_H */
