/*
 * libsse-libevent — event streams on libevent: a hub driven by an
 * event_base, and evhttp requests (or bufferevents) served as event
 * streams without copying a byte of an event.
 *
 * Link with libsse-libevent (pkg-config libsse-libevent). See
 * doc/libevent.md.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_LIBEVENT_H
#define SSE_LIBEVENT_H

#include <sse.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;      /* event2/event.h */
struct evhttp_request;  /* event2/http.h */
struct bufferevent;     /* event2/bufferevent.h */

/**
 * @defgroup libevent libevent adapter
 * A driver runs a hub on an event_base: it tells the hub the time at
 * every callback of its own, flushes the hub once per loop turn after
 * that turn's publishes (an event it activates, which libevent runs after
 * the callbacks already active), and keeps a timer armed at the hub's
 * next deadline (heartbeats, stalls, expiry).
 *
 * sse_event_serve() answers an evhttp request with an event stream:
 * the streaming reply (chunked under HTTP/1.1) with the head of
 * sse_http_response_fields(), a stream whose asynchronous transport hands
 * libevent references to the ring's bytes (evbuffer_add_reference(), no
 * copy), and a hub subscription from the request's Last-Event-ID. It
 * holds writes while the connection's output buffer is full, closes the
 * connection when the hub drops the subscriber (sse_event_drop()), and
 * frees the stream only when the connection is gone and libevent has let
 * go of every byte it was handed.
 *
 * Everything here runs on the loop's thread, except sse_event_driver_wake()
 * (see there).
 * @{
 */
struct sse_event_driver;

/** Default bound on a connection's output buffer: past it, writes wait. */
#define SSE_EVENT_OUTPUT_MAX_DEFAULT ((size_t)64 << 10)

/**
 * @brief Drive @p hub from @p base.
 * @param out   Receives the driver, to free with sse_event_driver_free().
 * @param base  The loop; must outlive the driver's use (see sse_event_driver_free()).
 * @param hub   The hub; its on_drop should be sse_event_drop() or call
 *              sse_event_close(). Kept: it must outlive every stream served.
 * @param alloc NULL: libc; else copied. Used for the driver and its
 *              streams (libevent allocates its own buffers).
 * @return 0, or
 * @retval SSE_ERR_INVALID out, base or hub is NULL, or alloc is incomplete.
 * @retval SSE_ERR_NOMEM   *out is untouched.
 * @since 0.2
 */
SSE_API int sse_event_driver_new(struct sse_event_driver **out, struct event_base *base,
				 struct sse_hub *hub, const struct sse_allocator *alloc);

/**
 * @brief Stop driving the hub: its events are freed now; its memory goes
 * with the last stream it served. Call it after the streams were closed
 * (evhttp_free(), or sse_event_close() on each) and before
 * event_base_free(), which lets go of the bytes connections still held
 * and so frees the last streams; free the hub after that. NULL: nothing.
 * @param d The driver.
 * @since 0.2
 */
SSE_API void sse_event_driver_free(struct sse_event_driver *d);

/**
 * @brief The retry field streams served from now on start with.
 * @param d  The driver; must not be NULL.
 * @param ms SSE_RETRY_NONE (the default: none), or 0..SSE_RETRY_MAX.
 * @return 0, or
 * @retval SSE_ERR_RETRY   ms is out of range; nothing changes.
 * @retval SSE_ERR_INVALID d is NULL.
 * @since 0.2
 */
SSE_API int sse_event_driver_set_retry(struct sse_event_driver *d, long ms);

/**
 * @brief The response head options (CORS) of streams served from now on.
 * @param d The driver; must not be NULL.
 * @param o Copied; NULL: the defaults. o->cors_origin is kept, not
 *          copied: it must outlive the driver. chunked and http2 must be
 *          0 (evhttp frames the body itself).
 * @return 0, or
 * @retval SSE_ERR_INVALID as sse_http_response_fields(), d is NULL, or
 *         chunked or http2 is set; nothing changes.
 * @since 0.2
 */
SSE_API int sse_event_driver_set_http(struct sse_event_driver *d,
				      const struct sse_http_options *o);

/**
 * @brief Bound the bytes a connection's output buffer holds (0: the
 * default, SSE_EVENT_OUTPUT_MAX_DEFAULT): a write takes at most the room
 * left below it, and none while it is full, until the buffer drains.
 * Those bytes are references to the ring, not copies; the bound keeps a
 * peer that stopped reading visible to the hub's stall check.
 * @param d     The driver; must not be NULL.
 * @param bytes The bound, for every stream, from its next write on.
 * @return 0, or SSE_ERR_INVALID for a NULL driver.
 * @since 0.2
 */
SSE_API int sse_event_driver_set_output_max(struct sse_event_driver *d, size_t bytes);

/**
 * @brief Tell the hub the time and have it flushed in this loop turn,
 * after the callbacks already active. Call it before sse_hub_publish(),
 * sse_handoff_drain() or sends of your own (sse_event_publish() and the
 * driver's callbacks do it for you).
 * @param d The driver; must not be NULL.
 * @return The monotonic time in milliseconds, as told to the hub.
 * @since 0.2
 */
