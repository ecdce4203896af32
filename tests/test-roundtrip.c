/*
 * Round trip: random valid events go through sse_encode, then through
 * sse_parser in random chunks, and what the parser reports must equal what
 * the WHATWG standard says a browser sees (tests/roundtrip-model.c, which
 * never looks at our encoder or parser). Random invalid events must be
 * refused with their documented code, writing nothing.
 *
 * Seeds are fixed and the PRNG is our own, so every machine runs the same
 * cases. A failure prints its stream seed; SSE_RT_SEED=0x... replays only
 * that stream.
 *
 * SPDX-License-Identifier: MIT
 */
#include "test-common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tests/meson.build builds each suite from one file, so the model, shared
 * with tests/fuzz/fuzz-encode.c, is compiled in here. */
#include "roundtrip-model.h"

#define SEEDS 8
#define STREAMS_PER_SEED 50
#define EVENTS_PER_STREAM 50 /* 8 * 50 * 50 = 20 000 events */
#define INVALID_PER_SEED 1500
#define GUARD 32
#define SENTINEL 0xa5

static const uint64_t base_seeds[SEEDS] = {
	0x5eed0001, 0x5eed0002, 0xdeadbeef, 0x0123456789abcdef,
	0x1, 0x2a, 0xfeedfacecafe, 0x8badf00d,
};

/* ---- growable byte buffer ---------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
	if (b->n + more <= b->cap)
		return;
	while (b->cap < b->n + more)
		b->cap = b->cap ? b->cap * 2 : 256;
	b->p = realloc(b->p, b->cap);
	ck_assert_ptr_nonnull(b->p);
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void buf_insert(struct buf *b, size_t at, const char *s, size_t n)
{
	buf_reserve(b, n);
	memmove(b->p + at + n, b->p + at, b->n - at);
	memcpy(b->p + at, s, n);
	b->n += n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- generators ---------------------------------------------------------- */

struct piece {
	const char *s;
	size_t n;
};
#define P(lit) {lit, sizeof(lit) - 1}

/* What the standard treats specially, or what a careless encoder mangles:
 * every line break form, field names inside values, NUL, BOM, and UTF-8 of
 * each length at the edges of its range. */
static const struct piece nasty[] = {
	P("\r"), P("\n"), P("\r\n"), P("\n\n"), P("\r\r"), P("\r\n\r\n"), P("\n\r"),
	P("\r\n\n"), P(" "), P("  "), P(":"), P(": "), P("data:"), P("data: x"),
	P("id:"), P("id: 7"), P("event: x"), P("retry: 5"), P(":comment"), P("\0"),
	P("\t"), P("\xef\xbb\xbf"), P("\xc2\x80"), P("\xc3\xa9"), P("\xdf\xbf"),
	P("\xe0\xa0\x80"), P("\xe2\x82\xac"), P("\xed\x9f\xbf"), P("\xee\x80\x80"),
	P("\xef\xbf\xbf"), P("\xf0\x90\x80\x80"), P("\xf0\x9f\x98\x80"),
	P("\xf4\x8f\xbf\xbf"),
};
#define NASTY_COUNT (sizeof(nasty) / sizeof(nasty[0]))

static const struct piece breaks[] = {P("\r"), P("\n"), P("\r\n"), P("\n\n"), P("\r\r\n\r")};

/* Not UTF-8: lone continuations, overlongs, surrogates, past U+10FFFF,
 * bytes never used, and sequences cut short. */
static const struct piece bad_utf8[] = {
	P("\x80"), P("\xbf"), P("\xc0\x80"), P("\xc1\xbf"), P("\xe0\x80\x80"),
	P("\xe0\x9f\xbf"), P("\xf0\x80\x80\x80"), P("\xf0\x8f\xbf\xbf"),
	P("\xed\xa0\x80"), P("\xed\xbf\xbf"), P("\xf4\x90\x80\x80"),
	P("\xf5\x80\x80\x80"), P("\xfe"), P("\xff"), P("\xc3"), P("\xe2\x82"),
	P("\xf0\x9f\x98"), P("\xc3\x28"), P("\xe2\x28\xa1"),
};
#define BAD_UTF8_COUNT (sizeof(bad_utf8) / sizeof(bad_utf8[0]))

enum { NO_BREAKS = 1, NO_NUL = 2 };

