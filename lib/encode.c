/*
 * The encoder: an event or a comment to text/event-stream bytes, exactly as
 * the WHATWG standard's parser reads them. No allocation, no I/O.
 *
 * The data loop is the hot path. It copies the payload in 64-byte blocks
 * while it scans them, taking every line break of a block from the block's
 * mask, so a payload is read once; line by line, with exact room checks,
 * only near the ends of the input and of the room. Sizing counts lines
 * from the same masks without copying.
 *
 * Validation and writing are separate steps, so the library's own callers
 * (lib/encode.h) check an event once and then write it without a second
 * check, however many times they size or retry. tests/test-encode.c
 * builds this file a second time, renamed, to count the checks: a new
 * external name here needs its rename there.
 *
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <string.h>

#include "encode.h"
#include "scan.h"


/*
 * A field written once per line of text: "data:" or ":". text holds what
 * a line break becomes, LF, the name, the colon and the space, padded to
 * eight bytes (and more, so text + 1 can be read as eight bytes too): the
 * first line's prefix is text + 1, every later line's is text, and either
 * goes out as one store. The space is dropped before an empty line.
 */
struct line_field {
	char text[16];
	size_t brk_len; /* LF, name and colon: the prefix after a break, no space */
};

static const struct line_field data_field = {"\ndata: ", 6};
static const struct line_field comment_field = {"\n: ", 2};

/* Room the block loop wants before a block: each of up to 64 breaks adds
 * at most 6 bytes ("\ndata: " for one LF), and a break's stores reach 64
 * bytes past the block's end (see put_blocks). */
#define BLOCK_ROOM (64 * 6 + 192)
/* Input the block loop leaves to the line loop: the line after a break is
 * loaded as 64 bytes from up to 64 bytes into the block, and the byte after
 * the block is looked at, so 129 bytes must be left to read. */
#define BLOCK_TAIL 128
/* How far ahead of its stores the block loop fetches output lines. */
#define BLOCK_PREFETCH 512

/* Saturating add: SIZE_MAX stands for "does not fit". */
static size_t size_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static int is_break(char c)
{
	return (c == '\n') | (c == '\r');
}

/* Step over one line break: CRLF counts as one. */
static const char *skip_break(const char *p, const char *end)
{
	if (*p == '\r' && p + 1 < end && p[1] == '\n')
		return p + 2;
	return p + 1;
}

/* Encoded size of one line: "prefix", then " line" unless empty, then LF. */
static size_t line_size(const struct line_field *f, size_t len)
{
	return f->brk_len - 1 + (len ? size_add(len, 1) : 0) + 1;
}

/* Size of text written as one field line per line of text. */
static size_t lines_size(const struct line_field *f, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t total = 0;

	for (;;) {
		const char *brk = sse__find_break(p, end);

		total = size_add(total, line_size(f, (size_t)(brk - p)));
		if (brk == end)
			return total;
		p = skip_break(brk, end);
	}
}

#if SSE__HAVE_SSE2
/* What sizing needs of a text: its line breaks (CRLF counts once), the
 * bytes they take, and how many of its lines are not empty. */
struct line_counts {
	size_t breaks, brk_bytes, nonempty;
	uint64_t brk_carry, cr_carry; /* bit 0: the byte before the block is a break, a CR */
};

#define POPCOUNT(x) ((size_t)__builtin_popcountll(x))

/*
 * Count one block from its masks; valid has a bit for each of its bytes.
 * A break starts at every CR or LF except the LF of a CRLF; a line that is
 * not empty is a run of other bytes, so it starts at such a byte that
 * follows a break (the text's start counts as one: brk_carry begins at 1).
 */
static ALWAYS_INLINE void count_block(struct line_counts *c, struct sse__masks64 mk,
				      uint64_t valid)
{
	uint64_t after_brk = mk.brk << 1 | c->brk_carry;
	uint64_t after_cr = mk.cr << 1 | c->cr_carry;

	if (mk.brk == 0) { /* most blocks: inside one line */
		c->nonempty += (size_t)c->brk_carry;
		c->brk_carry = c->cr_carry = 0;
		return;
	}
	c->breaks += POPCOUNT(mk.brk & ~(~mk.cr & after_cr));
	c->brk_bytes += POPCOUNT(mk.brk);
	c->nonempty += POPCOUNT(~mk.brk & after_brk & valid);
	c->brk_carry = mk.brk >> 63;
	c->cr_carry = mk.cr >> 63;
}

