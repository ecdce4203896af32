/*
 * libFuzzer target for the encoder. The input becomes an event (or a
 * comment). An invalid one must be refused with a code of one of its faults,
 * writing nothing. A valid one must encode to exactly sse_encode_size()
 * bytes, and parsing those bytes back must give what the WHATWG model of
 * tests/roundtrip-model.c says a browser sees. Any difference aborts.
 *
 * Input: [flags][retry: 8 bytes][id len][type len] text...
 *   flags: 1 strict UTF-8, 2 id, 4 type, 8 data, 16 retry, 32 retry taken
 *   in range, 64 a comment of the whole text instead, 128 a NULL pointer
 *   with a length. The text is cut into id, type and data by the lengths.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roundtrip-model.h"
#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 11
#define GUARD 16
#define SENTINEL 0xa5
#define UNSET ((size_t)0x5a5a5a5a)

enum {
	F_STRICT = 1, F_ID = 2, F_TYPE = 4, F_DATA = 8, F_RETRY = 16, F_RETRY_OK = 32,
	F_COMMENT = 64, F_NULL = 128
};

static void die(const char *what)
{
	fprintf(stderr, "fuzz-encode: %s\n", what);
	abort();
}

static int untouched(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] != SENTINEL)
			return 0;
	return 1;
}

static char *sentinel_buf(size_t n)
{
	char *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	memset(p, SENTINEL, n);
	return p;
}

static long read_retry(const uint8_t *p, unsigned flags)
{
	uint64_t r = 0;

	for (int i = 0; i < 8; i++)
		r = r << 8 | p[i];
	if (!(flags & F_RETRY))
		return SSE_RETRY_NONE;
	if (flags & F_RETRY_OK)
		return (long)(r % ((uint64_t)SSE_RETRY_MAX + 1));
	return (long)(int64_t)r; /* often out of range, sometimes -1 */
}

/* Cut the text into id, type and data as the two length bytes say. */
static void read_event(const uint8_t *data, size_t size, struct sse_event *ev)
{
	unsigned flags = data[0];
	const char *t = (const char *)data + HEADER;
	size_t n = size - HEADER;
	size_t id_len = data[9] % (n + 1), type_len = data[10] % (n - id_len + 1);

	ev->id = flags & F_ID ? t : NULL;
	ev->id_len = flags & F_ID ? id_len : 0;
	ev->type = flags & F_TYPE ? t + id_len : NULL;
	ev->type_len = flags & F_TYPE ? type_len : 0;
	ev->data = flags & F_DATA ? t + id_len + type_len : NULL;
	ev->data_len = flags & F_DATA ? n - id_len - type_len : 0;
	ev->retry = read_retry(data + 1, flags);
	if (flags & F_NULL) {
		/* Keep a length whose pointer is gone, on the field the first
		 * retry byte picks; a zero length is still valid. */
		if (data[1] % 3 == 0)
			ev->id = NULL;
		else if (data[1] % 3 == 1)
			ev->type = NULL;
		else
			ev->data = NULL;
	}
}

/* Any error must leave the caller's size, written and buffer as they were. */
static void check_refused(const struct sse_event *ev, unsigned flags, unsigned faults)
{
	size_t size = UNSET, written = UNSET, cap = 64 + (ev->data_len + ev->id_len) * 7 +
						   ev->type_len;
	char *out = sentinel_buf(cap);
	int rc_size = sse_encode_size(ev, flags, &size);
	int rc = sse_encode(ev, flags, out, cap, &written);

	if (!rt_fault_allows(faults, rc_size) || rc != rc_size) {
		fprintf(stderr, "faults 0x%x: sse_encode_size %d, sse_encode %d\n", faults,
			rc_size, rc);
		die("an invalid event got the wrong code");
	}
	if (size != UNSET || written != UNSET || !untouched(out, cap))
		die("a refused event wrote something");
	free(out);
}

/* Encode into an exactly sized buffer plus a guard; check the guard, and
 * that a buffer one half too small reports the size needed. */