static int piece_allowed(const struct piece *pc, unsigned forbid)
{
	if ((forbid & NO_BREAKS) && (memchr(pc->s, '\r', pc->n) || memchr(pc->s, '\n', pc->n)))
		return 0;
	return !((forbid & NO_NUL) && memchr(pc->s, '\0', pc->n));
}

/* Mostly printable ASCII (with space and ':'), sometimes other controls. */
static void add_word(struct buf *b, uint64_t *rng, size_t len)
{
	buf_reserve(b, len);
	for (size_t i = 0; i < len; i++) {
		char c = (char)(0x20 + rt_below(rng, 95));
		if (rt_below(rng, 20) == 0)
			c = (char)(1 + rt_below(rng, 127));
		if (c == '\r' || c == '\n')
			c = '_';
		b->p[b->n++] = c;
	}
}

static void add_nasty(struct buf *b, uint64_t *rng, unsigned forbid)
{
	const struct piece *pc;

	do
		pc = &nasty[rt_below(rng, NASTY_COUNT)];
	while (!piece_allowed(pc, forbid));
	buf_add(b, pc->s, pc->n);
}

static void add_text(struct buf *b, uint64_t *rng, size_t pieces, unsigned forbid)
{
	for (size_t i = 0; i < pieces; i++) {
		if (rt_below(rng, 100) < 45)
			add_word(b, rng, 1 + rt_below(rng, 12));
		else
			add_nasty(b, rng, forbid);
	}
}

static void add_break(struct buf *b, uint64_t *rng)
{
	const struct piece *pc = &breaks[rt_below(rng, sizeof(breaks) / sizeof(breaks[0]))];

	buf_add(b, pc->s, pc->n);
}

/* A line of 10..100 KB, sometimes broken once: the bulk path of scanners. */
static void add_long_line(struct buf *b, uint64_t *rng)
{
	size_t len = 10000 + rt_below(rng, 90000);

	add_word(b, rng, len);
	if (rt_below(rng, 2))
		buf_insert(b, b->n - rt_below(rng, len), "\r\n", 1 + rt_below(rng, 2));
}

static void gen_data(struct buf *b, uint64_t *rng)
{
	if (rt_below(rng, 10) == 0)
		add_break(b, rng);
	if (rt_below(rng, 10) == 0)
		buf_add(b, "   ", 1 + rt_below(rng, 3));
	if (rt_below(rng, 300) == 0)
		add_long_line(b, rng);
	add_text(b, rng, rt_below(rng, 25), 0);
	if (rt_below(rng, 10) == 0)
		add_break(b, rng);
}

/* Storage behind the pointers of one generated event. */
struct gen {
	struct buf id, type, data;
	struct sse_event ev;
	unsigned flags;
};

static void gen_free(struct gen *g)
{
	buf_free(&g->id);
	buf_free(&g->type);
	buf_free(&g->data);
}

/* Point ev at the buffers only now: generation may move them. */
static void gen_fill_event(struct gen *g, int has_id, int has_type, int has_data)
{
	g->ev.id = has_id ? (g->id.p ? g->id.p : "") : NULL;
	g->ev.id_len = has_id ? g->id.n : 0;
	g->ev.type = has_type ? (g->type.p ? g->type.p : "") : NULL;
	g->ev.type_len = has_type ? g->type.n : 0;
	g->ev.data = has_data ? (g->data.p ? g->data.p : "") : NULL;
	g->ev.data_len = has_data ? g->data.n : 0;
}

static long gen_retry(uint64_t *rng)
{
	size_t r = rt_below(rng, 100);

	if (r < 70)
		return SSE_RETRY_NONE;
	if (r < 75)
		return 0;
	if (r < 80)
		return SSE_RETRY_MAX;
	return (long)rt_below(rng, (size_t)SSE_RETRY_MAX + 1);
}

/* A valid event: ids never hold CR, LF or NUL, types never CR or LF. */
static void gen_valid(struct gen *g, uint64_t *rng)
{
	size_t r_id = rt_below(rng, 100), r_type = rt_below(rng, 100);
	size_t r_data = rt_below(rng, 100);

	g->id.n = g->type.n = g->data.n = 0;
	if (r_id >= 35)
		add_text(&g->id, rng, 1 + rt_below(rng, 8), NO_BREAKS | NO_NUL);
	if (r_type >= 45)
		add_text(&g->type, rng, 1 + rt_below(rng, 4), NO_BREAKS);
	if (r_data >= 13)
		gen_data(&g->data, rng);
	g->ev.retry = gen_retry(rng);
	g->flags = rt_below(rng, 2) ? SSE_ENCODE_STRICT_UTF8 : 0;
	gen_fill_event(g, r_id >= 25, r_type >= 40, r_data >= 8);
}

