/*
 * libsse — the heartbeat scheduler: many streams, one deadline heap.
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_TIMERS_H
#define SSE_TIMERS_H

#include <sse/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup timers Scheduler
 * For many streams, attach them to one struct sse_timers: a min-heap by
 * deadline whose run visits only the streams that are due (heartbeat,
 * stall), so a tick costs O(due * log n), not O(n). A hub has one of its
 * own; a stream belongs to at most one scheduler or hub.
 * @{
 */
struct sse_timers;

/** Called by sse_timers_run() for a stream whose visit failed (a vanished
 * peer, SSE_ERR_STALLED, SSE_ERR_GAP); the stream is already detached. The
 * application closes it there, and may free it. */
typedef void (*sse_stream_failed_fn)(struct sse_stream *s, int err, void *user);

/**
 * @brief Create a scheduler.
 * @param out       Receives the scheduler, to free with sse_timers_free().
 * @param on_failed Optional; NULL: failed streams are only detached.
 * @param user      Passed to on_failed.
 * @param alloc     NULL: libc; else copied.
 * @return 0, or
 * @retval SSE_ERR_INVALID out is NULL or alloc is incomplete.
 * @retval SSE_ERR_NOMEM   *out is untouched.
 */
SSE_API int sse_timers_new(struct sse_timers **out, sse_stream_failed_fn on_failed, void *user,
			   const struct sse_allocator *alloc);
/** @brief Free a scheduler; its streams are detached, not freed. NULL: nothing.
 * @param t The scheduler. */
SSE_API void sse_timers_free(struct sse_timers *t);

/**
 * @brief Attach a stream. From now on the stream's clock is the
 * scheduler's. sse_stream_free() detaches it.
 * @param t The scheduler.
 * @param s The stream.
 * @return 0, or
 * @retval SSE_ERR_INVALID the stream belongs to a scheduler or hub already.
 * @retval SSE_ERR_NOMEM   the heap could not grow.
 */
SSE_API int sse_timers_add(struct sse_timers *t, struct sse_stream *s);
/** @brief Detach a stream; one not attached to t is left alone.
 * @param t The scheduler.
 * @param s The stream. */
SSE_API void sse_timers_remove(struct sse_timers *t, struct sse_stream *s);

/**
 * @brief Advance the time and visit the streams that are due, sending
 * their heartbeats. Call once per loop iteration, or when *next_ms passes.
 * Streams that fail are detached and handed to on_failed.
 * @param t        The scheduler.
 * @param now_ms   The caller's monotonic time, in milliseconds.
 * @param next_ms  Receives the earliest deadline left (SSE_NO_DEADLINE: none).
 * @param visited  If not NULL, receives how many streams were visited.
 * @return 0, or SSE_ERR_INVALID.
 */
SSE_API int sse_timers_run(struct sse_timers *t, uint64_t now_ms, uint64_t *next_ms,
			   size_t *visited);

/** @brief Count the attached streams.
 * @param t The scheduler; NULL gives 0.
 * @return Streams attached. */
SSE_API size_t sse_timers_count(const struct sse_timers *t);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_TIMERS_H */
