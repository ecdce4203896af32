/*
 * libsse — the handoff: publish into a hub from other threads
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_HANDOFF_H
#define SSE_HANDOFF_H

#include <sse/hub.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup handoff Handoff: publishing from other threads
 * A hub and its streams belong to one thread, the loop's. Worker threads
 * publish through a handoff instead: a bounded multi-producer,
 * single-consumer queue of events. A worker copies its event in with
 * sse_handoff_push() (any thread, never blocks, never allocates) and
 * wakes the loop when told to (an eventfd or pipe watched by epoll,
 * uv_async_send(), event_active()); the loop, when woken, moves what is
 * queued into the hub with sse_handoff_drain() and then calls
 * sse_hub_flush(). A full queue is the workers' backpressure:
 * sse_handoff_push() says SSE_ERR_QUEUE_FULL and the worker decides
 * whether to retry, wait or drop.
 *
 * Memory: everything is allocated by sse_handoff_new(), once: slots
 * (rounded up to a power of two) times max_event_bytes plus a small
 * header per slot. The allocator is only called by sse_handoff_new() and
 * sse_handoff_free(), so it need not be thread-safe.
 *
 * Thread use: sse_handoff_push() may be called from any number of threads
 * at once. sse_handoff_drain() is for one thread, the hub's (the loop
 * thread), never two at once. sse_handoff_new() and sse_handoff_free()
 * run when no other thread uses the handoff. Only C11 atomics are used.
 * @{
 */
struct sse_handoff;

/**
 * @brief Make a handoff.
 * @param out             Receives the handoff, to free with sse_handoff_free().
 * @param slots           Events queued at most (>= 1); rounded up to a
 *                        power of two, at least 2.
 * @param max_event_bytes Bytes one event may carry: id_len + type_len +
 *                        data_len (>= 1). Each slot holds that much.
 * @param flags           Encoder flags the events are checked with at
 *                        push: the hub ring's flags (SSE_ENCODE_STRICT_UTF8).
 * @param alloc           NULL: libc. Copied.
 * @return 0, or
 * @retval SSE_ERR_INVALID   out is NULL, a count is 0, or the allocator
 *                           leaves a function unset.
 * @retval SSE_ERR_TOO_LARGE the memory needed does not fit in size_t.
 * @retval SSE_ERR_NOMEM     *out is untouched.
 * @since 0.2
 */
SSE_API int sse_handoff_new(struct sse_handoff **out, size_t slots, size_t max_event_bytes,
			    unsigned flags, const struct sse_allocator *alloc);

/** @brief Free a handoff and the events still queued in it. NULL: nothing.
 * No other thread may be using it. @since 0.2 */
SSE_API void sse_handoff_free(struct sse_handoff *q);

/**
 * @brief Copy an event into the queue. Thread-safe: any thread, any
 * number at once; never blocks, never allocates.
 *
 * The event is checked here with sse_encode_size() and the handoff's
 * flags, so the loop never receives an event the encoder refuses. What
 * only the hub can check (its ring assigns ids, so ev->id must be NULL;
 * or app ids, and it must be set) is checked by the hub at drain.
 * @param q    The handoff.
 * @param ev   Copied before the call returns.
 * @param wake Required. Set to 1 when the caller must wake the loop: no
 *             wake-up was pending since the loop's last
 *             sse_handoff_drain() began. Set to 0 when one is pending (the
 *             loop will see this event); also 0 on error.
 * @return 0, or
 * @retval SSE_ERR_QUEUE_FULL all slots are taken: the loop is behind.
 * @retval SSE_ERR_TOO_LARGE  the event carries more than max_event_bytes.
 * @retval SSE_ERR_INVALID    q, ev or wake is NULL.
 * @retval encoder errors     as sse_encode_size(); nothing is queued.
 * @since 0.2
 */
SSE_API int sse_handoff_push(struct sse_handoff *q, const struct sse_event *ev, int *wake);

/**
 * @brief Publish queued events into @p h in the order they were queued
 * (sse_hub_publish() at @p now_ms); then call sse_hub_flush(). Loop
 * thread only.
 *
 * Events a producer is still copying in are left for the next drain:
 * that producer is told to wake the loop again. Keep @p max (and the
 * bytes it may add up to) within the ring's bounds, so that the flush
 * that follows finds every event still in the ring.
 * @param q         The handoff.
 * @param h         The hub to publish into.
 * @param now_ms    The loop's monotonic time, passed to sse_hub_publish().
 * @param max       Publish at most this many events; 0: the queue's slots.
 * @param published If not NULL, the events published.
 * @retval 0 the queue was found empty (after publishing what it held).
 * @retval 1 @p max events were published and more are queued: flush,
 *           then drain again (wake the loop yourself, or loop).
 * @retval SSE_ERR_PINNED, SSE_ERR_NOMEM the hub could not take the event
 *           at the head now; it stays queued, to be retried.
 * @retval other errors of sse_hub_publish(): that event is dropped (it
 *           can never be published); the events after it stay queued.
 *           SSE_ERR_INVALID also for a NULL q or h.
 * @since 0.2
 */
SSE_API int sse_handoff_drain(struct sse_handoff *q, struct sse_hub *h, uint64_t now_ms,
			      size_t max, size_t *published);

/** @brief Count the events queued. Thread-safe.
 * @param q The handoff; NULL gives 0.
 * @return Events queued, as seen now (other threads may change it).
 * @since 0.2 */
SSE_API size_t sse_handoff_count(const struct sse_handoff *q);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_HANDOFF_H */
