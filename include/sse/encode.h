/*
 * libsse — the encoder: events and comments to wire bytes
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_ENCODE_H
#define SSE_ENCODE_H

#include <sse/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup encode Encoder
 * Pure functions: no allocation, no I/O, safe from any thread.
 *
 * An event is written as the standard's parser reads it:
 *
 *     id: <id>\n          only if id != NULL (id_len 0 writes "id:" and
 *                         resets the client's last event id)
 *     event: <type>\n     only if type != NULL
 *     retry: <ms>\n       only if retry != SSE_RETRY_NONE
 *     data: <line>\n      one per line of data, only if data != NULL
 *     \n                  the blank line that dispatches the event
 *
 * Data is split on LF, CR and CRLF; the client joins the lines with LF, so
 * CR and CRLF in a payload arrive as LF (the format has no escaping). An
 * empty line is written "data:" without the space. An empty payload is one
 * "data:" line, and a payload ending in a line break gets a final empty
 * "data:" line, so both arrive exactly. With data == NULL no data line is
 * written: such a block fires no event but still commits its id, which is
 * how a server moves a client's resume point silently.
 * @{
 */

/** Largest retry accepted: browsers keep the delay in a 32-bit signed int. */
#define SSE_RETRY_MAX 2147483647L
/** sse_event.retry value meaning "write no retry field". */
#define SSE_RETRY_NONE (-1L)

/** Refuse text that is not valid UTF-8 with SSE_ERR_UTF8. */
#define SSE_ENCODE_STRICT_UTF8 0x1u

/** One event, as the caller holds it: pointers and lengths, not
 * NUL-terminated strings. Zero-initialise, then set retry to
 * SSE_RETRY_NONE unless a retry field is wanted. */
struct sse_event {
	const char *id;   /**< NULL: no id field. May be empty. */
	size_t id_len;    /**< Bytes at id; must be 0 when id is NULL. */
	const char *type; /**< NULL: no event field (the client says "message"). */
	size_t type_len;  /**< Bytes at type; must be 0 when type is NULL. */
	const char *data; /**< NULL: no data line (id-only or retry-only block). */
	size_t data_len;  /**< Bytes at data; must be 0 when data is NULL. */
	long retry;       /**< SSE_RETRY_NONE, or 0..SSE_RETRY_MAX milliseconds. */
};

/**
 * @brief Check an event and compute its exact encoded size.
 * @param ev    The event; not kept.
 * @param flags 0 or SSE_ENCODE_STRICT_UTF8 (other bits are ignored).
 * @param size  Receives the number of bytes sse_encode() will write.
 * @return 0 and *size, or a negative code:
 * @retval SSE_ERR_INVALID        ev or size is NULL, or a length is set with a NULL pointer.
 * @retval SSE_ERR_ID_LINEBREAK   the id contains CR or LF.
 * @retval SSE_ERR_ID_NUL         the id contains NUL (clients ignore such ids).
 * @retval SSE_ERR_TYPE_LINEBREAK the event type contains CR or LF.
 * @retval SSE_ERR_RETRY          retry is neither SSE_RETRY_NONE nor 0..SSE_RETRY_MAX.
 * @retval SSE_ERR_UTF8           strict mode and some text is not UTF-8.
 * @retval SSE_ERR_TOO_LARGE      the size does not fit in size_t.
 */
SSE_API int sse_encode_size(const struct sse_event *ev, unsigned flags, size_t *size);

/**
 * @brief Encode an event into a caller's buffer, in one pass over the data.
 *
 * @param ev      The event; checked as by sse_encode_size(), not kept.
 * @param flags   0 or SSE_ENCODE_STRICT_UTF8.
 * @param buf     Output; may be NULL only when cap is 0.
 * @param cap     Bytes available at buf.
 * @param written Receives the bytes written; on SSE_ERR_BUFFER, the size
 *                needed (as snprintf does), so a caller can grow and retry.
 * @return 0, any error of sse_encode_size() (nothing is written), or
 * @retval SSE_ERR_BUFFER cap is too small. buf holds no complete event
 *         then, and its first cap bytes may have been overwritten.
 */
SSE_API int sse_encode(const struct sse_event *ev, unsigned flags, char *buf,
		       size_t cap, size_t *written);

/**
 * @brief Exact size of a comment: ": <line>\n" per line of @p text
 * (":\n" for an empty line).
 *
 * Comments are ignored by clients; they keep idle connections open.
 * Line breaks in text start new comment lines, so text cannot end the
 * comment early. len 0 gives ":\n".
 * @param text  The comment's text, without the leading ':'; may be NULL
 *              when len is 0.
 * @param len   Bytes at text.
 * @param flags 0 or SSE_ENCODE_STRICT_UTF8.
 * @param size  Receives the encoded size.
 * @return 0 and *size, or
 * @retval SSE_ERR_INVALID text is NULL with len > 0, or size is NULL.
 * @retval SSE_ERR_UTF8    strict mode and text is not UTF-8.
 */
SSE_API int sse_comment_size(const char *text, size_t len, unsigned flags, size_t *size);

/**
 * @brief Encode a comment; errors and @p written as in sse_encode().
 * @param text, len, flags As for sse_comment_size().
 * @param buf, cap, written As for sse_encode().
 * @return 0, an error of sse_comment_size(), or SSE_ERR_BUFFER.
 */
SSE_API int sse_encode_comment(const char *text, size_t len, unsigned flags,
			       char *buf, size_t cap, size_t *written);

/**
 * @brief Check text as SSE_ENCODE_STRICT_UTF8 does.
 * @param s   The bytes; may be NULL when len is 0.
 * @param len Their number.
 * @return 1 if [s, s+len) is valid UTF-8 (RFC 3629), else 0.
 */
SSE_API int sse_utf8_valid(const char *s, size_t len);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_ENCODE_H */