/* Insert at a character boundary, so the bad bytes stay bad on their own. */
static void insert_at_boundary(struct buf *b, uint64_t *rng, const char *s, size_t n)
{
	size_t at = b->n ? rt_below(rng, b->n + 1) : 0;

	while (at < b->n && ((unsigned char)b->p[at] & 0xc0) == 0x80)
		at++;
	buf_insert(b, at, s, n);
}

static struct buf *pick_text(struct gen *g, uint64_t *rng, int *has_id, int *has_type,
			     int *has_data)
{
	switch (rt_below(rng, 3)) {
	case 0:
		*has_id = 1;
		return &g->id;
	case 1:
		*has_type = 1;
		return &g->type;
	default:
		*has_data = 1;
		return &g->data;
	}
}

/* Put one invalid UTF-8 sequence into the id, type or data of g. */
static void inject_bad_utf8(struct gen *g, uint64_t *rng)
{
	int has_id = g->ev.id != NULL, has_type = g->ev.type != NULL;
	int has_data = g->ev.data != NULL;
	const struct piece *bad = &bad_utf8[rt_below(rng, BAD_UTF8_COUNT)];
	struct buf *b = pick_text(g, rng, &has_id, &has_type, &has_data);

	insert_at_boundary(b, rng, bad->s, bad->n);
	gen_fill_event(g, has_id, has_type, has_data);
}

/* ---- failure reports ----------------------------------------------------- */

static uint64_t replay_seed(int *set)
{
	const char *s = getenv("SSE_RT_SEED");

	*set = s != NULL && *s != '\0';
	return *set ? strtoull(s, NULL, 0) : 0;
}

static void report_diff(uint64_t seed, const struct rt_log *want, const struct rt_log *got,
			size_t at)
{
	fprintf(stderr, "roundtrip: stream seed 0x%016llx differs at record %zu\n",
		(unsigned long long)seed, at);
	fprintf(stderr, " expected (WHATWG model):\n");
	rt_record_print(stderr, want, at);
	fprintf(stderr, " parser reported:\n");
	rt_record_print(stderr, got, at);
	ck_abort_msg("stream seed 0x%016llx: parser differs from the model at record %zu "
		     "(rerun with SSE_RT_SEED=0x%016llx)",
		     (unsigned long long)seed, at, (unsigned long long)seed);
}

static int untouched(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] != SENTINEL)
			return 0;
	return 1;
}

/* ---- one stream ---------------------------------------------------------- */

/* Encode ev at the end of wire, exactly sized, and prove the encoder wrote
 * exactly what sse_encode_size() promised and not a byte past it. */
static void encode_append(struct buf *wire, const struct gen *g, uint64_t seed)
{
	size_t size = 0, written = 0;
	int rc = sse_encode_size(&g->ev, g->flags, &size);

	if (rc != 0)
		ck_abort_msg("seed 0x%016llx: sse_encode_size refused a valid event: %d",
			     (unsigned long long)seed, rc);
	buf_reserve(wire, size + GUARD);
	memset(wire->p + wire->n, SENTINEL, size + GUARD);
	rc = sse_encode(&g->ev, g->flags, wire->p + wire->n, size + GUARD, &written);
	if (rc != 0 || written != size)
		ck_abort_msg("seed 0x%016llx: sse_encode rc %d, wrote %zu, size said %zu",
			     (unsigned long long)seed, rc, written, size);
	if (!untouched(wire->p + wire->n + size, GUARD))
		ck_abort_msg("seed 0x%016llx: sse_encode wrote past the size it reported",
			     (unsigned long long)seed);
	wire->n += size;
}

static void comment_append(struct buf *wire, struct buf *text, uint64_t *rng,
			   struct rt_log *want, uint64_t seed)
{
	unsigned flags = rt_below(rng, 2) ? SSE_ENCODE_STRICT_UTF8 : 0;
	size_t size = 0, written = 0;
	int rc;

