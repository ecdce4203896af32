/*
 * libsse-libuv — a hub driven by a libuv loop, and its subscribers written
 * to libuv streams without copying.
 *
 * Not part of libsse itself: link libsse-libuv (pkg-config libsse-libuv).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_LIBUV_H
#define SSE_LIBUV_H

#include <sse/base.h>
#include <sse/encode.h>
#include <sse/handoff.h>
#include <sse/http.h>
#include <sse/hub.h>
#include <sse/stream.h>

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup libuv libuv adapter (libsse-libuv)
 * Two objects. A driver (struct sse_uv_hub) runs a hub on a uv_loop_t:
 * it flushes the hub once per loop phase that may have published (a
 * prepare handle before the loop polls, a check handle after the I/O
 * callbacks: O(1) when nothing was published), calls sse_hub_tick() at
 * the hub's next deadline from a uv_timer, and can take events from
 * other threads through a handoff and a uv_async_t. A connection
 * (struct sse_uv_conn) writes one stream to a uv_stream_t (TCP, pipe,
 * TTY) as an asynchronous transport: one uv_write per writev, whose
 * buffers point at the ring's frames and the stream's queue, with
 * nothing copied; each write callback completes that write's bytes.
 *
 * Backpressure: a connection takes bytes only while libuv's write queue
 * for its handle (uv_stream_get_write_queue_size()) is under its high
 * mark, and offers more (sse_hub_writable()) from write callbacks that
 * find it at or below its low mark.
 *
 * Closing: a connection closes when the application asks, when its peer
 * ends (EOF, a read or write error), or when the hub drops it. It leaves
 * the hub and calls uv_close(); libuv then cancels its pending writes
 * (their callbacks run with UV_ECANCELED and complete the bytes), and
 * the stream is freed in the close callback, after the last write
 * callback. Only then is the application told (sse_uv_closed_fn).
 *
 * SIGPIPE: libuv writes with write(2), so a peer that reset the
 * connection raises SIGPIPE. The adapter changes no signal disposition:
 * ignore SIGPIPE in the program (signal(SIGPIPE, SIG_IGN)).
 *
 * Threads: everything here belongs to the loop's thread, except
 * sse_uv_hub_push(), which any thread may call.
 * @{
 */
struct sse_uv_hub;
struct sse_uv_conn;

/** Default high mark of a connection: bytes in libuv's write queue above
 * which it takes nothing more. */
#define SSE_UV_DEFAULT_HIGH_WATER ((size_t)256 * 1024)
/** Default low mark: a write callback that finds the queue at or below it
 * offers the subscriber more. */
#define SSE_UV_DEFAULT_LOW_WATER (SSE_UV_DEFAULT_HIGH_WATER / 2)

/**
 * @brief Drive @p hub from @p loop: flush it once per loop phase that may
 * have published, tick it at its deadlines, close the connections it
 * drops (with sse_uv_drop() as its on_drop).
 *
 * The driver's handles do not keep the loop alive (uv_unref()); its
 * connections' handles do. The hub stays the caller's: free it after the
 * driver is closed and the loop has run its close callbacks.
 * @param out   Receives the driver; untouched on failure.
 * @param loop  The loop; must outlive the driver.
 * @param hub   The hub; must outlive the driver.
 * @param alloc NULL: libc; else copied. Used for the driver, its
 *              connections, their streams and their write requests.
 * @return 0, or
 * @retval SSE_ERR_INVALID a NULL argument, or an incomplete allocator.
 * @retval SSE_ERR_NOMEM   allocation failed.
 * @retval SSE_ERR_IO      libuv refused a handle.
 * @since 0.2
 */
SSE_API int sse_uv_hub_new(struct sse_uv_hub **out, uv_loop_t *loop, struct sse_hub *hub,
			   const struct sse_allocator *alloc);

/**
 * @brief Close the driver and every connection it still has (their
 * sse_uv_closed_fn gets 0). Its memory goes in the close callbacks of
 * its handles: run the loop until they ran (uv_run() returns) before
 * uv_loop_close() and sse_hub_free(). Stop the threads that call
 * sse_uv_hub_push() first. NULL, or a driver closing: nothing.
 * @param d The driver.
 * @since 0.2
 */
SSE_API void sse_uv_hub_close(struct sse_uv_hub *d);

