/*
 * libsse — the hub: one event, many subscribers
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_HUB_H
#define SSE_HUB_H

#include <sse/history.h>
#include <sse/replay.h>
#include <sse/timers.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup hub Hub: one event, many subscribers
 * Broadcast. Publishing encodes an event once into the hub's replay ring;
 * each subscriber is a stream following that ring, so no event is copied
 * per subscriber and a subscriber's memory does not grow with traffic.
 * Call sse_hub_flush() once per loop iteration, after the publishes of
 * that iteration: every subscriber that is not waiting for its transport
 * gets all of them in one transport call (push), or is woken (pull).
 * A flush with nothing new published costs O(1), whatever the number of
 * subscribers; a subscriber whose transport would block is not written to
 * again until sse_hub_writable() (push) or until a read drains it (pull),
 * but each flush after a publish checks it, without writing, for missed
 * events.
 *
 * A subscriber is dropped when it has missed events (the ring dropped the
 * frame at its cursor, or it lags more than max_lag), when its transport
 * accepted nothing for stall_ms while it owed bytes, or when its transport
 * fails. It is detached and handed to on_drop; the application closes its
 * connection there (its client comes back with Last-Event-ID and resumes
 * from the ring). A slow but steady reader is never dropped while the
 * ring still holds what it needs. The hub owns no stream. Not thread-safe.
 * @{
 */
struct sse_hub;

/** Default stall time of a hub's subscribers: no byte taken for this long
 * while owing some. Long enough for a congested mobile link, short
 * enough that a vanished peer does not pin a connection for minutes. */
#define SSE_HUB_DEFAULT_STALL_MS 30000u

/**
 * A hub's settings; copied by sse_hub_new(). Set @c size to
 * sizeof(struct sse_hub_config) (and ring.size): later versions may add
 * fields after the last one.
 */
struct sse_hub_config {
	size_t size;                   /**< sizeof(struct sse_hub_config) */
	struct sse_replay_config ring; /**< The ring's bounds, ids and reset event. */
	uint64_t max_lag;      /**< Bytes a subscriber may be behind the live end
				    (sse_stream_set_max_lag()); 0: the ring's bounds. */
	uint64_t stall_ms;     /**< 0: SSE_HUB_DEFAULT_STALL_MS; UINT64_MAX: never. */
	uint64_t heartbeat_ms; /**< 0: SSE_HEARTBEAT_DEFAULT_MS. */
	uint64_t heartbeat_jitter_ms; /**< Below the interval; ignored
					    with no_heartbeat. */
	int no_heartbeat;      /**< 1: subscribers send no heartbeats. */
	/** The batching window, in the caller's milliseconds: 0 (the
	 * default) delivers at every sse_hub_flush(); W > 0 gathers what is
	 * published within W ms of the first unsent event and hands it to
	 * each subscriber in one transport call, at the sse_hub_tick() of
	 * that deadline (sse_hub_tick() reports it in next_ms). No event is
	 * held longer than W past its publish time. Fewer, larger writes:
	 * far less CPU per delivery, for at most W ms of latency.
	 * @since 0.2 */
	uint64_t window_ms;
};

/** A subscriber left the hub: err is SSE_ERR_GAP (it missed events),
 * SSE_ERR_STALLED, or the transport's error. Close its connection and free
 * the stream here, or later. */
typedef void (*sse_hub_drop_fn)(struct sse_stream *s, int err, void *user);

/**
 * @brief Create a hub and its ring.
 * @param out     Receives the hub, to free with sse_hub_free().
 * @param cfg     Its settings; cfg->size and cfg->ring.size must be set.
 * @param on_drop Required: called for every subscriber the hub drops.
 * @param user    Passed to on_drop; never read by the library.
 * @param alloc   NULL: libc; else copied, and used for the ring too.
 * @return 0, or
 * @retval SSE_ERR_INVALID out or cfg is NULL, cfg->size is unknown, a ring
 *         config error (as sse_replay_new()), heartbeat_jitter_ms not
 *         below the heartbeat interval (unless no_heartbeat), or on_drop
 *         is NULL.
 * @retval SSE_ERR_NOMEM   *out is untouched.
 * @since 0.1
 */
SSE_API int sse_hub_new(struct sse_hub **out, const struct sse_hub_config *cfg,
			sse_hub_drop_fn on_drop, void *user, const struct sse_allocator *alloc);
