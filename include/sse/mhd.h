/*
 * libsse-mhd — event streams on libmicrohttpd
 *
 * An optional adapter, in its own library (pkg-config libsse-mhd): link
 * it, and libmicrohttpd, beside libsse.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_MHD_H
#define SSE_MHD_H

#include <microhttpd.h>

#include <sse.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup mhd libmicrohttpd adapter
 * Turns a request into an event-stream response bound to a hub, and runs
 * the daemon's turn beside the hub's.
 *
 * Each response reads from a pull stream (a transport with only a wake
 * callback): libmicrohttpd's content reader copies what the stream owes
 * into the daemon's buffer with sse_stream_read(), which is the one copy
 * per subscriber. When nothing is owed the reader suspends the connection,
 * which then costs nothing until the stream's wake resumes it. The
 * response owns its stream: its free callback unsubscribes and frees it,
 * however the connection ends.
 *
 * The daemon must run in external polling mode (no
 * MHD_USE_INTERNAL_POLLING_THREAD, no MHD_USE_THREAD_PER_CONNECTION)
 * with MHD_ALLOW_SUSPEND_RESUME; epoll, poll() and select() all work.
 * With an internal thread the content readers would touch the hub from
 * libmicrohttpd's threads while the application publishes from its own,
 * and libmicrohttpd gives no way to run the hub's ticks on its thread:
 * those modes are refused. To publish from other threads, push into a
 * struct sse_handoff and wake the loop (an eventfd it polls beside the
 * daemon's descriptors); the loop drains it, then calls sse_mhd_run().
 *
 * Every function here is for the loop's thread, the one that calls
 * MHD_run() and owns the hub. Memory comes from libc.
 *
 * Shutdown, in order: sse_mhd_shutdown(), MHD_stop_daemon() (which frees
 * every response and its stream), sse_mhd_free(), sse_hub_free().
 * @{
 */
struct sse_mhd;

/** Bytes one read copies at most, and the buffer libmicrohttpd gives each
 * event-stream response, unless struct sse_mhd_config.block says. */
#define SSE_MHD_DEFAULT_BLOCK ((size_t)16 * 1024)

/**
 * A new subscriber's stream, before it joins the hub: set what is per
 * stream (sse_stream_set_retry(), sse_stream_set_queue_limit(), ...).
 * Return 0, or a negative code to refuse the request (503).
 * @param s    The stream; the adapter owns it. Do not keep it.
 * @param user struct sse_mhd_config.user.
 */
typedef int (*sse_mhd_stream_fn)(struct sse_stream *s, void *user);

/**
 * A subscriber's response ends because its stream failed: the hub dropped
 * it (SSE_ERR_GAP: it missed events; SSE_ERR_STALLED), or a read found
 * the stream failed. Called once per subscriber, for logging or metrics;
 * the adapter ends the response and frees the stream itself. Must not
 * free the adapter or the hub.
 * @param err  The stream's error.
 * @param user struct sse_mhd_config.user.
 */
typedef void (*sse_mhd_error_fn)(int err, void *user);

/**
 * An adapter's settings; copied by sse_mhd_new(). Set @c size to
 * sizeof(struct sse_mhd_config): later versions may add fields after the
 * last one.
 */
struct sse_mhd_config {
	size_t size;               /**< sizeof(struct sse_mhd_config) */
	struct sse_hub *hub;       /**< Required; must outlive the adapter. */
	struct MHD_Daemon *daemon; /**< Required; external polling with
				        MHD_ALLOW_SUSPEND_RESUME. */
	struct sse_http_options http; /**< The head's options (CORS); zero for the
					   defaults. Copied, but http.cors_origin
					   is kept: it must outlive the adapter. */
	size_t block;              /**< 0: SSE_MHD_DEFAULT_BLOCK. */
	sse_mhd_stream_fn on_stream; /**< Optional. */
	sse_mhd_error_fn on_error;   /**< Optional. */
	void *user;                /**< Passed to on_stream and on_error. */
};

/**
 * @brief Bind a daemon to a hub.
 * @param out Receives the adapter; untouched on failure.
 * @param cfg Copied (see struct sse_mhd_config for the pointers kept).
 * @return 0, or
 * @retval SSE_ERR_INVALID out or cfg is NULL, cfg->size is too small or
 *         larger than this library knows, hub or daemon is NULL, the
 *         daemon runs its own threads or lacks MHD_ALLOW_SUSPEND_RESUME,
 *         or cfg->http is refused by sse_http_response_fields().
 * @retval SSE_ERR_NOMEM  no memory.
 * @since 0.2
 */
SSE_API int sse_mhd_new(struct sse_mhd **out, const struct sse_mhd_config *cfg);

/**
 * @brief Free the adapter. Call it after MHD_stop_daemon(), which ends
 * every response it made (their streams are freed then); with responses
 * still alive the behaviour is undefined. NULL does nothing.
 * @since 0.2
 */
