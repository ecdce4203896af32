/*
 * libsse-redis — a hub backed by Redis Streams: publish through Redis,
 * feed the hub from Redis's live copy, answer resumes from the stream.
 *
 * Not part of libsse itself: link libsse-redis (pkg-config libsse-redis).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_REDIS_H
#define SSE_REDIS_H

#include <sse/base.h>
#include <sse/encode.h>
#include <sse/hub.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup redis Redis Streams provider (libsse-redis)
 * One struct sse_redis joins one hub to one channel C kept in Redis
 * (version 7 or later): the stream `sse:{C}:log` (entry `<offset>-0`
 * holds the frame of offset n), the hash `sse:{C}:meta` (`epoch`, and
 * `offset`, the last one assigned) and the pub/sub channel `sse:{C}:live`.
 * An event's id is `<epoch>-<offset>`: the same on every node.
 *
 * - sse_redis_publish() runs one script that gives the event the next
 *   offset, appends it to the stream and publishes its live copy; it
 *   answers when Redis did (or failed, or did not answer in time).
 * - The live copy reaches the hub of every node (sse_hub_publish_frame());
 *   a node that sees a hole in the offsets, or that lost its pub/sub
 *   connection, fills the hole from the stream first, so its ring has
 *   every event once, in offset order. A new epoch (a Redis that lost its
 *   data) restarts the ring (sse_hub_restart()): clients get the reset
 *   event, never a silent hole.
 * - It is the hub's history provider (sse_hub_set_history()): a resume the
 *   ring cannot serve is answered from the stream.
 *
 * It uses two hiredis connections, driven by the application's loop and
 * never blocking: the watch hook says which fds to poll for what,
 * sse_redis_handle() takes their readiness, and sse_redis_tick() runs its
 * deadlines (connect and command timeouts, reconnects with backoff and
 * jitter). Not thread-safe: one object, the loop's thread. hiredis writes
 * with write(2): ignore SIGPIPE in the program. See doc/redis.md.
 * @{
 */
struct sse_redis;

/** Readiness bit of sse_redis_watch_fn and sse_redis_handle(): readable
 * (for sse_redis_handle(), also hang-up or error). */
#define SSE_REDIS_READ 0x1u
/** Readiness bit: writable (also how a connect in progress ends). */
#define SSE_REDIS_WRITE 0x2u

/**
 * The events wanted on @p fd changed: poll it for @p events from now on
 * (SSE_REDIS_READ, SSE_REDIS_WRITE, both), or stop when @p events is 0
 * (the fd is closed right after: forget it). Called from within
 * sse_redis_* calls; do not call them back from here.
 * @param fd     A connection's socket.
 * @param events What to wait for; 0: nothing more.
 * @param user   The config's user pointer.
 */
typedef void (*sse_redis_watch_fn)(int fd, unsigned events, void *user);

/**
 * A publish was answered. @p err 0: Redis appended the event with the id
 * @p id (not NUL-terminated, valid during the call); it reaches the hubs
 * of all nodes through the live feed. Else a negative code and @p id
 * NULL: see sse_redis_publish().
 * @param err    0 or a negative code.
 * @param id     The event's id, "<epoch>-<offset>", or NULL.
 * @param id_len Bytes at id.
 * @param user   sse_redis_publish()'s user pointer.
 */
typedef void (*sse_redis_published_fn)(int err, const char *id, size_t id_len, void *user);

/**
 * Settings; copied by sse_redis_new(). Set @c size to
 * sizeof(struct sse_redis_config): later versions may add fields after
 * the last one. Zero fields take the defaults given.
 */
struct sse_redis_config {
	size_t size;                 /**< sizeof(struct sse_redis_config) */
	const char *host;            /**< NULL: "127.0.0.1". A name is resolved by
					  getaddrinfo(), which may block: give an address. */
	int port;                    /**< 0: 6379. */
	const char *channel;         /**< Required: the channel C of the keys; copied. */
	unsigned flags;              /**< Encoder flags: the hub ring's (SSE_ENCODE_STRICT_UTF8). */
	uint64_t max_len;            /**< Stream entries kept, about (XADD MAXLEN ~); 0: 10000. */
	uint64_t connect_timeout_ms; /**< 0: 2000. */
	uint64_t command_timeout_ms; /**< 0: 2000. A command not answered in time
					  fails, and both connections start over. */
	uint64_t backoff_min_ms;     /**< First reconnect delay; 0: 100. */
	uint64_t backoff_max_ms;     /**< Largest reconnect delay; 0: 10000. */
	size_t max_held;             /**< Live frames held while a hole is filled;
					  0: 1024. Beyond, they are read again. */
	uint64_t seed;               /**< Jitter seed; 0: from the clock and addresses. */
	sse_redis_watch_fn watch;    /**< Required. */
	void *user;                  /**< Passed to watch; never read by the library. */
	/** The pub/sub connection silent this long is asked whether it is
	 * alive (SUBSCRIBE again, which Redis confirms); no answer within
	 * command_timeout_ms and it starts over, then backfills from the
	 * stream. A connection that died without a word (a peer gone, a
	 * middlebox that forgot it) would else leave the live feed silent
	 * until the next command of this node. 0: 15000; UINT64_MAX: never.
	 * @since 0.4 */
	uint64_t keepalive_ms;
};