/** @brief Free the hub; its subscribers are detached, not freed. NULL: nothing.
 * A subscriber whose asynchronous transport still holds ring frames must
 * be freed first (see sse_stream_free()).
 * @param h The hub. */
SSE_API void sse_hub_free(struct sse_hub *h);

/**
 * @brief Add a stream whose response head was sent: set its heartbeat,
 * stall time and lag bound, write its opening bytes, resume it from
 * @p last_id (sse_stream_resume(): the reset event first when the id is
 * too old or unknown) and write what it owes. The stream must not follow
 * a ring, nor belong to a scheduler or hub yet.
 * @param h       The hub.
 * @param s       The stream; the hub does not own it: free it after it
 *                left (on_drop, sse_hub_unsubscribe()); freeing it also
 *                unsubscribes it.
 * @param last_id The client's Last-Event-ID (see sse_http_resume_id());
 *                NULL or len 0: live only.
 * @param len     Bytes at last_id.
 * @param status If not NULL, the sse_replay_status of the resume.
 * @return 0, or an error: the stream is then not subscribed (close it).
 */
SSE_API int sse_hub_subscribe(struct sse_hub *h, struct sse_stream *s, const char *last_id,
			      size_t len, int *status);
/** @brief Detach a subscriber (on_drop is not called); it stops following
 * the ring. Not one, or called from within one of its own transport's
 * calls: nothing (return an error from that call instead: the hub then
 * drops it).
 * @param h The hub.
 * @param s The subscriber. */
SSE_API void sse_hub_unsubscribe(struct sse_hub *h, struct sse_stream *s);

/**
 * @brief Encode one event into the ring (ids as the ring's config says).
 * Subscribers get it at the next sse_hub_flush().
 * @param h      The hub.
 * @param ev     The event; copied (encoded once).
 * @param now_ms The caller's monotonic time (for the ring's max_age_ms).
 * @param seq    If not NULL, receives the frame's sequence number.
 * @return As sse_replay_publish().
 */
SSE_API int sse_hub_publish(struct sse_hub *h, const struct sse_event *ev, uint64_t now_ms,
			    uint64_t *seq);

/**
 * @brief The fan-out pass over the subscribers owed something (with a
 * batching window: only once the window's deadline has passed, by the
 * time last given to sse_hub_publish() or sse_hub_tick()): push
 * subscribers that were caught up write, pull ones are woken, those
 * waiting on their transport are checked for missed events (SSE_ERR_GAP,
 * which also catches an asynchronous transport holding frames the ring
 * dropped). Those that fail are dropped (on_drop). O(1) when nothing was
 * published since the last pass.
 * @param h The hub.
 * @return 0, or SSE_ERR_INVALID for a NULL hub; failures of subscribers
 *         go to on_drop, not here.
 */
SSE_API int sse_hub_flush(struct sse_hub *h);

/**
 * @brief A subscriber's transport is writable again: write what it owes;
 * drop it if it fails (on_drop runs before this returns).
 * @param h The hub.
 * @param s The subscriber.
 * @return 0, SSE_ERR_WOULDBLOCK (still owes bytes), the error it was
 *         dropped for, or SSE_ERR_INVALID when @p s is not a subscriber of @p h.
 */
SSE_API int sse_hub_writable(struct sse_hub *h, struct sse_stream *s);

/** @brief Deliver a batch whose window has ended (sse_hub_flush()),
 * expire frames older than the ring's max_age_ms, then visit the
 * subscribers that are due: heartbeats, stalls, lag (sse_timers_run()).
 * Those that fail are dropped (on_drop). The next deadline includes an
 * open batch's.
 * @param h       The hub.
 * @param now_ms  The caller's monotonic time, in milliseconds.
 * @param next_ms If not NULL, the next deadline (SSE_NO_DEADLINE: none).
 * @return 0, or SSE_ERR_INVALID for a NULL hub. */
SSE_API int sse_hub_tick(struct sse_hub *h, uint64_t now_ms, uint64_t *next_ms);

/** Called by sse_hub_visit() for each subscriber; it may unsubscribe or
 * free @p s (and so close the connection). Return 0 to go on, non-zero
 * to stop the walk. */
typedef int (*sse_hub_visit_fn)(struct sse_stream *s, void *ctx);

