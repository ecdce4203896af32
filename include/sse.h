/*
 * libsse — emit Server-Sent Events (text/event-stream) from C.
 *
 * The one public header; doc/guide.md explains how the parts fit. The
 * byte-level rules come from the WHATWG HTML standard, "Server-sent events".
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_H
#define SSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SSE_BUILDING) && defined(__GNUC__)
#define SSE_API __attribute__((visibility("default")))
#else
#define SSE_API
#endif

/**
 * @defgroup version Version
 * @{
 */
#define SSE_VERSION_MAJOR 0
#define SSE_VERSION_MINOR 1
#define SSE_VERSION_PATCH 0
#define SSE_VERSION_STRING "0.1.0"

/** @return (major << 16) | (minor << 8) | patch of the linked library. */
SSE_API unsigned sse_version(void);
/** @} */

/**
 * @defgroup errors Errors
 * Every fallible function returns 0 or one of these negative codes.
 * @{
 */
#define SSE_ERRORS(X)                                                          \
	X(SSE_ERR_INVALID, -1, "invalid argument")                             \
	X(SSE_ERR_NOMEM, -2, "out of memory")                                  \
	X(SSE_ERR_WOULDBLOCK, -3, "transport cannot take data now")            \
	X(SSE_ERR_IO, -4, "transport failed")                                  \
	X(SSE_ERR_ID_LINEBREAK, -5, "event id contains CR or LF")              \
	X(SSE_ERR_ID_NUL, -6, "event id contains NUL")                         \
	X(SSE_ERR_TYPE_LINEBREAK, -7, "event type contains CR or LF")          \
	X(SSE_ERR_RETRY, -8, "retry value out of range")                       \
	X(SSE_ERR_UTF8, -9, "text is not valid UTF-8 (strict mode)")           \
	X(SSE_ERR_BUFFER, -10, "output buffer too small")                      \
	X(SSE_ERR_QUEUE_FULL, -11, "stream queue limit would be exceeded")     \
	X(SSE_ERR_TOO_LARGE, -12, "input exceeds a size limit")                \
	X(SSE_ERR_CALLBACK, -13, "a callback asked to stop")                   \
	X(SSE_ERR_GAP, -14, "cursor fell behind the replay buffer")             \
	X(SSE_ERR_HTTP, -15, "malformed HTTP request")                          \
	X(SSE_ERR_INCOMPLETE, -16, "more input is needed")

enum sse_error {
	SSE_OK = 0,
#define SSE_ERROR_ENUM(name, value, text) name = value,
	SSE_ERRORS(SSE_ERROR_ENUM)
#undef SSE_ERROR_ENUM
};

/** @return A static description of @p err; never NULL, even if unknown. */
SSE_API const char *sse_strerror(int err);
/** @} */

/**
 * @defgroup alloc Allocator hooks
 * Given per object; the struct is copied. NULL everywhere means libc.
 * All three functions must be set. @p old_size lets pool allocators work.
 * @{
 */
struct sse_allocator {
	void *(*alloc_fn)(size_t size, void *ctx);
	void *(*realloc_fn)(void *ptr, size_t old_size, size_t new_size, void *ctx);
	void (*free_fn)(void *ptr, size_t size, void *ctx);
	void *ctx;
};
/** @} */

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

struct sse_event {
	const char *id;   /**< NULL: no id field. May be empty. */
	size_t id_len;
	const char *type; /**< NULL: no event field (the client says "message"). */
	size_t type_len;
	const char *data; /**< NULL: no data line (id-only or retry-only block). */
	size_t data_len;
	long retry;       /**< SSE_RETRY_NONE, or 0..SSE_RETRY_MAX milliseconds. */
};

/**
 * @brief Check an event and compute its exact encoded size.
 * @param flags 0 or SSE_ENCODE_STRICT_UTF8.
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
 * @retval SSE_ERR_INVALID text is NULL with len > 0, or size is NULL.
 * @retval SSE_ERR_UTF8    strict mode and text is not UTF-8.
 */
SSE_API int sse_comment_size(const char *text, size_t len, unsigned flags, size_t *size);

/** @brief Encode a comment; errors and @p written as in sse_encode(). */
SSE_API int sse_encode_comment(const char *text, size_t len, unsigned flags,
			       char *buf, size_t cap, size_t *written);

