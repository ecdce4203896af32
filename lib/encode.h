/*
 * The encoder for the library's own callers: check an event once, then
 * write it without checking it again.
 *
 * The check is the public call a caller makes first, and it also gives
 * the size: sse_encode_size() (or sse_comment_size()), or sse_encode()
 * (sse_encode_comment()) into the room at hand, whose SSE_ERR_BUFFER
 * reports the size needed. The writers below then take that size and
 * room for exactly that many bytes. They look at no flag and test no
 * byte of the text, so strict UTF-8 and the id and type rules are not
 * run a second time: the caller must not change the text in between.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIV_ENCODE_H
#define SSE_PRIV_ENCODE_H

#include "sse-private.h"

/*
 * Write ev, already checked by sse_encode_size() or sse_encode() (any
 * flags), into buf[0..size), size being the size that check reported.
 * Returns 0 when exactly size bytes were written; SSE_ERR_BUFFER when
 * size is not ev's encoded size (a caller's bug): then buf[0..size) holds
 * no complete event, and no byte outside it was touched.
 */
int sse__encode_unchecked(const struct sse_event *ev, char *buf, size_t size);

/* The same for a comment checked by sse_comment_size() or
 * sse_encode_comment(); text may be NULL when len is 0. */
int sse__encode_comment_unchecked(const char *text, size_t len, char *buf, size_t size);

#endif