/* Count [p, p + len) 64 bytes a step; the last partial block is loaded
 * to end at the text's end when the text is that long. The counts live
 * in a local: stored through a pointer, they would be written back on
 * every block, since the text's bytes might alias them. */
static ALWAYS_INLINE struct line_counts count_loop(const char *p, size_t len, int level)
{
	struct line_counts c = {0, 0, 0, 1, 0};
	const char *end = p + len;
	size_t rest;

	for (; end - p >= 64; p += 64)
		count_block(&c, sse__masks64(p, level), ~(uint64_t)0);
	rest = (size_t)(end - p);
	if (rest == 0)
		return c;
	if (len >= 64) {
		struct sse__masks64 mk = sse__masks64(end - 64, level);

		mk.brk >>= 64 - rest;
		mk.cr >>= 64 - rest;
		count_block(&c, mk, ((uint64_t)1 << rest) - 1);
	} else {
		count_block(&c, sse__masks_short(p, rest), ((uint64_t)1 << rest) - 1);
	}
	return c;
}

/* count_loop once per level; popcnt too from AVX2 on (sse__scan_level
 * checks it), since without it each count is a libgcc call. */
static struct line_counts count_base(const char *p, size_t len)
{
	return count_loop(p, len, SSE__SCAN_BASE);
}

#if SSE__HAVE_AVX2
__attribute__((target("avx2,popcnt"))) static struct line_counts count_avx2(const char *p,
									    size_t len)
{
	return count_loop(p, len, SSE__SCAN_AVX2);
}
#endif

#if SSE__HAVE_AVX512
__attribute__((target("avx2,avx512f,avx512bw,popcnt"))) static struct line_counts
count_avx512(const char *p, size_t len)
{
	return count_loop(p, len, SSE__SCAN_AVX512);
}
#endif

static struct line_counts count_lines(const char *p, size_t len)
{
	switch (sse__scan_level()) {
#if SSE__HAVE_AVX512
	case SSE__SCAN_AVX512:
		return count_avx512(p, len);
#endif
#if SSE__HAVE_AVX2
	case SSE__SCAN_AVX2:
		return count_avx2(p, len);
#endif
	default:
		return count_base(p, len);
	}
}
#endif

/*
 * lines_size, from counts: each line costs its prefix and LF (brk_len
 * bytes), its text, and a space if it has text. The counting pass runs
 * while the result cannot overflow (any text up to SIZE_MAX / 8 bytes).
 */
static size_t text_size(const struct line_field *f, const char *text, size_t len)
{
#if SSE__HAVE_SSE2
	if (len <= (SIZE_MAX - 64) / 8) {
		struct line_counts c = count_lines(text, len);

		return (c.breaks + 1) * f->brk_len + (len - c.brk_bytes) + c.nonempty;
	}
#endif
	return lines_size(f, text, len);
}

/* Copy n bytes: a few fixed-size moves for the short strings of names and
 * ids (a memcpy call of variable size costs more than the copy). */
