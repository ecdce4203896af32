/*
 * libsse — the replay ring
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_REPLAY_H
#define SSE_REPLAY_H

#include <sse/encode.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup replay Replay buffer
 * A bounded ring of already-encoded frames, so a client that reconnects
 * with Last-Event-ID gets every event it missed, without re-encoding.
 *
 * Every frame has a sequence number (1, 2, 3, ...), and a subscriber's
 * position is a cursor: the sequence number of the next frame it needs.
 * Live delivery and replay are the same walk along the ring, so a resumed
 * stream can neither miss nor repeat an event published mid-replay.
 * Not thread-safe: one ring, one thread at a time, unless it is shared
 * with hubs on other threads (sse_replay_share()).
 * @{
 */
struct sse_replay;

/**
 * A ring's settings; copied by sse_replay_new(). Set @c size to
 * sizeof(struct sse_replay_config): later versions may add fields after
 * the last one, and read them only when the size says they are there.
 */
struct sse_replay_config {
	size_t size;         /**< sizeof(struct sse_replay_config) */
	size_t max_events;   /**< Frames kept at most (>= 1). */
	size_t max_bytes;    /**< Encoded bytes kept at most (>= 1); the arena is
				  allocated at this size, and a frame never wraps,
				  so large frames may leave part of it unused. */
	uint64_t max_age_ms; /**< 0: no age bound; else frames older are dropped,
				  checked at each publish and sse_replay_expire(). */
	unsigned flags;      /**< Encoder flags for every frame (SSE_ENCODE_STRICT_UTF8). */
	/**
	 * Ids: with app_ids 0 the ring assigns them: the decimal sequence
	 * number after the ring's epoch ("<epoch>-<seq>"), so an id from
	 * another instance (an earlier run of the server) is UNKNOWN and its
	 * client gets the reset event instead of a silent resume from the
	 * wrong place. With app_ids 1, each published event must carry its
	 * own non-empty id (an opaque string), found again by hash.
	 */
	int app_ids;
	/**
	 * Ring ids only. NULL: a fresh epoch made for this instance (8
	 * characters of [0-9a-v] from the time and addresses, then "-").
	 * A string: that prefix, copied, as given (e.g. "k3f9-", or an epoch
	 * kept in a database); "" for plain integer ids, which a restarted
	 * server confuses with its own.
	 */
	const char *epoch;
	/**
	 * Written in-band by sse_stream_resume() when a client's id is too
	 * old or unknown, so it learns that it missed events (type
	 * "sse-reset" by convention; data up to the application). Copied.
	 * NULL: none. Its id field is ignored: the ring sets it to the
	 * newest id, so the client resumes from there next time.
	 */
	const struct sse_event *reset_event;
};

/** What sse_replay_seek() found for a Last-Event-ID. */
enum sse_replay_status {
	SSE_REPLAY_FOUND = 0,   /**< The frames after it are all retained. */
	SSE_REPLAY_LIVE = 1,    /**< Empty or absent id: live events only. */
	SSE_REPLAY_GAP = 2,     /**< Ours, but older than the ring holds. */
	SSE_REPLAY_UNKNOWN = 3, /**< Not an id of this ring (or its epoch). With
				     app ids a dropped id cannot be told from a
				     foreign one, so it is UNKNOWN, never GAP. */
	SSE_REPLAY_HISTORY = 4  /**< Only from sse_hub_subscribe() with a history
				     provider: the ring misses the id's events,
				     the provider is asked for them. @since 0.3 */
};

/**
 * @brief Create a ring. The config and the reset event are copied.
 * @param out   Receives the ring, to free with sse_replay_free().
 * @param cfg   Its settings; cfg->size must be set.
 * @param alloc NULL: libc; else copied.
 * @return 0, or
 * @retval SSE_ERR_INVALID cfg->size is unknown, a bound is 0, the epoch holds CR, LF or NUL, the reset
 *         event is invalid, flags has unknown bits, or alloc is incomplete.
 * @retval SSE_ERR_NOMEM   allocation failed, or the bounds need more memory
 *         than size_t can count; *out is untouched.
 */
SSE_API int sse_replay_new(struct sse_replay **out, const struct sse_replay_config *cfg,
			   const struct sse_allocator *alloc);
/** @brief Free a ring; NULL does nothing. Streams following it must have
 * stopped (or been freed) first, and asynchronous transports must have
 * completed the frames they hold.
 * @param r The ring. */
SSE_API void sse_replay_free(struct sse_replay *r);

/** @brief Drop frames older than max_age_ms at now_ms, without publishing.
 * @param r      The ring.
 * @param now_ms The caller's monotonic time, in milliseconds.
 * @return 0, or SSE_ERR_INVALID for a NULL ring. */
