/*
 * libsse — one connection: its transport, queue, heartbeats, and the ring
 * it follows.
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
 * One connection. It never blocks and never owns I/O. Bytes leave in one
 * of two ways, chosen by the transport given to sse_stream_new():
 *
 * - push: the stream calls write (or writev) whenever it owes bytes;
 *   whatever the transport does not take stays owed, in order, for the
 *   next sse_stream_flush() (a socket, an evbuffer, a TLS session);
 * - pull: the transport has neither write nor writev. The stream calls
 *   wake when it goes from owing nothing to owing something, and the
 *   application
 *   copies the owed bytes out with sse_stream_read() when its server asks
 *   for body bytes (libmicrohttpd's content reader, nghttp2's data source).
 *
 * What a stream owes: bytes it queued itself (sends, comments, heartbeats,
 * the opening bytes), and the frames of a replay ring it follows, from its
 * cursor to the ring's live end; those are never copied per stream.
 *
 * Not thread-safe: one stream, one thread at a time. Callbacks must not
 * call back into their stream: send, comment, send_raw, flush and read
 * return SSE_ERR_INVALID while a callback runs, and sse_stream_free()
 * from a callback is undefined.
 * @{
 */
struct sse_stream;
struct sse_replay; /* sse/replay.h */

/** One piece of output, as struct iovec (kept apart from POSIX headers). */
struct sse_iovec {
	const void *base; /**< First byte of the piece. */
	size_t len;       /**< Bytes in the piece. */
};

/**
 * Take some or all of @p len bytes: set *taken and return 0 (the rest stays
 * owed), or return SSE_ERR_WOULDBLOCK when nothing can go now. Any other
 * negative return fails the stream, which then reports that code forever.
 *
 * Lifetime: @p buf is valid only during the call, unless the transport is
 * asynchronous (SSE_TRANSPORT_ASYNC): then the bytes it reports taken stay
 * valid, unmoved, until it reports them done with sse_stream_complete().
 * @param buf   The bytes owed, from the first one not yet taken.
 * @param len   Their number (> 0).
 * @param taken Receives how many were taken (0..len); 0 with a return of
 *              0 counts as SSE_ERR_WOULDBLOCK.
 * @param ctx   The transport's context (struct sse_transport.ctx), never
 *              the stream's user pointer.
 * @return 0, SSE_ERR_WOULDBLOCK, or an error that fails the stream.
 */
typedef int (*sse_write_fn)(const void *buf, size_t len, size_t *taken, void *ctx);
/** Like sse_write_fn, for @p n pieces written in order (n >= 1); the
 * array is valid during the call only, the bytes as for sse_write_fn. */
typedef int (*sse_writev_fn)(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx);
/** Push what was written (e.g. a buffered transport). 0, WOULDBLOCK or an error. */
typedef int (*sse_flush_fn)(void *ctx);
/** The stream went from owing nothing to owing something: for a pull
 * transport, resume the suspended connection so its server asks for
 * bytes. Called at most once until sse_stream_read() finds nothing owed
 * again. Must not call into the stream. */
typedef void (*sse_wake_fn)(struct sse_stream *s, void *ctx);

/** Pieces one writev callback call gets at most. */
#define SSE_IOV_MAX 64

/**
 * struct sse_transport.flags: the transport keeps using the bytes it takes
 * after the call returns (uv_write, evbuffer_add_reference, nghttp2's
 * NGHTTP2_DATA_FLAG_NO_COPY, io_uring), and reports them done, in order,
 * with sse_stream_complete(). Nothing is copied for it: ring frames it
 * holds are pinned in the ring (see sse_replay_publish()) and queued
 * bytes stay where they are. Push only.
 */
#define SSE_TRANSPORT_ASYNC 0x1u

/**
 * How bytes leave a stream. Copied by sse_stream_new(). Set @c size to
 * sizeof(struct sse_transport): later versions may add fields after the
 * last one, and read them only when the size says they are there.
 */
struct sse_transport {
	size_t size;          /**< sizeof(struct sse_transport) */
	sse_write_fn write;   /**< push: write or writev is required (both NULL: pull) */
	sse_writev_fn writev; /**< push: gathers several pieces in one call; used for
				   every call when write is NULL */
	sse_flush_fn flush;   /**< push, optional; NULL means nothing to flush */
	sse_wake_fn wake;     /**< pull: required, the way the stream is resumed; push: unused */
	void *ctx;            /**< passed to every callback above */
	unsigned flags;       /**< 0, or SSE_TRANSPORT_ASYNC */
};

/** Default bound on the bytes a stream queues itself (not ring frames). */
#define SSE_STREAM_DEFAULT_QUEUE_LIMIT ((size_t)1 << 20)

/**
 * @brief Create a stream. The transport is copied; @p user is the
 * application's own pointer (sse_stream_user()); the library never reads it.
 * @retval SSE_ERR_INVALID out or t is NULL, t->size is too small or larger
 *         than this library knows, a pull transport has no wake callback,
 *         or alloc is incomplete.
 * @retval SSE_ERR_NOMEM   *out is untouched.
 * @since 0.2 (the transport struct)
 */
