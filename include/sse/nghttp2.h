/*
 * libsse-nghttp2 — an event stream on an HTTP/2 stream of an nghttp2 session
 *
 * Optional adapter (link libsse-nghttp2). It knows nothing of sockets,
 * TLS or the loop: the application owns the session and its I/O.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_NGHTTP2_H
#define SSE_NGHTTP2_H

#include <nghttp2/nghttp2.h>

#include <sse.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup nghttp2 nghttp2 adapter
 * Answers a request of a server session as an event stream bound to a hub,
 * and carries its bytes as NGHTTP2_DATA_FLAG_NO_COPY DATA frames: the
 * payload of a frame points into the hub's ring (or the stream's own
 * queue), and nothing is copied for it.
 *
 * What the application does:
 * - when a GET request is complete, sse_h2_respond();
 * - in its nghttp2_send_data_callback, sse_h2_send_data() (or install
 *   that function as the callback): it hands the frame header and the
 *   referenced bytes to the application's send function;
 * - as those bytes are done with (written, copied or cancelled),
 *   sse_h2_complete(), in order;
 * - in its nghttp2_on_stream_close_callback, sse_h2_close();
 * - in the hub's on_drop, sse_h2_reset() with NGHTTP2_CANCEL;
 * - when wake is called, nghttp2_session_send() (or mem_send) soon,
 *   from its loop.
 *
 * One session, one thread: the streams of a session, their hub and the
 * session are used from one thread at a time.
 * @{
 */

/** One HTTP/2 stream answered with an event stream. */
struct sse_h2_stream;

/**
 * One DATA frame of an event stream, as the send function gets it.
 * Written in this order: head, the data pieces, then @c pad zero bytes.
 */
struct sse_h2_frame {
	const uint8_t *head;          /**< The 9-byte frame header, plus the pad length
					   byte when padded: valid during the call only. */
	size_t head_len;              /**< 9, or 10 when padded. */
	const struct sse_iovec *data; /**< The payload, by reference: the bytes stay
					   valid until sse_h2_complete() covers them;
					   the array is valid during the call only. */
	size_t n;                     /**< Pieces in @c data (may be 0 with len 0). */
	size_t len;                   /**< Their total: what to complete. */
	size_t pad;                   /**< Zero bytes after the payload (padding). */
};

/**
 * Take a whole DATA frame: return 0 and complete its @c len payload bytes
 * later with sse_h2_complete() (it may also do so before returning, e.g.
 * after copying them); SSE_ERR_WOULDBLOCK to take none of it now (nghttp2
 * offers the same frame again at its next send); any other negative code
 * fails the session (NGHTTP2_ERR_CALLBACK_FAILURE). Never part of a frame.
 * Must not call nghttp2_session_send() or free the session.
 */
typedef int (*sse_h2_send_fn)(struct sse_h2_stream *st, const struct sse_h2_frame *f,
			      void *ctx);

/**
 * The session has something to send for @p st (its data was resumed, or a
 * RST_STREAM was submitted): call nghttp2_session_send() soon, from the
 * loop, not from here. May be called from within the hub or nghttp2.
 */
typedef void (*sse_h2_wake_fn)(struct sse_h2_stream *st, void *ctx);

/**
 * How sse_h2_respond() binds a stream; copied. Fill it with
 * sse_h2_config_init() first: later versions may add fields.
 */
struct sse_h2_config {
	size_t size;                         /**< sizeof(struct sse_h2_config) */
	struct sse_hub *hub;                 /**< Required; must outlive every stream bound
						  to it, closed ones holding bytes included. */
	sse_h2_send_fn send;                 /**< Required. */
	sse_h2_wake_fn wake;                 /**< NULL: the application checks
						  nghttp2_session_want_write() itself after
						  every hub flush and tick. */
	void *ctx;                           /**< Passed to send and wake. */
	const struct sse_http_options *http; /**< CORS fields; NULL: none. http2 is
						  implied; chunked is refused. */
	long retry_ms;                       /**< SSE_RETRY_NONE (the default), or the
						  reconnection delay the stream opens with. */
	const struct sse_allocator *alloc;   /**< NULL: libc. */
};

/** What sse_h2_respond() reads of the request to find its resume point. */
struct sse_h2_request {
	const char *path;          /**< The :path value (its query is read); NULL: none. */
	size_t path_len;           /**< Its length. */
	const char *last_event_id; /**< The last-event-id field's value; NULL: absent. */
	size_t last_event_id_len;  /**< Its length. */
};

/**
 * @brief The defaults: size set, retry_ms SSE_RETRY_NONE, everything else 0.
 * @param cfg Must not be NULL.
 * @since 0.2
 */
SSE_API void sse_h2_config_init(struct sse_h2_config *cfg);