	text->n = 0;
	add_text(text, rng, rt_below(rng, 6), 0);
	rc = sse_comment_size(text->p, text->n, flags, &size);
	if (rc == 0) {
		buf_reserve(wire, size);
		rc = sse_encode_comment(text->p, text->n, flags, wire->p + wire->n, size,
					&written);
	}
	if (rc != 0 || written != size)
		ck_abort_msg("seed 0x%016llx: comment rc %d, wrote %zu, size said %zu",
			     (unsigned long long)seed, rc, written, size);
	wire->n += size;
	rt_client_comment(text->p, text->n, want);
}

struct stream_opts {
	int events;
	int bad_utf8; /* put invalid UTF-8 in every event, encode non-strict */
};

static void check_stream(uint64_t seed, const struct stream_opts *o)
{
	uint64_t rng = seed;
	struct buf wire = {0}, ctext = {0};
	struct gen g = {0};
	struct rt_client client;
	struct rt_log want, got;
	size_t at;
	int rc;

	rt_client_init(&client);
	rt_log_init(&want);
	rt_log_init(&got);
	for (int i = 0; i < o->events; i++) {
		gen_valid(&g, &rng);
		if (o->bad_utf8) {
			inject_bad_utf8(&g, &rng);
			g.flags = 0;
		}
		encode_append(&wire, &g, seed);
		rt_client_event(&client, &g.ev, &want);
		if (rt_below(&rng, 10) == 0)
			comment_append(&wire, &ctext, &rng, &want, seed);
	}
	rt_client_end(&client, &want);
	rc = rt_parse_chunked(wire.p, wire.n, (int)rt_below(&rng, 4), &rng, &got);
	if (rc != 0)
		ck_abort_msg("stream seed 0x%016llx: parser failed: %d (%s)",
			     (unsigned long long)seed, rc, sse_strerror(rc));
	at = rt_log_diff(&want, &got);
	if (at != SIZE_MAX)
		report_diff(seed, &want, &got, at);
	rt_log_free(&want);
	rt_log_free(&got);
	rt_client_free(&client);
	gen_free(&g);
	buf_free(&ctext);
	buf_free(&wire);
}

static uint64_t stream_seed(int base, int stream)
{
	uint64_t s = base_seeds[base] ^ ((uint64_t)stream << 40);

	return rt_rand(&s);
}

static void check_streams(int base, const struct stream_opts *o)
{
	int set;
	uint64_t only = replay_seed(&set);

	if (set) {
		if (base == 0)
			check_stream(only, o);
		return;
	}
	for (int s = 0; s < STREAMS_PER_SEED; s++)
		check_stream(stream_seed(base, s), o);
}

START_TEST(test_roundtrip_valid_events_reach_client_as_standard_says)
{
	struct stream_opts o = {EVENTS_PER_STREAM, 0};

	check_streams(_i, &o);
}
END_TEST

START_TEST(test_roundtrip_invalid_utf8_passes_raw_when_not_strict)
{
	/* The parser does not decode: without strict mode bytes go through. */
	struct stream_opts o = {10, 1};

	check_streams(_i, &o);
}
END_TEST

/* ---- invalid events ------------------------------------------------------ */

enum fault {
	F_ID_CR, F_ID_LF, F_ID_NUL, F_TYPE_CR, F_TYPE_LF, F_RETRY_LOW, F_RETRY_HIGH,
	F_UTF8, F_NULL_PTR, F_COUNT
};

static void inject_byte(struct gen *g, uint64_t *rng, struct buf *b, char c)
{
	char s[1] = {c};

	insert_at_boundary(b, rng, s, 1);
	gen_fill_event(g, g->ev.id || b == &g->id, g->ev.type || b == &g->type,
		       g->ev.data != NULL);
}

static long retry_too_low(uint64_t *rng)
{
	static const long fixed[] = {-2, -3, -1000, LONG_MIN};

	if (rt_below(rng, 2))
		return fixed[rt_below(rng, 4)];
	return -2 - (long)rt_below(rng, (size_t)SSE_RETRY_MAX);
}

static long retry_too_high(uint64_t *rng)
{
#if LONG_MAX > 2147483647L
	static const long fixed[] = {SSE_RETRY_MAX + 1L, LONG_MAX};

	if (rt_below(rng, 2))
		return fixed[rt_below(rng, 2)];
	return SSE_RETRY_MAX + 1L + (long)(rt_rand(rng) >> 2);
#else
	return retry_too_low(rng); /* no long exceeds SSE_RETRY_MAX here */
#endif
}

