/*
 * SPDX-License-Identifier: MIT
 */
#include "scan.h"

#if SSE__HAVE_AVX2
SSE__TARGET_AVX2 static const char *find_break_avx2(const char *p, const char *end)
{
	while (end - p >= 32) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
		unsigned m = (unsigned)_mm256_movemask_epi8(sse__break_hits256(v));

		if (m)
			return p + __builtin_ctz(m);
		p += 32;
	}
	return p;
}
#endif

const char *sse__find_break(const char *p, const char *end)
{
#if SSE__HAVE_SSE2
#if SSE__HAVE_AVX2
	if (end - p >= 64 && sse__have_avx2())
		p = find_break_avx2(p, end);
#endif
	while (end - p >= 16) {
		unsigned m = sse__break_mask16(_mm_loadu_si128((const __m128i *)(const void *)p));

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
	while (p < end && *p != '\n' && *p != '\r')
		p++;
	return p;
#else
	/* Two memchr calls would rescan to the end for LF on every CR-only
	 * line, which is quadratic; one pass is linear whatever the input. */
	while (p < end && *p != '\n' && *p != '\r')
		p++;
	return p;
#endif
}
