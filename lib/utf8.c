/*
 * UTF-8 validation for the encoder's strict mode (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF).
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "sse-private.h"

#define HIGH_BITS 0x8080808080808080ull

/* Skip the ASCII prefix eight bytes at a time: most SSE payloads are JSON. */
static const unsigned char *skip_ascii(const unsigned char *p, const unsigned char *end)
{
	uint64_t w;

	while (end - p >= 8) {
		memcpy(&w, p, sizeof(w));
		if (w & HIGH_BITS)
			break;
		p += 8;
	}
	while (p < end && *p < 0x80)
		p++;
	return p;
}

/* Length of the valid sequence starting at a non-ASCII lead byte, or 0. */
static size_t sequence_length(const unsigned char *p, const unsigned char *end)
{
	size_t avail = (size_t)(end - p);
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		n = 3;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		n = 4;
	else
		return 0; /* continuation byte, overlong C0/C1, or F5..FF */
	/* The second byte's range is what rules out overlongs, surrogates
	 * (ED A0..BF) and code points past U+10FFFF (F4 90..). */
	if (p[0] == 0xE0)
		lo = 0xA0;
	else if (p[0] == 0xED)
		hi = 0x9F;
	else if (p[0] == 0xF0)
		lo = 0x90;
	else if (p[0] == 0xF4)
		hi = 0x8F;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

int sse_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end;

	if (s == NULL) /* and no NULL + 0 arithmetic, which is undefined */
		return len == 0;
	end = p + len;
	for (;;) {
		size_t n;

		p = skip_ascii(p, end);
		if (p == end)
			return 1;
		n = sequence_length(p, end);
		if (n == 0)
			return 0;
		p += n;
	}
}