static ALWAYS_INLINE void copy_short(char *d, const char *s, size_t n)
{
	if (n > 16) {
		memcpy(d, s, n);
	} else if (n >= 8) {
		uint64_t a, b;

		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	} else if (n >= 4) {
		uint32_t a, b;

		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(d, &a, 4);
		memcpy(d + n - 4, &b, 4);
	} else if (n > 0) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/*
 * Write the prefix pre (len bytes, then a space unless the line at p is
 * empty). The eight-byte store may reach past the prefix; with seven bytes
 * of input left, those bytes lie inside the rest of the output (at least
 * the line and its LF), which is written later.
 */
static ALWAYS_INLINE int put_prefix(char **dst, const char *dst_end, const char *pre, size_t len,
				    const char *p, const char *end)
{
	size_t n = len + !(p == end || is_break(*p));

	if (end - p >= 7 && dst_end - *dst >= 8)
		memcpy(*dst, pre, 8);
	else if ((size_t)(dst_end - *dst) >= n)
		copy_short(*dst, pre, n);
	else
		return -1;
	*dst += n;
	return 0;
}

#if SSE__HAVE_SSE2
/*
 * The break at brk, in the 64-byte block at p whose bytes were stored from
 * *q: the prefix (pre, eight bytes) goes where the break was, *q moves by
 * what the break adds, and the block's rest is stored again past the
 * prefix. Returns the break's length: 1, or 2 for CRLF.
 */
static ALWAYS_INLINE size_t put_break(char **q, const char *p, const char *brk, uint64_t pre,
				      size_t brk_len, int level)
{
	size_t blen = 1 + ((brk[0] == '\r') & (brk[1] == '\n'));
	const char *next = brk + blen;
	size_t space = !is_break(*next);

	memcpy(*q + (brk - p), &pre, 8);
	*q += brk_len + space - blen;
	sse__move64(*q + (next - p), next, level);
	return blen;
}

/* Every break of the block at p (mask m); 0, or 1 when a CRLF crosses the
 * block's end: then *q is its CR's place and the caller takes it. */
static ALWAYS_INLINE int put_breaks(char **q, const char *p, uint64_t m, uint64_t pre,
				    size_t brk_len, int level)
{
	do {
		const char *brk = p + __builtin_ctzll(m);
		size_t blen;

		if (m == (uint64_t)1 << 63 && brk[0] == '\r' && brk[1] == '\n') {
			*q += 63;
			return 1;
		}
		blen = put_break(q, p, brk, pre, brk_len, level);
		m &= m - 1;
		m &= m - (blen - 1); /* the LF of a CRLF */
	} while (m);
	return 0;
}

/*
 * The common block: its breaks are all LF, each followed by a line that is
 * not empty (c64 is the byte after the block), so every one is the same:
 * put_lfs handles it with no look at any byte, which halves the cost of a
 * break (the loads of put_break feed the next store's address).
 */
static ALWAYS_INLINE int lf_only(struct sse__masks64 mk, char c64)
{
	return mk.cr == 0 && (mk.brk & (mk.brk >> 1)) == 0 && !((mk.brk >> 63) && is_break(c64));
}

/* put_break for the LF-only block: the prefix with its space in place of
 * the LF, and the rest stored again behind it. */
static ALWAYS_INLINE void put_lfs(char **q, const char *p, uint64_t m, uint64_t pre,
				  size_t brk_len, int level)
{
	do {
		unsigned k = (unsigned)__builtin_ctzll(m);

		memcpy(*q + k, &pre, 8);
		*q += brk_len;
		sse__move64(*q + k + 1, p + k + 1, level);
		m &= m - 1;
	} while (m);
}

/*
 * The bulk of put_lines: 64 bytes of input a step, each block loaded and
 * scanned once however many lines it holds; every break in it is taken
 * from its mask. p moves by 64 whatever the data, so no load waits for the
 * previous block's scan.
 *
 * q is where p's byte goes were there no break in the block; a break moves
 * it by the bytes it adds (its prefix less its one or two bytes). Stores
 * run past the bytes they are for, but always by less than the input left
 * after their source (BLOCK_TAIL), so they land inside the final output
 * (each input byte yields one output byte or more) and are overwritten in
 * order; BLOCK_ROOM bounds them for the room test.
 *
 * Returns where it stopped, inside a line whose prefix and earlier bytes
 * are written; *dst is that byte's place.
 */
static ALWAYS_INLINE const char *put_blocks(char **dst, const char *dst_end,
					    const struct line_field *f, const char *p,
					    const char *end, int level)
{
	const size_t brk_len = f->brk_len;
	char *q = *dst;
	uint64_t pre;

	memcpy(&pre, f->text, 8);
	while (end - p > BLOCK_TAIL && dst_end - q >= BLOCK_ROOM) {
		struct sse__masks64 mk;

		/* Stores that straddle cache lines cost far more when the
		 * lines are not in L1 yet: fetch them ahead (within room). */
		__builtin_prefetch(q + BLOCK_PREFETCH, 1);
		mk = sse__copy64(q, p, level);
		if (mk.brk) {
			if (lf_only(mk, p[64])) {
				put_lfs(&q, p, mk.brk, pre, brk_len, level);
			} else if (put_breaks(&q, p, mk.brk, pre, brk_len, level)) {
				/* A CRLF across the block's end: the caller
				 * takes it, so p keeps its fixed stride. */
				*dst = q;
				return p + 63;
			}
		}
		p += 64;
		q += 64;
	}
	*dst = q;
	return p;
}
#endif

/*
 * The line loop, written once and compiled once per level so the vector
 * code inlines into it: the block loop while the input is long and
 * the room ample, then line by line with exact room checks. Returns 0, or
 * -1 when room ran out.
 */
static ALWAYS_INLINE int lines_loop(char **dst, const char *dst_end, const struct line_field *f,
				    const char *p, const char *end, int level)
{
	char *q = *dst;

	if (put_prefix(&q, dst_end, f->text + 1, f->brk_len - 1, p, end))
		return -1;
	for (;;) {
		const char *brk;

#if SSE__HAVE_SSE2
		p = put_blocks(&q, dst_end, f, p, end, level);
#endif
		brk = sse__copy_line(&q, dst_end, p, end, level);
		if (brk == end)
			break;
		if (!is_break(*brk))
			return -1; /* stopped for room, not at a line end */
		p = skip_break(brk, end);
		if (put_prefix(&q, dst_end, f->text, f->brk_len, p, end))
			return -1;
	}
	if (q == dst_end)
		return -1;
	*q++ = '\n';
	*dst = q;
	return 0;
}

static int put_lines_base(char **dst, const char *dst_end, const struct line_field *f,
			  const char *p, const char *end)
{
	return lines_loop(dst, dst_end, f, p, end, SSE__SCAN_BASE);
}

#if SSE__HAVE_AVX2
SSE__TARGET_AVX2 static int put_lines_avx2(char **dst, const char *dst_end,
					   const struct line_field *f, const char *p,
					   const char *end)
{
	return lines_loop(dst, dst_end, f, p, end, SSE__SCAN_AVX2);
}
#endif

#if SSE__HAVE_AVX512
SSE__TARGET_AVX512 static int put_lines_avx512(char **dst, const char *dst_end,
					       const struct line_field *f, const char *p,
					       const char *end)
{
	return lines_loop(dst, dst_end, f, p, end, SSE__SCAN_AVX512);
}
#endif

/* Write text as field lines into [*dst, dst_end): 0, or -1 if it did not
 * fit. Short text stays on the base level: no vector of a wider one fits. */
static int put_lines(char **dst, const char *dst_end, const struct line_field *f,
		     const char *text, size_t len)
{
	switch (len >= 32 ? sse__scan_level() : SSE__SCAN_BASE) {
#if SSE__HAVE_AVX512
	case SSE__SCAN_AVX512:
		return put_lines_avx512(dst, dst_end, f, text, text + len);
#endif
#if SSE__HAVE_AVX2
	case SSE__SCAN_AVX2:
		return put_lines_avx2(dst, dst_end, f, text, text + len);
#endif
	default:
		return put_lines_base(dst, dst_end, f, text, text + len);
	}
}

static int text_ok(const char *p, size_t len)
{
	return p != NULL || len == 0;
}

/* sse_utf8_valid from the first byte that is not ASCII: the vector skip
 * is several times faster on the ASCII text most payloads are. No UTF-8
 * sequence starts before that byte, so none is cut. */
static int utf8_ok(const char *s, size_t len)
{
	const char *end, *p;

	if (s == NULL) /* len is 0: text_ok has passed */
		return 1;
	end = s + len;
	p = sse__skip_ascii(s, end);
	return p == end || sse_utf8_valid(p, (size_t)(end - p));
}

static int check_utf8(const struct sse_event *ev)
{
	if (!utf8_ok(ev->id, ev->id_len) || !utf8_ok(ev->type, ev->type_len) ||
	    !utf8_ok(ev->data, ev->data_len))
		return SSE_ERR_UTF8;
	return 0;
}

/*
 * SSE_ERR_ID_LINEBREAK or SSE_ERR_ID_NUL for a bad byte of an id, 0 if none.
 * Ids and types are short: one pass with one compare per byte beats
 * three library calls. A line break is reported before a NUL.
 */
static int scan_name(const char *s, size_t len, int nul_code)
{
	int rc = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > '\r')
			continue;
		if (c == '\n' || c == '\r')
			return SSE_ERR_ID_LINEBREAK;
		if (c == 0)
			rc = nul_code;
	}
	return rc;
}

