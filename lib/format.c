/*
 * Numbers as text: retry values, ring ids, HTTP lengths and chunk sizes.
 *
 * SPDX-License-Identifier: MIT
 */
#include "sse-private.h"

size_t sse__format_u64(uint64_t v, unsigned base, char out[SSE__U64_DIGITS])
{
	char tmp[SSE__U64_DIGITS];
	size_t n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v > 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}