/**
 * @brief Call @p fn once for every subscriber attached when the walk
 * starts (e.g. at shutdown, to send a last event and close them all).
 * Subscribers added by fn are not visited. Not from on_drop.
 * @param h   The hub.
 * @param fn  Called for each subscriber.
 * @param ctx Passed to fn.
 * @return 0, or fn's non-zero value that stopped the walk.
 * @since 0.2
 */
SSE_API int sse_hub_visit(struct sse_hub *h, sse_hub_visit_fn fn, void *ctx);

/** @brief The hub's ring, for sse_replay_* queries (not for publishing:
 * use sse_hub_publish()).
 * @param h The hub; NULL gives NULL.
 * @return The ring, valid as long as the hub. */
SSE_API const struct sse_replay *sse_hub_ring(const struct sse_hub *h);
/** @brief Count the subscribers.
 * @param h The hub; NULL gives 0.
 * @return Subscribers attached. */
SSE_API size_t sse_hub_count(const struct sse_hub *h);
/**
 * @brief Back the hub with an external log: a resume that misses the
 * ring asks @p provider for the events after the client's id, while live
 * events keep arriving (see @ref history). The ring must have ring ids;
 * its id numbers are the log's (sse_replay_restart(), and
 * sse_hub_publish_frame() for frames the log gives). A subscriber parked
 * on the provider is attached like any other (heartbeats, stall time,
 * sse_hub_writable()), and is dropped through on_drop with the
 * provider's error if the log cannot be read, or with
 * SSE_ERR_TOO_LARGE for a frame larger than its queue limit
 * (sse_stream_set_queue_limit()).
 * @param h        The hub.
 * @param provider Copied; NULL: none from now on, and every subscriber
 *                 still parked on the old one (asking, or waiting to ask
 *                 for its next page) is dropped through on_drop with
 *                 SSE_ERR_IO: its client comes back with its id later.
 * @return 0, or SSE_ERR_INVALID: a NULL hub, provider->size unknown, a
 *         callback missing, a ring with application ids, or a provider
 *         given while subscribers are parked on the one in place.
 * @since 0.3
 */
SSE_API int sse_hub_set_history(struct sse_hub *h, const struct sse_history *provider);

/**
 * @brief Keep a frame encoded elsewhere in the ring
 * (sse_replay_publish_frame(): its id must be the next one); subscribers
 * get it at the next sse_hub_flush(), as with sse_hub_publish().
 * @param h      The hub.
 * @param frame  The frame; copied.
 * @param len    Bytes at frame.
 * @param now_ms The caller's monotonic time.
 * @param seq    If not NULL, receives the frame's sequence number.
 * @return As sse_replay_publish_frame().
 * @since 0.3
 */
SSE_API int sse_hub_publish_frame(struct sse_hub *h, const char *frame, size_t len,
				  uint64_t now_ms, uint64_t *seq);

/**
 * @brief Start the ring's ids over (sse_replay_restart()), e.g. when the
 * log it caches got a new epoch or moved on past what this node can
 * fill in. Every subscriber following the ring is dropped with
 * SSE_ERR_GAP at the next sse_hub_flush(); its client resumes (an id of
 * the old epoch gets the reset event). Subscribers parked on a history
 * provider keep their place when the epoch is kept, and are dropped
 * with SSE_ERR_GAP now (on_drop) when it changes.
 * @param h           The hub.
 * @param epoch       The new epoch (copied), or NULL to keep it.
 * @param next_number The id number of the next frame.
 * @return As sse_replay_restart().
 * @since 0.3
 */
SSE_API int sse_hub_restart(struct sse_hub *h, const char *epoch, uint64_t next_number);

/**
 * Why the application detaches a subscriber with
 * sse_hub_unsubscribe_reason(): the counter of sse_hub_stats() it is
 * counted in.
 * @since 0.3
 */
enum sse_hub_reason {
	SSE_HUB_CLOSED = 0,  /**< Its connection closed or is being closed:
				  @c unsubscribes (as sse_hub_unsubscribe()). */
	SSE_HUB_LIFETIME = 1 /**< It reached the server's limit on a
				  connection's age: @c drops_lifetime. */
};

/**
 * @brief Detach a subscriber as sse_hub_unsubscribe() does (on_drop is
 * not called), counting it under @p reason.
 * @param h      The hub.
 * @param s      The subscriber.
 * @param reason An sse_hub_reason.
 * @return 0, or SSE_ERR_INVALID: @p s is not a subscriber of @p h,
 *         @p reason is unknown, or this is called from within one of
 *         @p s's transport calls (nothing is done).
 * @since 0.3
 */