/**
 * @brief Answer a request as an event stream: make an asynchronous stream,
 * subscribe it to the hub from the request's resume point (the
 * last-event-id field, else a lastEventId or last_event_id query
 * parameter: sse_http_resume_id()), and submit the response: :status 200
 * and sse_http_response_fields() (no connection-specific fields), with a
 * data source that hands out the stream's bytes as NO_COPY DATA frames.
 *
 * Call it once the request is complete (its END_STREAM), outside the
 * send and data callbacks of the session.
 * @param out       Receives the stream; untouched on failure.
 * @param session   A server session; must outlive the stream or its
 *                  sse_h2_close().
 * @param stream_id The request's stream.
 * @param cfg       Copied.
 * @param req       NULL: live only, no resume.
 * @param user      The event stream's user pointer (sse_stream_user(), as
 *                  on_drop sees it); not read.
 * @return 0, or
 * @retval SSE_ERR_HTTP    a malformed percent-escape in the query's id:
 *                         answer 400; nothing was submitted.
 * @retval SSE_ERR_INVALID a NULL or incomplete argument, a config size this
 *                         library does not know, a bad retry or
 *                         CORS option, or nghttp2 refused the response
 *                         (e.g. the stream is gone).
 * @retval SSE_ERR_NOMEM   nothing was submitted.
 * @retval other negative  the hub refused the subscriber (answer 503).
 * @since 0.2
 */
SSE_API int sse_h2_respond(struct sse_h2_stream **out, nghttp2_session *session,
			   int32_t stream_id, const struct sse_h2_config *cfg,
			   const struct sse_h2_request *req, void *user);

/**
 * @brief The send half of a NO_COPY frame: call it from the session's
 * nghttp2_send_data_callback for a stream answered by sse_h2_respond()
 * (or install it as that callback when no other data source uses
 * NO_COPY). It calls the stream's send function with the frame.
 * @return 0, NGHTTP2_ERR_WOULDBLOCK (send function: SSE_ERR_WOULDBLOCK),
 *         or NGHTTP2_ERR_CALLBACK_FAILURE.
 * @since 0.2
 */
SSE_API int sse_h2_send_data(nghttp2_session *session, nghttp2_frame *frame,
			     const uint8_t *framehd, size_t length, nghttp2_data_source *source,
			     void *user_data);

/**
 * @brief The send function is done with the next @p n payload bytes it
 * took from @p st, in the order taken, whether they were sent, copied or
 * cancelled. On a closed stream, the completion that leaves nothing held
 * frees it. Not from a callback of the stream itself (send or wake are
 * fine).
 * @retval SSE_ERR_INVALID st is NULL or n is more than it holds.
 * @since 0.2
 */
SSE_API int sse_h2_complete(struct sse_h2_stream *st, size_t n);

/**
 * @brief End the HTTP/2 stream with RST_STREAM @p error_code: the hub
 * dropped its subscriber (NGHTTP2_CANCEL), or the application gives up
 * on it. Only this stream ends; it leaves the hub now, and is freed
 * after sse_h2_close(). Calls wake. Again, or after close: nothing.
 * @return 0, or SSE_ERR_NOMEM / SSE_ERR_INVALID from nghttp2.
 * @since 0.2
 */
SSE_API int sse_h2_reset(struct sse_h2_stream *st, uint32_t error_code);

/**
 * @brief End the HTTP/2 stream cleanly (END_STREAM), e.g. at shutdown:
 * it stays subscribed until it owes nothing (events published meanwhile
 * still go out), then leaves the hub and ends. Calls wake. After a reset
 * or close, or again: nothing.
 * @param st NULL: nothing.
 * @since 0.2
 */
SSE_API void sse_h2_end(struct sse_h2_stream *st);

/**
 * @brief The HTTP/2 stream is closed: call it from the session's
 * nghttp2_on_stream_close_callback (a client's RST_STREAM, the end of
 * the response, a reset), or for every stream once the session is
 * deleted, never while nghttp2 may still ask its data source. It leaves
 * the hub; bytes it staged and nghttp2 never framed are cancelled. It is
 * freed now, or by the sse_h2_complete() that leaves nothing held: after
 * this call, only that is allowed on @p st. NULL: nothing.
 * @since 0.2
 */
SSE_API void sse_h2_close(struct sse_h2_stream *st);

/** @return The event stream (for sse_stream_send(), sse_stream_set_*()),
 * owned by @p st. @since 0.2 */
SSE_API struct sse_stream *sse_h2_stream(const struct sse_h2_stream *st);

/** @return The HTTP/2 stream id. @since 0.2 */
SSE_API int32_t sse_h2_stream_id(const struct sse_h2_stream *st);

/** @return Payload bytes handed to the send function and not completed.
 * @since 0.2 */
SSE_API size_t sse_h2_held(const struct sse_h2_stream *st);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_NGHTTP2_H */