/* A length without its pointer: the one SSE_ERR_INVALID an event can have. */
static void null_with_length(struct gen *g, uint64_t *rng)
{
	size_t len = 1 + rt_below(rng, 10);

	switch (rt_below(rng, 3)) {
	case 0:
		g->ev.id = NULL, g->ev.id_len = len;
		break;
	case 1:
		g->ev.type = NULL, g->ev.type_len = len;
		break;
	default:
		g->ev.data = NULL, g->ev.data_len = len;
	}
}

static void inject_fault(struct gen *g, uint64_t *rng, enum fault f)
{
	switch (f) {
	case F_ID_CR:
	case F_ID_LF:
	case F_ID_NUL:
		inject_byte(g, rng, &g->id, f == F_ID_CR ? '\r' : f == F_ID_LF ? '\n' : '\0');
		break;
	case F_TYPE_CR:
	case F_TYPE_LF:
		inject_byte(g, rng, &g->type, f == F_TYPE_CR ? '\r' : '\n');
		break;
	case F_RETRY_LOW:
		g->ev.retry = retry_too_low(rng);
		break;
	case F_RETRY_HIGH:
		g->ev.retry = retry_too_high(rng);
		break;
	case F_UTF8:
		inject_bad_utf8(g, rng);
		g->flags = SSE_ENCODE_STRICT_UTF8;
		break;
	default:
		null_with_length(g, rng);
	}
}

/* Room for any encoding of the event: a byte of data can cost a whole
 * "data:\n" line, and the fields add less than 64 bytes. */
static size_t generous_cap(const struct sse_event *ev)
{
	return 64 + (ev->id ? ev->id_len : 0) + (ev->type ? ev->type_len : 0) +
	       7 * (ev->data ? ev->data_len : 0);
}

static void check_refused(const struct gen *g, unsigned faults, uint64_t seed)
{
	size_t size = 0x5a5a5a5a, written = 0x5a5a5a5a;
	size_t cap = generous_cap(&g->ev);
	char *out = malloc(cap);
	int rc_size, rc;

	ck_assert_ptr_nonnull(out);
	memset(out, SENTINEL, cap);
	rc_size = sse_encode_size(&g->ev, g->flags, &size);
	rc = sse_encode(&g->ev, g->flags, out, cap, &written);
	if (!rt_fault_allows(faults, rc_size) || rc != rc_size)
		ck_abort_msg("seed 0x%016llx: faults 0x%x: sse_encode_size %d (%s), "
			     "sse_encode %d",
			     (unsigned long long)seed, faults, rc_size, sse_strerror(rc_size), rc);
	if (size != 0x5a5a5a5a || written != 0x5a5a5a5a)
		ck_abort_msg("seed 0x%016llx: a refused event set size %zu / written %zu",
			     (unsigned long long)seed, size, written);
	if (!untouched(out, cap))
		ck_abort_msg("seed 0x%016llx: a refused event wrote to the buffer",
			     (unsigned long long)seed);
	free(out);
}

START_TEST(test_roundtrip_invalid_events_are_refused_untouched)
{
	uint64_t rng = base_seeds[_i] ^ 0x1badu;
	struct gen g = {0};

	for (int i = 0; i < INVALID_PER_SEED; i++) {
		uint64_t seed = rt_rand(&rng), r = seed;
		enum fault f = (enum fault)rt_below(&r, F_COUNT);
		unsigned faults;

		gen_valid(&g, &r);
		inject_fault(&g, &r, f);
		faults = rt_event_faults(&g.ev, g.flags);
		if (faults == 0)
			ck_abort_msg("seed 0x%016llx: fault %d was not injected",
				     (unsigned long long)seed, (int)f);
		check_refused(&g, faults, seed);
	}
	gen_free(&g);
}
END_TEST

/* ---- short buffers ------------------------------------------------------- */

/* Like snprintf: too small a buffer says how much is needed, and nothing
 * is written past what the caller offered. */