/** @return 1 if [s, s+len) is valid UTF-8 (RFC 3629), else 0. */
SSE_API int sse_utf8_valid(const char *s, size_t len);
/** @} */

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
	size_t type_len;
	const char *data;    /**< Lines joined with LF, final LF removed. */
	size_t data_len;
	const char *last_id; /**< The last event id at dispatch (may be empty). */
	size_t last_id_len;
};

/** Return 0 to go on; any other value stops the parser (SSE_ERR_CALLBACK). */
typedef int (*sse_message_fn)(const struct sse_message *msg, void *user);
/** A retry field of digits only; values past UINT64_MAX saturate. */
typedef int (*sse_retry_fn)(uint64_t retry_ms, void *user);
/** A comment line, without its leading ':' (not NUL-terminated). */
typedef int (*sse_comment_fn)(const char *text, size_t len, void *user);

struct sse_parser_callbacks {
	sse_message_fn on_message; /**< required */
	sse_retry_fn on_retry;     /**< optional */
	sse_comment_fn on_comment; /**< optional */
};

/** Default bound on one line and on one event's data, in bytes. */
#define SSE_PARSER_DEFAULT_LIMIT (1u << 20)

/**
 * @brief Create a parser. The callbacks struct is copied; user is kept.
 * @retval SSE_ERR_INVALID out, cb or cb->on_message is NULL, or alloc is incomplete.
 * @retval SSE_ERR_NOMEM   allocation failed; *out is untouched.
 */
SSE_API int sse_parser_new(struct sse_parser **out, const struct sse_parser_callbacks *cb,
			   void *user, const struct sse_allocator *alloc);
/** @brief Free a parser; NULL does nothing. */
SSE_API void sse_parser_free(struct sse_parser *p);

/**
 * @brief Bound the bytes one line (without its line end) or one event's
 * data (as dispatched) may hold; 0: the default. Past it,
 * sse_parser_feed() fails with SSE_ERR_TOO_LARGE, so a hostile server
 * cannot make the client's memory grow without bound.
 */
SSE_API int sse_parser_set_limit(struct sse_parser *p, size_t bytes);

/**
 * @brief Feed the next chunk of the stream, of any size, split anywhere.
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
 */
SSE_API int sse_parser_end(struct sse_parser *p);

/** @brief The last event id so far ("" before any), NUL-terminated, valid
 * until the next feed; len may be NULL. NULL for a NULL parser. */
SSE_API const char *sse_parser_last_id(const struct sse_parser *p, size_t *len);
/** @} */

/**
 * @defgroup stream Stream
 * One connection. It never blocks and never owns I/O: bytes leave through
 * the write callback, and whatever the transport does not take stays queued,
 * in order, for the next sse_stream_flush(). Not thread-safe: one stream,
 * one thread at a time. Callbacks must not call back into their stream:
 * send, comment, send_raw and flush return SSE_ERR_INVALID while a
 * callback runs, and sse_stream_free() from a callback is undefined.
 * @{
 */
struct sse_stream;

/**
 * Take some or all of @p len bytes: set *taken and return 0 (the rest stays
 * queued), or return SSE_ERR_WOULDBLOCK when nothing can go now. Any other
 * negative return fails the stream, which then reports that code forever.
 */
typedef int (*sse_write_fn)(const void *buf, size_t len, size_t *taken, void *user);
/** Push what was written (e.g. a buffered transport). 0, WOULDBLOCK or an error. */
typedef int (*sse_flush_fn)(void *user);

struct sse_callbacks {
	sse_write_fn write; /**< required */
	sse_flush_fn flush; /**< optional; NULL means nothing to flush */
};

/** Default bound on queued, unsent bytes per stream. */
#define SSE_STREAM_DEFAULT_QUEUE_LIMIT ((size_t)1 << 20)

/**
 * @brief Create a stream. The callbacks are copied; @p user is passed back.
 * @retval SSE_ERR_INVALID out, cb or cb->write is NULL, or alloc is incomplete.
 * @retval SSE_ERR_NOMEM   *out is untouched.
 */
SSE_API int sse_stream_new(struct sse_stream **out, const struct sse_callbacks *cb,
			   void *user, const struct sse_allocator *alloc);
/** @brief Free a stream and its queue; NULL does nothing. Calls no callback. */
SSE_API void sse_stream_free(struct sse_stream *s);