/** Counters, for monitoring (sse_redis_stats()). */
struct sse_redis_stats {
	uint64_t connects;     /**< Connection attempts, both connections. */
	uint64_t sub_connects; /**< Of which the pub/sub connection's. */
	uint64_t failures;     /**< Connections refused, lost, or timed out. */
	uint64_t timeouts;     /**< Commands or connects that timed out. */
	uint64_t live;         /**< Live frames put in the hub. */
	uint64_t backfilled;   /**< Frames put in the hub from the stream. */
	uint64_t syncs;        /**< Reads of the stream for the live feed. */
	uint64_t restarts;     /**< sse_hub_restart() calls (joins, new epochs, holes). */
	uint64_t held_dropped; /**< Live frames dropped while holding (read again). */
};

/**
 * @brief Join @p hub to a Redis channel, and make it the hub's history
 * provider (sse_hub_set_history()). Nothing is connected until the first
 * sse_redis_tick(); the first sync then restarts the hub's ring at the
 * log's end, under the log's epoch (sse_hub_restart()).
 * @param out   Receives the object; untouched on failure.
 * @param hub   A hub with ring ids; must outlive the object. Publish to it
 *              only through sse_redis_publish().
 * @param cfg   Settings; cfg->size, channel and watch must be set.
 * @param alloc NULL: libc; else copied (hiredis allocates with libc).
 * @return 0, or
 * @retval SSE_ERR_INVALID a NULL or unknown argument, a channel that is
 *         empty or holds a brace, or a hub sse_hub_set_history() refuses.
 * @retval SSE_ERR_NOMEM   allocation failed.
 * @since 0.3
 */
SSE_API int sse_redis_new(struct sse_redis **out, struct sse_hub *hub,
			  const struct sse_redis_config *cfg, const struct sse_allocator *alloc);

/**
 * @brief Close both connections (watch gets 0 for their fds), fail the
 * publishes not answered (their callbacks run with SSE_ERR_IO), drop the
 * subscribers waiting for history (on_drop, SSE_ERR_IO) and take the
 * provider off the hub. NULL: nothing. Not from its own callbacks.
 * @param r The object.
 * @since 0.3
 */
SSE_API void sse_redis_free(struct sse_redis *r);

/**
 * @brief A watched fd is ready: read replies and run their callbacks,
 * or write what is queued. Map POLLHUP and POLLERR to SSE_REDIS_READ.
 * @param r      The object.
 * @param fd     An fd given to the watch hook.
 * @param events SSE_REDIS_READ and/or SSE_REDIS_WRITE.
 * @return 0, or SSE_ERR_INVALID: a NULL object, or @p fd is not one of its
 *         connections (any more).
 * @since 0.3
 */
SSE_API int sse_redis_handle(struct sse_redis *r, int fd, unsigned events);

/**
 * @brief Run what is due at @p now_ms: connect (the first call) and
 * reconnect, fail what timed out, ask for a sync. Call it at @p next_ms
 * and after sse_redis_handle() and sse_redis_publish(), as with
 * sse_hub_tick(): timeouts count from the last time given here.
 * @param r       The object.
 * @param now_ms  The caller's monotonic time, in milliseconds.
 * @param next_ms If not NULL, the next deadline (SSE_NO_DEADLINE: none).
 * @return 0, or SSE_ERR_INVALID for a NULL object.
 * @since 0.3
 */
SSE_API int sse_redis_tick(struct sse_redis *r, uint64_t now_ms, uint64_t *next_ms);

/**
 * @brief Publish an event through Redis: encoded here (without an id),
 * it gets its id and offset from the script, goes into the stream and to
 * every node's hub. Asynchronous: @p cb runs once, from a later
 * sse_redis_handle() or sse_redis_tick() (or sse_redis_free()).
 * A failure through @p cb (SSE_ERR_IO: an error reply, the connection
 * lost, no answer within command_timeout_ms; sse_redis_last_error() says
 * which) does not prove the event was not appended: Redis may have run
 * it before the connection went.
 * @param r    The object.
 * @param ev   The event, without an id (the log gives it); copied.
 * @param cb   Required.
 * @param user Passed to cb.
 * @return 0 (cb will run), or, without calling cb:
 * @retval SSE_ERR_INVALID a NULL argument, or ev has an id.
 * @retval SSE_ERR_IO      Redis is not connected now (answer 503).
 * @retval SSE_ERR_NOMEM   allocation failed.
 * @retval encoder errors  as sse_encode_size().
 * @since 0.3
 */
SSE_API int sse_redis_publish(struct sse_redis *r, const struct sse_event *ev,
			      sse_redis_published_fn cb, void *user);

/**
 * @brief Whether the node is in step with the log: both connections up,
 * the live feed subscribed, and no hole being filled.
 * @param r The object; NULL gives 0.
 * @return 1 or 0.
 * @since 0.3
 */
SSE_API int sse_redis_ready(const struct sse_redis *r);

/**
 * @brief What went wrong last, for logs and 503 bodies.
 * @param r The object; NULL gives "".
 * @return A NUL-terminated text ("" when nothing failed yet), valid until
 *         the next sse_redis_* call.
 * @since 0.3
 */
SSE_API const char *sse_redis_last_error(const struct sse_redis *r);

/**
 * @brief Read the counters.
 * @param r  The object.
 * @param st Receives them.
 * @return 0, or SSE_ERR_INVALID for a NULL argument.
 * @since 0.3
 */
SSE_API int sse_redis_stats(const struct sse_redis *r, struct sse_redis_stats *st);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_REDIS_H */
