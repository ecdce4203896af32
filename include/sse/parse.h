/*
 * libsse — the incremental event-stream parser
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PARSE_H
#define SSE_PARSE_H

#include <sse/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup parse Parser
 * An incremental event-stream parser for C clients, exactly as the WHATWG
 * standard's "interpreting an event stream": feed it any chunking of the
 * bytes. It does not decode UTF-8: values are the raw bytes between the
 * delimiters (a browser would turn invalid sequences into U+FFFD).
 * @{
 */
struct sse_parser;

/** One dispatched event; pointers are valid only during the callback, and
 * each string is also NUL-terminated (it may contain NULs of its own). */
struct sse_message {
	const char *type;    /**< "message" when the stream gave none. */
	size_t type_len;     /**< Bytes at type. */
	const char *data;    /**< Lines joined with LF, final LF removed. */
	size_t data_len;     /**< Bytes at data. */
	const char *last_id; /**< The last event id at dispatch (may be empty). */
	size_t last_id_len;  /**< Bytes at last_id. */
};

/** Return 0 to go on; any other value stops the parser (SSE_ERR_CALLBACK). */
typedef int (*sse_message_fn)(const struct sse_message *msg, void *user);
/** A retry field of digits only; values past UINT64_MAX saturate. */
typedef int (*sse_retry_fn)(uint64_t retry_ms, void *user);
/** A comment line, without its leading ':' (not NUL-terminated). */
typedef int (*sse_comment_fn)(const char *text, size_t len, void *user);

/** What a parser calls; copied by sse_parser_new(). Each gets the
 * parser's user pointer last. */
struct sse_parser_callbacks {
	sse_message_fn on_message; /**< required */
	sse_retry_fn on_retry;     /**< optional */
	sse_comment_fn on_comment; /**< optional */
};

/** Default bound on one line and on one event's data, in bytes. */
#define SSE_PARSER_DEFAULT_LIMIT (1u << 20)

/**
 * @brief Create a parser. The callbacks struct is copied; user is kept.
 * @param out   Receives the parser, to free with sse_parser_free().
 * @param cb    Callbacks; on_message is required.
 * @param user  Passed to every callback; never read by the library.
 * @param alloc NULL: libc; else copied.
 * @return 0, or
 * @retval SSE_ERR_INVALID out, cb or cb->on_message is NULL, or alloc is incomplete.
 * @retval SSE_ERR_NOMEM   allocation failed; *out is untouched.
 */
SSE_API int sse_parser_new(struct sse_parser **out, const struct sse_parser_callbacks *cb,
			   void *user, const struct sse_allocator *alloc);
/** @brief Free a parser; NULL does nothing.
 * @param p The parser. */
SSE_API void sse_parser_free(struct sse_parser *p);

/**
 * @brief Bound the bytes one line (without its line end) or one event's
 * data (as dispatched) may hold; 0: the default. Past it,
 * sse_parser_feed() fails with SSE_ERR_TOO_LARGE, so a hostile server
 * cannot make the client's memory grow without bound.
 * @param p     The parser.
 * @param bytes The bound; 0: SSE_PARSER_DEFAULT_LIMIT.
 * @return 0, or SSE_ERR_INVALID for a NULL parser.
 */
SSE_API int sse_parser_set_limit(struct sse_parser *p, size_t bytes);

/**
 * @brief Feed the next chunk of the stream, of any size, split anywhere.
 * Callbacks run from inside this call, for every event the chunk
 * completes. A UTF-8 byte order mark at the very start is skipped.
 * @param p   The parser.
 * @param buf The bytes; may be NULL when len is 0.
 * @param len Their number.
 * @return 0, or a negative code; a failed parser keeps returning it
 *         (SSE_ERR_INVALID for a NULL buffer with len > 0 does not fail it).
 * @retval SSE_ERR_CALLBACK  a callback returned non-zero.
 * @retval SSE_ERR_TOO_LARGE a line or an event passed the limit.
 * @retval SSE_ERR_NOMEM     allocation failed.
 */
SSE_API int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len);

/**
 * @brief The stream ended: an event not closed by a blank line is discarded,
 * as the standard says (with any id it carried). The parser is then reset
 * for a new connection, keeping the last event id of the last dispatched
 * block: what a client sends back as Last-Event-ID. A failed parser
 * returns its error and stays failed.
 * @param p The parser.
 * @return 0, the parser's error, or SSE_ERR_INVALID for a NULL parser.
 */
SSE_API int sse_parser_end(struct sse_parser *p);

/**
 * @brief The last event id so far ("" before any), NUL-terminated.
 * @param p   The parser; NULL gives NULL (and *len 0).
 * @param len If not NULL, receives the id's length.
 * @return The id, valid until the next feed.
 */
SSE_API const char *sse_parser_last_id(const struct sse_parser *p, size_t *len);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_PARSE_H */