static void check_short_buffer(const struct gen *g, uint64_t *rng, uint64_t seed)
{
	size_t size = 0, written = 0, cap;
	char *out;
	int rc;

	ck_assert_int_eq(sse_encode_size(&g->ev, g->flags, &size), 0);
	cap = rt_below(rng, size);
	out = malloc(size + GUARD);
	ck_assert_ptr_nonnull(out);
	memset(out, SENTINEL, size + GUARD);
	rc = sse_encode(&g->ev, g->flags, cap == 0 && rt_below(rng, 2) ? NULL : out, cap,
			&written);
	if (rc != SSE_ERR_BUFFER || written != size)
		ck_abort_msg("seed 0x%016llx: cap %zu of %zu: rc %d, written %zu",
			     (unsigned long long)seed, cap, size, rc, written);
	if (!untouched(out + cap, size + GUARD - cap))
		ck_abort_msg("seed 0x%016llx: cap %zu: sse_encode wrote past cap",
			     (unsigned long long)seed, cap);
	free(out);
}

START_TEST(test_roundtrip_short_buffer_reports_needed_size)
{
	uint64_t rng = base_seeds[_i] ^ 0x5407u;
	struct gen g = {0};

	for (int i = 0; i < 500; i++) {
		uint64_t seed = rt_rand(&rng), r = seed;

		gen_valid(&g, &r);
		check_short_buffer(&g, &r, seed);
	}
	gen_free(&g);
}
END_TEST

/* ---- comments ------------------------------------------------------------ */

/* A stream of comments alone: each line arrives as its own comment. */
START_TEST(test_roundtrip_comments_arrive_line_by_line)
{
	uint64_t rng = base_seeds[_i] ^ 0xc0eeu;

	for (int s = 0; s < 20; s++) {
		uint64_t seed = rt_rand(&rng), r = seed;
		struct buf wire = {0}, text = {0};
		struct rt_log want, got;
		size_t at;

		rt_log_init(&want);
		rt_log_init(&got);
		for (int i = 0; i < 40; i++)
			comment_append(&wire, &text, &r, &want, seed);
		rt_log_end(&want, "", 0);
		ck_assert_int_eq(rt_parse_chunked(wire.p, wire.n, (int)rt_below(&r, 4), &r, &got), 0);
		at = rt_log_diff(&want, &got);
		if (at != SIZE_MAX)
			report_diff(seed, &want, &got, at);
		rt_log_free(&want);
		rt_log_free(&got);
		buf_free(&text);
		buf_free(&wire);
	}
}
END_TEST

static void check_comment_refused(const char *text, size_t len, unsigned flags, int code)
{
	size_t size = 0x5a5a5a5a, written = 0x5a5a5a5a;
	char out[64];

	memset(out, SENTINEL, sizeof(out));
	ck_assert_int_eq(sse_comment_size(text, len, flags, &size), code);
	ck_assert_int_eq(sse_encode_comment(text, len, flags, out, sizeof(out), &written), code);
	ck_assert_uint_eq(size, 0x5a5a5a5a);
	ck_assert_uint_eq(written, 0x5a5a5a5a);
	ck_assert(untouched(out, sizeof(out)));
}

START_TEST(test_roundtrip_invalid_comments_are_refused_untouched)
{
	for (size_t i = 0; i < BAD_UTF8_COUNT; i++) {
		char text[16] = "ok ";

		memcpy(text + 3, bad_utf8[i].s, bad_utf8[i].n);
		ck_assert_int_eq(rt_comment_faults(text, 3 + bad_utf8[i].n,
						   SSE_ENCODE_STRICT_UTF8), RT_FAULT_UTF8);
		check_comment_refused(text, 3 + bad_utf8[i].n, SSE_ENCODE_STRICT_UTF8,
				      SSE_ERR_UTF8);
	}
	check_comment_refused(NULL, 3, 0, SSE_ERR_INVALID);
}
END_TEST

/* ---- the oracle itself ----------------------------------------------------- */

/* The model is only worth what its rules are: pin them to the standard's
 * own statements with hand-written cases. */
static void expect_message(const struct rt_log *log, size_t i, const char *type,
			   const char *data, const char *id)
{
	ck_assert_uint_lt(i, log->n);
	ck_assert_int_eq(log->v[i].kind, RT_MESSAGE);
	ck_assert_str_eq(log->v[i].text, type);
	ck_assert_str_eq(log->v[i].data, data);
	ck_assert_str_eq(log->v[i].id, id);
}