SSE_API int sse_replay_expire(struct sse_replay *r, uint64_t now_ms);

/**
 * @brief Encode an event once and keep it, dropping the oldest frames as
 * the bounds require.
 * @param r      The ring.
 * @param ev     The event; copied (encoded), so the caller may reuse it.
 * @param now_ms Caller's monotonic time (for max_age_ms; else any value).
 * @param seq    If not NULL, receives the frame's sequence number.
 * @retval SSE_ERR_INVALID  ring-assigned ids and ev->id is set, or app ids and it is not.
 * @retval SSE_ERR_TOO_LARGE the frame alone exceeds max_bytes.
 * @retval SSE_ERR_PINNED   the room it needs holds frames an asynchronous
 *         transport still uses (SSE_TRANSPORT_ASYNC), or a reader on
 *         another thread is reading (sse_replay_share()), in both of the
 *         two arenas the ring may use; nothing is published. A ring whose room
 *         is blocked by such frames puts new ones in a second arena of
 *         max_bytes, allocated then and freed when the first is let go, so
 *         a ring holds at most twice max_bytes. The streams holding them
 *         have missed events and fail with SSE_ERR_GAP at their next write.
 * @retval encoder errors   as sse_encode_size(); nothing is kept.
 */
SSE_API int sse_replay_publish(struct sse_replay *r, const struct sse_event *ev,
			       uint64_t now_ms, uint64_t *seq);

/**
 * @brief Map a Last-Event-ID to a cursor. O(1) for ring-assigned ids,
 * O(1) expected for application ids.
 * @param r      The ring.
 * @param id     The client's Last-Event-ID; NULL or len 0: live only.
 * @param len    Bytes at id.
 * @param cursor Receives the sequence number of the next frame to send:
 *        for FOUND, the one after the id; otherwise the next live frame.
 * @return an sse_replay_status, or SSE_ERR_INVALID.
 */
SSE_API int sse_replay_seek(const struct sse_replay *r, const char *id, size_t len,
			    uint64_t *cursor);

/**
 * @brief The frame at a cursor, without copying.
 * @param r      The ring.
 * @param cursor A sequence number, up to sse_replay_next_seq().
 * @param bytes  Receives the frame's first byte.
 * @param len    Receives its length.
 * @return 1 and the bytes (valid until the next publish), 0 when the
 *         cursor is at the live end (nothing yet),
 * @retval SSE_ERR_GAP     the frame was dropped: the cursor fell behind.
 * @retval SSE_ERR_INVALID a NULL argument, or a cursor past the live end.
 */
SSE_API int sse_replay_frame(const struct sse_replay *r, uint64_t cursor, const char **bytes,
			     size_t *len);

/** @brief The live end of the ring.
 * @param r The ring; NULL gives 0.
 * @return The sequence number the next publish will get. */
SSE_API uint64_t sse_replay_next_seq(const struct sse_replay *r);
/** @brief The oldest frame the ring holds.
 * @param r The ring; NULL gives 0.
 * @return The oldest retained sequence number (next_seq when empty). */
SSE_API uint64_t sse_replay_first_seq(const struct sse_replay *r);
/** @brief The ring's fill, in bytes.
 * @param r The ring; NULL gives 0.
 * @return Encoded bytes currently held (never above max_bytes). */
SSE_API size_t sse_replay_bytes(const struct sse_replay *r);
/** @brief The ring's fill, in frames.
 * @param r The ring; NULL gives 0.
 * @return Frames currently held (never above max_events). */
SSE_API size_t sse_replay_count(const struct sse_replay *r);

/** @brief The ring's id prefix.
 * @param r The ring; NULL gives NULL.
 * @return Its epoch ("" for plain ids or app ids), NUL-terminated; valid
 * as long as the ring. @since 0.2 */
SSE_API const char *sse_replay_epoch(const struct sse_replay *r);

/** @brief The id a client that saw everything would send back.
 * @param r   The ring; NULL gives NULL.
 * @param len Receives the id's length; must not be NULL (else NULL).
 * @return The id of the newest frame published, as a client would send
 * it back (not NUL-terminated, valid until the next publish), even when
 * that frame was dropped since (by age); with ring ids and nothing
 * published, "<epoch>0", the point before frame 1; with app ids and no
 * frame held, "". @since 0.2 */
SSE_API const char *sse_replay_newest_id(const struct sse_replay *r, size_t *len);