SSE_API uint64_t sse_event_driver_now(struct sse_event_driver *d);

/**
 * @brief Publish into the driver's hub at the current time; subscribers
 * get the event when the loop turn ends (one flush for all of the turn's
 * publishes).
 * @param d   The driver; must not be NULL.
 * @param ev  The event; copied.
 * @param seq If not NULL, receives its sequence number.
 * @return As sse_hub_publish(); SSE_ERR_INVALID also for a NULL driver.
 * @since 0.2
 */
SSE_API int sse_event_publish(struct sse_event_driver *d, const struct sse_event *ev,
			      uint64_t *seq);

/**
 * @brief Drain @p q into the hub at each flush of the driver, so that
 * workers may publish through it (sse_handoff_push(), then
 * sse_event_driver_wake() when told to wake).
 * @param d The driver; must not be NULL.
 * @param q The handoff, or NULL for none. Kept: it must outlive the
 *          driver, or be unset first.
 * @return 0, or SSE_ERR_INVALID for a NULL driver.
 * @since 0.2
 */
SSE_API int sse_event_driver_set_handoff(struct sse_event_driver *d, struct sse_handoff *q);

/**
 * @brief Have the driver drain its handoff and flush the hub, on the loop
 * thread, soon (event_active()). From another thread only when libevent's
 * locking is on for the base: evthread_use_pthreads() (libevent_pthreads)
 * before event_base_new(). Never after sse_event_driver_free().
 * @param d The driver; must not be NULL.
 * @since 0.2
 */
SSE_API void sse_event_driver_wake(struct sse_event_driver *d);

/**
 * @brief Answer @p req with an event stream and subscribe it to the hub.
 *
 * Resumes from the request's Last-Event-ID header, or else its lastEventId
 * or last_event_id query parameter (sse_http_resume_id()). Starts the
 * streaming reply (evhttp_send_reply_start(): chunked under HTTP/1.1; an
 * HTTP/1.0 request's keep-alive is dropped, as the stream ends with the
 * connection), turns off the connection's timeouts (heartbeats keep it
 * alive) and sets its close callback. Whatever the return, the request is
 * answered: do not use it again.
 * @param d   The driver; must not be NULL.
 * @param req The request, from an evhttp callback on the driver's base.
 * @param out If not NULL, receives the stream (0 only): its user pointer is
 *            the adapter's; it lives until its connection closes, and is
 *            freed by the adapter.
 * @return 0, or
 * @retval SSE_ERR_HTTP    a malformed %-escape in the id: answered 400.
 * @retval SSE_ERR_NOMEM   answered 503.
 * @retval SSE_ERR_INVALID d or req is NULL (req, if any, answered 500), or
 *         req is not a GET (answered 405 with Allow: GET: a HEAD gets no
 *         body, so no stream).
 * @retval other negative  sse_hub_subscribe() failed after the head went
 *                         out: the connection is closed.
 * @since 0.2
 */
SSE_API int sse_event_serve(struct sse_event_driver *d, struct evhttp_request *req,
			    struct sse_stream **out);

/**
 * @brief Serve an event stream on a bufferevent (no evhttp): the body
 * bytes go as references into its output buffer, with no framing. Write
 * the response head into it first (sse_http_response_head() without
 * chunked: the body then ends with the connection).
 *
 * The adapter owns @p bev from here on, whatever the return: it sets its
 * callbacks (input is read and discarded; end of file or an error closes
 * the stream) and frees it when the stream closes. It must be a socket
 * bufferevent (bufferevent_socket_new()) on the driver's base: one that
 * lets go of bytes only in its loop's callbacks, never inside a write.
 * @param d    The driver; must not be NULL.
 * @param bev  The connection.
 * @param id   The client's Last-Event-ID; NULL or len 0: live only.
 * @param len  Its length.
 * @param out  If not NULL, receives the stream (0 only), as for sse_event_serve().
 * @return 0, or
 * @retval SSE_ERR_INVALID d or bev is NULL.
 * @retval other negative  no stream (SSE_ERR_NOMEM), or sse_hub_subscribe()
 *                         failed; @p bev is freed.
 * @since 0.2
 */
SSE_API int sse_event_serve_bufferevent(struct sse_event_driver *d, struct bufferevent *bev,
					const char *id, size_t len, struct sse_stream **out);

/**
 * @brief Close the connection of a stream served by sse_event_serve() or
 * sse_event_serve_bufferevent(): it leaves the hub, and is freed once
 * libevent has let go of its bytes (a later loop turn, or event_base_free()).
 * Closed already: nothing. Not for other streams.
 * @param s The stream; NULL: nothing.
 * @since 0.2
 */
SSE_API void sse_event_close(struct sse_stream *s);

/**
 * @brief An on_drop for sse_hub_new() when every subscriber comes from
 * this adapter: sse_event_close(s). A drop handler of your own (to log)
 * calls sse_event_close() in the same way.
 * @param s    The dropped stream.
 * @param err  Why (unused).
 * @param user The hub's user pointer (unused).
 * @since 0.2
 */
SSE_API void sse_event_drop(struct sse_stream *s, int err, void *user);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_LIBEVENT_H */