SSE_API void sse_mhd_free(struct sse_mhd *m);

/**
 * @brief Answer a request with an event stream that follows the hub: a
 * 200 response with the fields of sse_http_response_fields(), framed by
 * closing the connection (HTTP/1.0 style: an event stream never ends by
 * itself), resumed from the request's Last-Event-ID header, or else its
 * lastEventId or last_event_id query parameter (sse_http_resume_id()).
 * The connection gets no idle timeout (the hub's stall time rules). Call
 * it from the access handler, at its first call for the request; check
 * the method yourself.
 *
 * libmicrohttpd decodes the query itself ('+' becomes a space), so pass
 * the raw one: keep it with sse_mhd_uri_log(), or your own
 * MHD_OPTION_URI_LOG_CALLBACK.
 * @param m     The adapter; must not be NULL.
 * @param conn  The request's connection.
 * @param query The raw query (after '?', before any '#'), NUL-terminated;
 *              read during the call only. NULL: none.
 * @return What MHD_queue_response() returns. On errors the adapter
 *         answers itself: 400 for a malformed escape in the id
 *         parameter, 503 when memory, on_stream or the hub refuse.
 * @since 0.2
 */
SSE_API enum MHD_Result sse_mhd_respond(struct sse_mhd *m, struct MHD_Connection *conn,
					const char *query);

/**
 * @brief Pass on a drop of the hub: end that subscriber's response. Call
 * it from the hub's on_drop (sse_hub_new()). A suspended connection is
 * resumed and its reader ends the response; one whose client is still
 * taking bytes ends at its next read, or a second from now if its client
 * takes nothing more. on_error is called.
 * @param m   The adapter; must not be NULL.
 * @param s   A stream the adapter made (every subscriber of the hub is,
 *            unless the application subscribes streams of its own: then
 *            pass only the adapter's).
 * @param err on_drop's error.
 * @since 0.2
 */
SSE_API void sse_mhd_drop(struct sse_mhd *m, struct sse_stream *s, int err);

/**
 * @brief One turn of the daemon and the hub, for the loop to call when
 * the daemon's descriptors are ready, when the timeout passes, and after
 * anything that may have woken a subscriber outside it (a publish, a
 * handoff drain, sse_hub_flush()). It ticks the hub at @p now_ms
 * (heartbeats, stalls), runs MHD_run(), and flushes the hub once (the
 * publishes made since, in handlers or elsewhere). In external polling,
 * libmicrohttpd 0.9.75 does not see a connection resumed outside
 * MHD_run() until it runs again (its wake-up descriptor is not used), so
 * this runs it again while connections were resumed meanwhile.
 * @param m          The adapter; must not be NULL.
 * @param now_ms     Monotonic time in milliseconds, as given to the hub.
 * @param timeout_ms If not NULL, receives how long the loop may sleep
 *                   (poll(), epoll_wait()): the earlier of the hub's next
 *                   deadline and MHD_get_timeout(); 0 when a resumed
 *                   connection waits; -1: no deadline.
 * @return 0, or
 * @retval SSE_ERR_IO MHD_run() failed.
 * @since 0.2
 */
SSE_API int sse_mhd_run(struct sse_mhd *m, uint64_t now_ms, int *timeout_ms);

/**
 * @brief Before MHD_stop_daemon(): resume every suspended event stream
 * (libmicrohttpd must have none when it stops) and end them all. The
 * daemon then frees them as it stops. NULL does nothing.
 * @since 0.2
 */
SSE_API void sse_mhd_shutdown(struct sse_mhd *m);

/** @return The event-stream responses alive (made and not yet freed by
 * libmicrohttpd). @since 0.2 */
SSE_API size_t sse_mhd_count(const struct sse_mhd *m);

/** @return Of those, the ones suspended: caught up and costing nothing
 * until something is owed. @since 0.2 */
SSE_API size_t sse_mhd_suspended(const struct sse_mhd *m);

/**
 * @brief A ready MHD_OPTION_URI_LOG_CALLBACK for applications with no
 * request state of their own: the request's context (the access
 * handler's *req_cls) becomes a copy of the raw query, a NUL-terminated
 * char array ("" when there is none), to pass to sse_mhd_respond(). Pair
 * it with sse_mhd_completed(). NULL when out of memory.
 * @param cls  Unused (pass NULL as the option's closure).
 * @param uri  The request target, as sent.
 * @param conn Unused.
 * @since 0.2
 */
SSE_API void *sse_mhd_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);

/**
 * @brief The MHD_OPTION_NOTIFY_COMPLETED that frees what sse_mhd_uri_log()
 * made; sets *req_cls to NULL.
 * @since 0.2
 */
SSE_API void sse_mhd_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			       enum MHD_RequestTerminationCode toe);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_MHD_H */