/**
 * @brief The time the driver gives the hub, in milliseconds: uv_now() of
 * its loop (the start of the loop's turn). Publish with it.
 * @param d The driver; must not be NULL.
 * @return The loop's time.
 * @since 0.2
 */
SSE_API uint64_t sse_uv_hub_now(const struct sse_uv_hub *d);

/**
 * @brief sse_hub_publish() at sse_uv_hub_now(). Subscribers get the event
 * at the end of the loop phase (callbacks of timers, idle handles and
 * pending requests: before the loop polls; I/O and async callbacks: after
 * them). Publish from a check or close callback only with an
 * sse_hub_flush() of your own, or the event waits for the next turn.
 * @param d   The driver.
 * @param ev  The event; copied into the ring.
 * @param seq If not NULL, receives its sequence number.
 * @return As sse_hub_publish(); SSE_ERR_INVALID for a NULL or closing d.
 * @since 0.2
 */
SSE_API int sse_uv_hub_publish(struct sse_uv_hub *d, const struct sse_event *ev, uint64_t *seq);

/**
 * @brief Take events from other threads: @p q's events are published
 * into the hub on the loop thread when sse_uv_hub_push() wakes it (a
 * uv_async_t), and the hub flushed. Events the hub cannot take yet
 * (SSE_ERR_PINNED, SSE_ERR_NOMEM) stay queued and are tried again at the
 * end of each loop turn; an event the hub can never take (an id where
 * the ring makes them) is dropped. Make the handoff's slots fit within
 * the ring's bounds, so one drain never publishes more than the ring
 * keeps. Once per driver, before other threads push.
 * @param d The driver.
 * @param q The handoff; must outlive the driver.
 * @return 0, or
 * @retval SSE_ERR_INVALID a NULL argument, a driver closing, or one that has a handoff.
 * @retval SSE_ERR_IO      libuv refused the async handle.
 * @since 0.2
 */
SSE_API int sse_uv_hub_set_handoff(struct sse_uv_hub *d, struct sse_handoff *q);

/**
 * @brief From any thread: copy @p ev into the driver's handoff
 * (sse_handoff_push()) and wake the loop when that is needed
 * (uv_async_send()). Never blocks.
 * @param d  A driver with a handoff (sse_uv_hub_set_handoff()), not closed.
 * @param ev The event; copied before the call returns.
 * @return 0, or
 * @retval SSE_ERR_INVALID     d or ev is NULL, or d has no handoff.
 * @retval SSE_ERR_QUEUE_FULL  the loop is behind: retry, wait or drop.
 * @retval SSE_ERR_IO          uv_async_send() failed; the event is queued.
 * @retval other errors of sse_handoff_push(); nothing is queued.
 * @since 0.2
 */
SSE_API int sse_uv_hub_push(struct sse_uv_hub *d, const struct sse_event *ev);

/**
 * @brief A hub's on_drop for hubs whose subscribers are all
 * sse_uv_conn streams: closes the dropped subscriber's connection, whose
 * sse_uv_closed_fn gets @p err (SSE_ERR_GAP, SSE_ERR_STALLED, or the
 * transport's error). Pass it to sse_hub_new() (any user pointer).
 * @param s    The stream the hub dropped.
 * @param err  Why.
 * @param user Unused.
 * @since 0.2
 */
SSE_API void sse_uv_drop(struct sse_stream *s, int err, void *user);

/**
 * Called once a connection is closed and freed: every byte it wrote was
 * sent or cancelled, and libuv closed @p handle. The handle's memory is
 * the application's again (free it here), with the data pointer it had
 * at sse_uv_conn_new().
 * @param handle The closed handle.
 * @param err    0: closed by sse_uv_conn_close() (with 0) or
 *               sse_uv_hub_close(); SSE_ERR_IO: the peer ended (EOF, a
 *               read or write error); else the hub's drop error
 *               (SSE_ERR_GAP, SSE_ERR_STALLED, ...) or the error given to
 *               sse_uv_conn_close().
 * @param data   The pointer given to sse_uv_conn_new().
 */
typedef void (*sse_uv_closed_fn)(uv_stream_t *handle, int err, void *data);