/**
 * @brief Bound the unsent bytes the stream may hold (0: the default).
 * A send that would pass it fails with SSE_ERR_QUEUE_FULL and queues nothing.
 * A limit below what is already queued only affects later sends. Every
 * frame passes through the queue, so the limit also caps the largest event.
 * The queue's memory never grows past the limit.
 */
SSE_API int sse_stream_set_queue_limit(struct sse_stream *s, size_t bytes);

/** @brief Encoder flags for later sends (SSE_ENCODE_STRICT_UTF8);
 * unknown bits give SSE_ERR_INVALID. */
SSE_API int sse_stream_set_flags(struct sse_stream *s, unsigned flags);

/**
 * @brief Encode one event as a whole and write what the transport takes.
 *
 * The event is copied: the caller may reuse its buffers on return. Either
 * the whole event is queued or none of it is: no event is ever half sent.
 * @return 0 (bytes may remain queued: see sse_stream_pending()), or
 * @retval any encoder error  the event is invalid; the stream is unchanged.
 * @retval SSE_ERR_QUEUE_FULL the queue limit would be passed; nothing queued.
 * @retval SSE_ERR_NOMEM      nothing queued; the stream is still usable.
 * @retval other negative     the stream has failed (write or flush error).
 */
SSE_API int sse_stream_send(struct sse_stream *s, const struct sse_event *ev);

/** @brief Send a comment (sse_encode_comment()), with sse_stream_send()'s rules. */
SSE_API int sse_stream_comment(struct sse_stream *s, const char *text, size_t len);

/**
 * @brief Send bytes as one unit, with sse_stream_send()'s rules: already
 * encoded frames (for instance from a replay buffer), or bytes that must
 * go ahead of the stream, such as the HTTP response head. The bytes are
 * not checked: in the event stream they must be whole frames.
 */
SSE_API int sse_stream_send_raw(struct sse_stream *s, const void *bytes, size_t len);

/**
 * @brief Write queued bytes; call when the transport is writable again,
 * until it returns 0. When the queue empties, the flush callback (if any)
 * runs, once per batch of written bytes.
 * @return 0 when all is written and flushed, SSE_ERR_WOULDBLOCK while bytes
 *         remain or the flush callback asked to be called again, or the
 *         stream's error.
 */
SSE_API int sse_stream_flush(struct sse_stream *s);

/** @return Bytes owed and not yet taken by the transport: queued bytes,
 * plus the frames of a followed ring from the stream's cursor on. */
SSE_API size_t sse_stream_pending(const struct sse_stream *s);

/** @return The user pointer given to sse_stream_new() (NULL for NULL):
 * callbacks that get only the stream (on_failed, on_drop) find their
 * connection with it. */
SSE_API void *sse_stream_user(const struct sse_stream *s);

/** @return 0, or the error that failed the stream. A failed stream has
 * dropped its queue (nothing can be sent any more): pending is then 0. */
SSE_API int sse_stream_error(const struct sse_stream *s);

/**
 * @brief Set the reconnection delay clients should use (SSE_RETRY_NONE:
 * none). It is written by sse_stream_start(), and at once if the stream
 * has started already and the value changed.
 * @retval SSE_ERR_RETRY ms is neither SSE_RETRY_NONE nor 0..SSE_RETRY_MAX.
 */
SSE_API int sse_stream_set_retry(struct sse_stream *s, long ms);

/**
 * @brief Write the opening bytes, right after the response head: the retry
 * field if one is set, else an empty comment. Proxies pass the headers on
 * only once body bytes flow, so a client sees the stream open at once.
 * Also sets the stream's clock. Calling it again does nothing.
 * @return As sse_stream_send().
 */
SSE_API int sse_stream_start(struct sse_stream *s, uint64_t now_ms);
/** @} */

/**
 * @defgroup heartbeat Heartbeats
 * Proxies and load balancers close connections that stay silent for
 * 30 to 100 s. An idle stream therefore sends a comment when its interval
 * passes; any bytes queued reset the idle time. The library owns no
 * timer: the caller passes its monotonic time in milliseconds and learns
 * the next deadline.
 *
 * Sends stamp the stream with the last time the library was told (by
 * sse_stream_tick(), sse_stream_start() or sse_timers_run()), never
 * reading a clock itself. That time can only be older than the truth, so
 * a heartbeat may come early, never late.
 *
 * For many streams, attach them to one struct sse_timers: a min-heap by
 * deadline whose run visits only the streams that are due, so a tick
 * costs O(due * log n), not O(n).
 * @{
 */