/* Everything that makes an event unrepresentable, before a byte is written. */
static int check_event(const struct sse_event *ev, unsigned flags)
{
	int rc;

	if (!text_ok(ev->id, ev->id_len) || !text_ok(ev->type, ev->type_len) ||
	    !text_ok(ev->data, ev->data_len))
		return SSE_ERR_INVALID;
	if (ev->id && (rc = scan_name(ev->id, ev->id_len, SSE_ERR_ID_NUL)) != 0)
		return rc;
	/* NUL is allowed in a type: the standard's parser keeps it. */
	if (ev->type && scan_name(ev->type, ev->type_len, 0) != 0)
		return SSE_ERR_TYPE_LINEBREAK;
	if (ev->retry != SSE_RETRY_NONE && (ev->retry < 0 || ev->retry > SSE_RETRY_MAX))
		return SSE_ERR_RETRY;
	if (flags & SSE_ENCODE_STRICT_UTF8)
		return check_utf8(ev);
	return 0;
}


/* Size of a "name: value\n" line; an empty value is written "name:\n". */
static size_t field_size(size_t name_len, size_t value_len)
{
	return size_add(name_len + 1, value_len ? size_add(value_len, 1) : 0) + 1;
}

/* Size of the fields before the data; retry_len is 0 for no retry field
 * (the digits are formatted once, by the caller, for sizing and writing). */