/**
 * @brief Attach a new stream to @p handle, an open, connected uv_stream_t
 * of the driver's loop (uv_tcp_t, uv_pipe_t, uv_tty_t). From here until
 * @p on_closed runs, the connection owns the handle: it reads it (input
 * is discarded; EOF or an error closes), writes it, sets TCP_NODELAY on
 * TCP (frames are written whole: Nagle would only hold one back), uses
 * handle->data (restored before on_closed), and closes it. Do not read,
 * write or close the handle yourself meanwhile.
 *
 * The stream is an asynchronous push stream (SSE_TRANSPORT_ASYNC) whose
 * user pointer is the connection (sse_uv_conn_of()); set its retry,
 * queue limit and so on through sse_uv_conn_stream() before subscribing.
 * @param out       Receives the connection; untouched on failure, and
 *                  the handle is then left as it was.
 * @param d         The driver.
 * @param handle    The handle; its memory must stay until on_closed.
 * @param on_closed Required.
 * @param data      Passed to on_closed; see sse_uv_conn_data().
 * @return 0, or
 * @retval SSE_ERR_INVALID a NULL argument, a driver closing, a handle
 *         closing or of another loop.
 * @retval SSE_ERR_NOMEM   allocation failed.
 * @since 0.2
 */
SSE_API int sse_uv_conn_new(struct sse_uv_conn **out, struct sse_uv_hub *d, uv_stream_t *handle,
			    sse_uv_closed_fn on_closed, void *data);

/**
 * @brief Write the event-stream response head (sse_http_response_head()
 * with @p o) into the stream, then subscribe it to the driver's hub,
 * resuming after @p last_id (sse_hub_subscribe()).
 * @param c      The connection; not subscribed yet.
 * @param o      NULL: the defaults. chunked is refused: the adapter
 *               writes the body unframed, ended by the connection's end
 *               (HTTP/1.1 without Content-Length: the usual event stream).
 * @param last_id The client's Last-Event-ID (sse_http_last_event_id(),
 *               sse_http_resume_id()); NULL or @p len 0: live only.
 * @param len    Bytes at last_id.
 * @param status If not NULL, the sse_replay_status of the resume.
 * @return 0, or an error: the stream is then not subscribed and bytes of
 *         the head may have gone out: close the connection.
 * @retval SSE_ERR_INVALID c is NULL or closing, o->chunked, or as
 *         sse_http_response_head() and sse_hub_subscribe().
 * @since 0.2
 */
SSE_API int sse_uv_conn_subscribe(struct sse_uv_conn *c, const struct sse_http_options *o,
				  const char *last_id, size_t len, int *status);

/**
 * @brief Set the connection's marks: take nothing while libuv's write
 * queue holds @p high bytes or more, offer more from write callbacks at
 * or below @p low.
 * @param c    The connection.
 * @param high At least 1, at most UINT_MAX (a uv_buf_t's length).
 * @param low  Below high.
 * @return 0, or SSE_ERR_INVALID.
 * @since 0.2
 */
SSE_API int sse_uv_conn_set_water(struct sse_uv_conn *c, size_t high, size_t low);

/**
 * @brief Close the connection: it leaves the hub, its handle is closed,
 * and once libuv is done with every buffer the stream is freed and
 * on_closed is called with @p err. NULL, or one closing: nothing.
 * @param c   The connection; valid until on_closed runs, but not to be
 *            used after this call.
 * @param err Passed to on_closed (0 for an ordinary close).
 * @since 0.2
 */
SSE_API void sse_uv_conn_close(struct sse_uv_conn *c, int err);

/** @brief The connection's stream; freed by the connection. @param c The
 * connection. @return The stream. @since 0.2 */
SSE_API struct sse_stream *sse_uv_conn_stream(const struct sse_uv_conn *c);

/** @brief The connection of a stream made by sse_uv_conn_new() (its user
 * pointer), e.g. in a hub's on_drop or an sse_hub_visit() callback.
 * @param s The stream. @return The connection. @since 0.2 */
SSE_API struct sse_uv_conn *sse_uv_conn_of(const struct sse_stream *s);

/** @brief The data pointer given to sse_uv_conn_new(). @param c The
 * connection. @return That pointer. @since 0.2 */
SSE_API void *sse_uv_conn_data(const struct sse_uv_conn *c);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_LIBUV_H */
