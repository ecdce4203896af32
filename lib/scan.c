/*
 * The scanning primitives that are whole functions: which vector level
 * this CPU runs, and where a line break or a byte above ASCII first occurs.
 *
 * SPDX-License-Identifier: MIT
 */
#include "scan.h"

#if SSE__HAVE_AVX2
int sse__scan_current = -1;

static int cpu_level(void)
{
	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("popcnt"))
		return SSE__SCAN_BASE;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
		return SSE__SCAN_AVX512;
	return SSE__SCAN_AVX2;
}

/* Racing callers all store the same value: relaxed is enough. */
int sse__scan_detect(void)
{
	int level = cpu_level();

	__atomic_store_n(&sse__scan_current, level, __ATOMIC_RELAXED);
	return level;
}

int sse__scan_force(int level)
{
	if (level < 0)
		return sse__scan_detect();
	if (level > cpu_level())
		return -1;
	__atomic_store_n(&sse__scan_current, level, __ATOMIC_RELAXED);
	return level;
}
#else
int sse__scan_force(int level)
{
	return level <= SSE__SCAN_BASE ? SSE__SCAN_BASE : -1;
}
#endif

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

#if SSE__HAVE_AVX512
/* 128 bytes a step: one OR of two loads holds every high bit. */
SSE__TARGET_AVX512 static const char *skip_ascii_avx512(const char *p, const char *end)
{
	while (end - p >= 128) {
		__m512i a = _mm512_loadu_si512((const void *)p);
		__m512i b = _mm512_loadu_si512((const void *)(p + 64));

		if (_mm512_movepi8_mask(_mm512_or_si512(a, b)))
			break;
		p += 128;
	}
	return p;
}
#endif

#if SSE__HAVE_AVX2
/* 64 bytes a step: one OR of two loads holds every high bit. */
SSE__TARGET_AVX2 static const char *skip_ascii_avx2(const char *p, const char *end)
{
	while (end - p >= 64) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
		__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));

		if (_mm256_movemask_epi8(_mm256_or_si256(a, b)))
			break;
		p += 64;
	}
	return p;
}
#endif

const char *sse__skip_ascii(const char *p, const char *end)
{
#if SSE__HAVE_SSE2
#if SSE__HAVE_AVX2
	if (end - p >= 64) {
		int level = sse__scan_level();

#if SSE__HAVE_AVX512
		if (level >= SSE__SCAN_AVX512)
			p = skip_ascii_avx512(p, end);
#endif
		if (level >= SSE__SCAN_AVX2)
			p = skip_ascii_avx2(p, end);
	}
#endif
	while (end - p >= 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)p));

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
#endif
	while (p < end && (unsigned char)*p < 0x80)
		p++;
	return p;
}

const char *sse__find_break(const char *p, const char *end)
{
#if SSE__HAVE_SSE2
#if SSE__HAVE_AVX2
	if (end - p >= 64 && sse__scan_level() >= SSE__SCAN_AVX2)
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