START_TEST(test_roundtrip_model_follows_standard)
{
	struct rt_client c;
	struct rt_log log;
	struct sse_event a = {"7", 1, NULL, 0, "a\r\nb\rc\n", 7, SSE_RETRY_NONE};
	struct sse_event b = {NULL, 0, "", 0, "", 0, 3000};
	struct sse_event c_ = {"", 0, "x", 1, NULL, 0, SSE_RETRY_NONE};
	struct sse_event d = {NULL, 0, "tick", 4, "\r\r", 2, SSE_RETRY_NONE};

	rt_client_init(&c);
	rt_log_init(&log);
	rt_client_event(&c, &a, &log);  /* CRLF and CR arrive as LF */
	rt_client_event(&c, &b, &log);  /* the id persists; "" type is message */
	rt_client_event(&c, &c_, &log); /* no data: no event, but id reset */
	rt_client_event(&c, &d, &log);
	rt_client_comment("x\r\n\ry", 5, &log);
	rt_client_end(&c, &log);
	ck_assert_uint_eq(log.n, 8);
	expect_message(&log, 0, "message", "a\nb\nc\n", "7");
	ck_assert_int_eq(log.v[1].kind, RT_RETRY);
	ck_assert_uint_eq(log.v[1].retry, 3000);
	expect_message(&log, 2, "message", "", "7");
	expect_message(&log, 3, "tick", "\n\n", "");
	ck_assert_str_eq(log.v[4].text, " x");
	ck_assert_str_eq(log.v[5].text, "");
	ck_assert_str_eq(log.v[6].text, " y");
	ck_assert_int_eq(log.v[7].kind, RT_END);
	rt_log_free(&log);
	rt_client_free(&c);
}
END_TEST

/* ---- UTF-8 validators agree ---------------------------------------------- */

START_TEST(test_roundtrip_utf8_validators_agree)
{
	unsigned char s[8];
	uint64_t rng = 0x07f8;

	for (unsigned v = 0; v < 0x10000; v++) {
		s[0] = (unsigned char)(v >> 8), s[1] = (unsigned char)v;
		if (sse_utf8_valid((char *)s, 2) != rt_utf8_valid((char *)s, 2))
			ck_abort_msg("validators differ on %02x %02x", s[0], s[1]);
	}
	for (int i = 0; i < 200000; i++) {
		size_t n = 1 + rt_below(&rng, 8);
		for (size_t k = 0; k < n; k++)
			s[k] = (unsigned char)(rt_below(&rng, 2) ? 0x80 + rt_below(&rng, 0x80)
							      : rt_rand(&rng));
		if (sse_utf8_valid((char *)s, n) != rt_utf8_valid((char *)s, n))
			ck_abort_msg("validators differ on %02x %02x %02x %02x (len %zu)", s[0],
				     s[1], s[2], s[3], n);
	}
}
END_TEST

static Suite *roundtrip_suite(void)
{
	Suite *s = suite_create("roundtrip");
	TCase *events = tcase_create("events");
	TCase *invalid = tcase_create("invalid");
	TCase *comments = tcase_create("comments");
	TCase *oracle = tcase_create("oracle");

	tcase_set_timeout(events, 120);
	tcase_add_loop_test(events, test_roundtrip_valid_events_reach_client_as_standard_says, 0, SEEDS);
	tcase_add_loop_test(events, test_roundtrip_invalid_utf8_passes_raw_when_not_strict, 0, SEEDS);
	tcase_add_loop_test(events, test_roundtrip_short_buffer_reports_needed_size, 0, SEEDS);
	tcase_set_timeout(invalid, 120);
	tcase_add_loop_test(invalid, test_roundtrip_invalid_events_are_refused_untouched, 0, SEEDS);
	tcase_add_test(invalid, test_roundtrip_invalid_comments_are_refused_untouched);
	tcase_add_loop_test(comments, test_roundtrip_comments_arrive_line_by_line, 0, SEEDS);
	tcase_set_timeout(oracle, 60);
	tcase_add_test(oracle, test_roundtrip_model_follows_standard);
	tcase_add_test(oracle, test_roundtrip_utf8_validators_agree);
	suite_add_tcase(s, events);
	suite_add_tcase(s, invalid);
	suite_add_tcase(s, comments);
	suite_add_tcase(s, oracle);
	return s;
}

int main(void)
{
	return test_run_suite(roundtrip_suite());
}