SSE_API int sse_stream_new(struct sse_stream **out, const struct sse_transport *t,
			   void *user, const struct sse_allocator *alloc);
/** @brief Free a stream and its queue; it leaves its hub or scheduler.
 * NULL does nothing. Calls no callback. With an asynchronous transport,
 * free it only once the transport has completed (or cancelled and
 * completed) every byte it took: their memory is let go here. */
SSE_API void sse_stream_free(struct sse_stream *s);

/**
 * @brief Bound the bytes the stream queues itself (0: the default): a send
 * that would pass it fails with SSE_ERR_QUEUE_FULL and queues nothing. A
 * limit below what is already queued only affects later sends. Ring frames
 * a stream follows are not queued and not counted here; they are bounded
 * by the ring and by sse_stream_set_max_lag().
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
 * A following stream writes it at the next frame boundary.
 * @return 0 (bytes may remain owed: see sse_stream_pending()), or
 * @retval any encoder error  the event is invalid; the stream is unchanged.
 * @retval SSE_ERR_QUEUE_FULL the queue limit would be passed; nothing queued.
 * @retval SSE_ERR_NOMEM      nothing queued; the stream is still usable.
 * @retval other negative     the stream has failed (write or flush error).
 */
SSE_API int sse_stream_send(struct sse_stream *s, const struct sse_event *ev);

/** @brief Send a comment (sse_encode_comment()), with sse_stream_send()'s rules. */
SSE_API int sse_stream_comment(struct sse_stream *s, const char *text, size_t len);

/**
 * @brief Send bytes as one unit, with sse_stream_send()'s rules: bytes that
 * must go ahead of the stream, such as the HTTP response head. The bytes
 * are not checked: in the event stream they must be whole frames.
 */
SSE_API int sse_stream_send_raw(struct sse_stream *s, const void *bytes, size_t len);

/**
 * @brief Write what the stream owes; call when the transport is writable
 * again, until it returns 0. When nothing is owed any more, the flush
 * callback (if any) runs, once per batch of written bytes. On a pull
 * stream, calls wake if something is owed and wake is not pending.
 * @return 0 when all is written and flushed, SSE_ERR_WOULDBLOCK while bytes
 *         remain or the flush callback asked to be called again, or the
 *         stream's error (SSE_ERR_GAP: it fell behind its ring).
 */
SSE_API int sse_stream_flush(struct sse_stream *s);

/**
 * @brief Pull: copy up to @p cap owed bytes into @p buf, in order. A frame
 * may be split across reads; the reader must send the bytes as they come.
 * Also allowed on a push stream with nothing in flight (it then bypasses
 * the write callback).
 * @param s   The stream.
 * @param buf Where the bytes go.
 * @param cap Room at buf (> 0).
 * @param n   Receives the bytes copied.
 * @return 0 with *n > 0, or
 * @retval SSE_ERR_WOULDBLOCK nothing is owed (*n = 0): suspend the
 *         connection until wake is called.
 * @retval SSE_ERR_INVALID    a NULL argument, cap 0, an asynchronous
 *         stream, or called from a callback.
 * @retval other negative     the stream's error (SSE_ERR_GAP: fell behind its ring).
 * @since 0.2
 */
SSE_API int sse_stream_read(struct sse_stream *s, void *buf, size_t cap, size_t *n);

/**
 * @brief An asynchronous transport is done with the next @p n bytes it
 * took (in the order it took them, whether sent or cancelled): their
 * memory may be reused. Call sse_stream_flush() afterwards to hand out
 * what is owed meanwhile. Also for a failed or unfollowed stream, whose
 * memory and pins go once nothing is held. What a transport may hold is
 * bounded by the ring (a transport still holding frames the ring dropped
 * fails its stream with SSE_ERR_GAP) and by the queue limit (queued
 * bytes; a send fails with SSE_ERR_QUEUE_FULL while the transport holds
 * bytes of 16 replaced queue buffers).
 * @retval SSE_ERR_INVALID n is more than sse_stream_inflight(), or called
 *         from a callback.
 * @since 0.2
 */
SSE_API int sse_stream_complete(struct sse_stream *s, size_t n);

/** @return Bytes an asynchronous transport took and has not completed.
 * @since 0.2 */
SSE_API size_t sse_stream_inflight(const struct sse_stream *s);

/** @return Bytes owed and not yet taken by the transport: queued bytes,
 * plus the frames of a followed ring from the stream's position on.
 * 0 for a failed stream, and for a follower that fell out of its ring. */
SSE_API size_t sse_stream_pending(const struct sse_stream *s);

/** @return The user pointer given to sse_stream_new() (NULL for NULL). */
SSE_API void *sse_stream_user(const struct sse_stream *s);

