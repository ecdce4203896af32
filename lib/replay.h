/*
 * What a stream following a ring (lib/follow.c) needs beyond the public
 * replay API.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_REPLAY_H
#define SSE_PRIV_REPLAY_H

#include <stdbool.h>

#include "sse-private.h"

/* Bytes of the retained frames from cursor to the live end, in O(1);
 * 0 when the cursor is at the end or no longer retained. */
uint64_t sse__replay_backlog(const struct sse_replay *r, uint64_t cursor);
/* Bytes of the retained frames from..to-1, in O(1); 0 when the range is
 * empty, past the live end or no longer retained. */
uint64_t sse__replay_bytes_between(const struct sse_replay *r, uint64_t from, uint64_t to);

/* Keep the bytes of frame seq and of all after it where they are, even
 * once dropped, until unpinned (a frame an asynchronous transport holds).
 * seq must be held: retained, or pinned already by another stream. */
void sse__replay_pin(const struct sse_replay *r, uint64_t seq);
void sse__replay_unpin(const struct sse_replay *r, uint64_t seq);

/* The frames from seq (retained, before the live end) on that lie back to
 * back in one arena: their bytes, and their count as the return value. */
size_t sse__replay_run(const struct sse_replay *r, uint64_t seq, const char **bytes, size_t *len);

/* The length of a frame still held (retained or pinned). */
size_t sse__replay_held_len(const struct sse_replay *r, uint64_t seq);

/* Ring ids: 1 and the number when id is "<this ring's epoch><number>"
 * (whatever the number: a history provider may know numbers the ring
 * has not reached), else 0 (app ids, another epoch, not a number). */
int sse__replay_parse_id(const struct sse_replay *r, const char *id, size_t len,
			 uint64_t *number);

/* Ring ids: frame seq has the id number seq + base (mod 2^64). */
uint64_t sse__replay_base(const struct sse_replay *r);

/* 0 when frame is one event as the encoder writes it whose first line is
 * "id: <epoch><number>" (see sse_replay_publish_frame()), else
 * SSE_ERR_INVALID (or SSE_ERR_UTF8 for a strict ring). Ring ids only. */
int sse__replay_check_frame(const struct sse_replay *r, uint64_t number, const char *frame,
			    size_t len);

/* The ring's bounds: frames and bytes. */
void sse__replay_bounds(const struct sse_replay *r, size_t *events, size_t *bytes);

/* Readers on other threads (sse_replay_share(); lib/replay.c says how). */
struct sse__ring_reader;

/* Whether the ring was shared. */
bool sse__replay_shared(const struct sse_replay *r);
/* A free reader place, or NULL when all are taken (or not shared). */
struct sse__ring_reader *sse__replay_reader_claim(const struct sse_replay *r);
void sse__replay_reader_release(struct sse__ring_reader *rd);
/* Around every call of a reader that may read frames: nothing at or after
 * the first frame held at enter is let go before leave. */
void sse__replay_reader_enter(const struct sse_replay *r, struct sse__ring_reader *rd);
void sse__replay_reader_leave(struct sse__ring_reader *rd);

/* Bytes for the id of the reset event (ring ids), and the event with its
 * id written there, from what a reader on another thread may see: as
 * sse_replay_reset_event(), whose id lives in the ring, otherwise. */
size_t sse__replay_id_room(const struct sse_replay *r);
int sse__replay_reset_event_in(const struct sse_replay *r, struct sse_event *ev, char *buf,
			       uint64_t cursor);

#endif
