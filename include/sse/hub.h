/*
 * libsse — the hub: one event, many subscribers
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_HUB_H
#define SSE_HUB_H

#include <sse/replay.h>

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif
#endif /* SSE_HUB_H */