/** Default heartbeat interval: under every common proxy idle timeout. */
#define SSE_HEARTBEAT_DEFAULT_MS 15000u

/**
 * @brief Set the heartbeat interval (0 turns heartbeats off) and a jitter:
 * each idle period is shortened by a random 0..jitter_ms, so streams
 * opened together do not beat together. jitter_ms must be below interval_ms.
 * @retval SSE_ERR_INVALID jitter_ms >= interval_ms (with interval_ms > 0).
 */
SSE_API int sse_stream_set_heartbeat(struct sse_stream *s, uint64_t interval_ms,
				     uint64_t jitter_ms);

/** sse_stream_tick()'s *next_ms when no deadline is set (heartbeats off). */
#define SSE_NO_DEADLINE UINT64_MAX

/**
 * @brief Tell the stream the time; send a heartbeat if it was idle for its
 * interval. For a stream not attached to a struct sse_timers.
 * @param next_ms Receives when to call again (SSE_NO_DEADLINE: never).
 * @return 0, or the stream's error (a vanished peer shows up here).
 */
SSE_API int sse_stream_tick(struct sse_stream *s, uint64_t now_ms, uint64_t *next_ms);

struct sse_timers;

/** Called by sse_timers_run() for a stream whose heartbeat failed; the
 * stream is already detached. The application closes it there. */
typedef void (*sse_stream_failed_fn)(struct sse_stream *s, int err, void *user);

/**
 * @brief Create a scheduler. on_failed is optional.
 * @retval SSE_ERR_INVALID out is NULL or alloc is incomplete.
 */
SSE_API int sse_timers_new(struct sse_timers **out, sse_stream_failed_fn on_failed, void *user,
			   const struct sse_allocator *alloc);
/** @brief Free a scheduler; its streams are detached, not freed. */
SSE_API void sse_timers_free(struct sse_timers *t);

/**
 * @brief Attach a stream (at most one scheduler per stream). From now on
 * the stream's clock is the scheduler's. sse_stream_free() detaches it.
 * @retval SSE_ERR_INVALID the stream is attached already.
 * @retval SSE_ERR_NOMEM   the heap could not grow.
 */
SSE_API int sse_timers_add(struct sse_timers *t, struct sse_stream *s);
/** @brief Detach a stream; one not attached to t is left alone. */
SSE_API void sse_timers_remove(struct sse_timers *t, struct sse_stream *s);

/**
 * @brief Advance the time and visit the streams that are due, sending
 * their heartbeats. Call once per loop iteration, or when *next_ms passes.
 * @param next_ms  Receives the earliest deadline left (SSE_NO_DEADLINE: none).
 * @param visited  If not NULL, receives how many streams were visited.
 * @return 0, or SSE_ERR_INVALID.
 */
SSE_API int sse_timers_run(struct sse_timers *t, uint64_t now_ms, uint64_t *next_ms,
			   size_t *visited);

/** @return Streams attached. */
SSE_API size_t sse_timers_count(const struct sse_timers *t);
/** @} */

/**
 * @defgroup replay Replay buffer
 * A bounded ring of already-encoded frames, so a client that reconnects
 * with Last-Event-ID gets every event it missed, without re-encoding.
 *
 * Every frame has a sequence number (1, 2, 3, ...), and a subscriber's
 * position is a cursor: the sequence number of the next frame it needs.
 * Live delivery and replay are the same walk along the ring, so a resumed
 * stream can neither miss nor repeat an event published mid-replay.
 * Not thread-safe: one ring, one thread at a time.
 * @{
 */
struct sse_replay;