SSE_API int sse_hub_unsubscribe_reason(struct sse_hub *h, struct sse_stream *s, int reason);

/**
 * The hub's counters, as an X-macro: X(name, kind, help) for each field
 * of struct sse_hub_stats, in order; kind is @c counter (only grows) or
 * @c gauge. An application may expand it to render them all, e.g. as
 * Prometheus text. Later versions add fields at the end only.
 *
 * - @c published_events, @c published_bytes: events sse_hub_publish()
 *   and sse_hub_publish_frame() put in the ring, and their encoded bytes.
 * - @c deliveries, @c delivery_bytes: events owed to subscribers from the
 *   ring, one per subscriber and event: each publish counts once for
 *   every subscriber following the ring at that moment, and a subscriber
 *   that starts following it (subscribing, or leaving the history
 *   provider for the ring) counts the events the ring holds after its
 *   position. Each is written (or read) exactly once unless its
 *   subscriber leaves first. Frames of the history provider are not in
 *   them (@c history_frames).
 * - @c writes: the times the hub handed a subscriber what it owed (in a
 *   sse_hub_flush() pass, at sse_hub_writable(), when it subscribed or
 *   reached the ring): a push subscriber's write, as many transport calls
 *   as it takes until caught up or refused (usually one), or a pull
 *   subscriber's wake. deliveries / writes is the events per write that
 *   batching achieves.
 * - @c subscribes: sse_hub_subscribe() calls that succeeded; by the
 *   status of their resume: @c replay_found (from the ring),
 *   @c replay_gap, @c replay_unknown (the reset event), @c replay_history
 *   (handed to the history provider); live ones are the rest.
 * - @c history_fetches: pages asked of the history provider;
 *   @c history_frames: frames it gave subscribers; @c history_resets:
 *   parked subscribers it answered gap or unknown (the reset event).
 * - How subscribers left: @c unsubscribes (sse_hub_unsubscribe(),
 *   sse_hub_unsubscribe_reason() with SSE_HUB_CLOSED, or sse_stream_free()
 *   of a subscriber), and the drops by reason: @c drops_gap (missed
 *   events: too slow for the ring or max_lag, or its place lost by
 *   sse_hub_restart()), @c drops_stall (SSE_ERR_STALLED), @c drops_error
 *   (its transport failed, or the history provider), @c drops_lifetime
 *   (SSE_HUB_LIFETIME). subscribes = subscribers + unsubscribes + the
 *   four drops.
 * - Gauges: @c subscribers attached, of which @c parked wait on the
 *   history provider.
 */
#define SSE_HUB_STATS(X)                                                                  \
	X(published_events, counter, "Events published into the ring")                   \
	X(published_bytes, counter, "Encoded bytes of the events published")             \
	X(deliveries, counter, "Events owed to subscribers from the ring, per subscriber") \
	X(delivery_bytes, counter, "Bytes of those deliveries")                          \
	X(writes, counter, "Times a subscriber was handed what it owed (write or wake)") \
	X(subscribes, counter, "Subscriptions accepted")                                 \
	X(replay_found, counter, "Resumes served from the ring")                         \
	X(replay_gap, counter, "Resumes from an id the ring no longer holds")            \
	X(replay_unknown, counter, "Resumes from an id the ring does not know")          \
	X(replay_history, counter, "Resumes handed to the history provider")             \
	X(history_fetches, counter, "Pages asked of the history provider")               \
	X(history_frames, counter, "Frames the history provider gave subscribers")       \
	X(history_resets, counter, "Resumes the history provider answered gap or unknown") \
	X(unsubscribes, counter, "Subscribers the application detached or freed")        \
	X(drops_gap, counter, "Subscribers dropped for missing events (too slow)")       \
	X(drops_stall, counter, "Subscribers dropped for a stalled transport")           \
	X(drops_error, counter, "Subscribers dropped for a transport or history error")  \
	X(drops_lifetime, counter, "Subscribers retired at the end of their lifetime")   \
	X(subscribers, gauge, "Subscribers attached")                                    \
	X(parked, gauge, "Subscribers waiting on the history provider")