/** @return 0, or the error that failed the stream. A failed stream has
 * dropped its queue and its ring (nothing can be sent any more). */
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
 * @defgroup heartbeat Heartbeats and stalls
 * Proxies and load balancers close connections that stay silent for
 * 30 to 100 s. An idle stream therefore sends a comment when its interval
 * passes; any bytes queued reset the idle time. The library owns no
 * timer: the caller passes its monotonic time in milliseconds and learns
 * the next deadline (sse_stream_tick(), or a struct sse_timers for many).
 *
 * The same visit ends a stream whose transport has accepted nothing for
 * its stall time while bytes were owed (SSE_ERR_STALLED): a peer that
 * stopped reading. A peer that keeps reading, however slowly, is never
 * failed for the amount it owes.
 *
 * Sends stamp the stream with the last time the library was told, never
 * reading a clock itself. That time can only be older than the truth, so
 * a heartbeat may come early, never late.
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

/**
 * @brief Fail the stream with SSE_ERR_STALLED when its transport has taken
 * no byte for @p ms while bytes were owed (for a pull stream: no read).
 * 0 (the default) never does. Checked when the stream is visited
 * (sse_stream_tick(), sse_timers_run(), sse_hub_tick()).
 * @since 0.2
 */
SSE_API int sse_stream_set_stall(struct sse_stream *s, uint64_t ms);

/** sse_stream_tick()'s *next_ms when no deadline is set. */
#define SSE_NO_DEADLINE UINT64_MAX

/**
 * @brief Tell the stream the time; send a heartbeat if it was idle for its
 * interval, fail it if it stalled. For a stream not attached to a
 * struct sse_timers or a hub.
 * @param s       The stream.
 * @param now_ms  The caller's monotonic time, in milliseconds.
 * @param next_ms Receives when to call again (SSE_NO_DEADLINE: never).
 * @return 0, or the stream's error (a vanished peer shows up here).
 */
SSE_API int sse_stream_tick(struct sse_stream *s, uint64_t now_ms, uint64_t *next_ms);
/** @} */

/**
 * @defgroup follow Streams that follow a replay ring
 * A stream can take its events straight from a ring: it keeps a cursor,
 * and whenever it drains (sse_stream_flush(), sse_stream_read(), any send)
 * it hands out the frames from its cursor to the ring's live end, without
 * copying them. Bytes the stream queued itself (the opening bytes,
 * heartbeats, a reset event) go out first, at a frame boundary. With a
 * writev callback, all of it leaves in one call per drain.
 *
 * Ring frames handed to a write callback are valid during the call only
 * (the next publish may reuse their bytes), or, for an asynchronous
 * transport, until it completes them (the ring keeps them meanwhile).
 *
 * A follower is a slow consumer only when it has missed events: when the
 * ring dropped the frame at its cursor, or when it is further behind the
 * live end than its maximum lag. It then fails with SSE_ERR_GAP, and its
 * client resumes with Last-Event-ID. Owing many bytes while they flow (a
 * resume over a long backlog, one large event) is never a reason.
 * @{
 */

/**
 * @brief Follow a ring from @p cursor on (from sse_replay_seek(), or
 * sse_replay_next_seq() for live only). The ring must outlive the stream
 * or the next sse_stream_follow(s, NULL, 0), which stops following. A
 * stream stopped in the middle of a frame hands out nothing more from the
 * ring (not the end of a frame without its start), and one whose
 * asynchronous transport holds frames keeps them pinned until completed:
 * the ring must outlive those completions.
 * @retval SSE_ERR_INVALID the cursor is past the ring's live end, or the
 *         stream is in the middle of a frame of its ring or holds some of
 *         its frames (stop following first).
 */
SSE_API int sse_stream_follow(struct sse_stream *s, const struct sse_replay *r, uint64_t cursor);

/**
 * @brief Start a stream from a client's Last-Event-ID and follow the ring:
 * seek; when the id is too old or unknown (another epoch: an earlier run),
 * or further behind the live end than the stream's maximum lag, queue the
 * ring's reset event and resume live; else follow from the id on. The
 * one resume the hub uses too. Does not write the opening bytes (see
 * sse_stream_start()) and does not flush.
 * @param s      The stream; as for sse_stream_follow().
 * @param r      The ring; it must outlive the stream, as for
 *               sse_stream_follow().
 * @param id     The client's Last-Event-ID; NULL or len 0: live only.
 * @param len    Bytes at id.
 * @param status If not NULL, receives the sse_replay_status of the seek.
 * @return 0; SSE_ERR_INVALID when the stream cannot follow now (as for
 *         sse_stream_follow()); or an error of sse_stream_send() for the
 *         reset event. On an error the stream is as it was: no reset
 *         event queued, its ring and cursor unchanged.
 * @since 0.2
 */
SSE_API int sse_stream_resume(struct sse_stream *s, const struct sse_replay *r, const char *id,
			      size_t len, int *status);

/**
 * @brief Fail a follower further than @p bytes behind the ring's live end
 * (SSE_ERR_GAP), though the ring still holds its frames. 0 (the default):
 * only the ring's bounds count.
 * @since 0.2
 */
SSE_API int sse_stream_set_max_lag(struct sse_stream *s, uint64_t bytes);

/** @return The sequence number of the next frame the stream will send
 * from its ring (frames before it were written completely); 0 if none. */
SSE_API uint64_t sse_stream_cursor(const struct sse_stream *s);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_STREAM_H */
