/*
 * libsse — history providers: a hub backed by an external log
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_HISTORY_H
#define SSE_HISTORY_H

#include <sse/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup history History providers
 * A hub whose events live in an external log (several servers behind a
 * load balancer share one) keeps its ring as a cache of that log: the
 * ring's id numbers are the log's offsets (sse_replay_restart(),
 * sse_hub_publish_frame()). A client resuming from an id the ring no
 * longer holds, or has not reached yet, is attached at once (heartbeats
 * flow) and the hub asks the provider, asynchronously, for the frames
 * after it, page by page, while live events keep arriving in the ring;
 * the subscriber switches to the ring as soon as its position is inside
 * it, so it gets every event once, in order, across the seam. The
 * provider answers "here they are" (sse_history_frame(), then
 * sse_history_done() with SSE_HISTORY_FRAMES), "gap" or "unknown" (the
 * client then gets the ring's reset event and goes on live), or an error
 * (the client is dropped and resumes later from the same id: nothing is
 * invented or skipped). See doc/guide.md, "A hub backed by a log".
 * Not thread-safe: call sse_history_frame() and sse_history_done() on
 * the hub's thread (the loop), never from a stream callback.
 * @{
 */

/** One question to a provider: the frames after a position, for one
 * subscriber. Opaque; owned by the hub. */
struct sse_history_fetch;

/** How a provider ends an answer (sse_history_done()); a negative error
 * code instead says the log could not be read. */
enum sse_history_status {
	SSE_HISTORY_FRAMES = 0,  /**< The frames it gave (none: nothing after
				      from_number is in the log yet). */
	SSE_HISTORY_GAP = 1,     /**< The log no longer has from_number. */
	SSE_HISTORY_UNKNOWN = 2  /**< from_number is not a position of the log
				      (another epoch, or beyond its end). */
};

/** Bytes a page of history asks for at most (max_bytes of
 * sse_history_fetch_fn), whatever the subscriber's queue room. */
#define SSE_HISTORY_PAGE_BYTES ((size_t)64 * 1024)

/**
 * Ask the log for the frames from id number @p from_number on. Answer now
 * or later, on the loop's thread: sse_history_frame() for each frame, in
 * order, stopping once they add up to @p max_bytes (the first frame goes
 * even when larger), then sse_history_done() once.
 * @param ctx         struct sse_history's ctx.
 * @param f           The question; valid until sse_history_done() or the
 *                    provider's cancel returns.
 * @param from_number The id number of the first frame wanted.
 * @param max_bytes   Bytes of frames wanted at most (see above).
 * @return 0 (it will answer, or has answered already), or a negative
 *         code: it will not answer, and must not have used @p f; the
 *         subscriber then fails with that code.
 */
typedef int (*sse_history_fetch_fn)(void *ctx, struct sse_history_fetch *f,
				    uint64_t from_number, size_t max_bytes);

/**
 * The subscriber of a question not answered yet left (unsubscribed,
 * freed, dropped, or the hub freed): forget @p f. After this returns the
 * provider must not pass @p f to any function, since its memory is gone.
 * Never called for a question already answered with sse_history_done().
 * @param ctx struct sse_history's ctx.
 * @param f   The question.
 */
typedef void (*sse_history_cancel_fn)(void *ctx, struct sse_history_fetch *f);

/**
 * A history provider; copied by sse_hub_set_history(). Set @c size to
 * sizeof(struct sse_history): later versions may add fields after the
 * last one.
 */
struct sse_history {
	size_t size;                  /**< sizeof(struct sse_history) */
	sse_history_fetch_fn fetch;   /**< Required. */
	sse_history_cancel_fn cancel; /**< Required. */
	void *ctx;                    /**< Passed to both; never read by the library. */
};

/**
 * @brief Hand one frame of the answer to a question.
 * @param f      The question, not answered yet.
 * @param number The frame's id number: the question's from_number first,
 *               then one more each time. Numbers the subscriber has
 *               already (answered before, or in the ring) are skipped.
 * @param frame  The frame, as sse_replay_publish_frame() takes it, with
 *               the id "<epoch><number>" of the hub's ring; copied.
 * @param len    Bytes at frame.
 * @return 0 (taken or skipped), or
 * @retval SSE_ERR_QUEUE_FULL the subscriber has no room for more of this
 *         page now: stop and call sse_history_done(); the rest is asked
 *         for again once it drained.
 * @retval SSE_ERR_INVALID    not a frame of that shape, id or number, or
 *         @p f is not waiting for an answer: the subscriber is dropped
 *         with this code at sse_history_done() (stop and call it).
 * @retval other negative     the subscriber failed (its transport), and
 *         is dropped at sse_history_done(): stop and call it.
 * @since 0.3
 */
SSE_API int sse_history_frame(struct sse_history_fetch *f, uint64_t number, const char *frame,
			      size_t len);

/**
 * @brief End the answer to a question. The hub acts on it now (when
 * called from the loop) or when the call that asked returns (when called
 * from within sse_history_fetch_fn): it queues the next question, moves
 * the subscriber to the ring, sends the reset event, or drops the
 * subscriber (on_drop) with @p status when negative. Do not use @p f
 * afterwards.
 * @param f      The question, not answered yet; else nothing happens.
 * @param status An sse_history_status, or a negative code: the log could
 *               not be read; the subscriber is dropped with that code,
 *               and its client resumes from the last id it got.
 * @since 0.3
 */
SSE_API void sse_history_done(struct sse_history_fetch *f, int status);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_HISTORY_H */