/**
 * A hub's counters (sse_hub_stats()); its fields are those of
 * SSE_HUB_STATS(), each a uint64_t. Set @c size to
 * sizeof(struct sse_hub_stats).
 * @since 0.3
 */
struct sse_hub_stats {
	size_t size; /**< sizeof(struct sse_hub_stats) */
#define SSE_HUB_STATS_FIELD(name, kind, help) uint64_t name;
	SSE_HUB_STATS(SSE_HUB_STATS_FIELD)
#undef SSE_HUB_STATS_FIELD
};

/**
 * @brief Read the hub's counters, from any thread, without a lock and
 * without slowing the hub's thread down. Each field is a value it had
 * (a counter read later is never smaller), but they are not read at one
 * instant: the set is not a snapshot (@c subscribes and @c subscribers
 * may disagree about a subscriber being added). The hub must exist
 * until the call returns: stop readers on other threads before
 * sse_hub_free().
 * @param h   The hub.
 * @param out Receives the fields that fit in out->size (set it to
 *            sizeof(struct sse_hub_stats)); bytes past them are untouched,
 *            so a program built with an older header gets the fields it
 *            knows.
 * @return 0, or SSE_ERR_INVALID: @p h or @p out is NULL, or out->size is
 *         smaller than a size_t.
 * @since 0.3
 */
SSE_API int sse_hub_stats(const struct sse_hub *h, struct sse_hub_stats *out);

/**
 * @brief How many events a subscriber is behind, in O(1): those published
 * into the ring that it has not taken in full (the ring's next sequence
 * number minus its cursor); for one parked on the history provider, the
 * events from its position in the log up to the ring's live end. Its
 * bytes owed are sse_stream_pending(). The hub's thread only.
 * @param h The hub.
 * @param s A subscriber of @p h.
 * @return The events, or 0 when @p s is not a subscriber of @p h.
 * @since 0.3
 */
SSE_API uint64_t sse_hub_lag(const struct sse_hub *h, const struct sse_stream *s);

/**
 * @brief Let hubs on other threads fan out from this hub's ring
 * (sse_replay_share(); sse_hub_new_shared() with sse_hub_ring(h)). This
 * hub's thread stays the ring's one writer: it publishes, and its
 * sse_hub_tick() expires frames. After it, sse_hub_restart() fails.
 * @param h       The hub; not backed by a history provider.
 * @param readers The most hubs that may share the ring at once (>= 1).
 * @return As sse_replay_share(); SSE_ERR_INVALID also for a hub with a
 *         history provider.
 * @since 0.4
 */
SSE_API int sse_hub_share(struct sse_hub *h, unsigned readers);

/**
 * @brief Create a hub that fans out from a ring shared by another
 * thread's writer (sse_replay_share()): its own
 * subscribers, heartbeats, stall times and batching window, the ring's
 * frames read in place (no copy per thread, no lock per event). It
 * publishes nothing: the writer does, then wakes this hub's thread,
 * which calls sse_hub_tick() and sse_hub_flush(). New frames are noticed
 * by those two and by sse_hub_subscribe(), and a batching window opens
 * at the time last given to sse_hub_tick(). Everything else is as for
 * sse_hub_new(); the hub and its subscribers belong to the thread that
 * calls its functions, one thread for the hub's life (it may be created
 * on another, before that thread starts).
 * Its counters count what it sees: @c published_events are the events
 * that reached it, each owed to its subscribers following the ring then.
 * @param out     Receives the hub, to free with sse_hub_free() (on its
 *                thread, before the ring is freed).
 * @param ring    The shared ring.
 * @param cfg     As sse_hub_new(); @c ring is ignored (the ring's own
 *                bounds hold).
 * @param on_drop Required, as sse_hub_new().
 * @param user    Passed to on_drop.
 * @param alloc   NULL: libc; else copied.
 * @return 0, or
 * @retval SSE_ERR_INVALID as sse_hub_new(), or a ring that is not
 *         shared.
 * @retval SSE_ERR_BUSY    as many hubs share the ring as
 *         sse_replay_share() allowed.
 * @retval SSE_ERR_NOMEM   *out is untouched.
 * @since 0.4
 */
SSE_API int sse_hub_new_shared(struct sse_hub **out, const struct sse_replay *ring,
			       const struct sse_hub_config *cfg, sse_hub_drop_fn on_drop,
			       void *user, const struct sse_allocator *alloc);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_HUB_H */