/** @brief The event sse_stream_resume() sends a client that missed events.
 * @param r  The ring.
 * @param ev Receives the event.
 * @return The reset event (its id set to sse_replay_newest_id()) and 1,
 * or 0 when the ring has none (or r or ev is NULL); *ev is valid until
 * the next publish.
 * @since 0.2 */
SSE_API int sse_replay_reset_event(const struct sse_replay *r, struct sse_event *ev);
/**
 * @brief Keep a frame encoded elsewhere (by a node that published it to a
 * shared log), as if sse_replay_publish() had encoded it: ring ids only.
 * @param r      The ring.
 * @param frame  One event as sse_encode() writes it: its first line
 *               exactly "id: <epoch><n>\n", where n is
 *               sse_replay_next_number(), no other id line, no CR, and no
 *               blank line but the one that ends it. Copied.
 * @param len    Bytes at frame.
 * @param now_ms Caller's monotonic time (for max_age_ms; else any value).
 * @param seq    If not NULL, receives the frame's sequence number.
 * @return 0, or
 * @retval SSE_ERR_INVALID   a NULL ring, app ids, or a frame of another
 *         shape or id (bytes from a network are not trusted to be one
 *         well-formed event); nothing is kept.
 * @retval SSE_ERR_UTF8      a ring with SSE_ENCODE_STRICT_UTF8, and the
 *         frame is not valid UTF-8.
 * @retval SSE_ERR_TOO_LARGE, SSE_ERR_PINNED as sse_replay_publish().
 * @since 0.3
 */
SSE_API int sse_replay_publish_frame(struct sse_replay *r, const char *frame, size_t len,
				     uint64_t now_ms, uint64_t *seq);

/**
 * @brief Start the ids over: drop every frame (bytes an asynchronous
 * transport holds stay until it completes them), set the epoch, and give
 * the next frame the id number @p next_number. Ring ids only. Sequence
 * numbers go on growing; one is skipped, so every stream following the
 * ring, even one at the live end, fails with SSE_ERR_GAP at its next
 * write instead of sliding silently into other numbers. An id of the old
 * epoch is then UNKNOWN (its client gets the reset event).
 * @param r           The ring.
 * @param epoch       The new id prefix (copied; no CR or LF); NULL or the
 *                    current one: kept.
 * @param next_number The id number of the next frame (>= 1). With the
 *                    epoch kept, not below sse_replay_next_number(): a
 *                    number names one event per epoch.
 * @return 0, or
 * @retval SSE_ERR_INVALID a NULL ring, app ids, a shared ring
 *         (sse_replay_share()), next_number 0 or going back within an
 *         epoch, or an epoch with CR or LF; nothing changed.
 * @retval SSE_ERR_NOMEM   nothing changed.
 * @retval SSE_ERR_PINNED  pinned frames fill the ring's index: the frames
 *         were dropped, the ids not changed; try again later.
 * @since 0.3
 */
SSE_API int sse_replay_restart(struct sse_replay *r, const char *epoch, uint64_t next_number);

/** @brief The id number the next frame gets: with ring ids the frame's id
 * is "<epoch><number>". It is the sequence number (sse_replay_next_seq())
 * until sse_replay_restart() moves the numbers.
 * @param r The ring; NULL or app ids give 0.
 * @return The next frame's id number (>= 1).
 * @since 0.3 */
SSE_API uint64_t sse_replay_next_number(const struct sse_replay *r);

/**
 * @brief Let hubs on other threads fan out from this ring
 * (sse_hub_new_shared()): one writer, many readers. Afterwards one thread
 * at a time, the writer, publishes (sse_replay_publish(),
 * sse_replay_publish_frame()) and expires frames (sse_replay_expire());
 * every other thread reads the ring only through a hub made with
 * sse_hub_new_shared(), which reads without a lock: the writer publishes
 * a frame's index entry before the sequence number that makes it
 * visible, and reuses the bytes of a dropped frame only once no reader
 * is in the middle of a call that may read them. Readers never wait for
 * the writer, nor the writer for them; a writer that laps a reader still
 * reading, by the room of both arenas or the index, fails with
 * SSE_ERR_PINNED, as for a pinned frame.
 * Call it before any reader exists, on the thread that made the ring.
 * A shared ring cannot be restarted (sse_replay_restart() fails).
 * @param r       The ring; ring ids only (readers resume from an id
 *                without looking into the index the writer changes).
 * @param readers The most hubs that may share it at once (>= 1).
 * @return 0, or
 * @retval SSE_ERR_INVALID a NULL ring, app ids, readers 0, or a ring
 *         shared already.
 * @retval SSE_ERR_NOMEM   nothing changed.
 * @since 0.4
 */
SSE_API int sse_replay_share(struct sse_replay *r, unsigned readers);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_REPLAY_H */