static size_t head_size(const struct sse_event *ev, size_t retry_len)
{
	size_t total = 0;

	if (ev->id)
		total = size_add(total, field_size(2, ev->id_len));
	if (ev->type)
		total = size_add(total, field_size(5, ev->type_len));
	if (retry_len)
		total = size_add(total, field_size(5, retry_len));
	return total;
}

static size_t event_size(const struct sse_event *ev)
{
	char digits[SSE__U64_DIGITS];
	size_t retry_len = ev->retry != SSE_RETRY_NONE ? sse__format_u64((uint64_t)ev->retry, 10, digits) : 0;
	size_t total = size_add(head_size(ev, retry_len), 1); /* the blank line */

	if (ev->data)
		total = size_add(total, text_size(&data_field, ev->data, ev->data_len));
	return total;
}

/*
 * Write "name: value\n", or "name:\n" for an empty value; the caller has
 * checked the room. name comes with its colon and space, a constant the
 * compiler copies with plain stores; for an empty value the LF goes over
 * the space, inside the field's own bytes.
 */
static ALWAYS_INLINE void put_field(char **dst, const char *name, size_t name_len,
				    const char *value, size_t len)
{
	char *d = *dst;

	memcpy(d, name, name_len);
	d += name_len - (len == 0);
	copy_short(d, value, len);
	d += len;
	*d++ = '\n';
	*dst = d;
}

static void put_head(char **dst, const struct sse_event *ev, const char *digits, size_t retry_len)
{
	if (ev->id)
		put_field(dst, "id: ", 4, ev->id, ev->id_len);
	if (ev->type)
		put_field(dst, "event: ", 7, ev->type, ev->type_len);
	if (retry_len) { /* never empty: at least one digit */
		memcpy(*dst, "retry: ", 7);
		memcpy(*dst + 7, digits, retry_len);
		(*dst)[7 + retry_len] = '\n';
		*dst += 8 + retry_len;
	}
}

int sse_encode_size(const struct sse_event *ev, unsigned flags, size_t *size)
{
	size_t total;
	int rc;

	if (ev == NULL || size == NULL)
		return SSE_ERR_INVALID;
	rc = check_event(ev, flags);
	if (rc)
		return rc;
	total = event_size(ev);
	if (total == SIZE_MAX)
		return SSE_ERR_TOO_LARGE;
	*size = total;
	return 0;
}

/*
 * The fewest bytes ev can take: its head, the blank line, and for data
 * one "data:" line and LF with at least every byte of the data (a break
 * of one or two bytes becomes a whole line's prefix). Below it, a caller's
 * room is known to be short without writing into it.
 */
