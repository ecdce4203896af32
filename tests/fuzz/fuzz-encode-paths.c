/*
 * libFuzzer target: every vector path of the encoder against a byte-by-byte
 * reference. The input is the text; it is encoded as data and as a comment
 * on each level lib/scan.h offers this CPU (sse__scan_force), plain and in
 * strict UTF-8 mode, and each result must equal the reference's: the same
 * size, the same bytes, nothing written past them, and in strict mode the
 * same verdict as a one-byte-at-a-time UTF-8 check. Any difference aborts.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"
#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUARD 64
#define SENTINEL 0xa5

static void die(const char *what, int level)
{
	fprintf(stderr, "fuzz-encode-paths: level %d: %s\n", level, what);
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory", -1);
	return p;
}

/* The standard's reading: split at CRLF, CR or LF; each piece becomes
 * name, a space and the piece unless it is empty, and LF. */
static size_t ref_lines(const char *name, const char *t, size_t len, char *out)
{
	size_t n = 0, start = 0, name_len = strlen(name);

	for (size_t i = 0; i <= len; i++) {
		if (i < len && t[i] != '\n' && t[i] != '\r')
			continue;
		memcpy(out + n, name, name_len);
		n += name_len;
		if (i > start) {
			out[n++] = ' ';
			memcpy(out + n, t + start, i - start);
			n += i - start;
		}
		out[n++] = '\n';
		if (i + 1 < len && t[i] == '\r' && t[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	return n;
}

/* Well-formed UTF-8 (Unicode table 3-7), one byte at a time. */
static int ref_utf8(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned c = s[i], lo, hi;
		size_t n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2
			   : c >= 0xf0 && c <= 0xf4 ? 3 : 4;

		if (n == 4)
			return 0;
		lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
		for (size_t k = 1; k <= n; k++, lo = 0x80, hi = 0xbf)
			if (i + k >= len || s[i + k] < lo || s[i + k] > hi)
				return 0;
		i += n + 1;
	}
	return 1;
}

/* One encoding: the code and size it reports, the bytes into a buffer of
 * exactly the reference's size plus a guard that must stay untouched. */
static void check_one(const char *text, size_t len, int comment, unsigned flags,
		      const char *want, size_t want_len, int level)
{
	struct sse_event ev = {NULL, 0, NULL, 0, text, len, SSE_RETRY_NONE};
	int want_rc = (flags & SSE_ENCODE_STRICT_UTF8) &&
				      !ref_utf8((const unsigned char *)text, len)
			      ? SSE_ERR_UTF8
			      : 0;
	char *out = xmalloc(want_len + GUARD);
	size_t size = 0, written = 0;
	int rc;

	memset(out, SENTINEL, want_len + GUARD);
	rc = comment ? sse_comment_size(text, len, flags, &size) : sse_encode_size(&ev, flags, &size);
	if (rc != want_rc || (rc == 0 && size != want_len))
		die("size or code differs from the reference", level);
	rc = comment ? sse_encode_comment(text, len, flags, out, want_len + GUARD, &written)
		     : sse_encode(&ev, flags, out, want_len + GUARD, &written);
	if (rc != want_rc)
		die("code differs from the reference", level);
	if (rc == 0 && (written != want_len || memcmp(out, want, want_len) != 0))
		die("bytes differ from the reference", level);
	for (size_t i = rc == 0 ? want_len : 0; i < want_len + GUARD; i++)
		if ((unsigned char)out[i] != SENTINEL)
			die("wrote past its bytes", level);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The text in a block of its own size, so a sanitizer sees any read
	 * past its end (the vector loops load whole blocks). */
	char *text = xmalloc(size);
	char *want = xmalloc(size * 6 + 8);
	size_t n;

	memcpy(text, data, size);
	for (int level = SSE__SCAN_BASE; level <= SSE__SCAN_AVX512; level++) {
		if (sse__scan_force(level) != level)
			continue; /* this CPU lacks it: nothing to check, nothing faked */
		for (unsigned flags = 0; flags <= SSE_ENCODE_STRICT_UTF8;
		     flags += SSE_ENCODE_STRICT_UTF8) {
			n = ref_lines("data:", text, size, want);
			want[n++] = '\n';
			check_one(text, size, 0, flags, want, n, level);
			n = ref_lines(":", text, size, want);
			check_one(text, size, 1, flags, want, n, level);
		}
	}
	sse__scan_force(-1);
	free(want);
	free(text);
	return 0;
}
