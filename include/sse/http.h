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
 * the resume point from a request, the answers that stop or defer a
 * client's reconnection, and chunked framing. Pure functions that write
 * into a caller's buffer: on SSE_ERR_BUFFER nothing is written and
 * *written is the size needed; SSE_ERR_INVALID when written is NULL or
 * buf is NULL with cap > 0.
 * @{
 */

/** Options of the response head; zero-initialise for the defaults. */
struct sse_http_options {
	const char *cors_origin; /**< NULL: no CORS; else Access-Control-Allow-Origin. */
	int cors_credentials;    /**< With cors_origin: allow cookies. */
	int chunked;             /**< Add Transfer-Encoding: chunked (HTTP/1.1). */
	int http2;               /**< Omit headers HTTP/2 forbids (Connection, ...). */
};

/**
 * @brief The 200 response head of an event stream: text/event-stream,
 * Cache-Control: no-cache, no-transform (proxies must neither buffer nor
 * compress), X-Accel-Buffering: no (nginx), no Content-Length, and the
 * blank line that ends the head. o NULL: defaults. No Connection header:
 * keep-alive is HTTP/1.1's default and HTTP/2 forbids it.
 * @retval SSE_ERR_INVALID cors_origin is empty or holds a control character
 *         other than HTAB; cors_credentials with cors_origin "*"; chunked
 *         with http2.
 */
SSE_API int sse_http_response_head(const struct sse_http_options *o, char *buf, size_t cap,
				   size_t *written);

/**
 * @brief "204 No Content": the one answer that tells EventSource to stop
 * reconnecting for good. No Content-Length (RFC 9110 forbids it on a 204)
 * and no Connection header. @p o gives the CORS lines (NULL: none): a
 * cross-origin client that gets no CORS headers sees a network error and
 * reconnects, so the 204 must carry them too.
 */
SSE_API int sse_http_stop(const struct sse_http_options *o, char *buf, size_t cap,
			  size_t *written);

/**
 * @brief Shed load but keep clients: a complete 200 event-stream response
 * (Content-Length set) that carries only "retry: @p retry_ms"; over
 * HTTP/1.1 it asks to close the connection: close it after writing.
 * Any other status would make a browser give up for good.
 * @retval SSE_ERR_RETRY retry_ms is outside 0..SSE_RETRY_MAX.
 */
SSE_API int sse_http_retry_later(const struct sse_http_options *o, long retry_ms, char *buf,
				 size_t cap, size_t *written);

/** Headers sse_http_parse_request() keeps at most. */
#define SSE_HTTP_MAX_HEADERS 32

struct sse_http_header {
	const char *name; /**< As sent (compare without case). */
	size_t name_len;
	const char *value; /**< Without surrounding spaces and tabs. */
	size_t value_len;
};

/** A parsed request head; every pointer points into the caller's buffer. */
struct sse_http_request {
	const char *method;
	size_t method_len;
	const char *target; /**< Path and query, as sent. */
	size_t target_len;
	int minor_version;  /**< HTTP/1.<minor_version> */
	size_t header_count;
	struct sse_http_header headers[SSE_HTTP_MAX_HEADERS];
	size_t head_len;    /**< Bytes of the head, blank line included. */
};

/**
 * @brief Parse an HTTP/1.x request head (RFC 9112): request line, header
 * fields, blank line; the body is the caller's. Strict: bare LF line ends
 * are accepted and leading empty lines skipped, anything else malformed is
 * refused as soon as its byte arrives, so SSE_ERR_INCOMPLETE means every
 * byte so far is valid. The caller parses from the start again as bytes
 * come in, so it must bound the head's size. buf and req must not be
 * NULL; *req is unspecified after an error.
 * @return 0 and *req, or
 * @retval SSE_ERR_INCOMPLETE the head is not complete yet: read more.
 * @retval SSE_ERR_HTTP       malformed request line or header field.
 * @retval SSE_ERR_TOO_LARGE  more than SSE_HTTP_MAX_HEADERS fields.
 */
SSE_API int sse_http_parse_request(const char *buf, size_t len, struct sse_http_request *req);

/** @brief First header named @p name (case-insensitive), or NULL. */
SSE_API const struct sse_http_header *sse_http_find_header(const struct sse_http_request *req,
							   const char *name);

/**
 * @brief The resume point of a request: the Last-Event-ID header, or else
 * a lastEventId or last_event_id query parameter (percent-decoded), since
 * EventSource cannot set headers on its first connection. The header is
 * taken as sent (trimmed of spaces and tabs like any field value); the
 * query parameter names are exact, separated by '&', the first one wins,
 * and a decoded id may hold any byte.
 * @return 1 and the id in out[0..*len) (may be empty), 0 when there is none,
 * @retval SSE_ERR_BUFFER the id is longer than cap (*len: its length).
 * @retval SSE_ERR_HTTP   a malformed percent-escape.
 */
SSE_API int sse_http_last_event_id(const struct sse_http_request *req, char *out, size_t cap,
				   size_t *len);

/**
 * @brief Chunked framing (Transfer-Encoding: chunked) for @p len bytes of
 * body: the size line to put before them (the CRLF after them is
 * "\r\n"); len 0 gives the last chunk: the body then ends with
 * "0\r\n\r\n", that head and the CRLF of the empty trailer section.
 */
SSE_API int sse_http_chunk_head(size_t len, char *buf, size_t cap, size_t *written);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_HTTP_H */