static size_t event_floor(const struct sse_event *ev, size_t retry_len)
{
	size_t total = size_add(head_size(ev, retry_len), 1);

	return ev->data ? size_add(total, size_add(ev->data_len, data_field.brk_len)) : total;
}

/*
 * Write a checked event into [buf, buf + cap): 0 and *written, or
 * SSE_ERR_BUFFER (or SSE_ERR_TOO_LARGE) and the size it needs. The room
 * test for the head is exact; the data is checked as it is copied.
 */
static int put_event(const struct sse_event *ev, char *buf, size_t cap, size_t *written)
{
	char digits[SSE__U64_DIGITS];
	size_t retry_len = 0;
	char *dst = buf;

	if (ev->retry != SSE_RETRY_NONE)
		retry_len = sse__format_u64((uint64_t)ev->retry, 10, digits);
	/* cap 0 also keeps NULL + 0 arithmetic out of the way. */
	if (event_floor(ev, retry_len) > cap)
		goto too_small;
	put_head(&dst, ev, digits, retry_len);
	if (ev->data && put_lines(&dst, buf + cap - 1, &data_field, ev->data, ev->data_len))
		goto too_small;
	*dst++ = '\n';
	*written = (size_t)(dst - buf);
	return 0;
too_small:
	*written = event_size(ev);
	return *written == SIZE_MAX ? SSE_ERR_TOO_LARGE : SSE_ERR_BUFFER;
}

int sse_encode(const struct sse_event *ev, unsigned flags, char *buf, size_t cap, size_t *written)
{
	int rc;

	if (ev == NULL || written == NULL || (buf == NULL && cap > 0))
		return SSE_ERR_INVALID;
	rc = check_event(ev, flags);
	if (rc)
		return rc;
	return put_event(ev, buf, cap, written);
}

int sse__encode_unchecked(const struct sse_event *ev, char *buf, size_t size)
{
	size_t n;
	int rc = put_event(ev, buf, size, &n);

	return rc == 0 && n == size ? 0 : SSE_ERR_BUFFER;
}

static int check_comment(const char *text, size_t len, unsigned flags)
{
	if (!text_ok(text, len))
		return SSE_ERR_INVALID;
	if ((flags & SSE_ENCODE_STRICT_UTF8) && !utf8_ok(text, len))
		return SSE_ERR_UTF8;
	return 0;
}

int sse_comment_size(const char *text, size_t len, unsigned flags, size_t *size)
{
	size_t total;
	int rc;

	if (size == NULL)
		return SSE_ERR_INVALID;
	rc = check_comment(text, len, flags);
	if (rc)
		return rc;
	total = text_size(&comment_field, text ? text : "", len);
	if (total == SIZE_MAX)
		return SSE_ERR_TOO_LARGE;
	*size = total;
	return 0;
}

/* put_event for a checked comment. Every line is ":" and LF around its
 * text, so len + 2 bytes is the least a comment takes. */
static int put_comment(const char *text, size_t len, char *buf, size_t cap, size_t *written)
{
	char *dst = buf;

	if (text == NULL)
		text = "";
	if (size_add(len, comment_field.brk_len) > cap ||
	    put_lines(&dst, buf + cap, &comment_field, text, len)) {
		*written = text_size(&comment_field, text, len);
		return *written == SIZE_MAX ? SSE_ERR_TOO_LARGE : SSE_ERR_BUFFER;
	}
	*written = (size_t)(dst - buf);
	return 0;
}

int sse_encode_comment(const char *text, size_t len, unsigned flags, char *buf, size_t cap,
		       size_t *written)
{
	int rc;

	if (written == NULL || (buf == NULL && cap > 0))
		return SSE_ERR_INVALID;
	rc = check_comment(text, len, flags);
	if (rc)
		return rc;
	return put_comment(text, len, buf, cap, written);
}

int sse__encode_comment_unchecked(const char *text, size_t len, char *buf, size_t size)
{
	size_t n;
	int rc = put_comment(text, len, buf, size, &n);

	return rc == 0 && n == size ? 0 : SSE_ERR_BUFFER;
}