struct sse_replay_config {
	size_t max_events;   /**< Frames kept at most (>= 1). */
	size_t max_bytes;    /**< Encoded bytes kept at most (>= 1); the arena is
				  allocated at this size, and a frame never wraps,
				  so large frames may leave part of it unused. */
	uint64_t max_age_ms; /**< 0: no age bound; else frames older are dropped,
				  checked at each publish and sse_replay_expire(). */
	unsigned flags;      /**< Encoder flags for every frame (SSE_ENCODE_STRICT_UTF8). */
	/**
	 * Ids: with app_ids 0 the ring assigns them: the decimal sequence
	 * number, after @c epoch when one is given (e.g. "k3f9-"), so a
	 * restarted server can tell ids from before its restart. With
	 * app_ids 1, each published event must carry its own non-empty id
	 * (an opaque string), found again by hash.
	 */
	int app_ids;
	const char *epoch;   /**< Copied; NULL or "" for none. Ignored with app_ids. */
	/**
	 * Written in-band by sse_replay_resume() when a client's id is too
	 * old or unknown, so it learns that it missed events (type
	 * "sse-reset" by convention; data up to the application). Copied.
	 * NULL: none. Its id field is ignored: the ring sets it to the
	 * newest id, so the client resumes from there next time.
	 */
	const struct sse_event *reset_event;
};

/** What sse_replay_seek() found for a Last-Event-ID. */
enum sse_replay_status {
	SSE_REPLAY_FOUND = 0,   /**< The frames after it are all retained. */
	SSE_REPLAY_LIVE = 1,    /**< Empty or absent id: live events only. */
	SSE_REPLAY_GAP = 2,     /**< Ours, but older than the ring holds. */
	SSE_REPLAY_UNKNOWN = 3  /**< Not an id of this ring (or its epoch). With
				     app ids a dropped id cannot be told from a
				     foreign one, so it is UNKNOWN, never GAP. */
};

/**
 * @brief Create a ring. The config and the reset event are copied.
 * @retval SSE_ERR_INVALID a bound is 0, the epoch holds CR or LF, the reset
 *         event is invalid, flags has unknown bits, or alloc is incomplete.
 * @retval SSE_ERR_NOMEM   allocation failed, or the bounds need more memory
 *         than size_t can count; *out is untouched.
 */
SSE_API int sse_replay_new(struct sse_replay **out, const struct sse_replay_config *cfg,
			   const struct sse_allocator *alloc);
/** @brief Free a ring; NULL does nothing. */
SSE_API void sse_replay_free(struct sse_replay *r);

/** @brief Drop frames older than max_age_ms at now_ms, without publishing. */
SSE_API int sse_replay_expire(struct sse_replay *r, uint64_t now_ms);

/**
 * @brief Encode an event once and keep it, dropping the oldest frames as
 * the bounds require.
 * @param now_ms Caller's monotonic time (for max_age_ms; else any value).
 * @param seq    If not NULL, receives the frame's sequence number.
 * @retval SSE_ERR_INVALID  ring-assigned ids and ev->id is set, or app ids and it is not.
 * @retval SSE_ERR_TOO_LARGE the frame alone exceeds max_bytes.
 * @retval encoder errors   as sse_encode_size(); nothing is kept.
 */
SSE_API int sse_replay_publish(struct sse_replay *r, const struct sse_event *ev,
			       uint64_t now_ms, uint64_t *seq);

/**
 * @brief Map a Last-Event-ID to a cursor. O(1) for ring-assigned ids,
 * O(1) expected for application ids.
 * @param id NULL or len 0: live only.
 * @param cursor Receives the sequence number of the next frame to send:
 *        for FOUND, the one after the id; otherwise the next live frame.
 * @return an sse_replay_status, or SSE_ERR_INVALID.
 */
SSE_API int sse_replay_seek(const struct sse_replay *r, const char *id, size_t len,
			    uint64_t *cursor);

/**
 * @brief The frame at a cursor, without copying.
 * @return 1 and the bytes (valid until the next publish), 0 when the
 *         cursor is at the live end (nothing yet),
 * @retval SSE_ERR_GAP     the frame was dropped: the cursor fell behind.
 * @retval SSE_ERR_INVALID a NULL argument, or a cursor past the live end.
 */
SSE_API int sse_replay_frame(const struct sse_replay *r, uint64_t cursor, const char **bytes,
			     size_t *len);

/** @return The sequence number the next publish will get. */
SSE_API uint64_t sse_replay_next_seq(const struct sse_replay *r);
/** @return The oldest retained sequence number (next_seq when empty). */
SSE_API uint64_t sse_replay_first_seq(const struct sse_replay *r);
/** @return Encoded bytes currently held (never above max_bytes). */
SSE_API size_t sse_replay_bytes(const struct sse_replay *r);
/** @return Frames currently held (never above max_events). */
SSE_API size_t sse_replay_count(const struct sse_replay *r);