static void encode_into(const struct sse_event *ev, unsigned flags, char **wire, size_t *len)
{
	size_t size = UNSET, written = UNSET, half;
	char *out;

	if (sse_encode_size(ev, flags, &size) != 0)
		die("sse_encode_size refused a valid event");
	out = sentinel_buf(size + GUARD);
	half = size / 2;
	if (sse_encode(ev, flags, out, half, &written) != SSE_ERR_BUFFER || written != size)
		die("a short buffer did not give SSE_ERR_BUFFER and the size needed");
	if (!untouched(out + half, size + GUARD - half))
		die("sse_encode wrote past a short cap");
	memset(out, SENTINEL, size + GUARD);
	if (sse_encode(ev, flags, out, size + GUARD, &written) != 0 || written != size)
		die("sse_encode did not write exactly sse_encode_size() bytes");
	if (!untouched(out + size, GUARD))
		die("sse_encode wrote past the size it reported");
	*wire = realloc(*wire, *len + size + 1);
	if (*wire == NULL)
		die("out of memory");
	memcpy(*wire + *len, out, size);
	*len += size;
	free(out);
}

static void compare(const char *wire, size_t len, struct rt_log *want, const uint8_t *data)
{
	struct rt_log got;
	uint64_t rng = data[2];
	size_t at;

	rt_log_init(&got);
	if (rt_parse_chunked(wire, len, data[1] & 3, &rng, &got) != 0)
		die("the parser refused the encoder's output");
	at = rt_log_diff(want, &got);
	if (at != SIZE_MAX) {
		fprintf(stderr, " expected (WHATWG model):\n");
		rt_record_print(stderr, want, at);
		fprintf(stderr, " parser reported:\n");
		rt_record_print(stderr, &got, at);
		die("round trip differs from the model");
	}
	rt_log_free(&got);
}

/* The event, then the same event without its id: the id must persist. */
static void event_round_trip(const struct sse_event *ev, unsigned flags, const uint8_t *data)
{
	struct sse_event again = *ev;
	struct rt_client client;
	struct rt_log want;
	char *wire = NULL;
	size_t len = 0;

	again.id = NULL;
	again.id_len = 0;
	rt_client_init(&client);
	rt_log_init(&want);
	encode_into(ev, flags, &wire, &len);
	encode_into(&again, flags, &wire, &len);
	rt_client_event(&client, ev, &want);
	rt_client_event(&client, &again, &want);
	rt_client_end(&client, &want);
	compare(wire, len, &want, data);
	rt_log_free(&want);
	rt_client_free(&client);
	free(wire);
}

static void check_comment(const char *text, size_t n, unsigned flags, const uint8_t *data)
{
	size_t size = UNSET, written = UNSET;
	unsigned faults = rt_comment_faults(text, n, flags);
	int rc = sse_comment_size(text, n, flags, &size);
	char *out;
	struct rt_log want;

	if (!rt_fault_allows(faults, rc))
		die("sse_comment_size gave the wrong code");
	if (faults) {
		out = sentinel_buf(16);
		if (sse_encode_comment(text, n, flags, out, 16, &written) != rc ||
		    size != UNSET || written != UNSET || !untouched(out, 16))
			die("a refused comment wrote something");
		free(out);
		return;
	}
	out = sentinel_buf(size + GUARD);
	if (sse_encode_comment(text, n, flags, out, size + GUARD, &written) != 0 ||
	    written != size || !untouched(out + size, GUARD))
		die("sse_encode_comment did not write exactly sse_comment_size() bytes");
	rt_log_init(&want);
	rt_client_comment(text, n, &want);
	rt_log_end(&want, "", 0);
	compare(out, size, &want, data);
	rt_log_free(&want);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned enc_flags;
	struct sse_event ev;
	const char *text = (const char *)data + HEADER;
	unsigned faults;

	if (size < HEADER)
		return 0;
	if (sse_utf8_valid(text, size - HEADER) != rt_utf8_valid(text, size - HEADER))
		die("sse_utf8_valid and the model's validator differ");
	enc_flags = data[0] & F_STRICT ? SSE_ENCODE_STRICT_UTF8 : 0;
	if (data[0] & F_COMMENT) {
		check_comment(data[0] & F_NULL ? NULL : text,
			      data[0] & F_NULL ? (size_t)data[1] : size - HEADER, enc_flags, data);
		return 0;
	}
	read_event(data, size, &ev);
	faults = rt_event_faults(&ev, enc_flags);
	if (faults)
		check_refused(&ev, enc_flags, faults);
	else
		event_round_trip(&ev, enc_flags, data);
	return 0;
}
