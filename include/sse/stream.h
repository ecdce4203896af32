/*
 * libsse — one connection: transport callbacks, queue, heartbeats, following a ring
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_STREAM_H
#define SSE_STREAM_H

#include <sse/encode.h>

#ifdef __cplusplus
extern "C" {
#endif

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
struct sse_replay; /* sse/replay.h */

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

#ifdef __cplusplus
}
#endif
#endif /* SSE_STREAM_H */