/**
 * @brief Copy frames from *cursor onward into a stream while its queue
 * has room, advancing *cursor past each frame queued. Call after each
 * publish and whenever the stream drained (after sse_stream_flush()).
 * A full queue is not an error: the pump stops and the rest waits.
 * @return 0 (caught up, or the queue is full: call again later), or
 * @retval SSE_ERR_GAP    the stream fell behind the ring (a slow consumer):
 *                        close it; its client resumes with Last-Event-ID.
 * @retval SSE_ERR_TOO_LARGE a frame exceeds the stream's queue limit (it can
 *                        never be queued); *cursor stays at it.
 * @retval SSE_ERR_INVALID a NULL argument, or a cursor past the live end.
 * @retval other negative the stream's error.
 */
SSE_API int sse_replay_pump(const struct sse_replay *r, struct sse_stream *s, uint64_t *cursor);

/**
 * @brief Start a stream from a Last-Event-ID: seek, and when the id is too
 * old or unknown, write the reset event; then pump. The reset event's id
 * is the newest frame's id; with ring ids and nothing published yet it is
 * epoch "0" (so events published meanwhile are still replayed), with app
 * ids and nothing published, empty. Also returns sse_stream_send()'s
 * errors for the reset event; *cursor and *status are set first.
 * @param status If not NULL, receives the sse_replay_status of the seek.
 * @return 0 or a negative code from sse_replay_pump().
 */
SSE_API int sse_replay_resume(const struct sse_replay *r, struct sse_stream *s, const char *id,
			      size_t len, uint64_t *cursor, int *status);
/** @} */

/**
 * @defgroup follow Streams that follow a replay ring
 * A stream can take its events straight from a ring: it keeps a cursor,
 * and whenever it drains (sse_stream_flush(), or any send) it writes the
 * frames from its cursor to the ring's live end, without copying them.
 * Bytes the stream queued itself (the opening bytes, heartbeats, a reset
 * event) go out first, at a frame boundary. With a writev callback, all
 * of it leaves in one call per drain.
 *
 * After publishing, call sse_stream_flush() on each following stream (a
 * hub does that for you). A stream whose cursor falls behind the ring's
 * oldest frame has missed events: it fails with SSE_ERR_GAP (a slow
 * consumer), and its client resumes with Last-Event-ID. A stream whose
 * transport refuses bytes while it owes more than its queue limit fails
 * with SSE_ERR_QUEUE_FULL; one that keeps taking bytes may owe more (a
 * resumed client, a large event).
 * @{
 */

/** One piece of output, as struct iovec (kept apart from POSIX headers). */
struct sse_iovec {
	const void *base;
	size_t len;
};

/** Like sse_write_fn, for @p n pieces written in order (n >= 1). */
typedef int (*sse_writev_fn)(const struct sse_iovec *iov, size_t n, size_t *taken, void *user);

/** Pieces one writev callback call gets at most. */
#define SSE_IOV_MAX 64

/**
 * @brief Give the stream a writev callback; it is used instead of write
 * whenever more than one piece is ready. NULL removes it.
 */
SSE_API int sse_stream_set_writev(struct sse_stream *s, sse_writev_fn writev);

/**
 * @brief Follow a ring from @p cursor on (from sse_replay_seek(), or
 * sse_replay_next_seq() for live only). The ring must outlive the stream
 * or the next sse_stream_follow(s, NULL, 0), which stops following.
 * @retval SSE_ERR_INVALID the cursor is past the ring's live end.
 */
SSE_API int sse_stream_follow(struct sse_stream *s, const struct sse_replay *r, uint64_t cursor);

/** @return The sequence number of the next frame the stream will send
 * from its ring (frames before it were written completely); 0 if none. */
SSE_API uint64_t sse_stream_cursor(const struct sse_stream *s);
/** @} */

/**
 * @defgroup hub Hub: one event, many subscribers
 * Broadcast. Publishing encodes an event once into the hub's replay ring;
 * each subscriber is a stream following that ring, so no event is copied
 * per subscriber and a subscriber's memory does not grow with traffic.
 * Fan-out is a pass over the subscribers that have something owed: call
 * sse_hub_flush() once per loop iteration, after the publishes of that
 * iteration, and every subscriber gets all of them in one transport call.
 *
 * A subscriber that falls behind the ring, passes its backlog bound, or
 * whose transport fails is detached and handed to the on_drop callback;
 * the application closes its connection there (its client comes back with
 * Last-Event-ID and resumes from the ring). The hub owns no stream.
 * Not thread-safe.
 * @{
 */
