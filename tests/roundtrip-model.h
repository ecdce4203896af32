/*
 * An independent model of what a browser sees, for the round-trip test and
 * the encode fuzzer: given the events a server sent, it says from the WHATWG
 * rules alone (not from our encoder or parser) which messages, retries and
 * comments an EventSource reports. Plus a log that both the model and the
 * real parser write into, so one comparison checks everything.
 *
 * Plain C with no Check dependency, so the fuzzers can link it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_ROUNDTRIP_MODEL_H
#define SSE_ROUNDTRIP_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sse.h"

/* splitmix64: tiny, and the same sequence on every machine. */
uint64_t rt_rand(uint64_t *state);
/* Uniform enough in [0, n); n must be > 0. */
size_t rt_below(uint64_t *state, size_t n);

enum rt_kind {
	RT_MESSAGE, /* a dispatched event: text = type, data, id = last id */
	RT_RETRY,   /* a retry field: retry */
	RT_COMMENT, /* a comment line: text after the ':' */
	RT_END,     /* end of the stream: id = last event id kept */
};

struct rt_record {
	enum rt_kind kind;
	char *text;
	size_t text_len;
	char *data;
	size_t data_len;
	char *id;
	size_t id_len;
	uint64_t retry;
};

/* What a client reported, in order. Aborts on out-of-memory: a test tool. */
struct rt_log {
	struct rt_record *v;
	size_t n, cap;
};

void rt_log_init(struct rt_log *log);
void rt_log_free(struct rt_log *log);
void rt_log_message(struct rt_log *log, const char *type, size_t type_len,
		    const char *data, size_t data_len, const char *id, size_t id_len);
void rt_log_retry(struct rt_log *log, uint64_t retry);
void rt_log_comment(struct rt_log *log, const char *text, size_t len);
void rt_log_end(struct rt_log *log, const char *id, size_t id_len);
/* Index of the first record that differs, or SIZE_MAX when equal. */
size_t rt_log_diff(const struct rt_log *a, const struct rt_log *b);
/* One record, bytes escaped and long values cut, for failure messages. */
void rt_record_print(FILE *f, const struct rt_log *log, size_t i);

/* Parser callbacks that append to the struct rt_log passed as user. */
extern const struct sse_parser_callbacks rt_log_callbacks;

/* The model client: only the last event id outlives an event. */
struct rt_client {
	char *last_id;
	size_t last_id_len;
};

void rt_client_init(struct rt_client *c);
void rt_client_free(struct rt_client *c);
/* Append what the standard says a client reports for a valid event. */
void rt_client_event(struct rt_client *c, const struct sse_event *ev, struct rt_log *out);
/* Append the comment lines a client sees for sse_encode_comment(text). */
void rt_client_comment(const char *text, size_t len, struct rt_log *out);
/* Append RT_END with the last event id the client keeps. */
void rt_client_end(const struct rt_client *c, struct rt_log *out);

/* RFC 3629 UTF-8, written apart from lib/utf8.c so each checks the other. */
int rt_utf8_valid(const char *s, size_t len);

/* Each rule an event breaks sets one bit; the encoder must answer with the
 * code of one of them (the docs do not rank them). */
#define RT_FAULT_INVALID (1u << 0)
#define RT_FAULT_ID_LINEBREAK (1u << 1)
#define RT_FAULT_ID_NUL (1u << 2)
#define RT_FAULT_TYPE_LINEBREAK (1u << 3)
#define RT_FAULT_RETRY (1u << 4)
#define RT_FAULT_UTF8 (1u << 5)

unsigned rt_event_faults(const struct sse_event *ev, unsigned flags);
unsigned rt_comment_faults(const char *text, size_t len, unsigned flags);
/* 1 if code is what the encoder may return for these faults (0: SSE_OK). */
int rt_fault_allows(unsigned faults, int code);

/*
 * Feed len bytes to a new parser in chunks: mode 0 whole, 1 one byte at a
 * time, 2 random 1..16, 3 random 1..4096 (drawn from *rng); then end the
 * stream and log RT_END with sse_parser_last_id(). Returns 0 or the first
 * error of sse_parser_new/feed/end.
 */
int rt_parse_chunked(const char *buf, size_t len, int mode, uint64_t *rng,
		     struct rt_log *got);

#endif