struct sse_hub;

struct sse_hub_config {
	struct sse_replay_config ring; /**< The ring's bounds, ids and reset event. */
	size_t max_backlog;    /**< Unsent bytes a subscriber may owe (0: 256 KiB). */
	uint64_t heartbeat_ms; /**< 0: SSE_HEARTBEAT_DEFAULT_MS. */
	uint64_t heartbeat_jitter_ms; /**< Below the interval. */
	int no_heartbeat;      /**< 1: subscribers send no heartbeats. */
};

/** A subscriber left the hub: err is SSE_ERR_GAP or SSE_ERR_QUEUE_FULL for
 * a slow consumer, or the transport's error. Close its connection and free
 * the stream here, or later. */
typedef void (*sse_hub_drop_fn)(struct sse_stream *s, int err, void *user);

/**
 * @retval SSE_ERR_INVALID a config error (as sse_replay_new()) or on_drop is NULL.
 * @retval SSE_ERR_NOMEM   *out is untouched.
 */
SSE_API int sse_hub_new(struct sse_hub **out, const struct sse_hub_config *cfg,
			sse_hub_drop_fn on_drop, void *user, const struct sse_allocator *alloc);
/** @brief Free the hub; its subscribers are detached, not freed. NULL: nothing. */
SSE_API void sse_hub_free(struct sse_hub *h);

/**
 * @brief Add a stream whose response head was sent: set its heartbeat and
 * backlog bound, write its opening bytes, resume it from @p last_id (the
 * reset event first when the id is too old or unknown) and let it follow
 * the ring. The stream must not follow a ring or be on a scheduler yet.
 * @param status If not NULL, the sse_replay_status of the resume.
 * @return 0, or an error: the stream is then not subscribed (close it).
 */
SSE_API int sse_hub_subscribe(struct sse_hub *h, struct sse_stream *s, const char *last_id,
			      size_t len, int *status);
/** @brief Detach a subscriber (on_drop is not called). Not one: nothing. */
SSE_API void sse_hub_unsubscribe(struct sse_hub *h, struct sse_stream *s);

/**
 * @brief Encode one event into the ring (ids as the ring's config says).
 * Subscribers get it at the next sse_hub_flush().
 * @return As sse_replay_publish().
 */
SSE_API int sse_hub_publish(struct sse_hub *h, const struct sse_event *ev, uint64_t now_ms,
			    uint64_t *seq);

/**
 * @brief The fan-out pass: every subscriber writes what it owes, in one
 * transport call each where it has a writev callback. Subscribers that
 * fail are dropped (on_drop). Cost: the subscribers owed something.
 */
SSE_API int sse_hub_flush(struct sse_hub *h);

/**
 * @brief A subscriber's transport is writable again: write what it owes;
 * drop it if it fails. @return 0, SSE_ERR_WOULDBLOCK (still owes bytes),
 * or the error it was dropped for.
 */
SSE_API int sse_hub_writable(struct sse_hub *h, struct sse_stream *s);

/** @brief Heartbeats: visit the subscribers that are due (sse_timers_run()). */
SSE_API int sse_hub_tick(struct sse_hub *h, uint64_t now_ms, uint64_t *next_ms);

/** @return The hub's ring (for sse_replay_* queries). */
SSE_API const struct sse_replay *sse_hub_ring(const struct sse_hub *h);
/** @return Subscribers attached. */
SSE_API size_t sse_hub_count(const struct sse_hub *h);
/** @} */

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

/**
 * @defgroup socket Socket adapters (POSIX)
 * Write callbacks for a non-blocking socket. @p user points to the int
 * file descriptor. They send with MSG_NOSIGNAL (SO_NOSIGPIPE where only
 * that exists; on a system with neither, ignore SIGPIPE yourself), retry
 * EINTR, map EAGAIN to SSE_ERR_WOULDBLOCK, and a peer that is gone
 * (EPIPE, ECONNRESET) to SSE_ERR_IO, which fails the stream.
 * @{
 */
SSE_API int sse_socket_write(const void *buf, size_t len, size_t *taken, void *user);
/** At most IOV_MAX pieces go in one sendmsg; the rest waits for the next call. */
SSE_API int sse_socket_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *user);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_H */
