/*
 * Finding line breaks (CR or LF) fast: the scanning primitives of the
 * encoder. Vector code where the compiler offers it (SSE2 on x86-64, AVX2
 * or AVX-512 chosen at run time), plain loops elsewhere.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_SCAN_H
#define SSE_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#define SSE__HAVE_SSE2 1
#endif
#if defined(__SSE2__) && defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SSE__HAVE_AVX2 1
#define SSE__HAVE_AVX512 1
#define SSE__TARGET_AVX2 __attribute__((target("avx2")))
/* AVX-512BW: byte compares into 64-bit masks, one per 64-byte block. */
#define SSE__TARGET_AVX512 __attribute__((target("avx2,avx512f,avx512bw")))
#endif

/*
 * The widest vectors the code runs with: each level's loops may use every
 * narrower one (for tails). Chosen once per process from the CPU (with
 * popcnt, which every CPU with AVX2 has: without it each count is a
 * libgcc call).
 */
enum sse__scan_level {
	SSE__SCAN_BASE,   /* SSE2 on x86-64, plain C elsewhere */
	SSE__SCAN_AVX2,   /* AVX2 and popcnt */
	SSE__SCAN_AVX512  /* AVX-512F and BW too */
};

#if SSE__HAVE_AVX2
/* The level in use, -1 until detected. Read inline: the encoder asks
 * once per call, and a call into another file costs more than the test. */
extern int sse__scan_current;
int sse__scan_detect(void);

static inline int sse__scan_level(void)
{
	int level = __atomic_load_n(&sse__scan_current, __ATOMIC_RELAXED);

	return level >= 0 ? level : sse__scan_detect();
}
#else
static inline int sse__scan_level(void)
{
	return SSE__SCAN_BASE;
}
#endif

/*
 * For tests only (they link the static library; the shared one does not
 * export it): run at level from now on, so every path can be checked on a
 * CPU that has them. Returns level, or -1 when this CPU (or this build)
 * lacks it, and then changes nothing. A negative level goes back to the
 * detected level, and returns it.
 */
int sse__scan_force(int level);

/* First CR or LF in [p, end), or end. */
const char *sse__find_break(const char *p, const char *end);

/* First byte of [p, end) above 0x7F, or end: where a UTF-8 check has
 * work to do (most SSE payloads are ASCII JSON). */
const char *sse__skip_ascii(const char *p, const char *end);

/* What the block loop learns of 64 bytes: bit i for byte i. */
struct sse__masks64 {
	uint64_t brk; /* CR or LF */
	uint64_t cr;  /* CR */
};

#if SSE__HAVE_AVX2
SSE__TARGET_AVX2 static inline __m256i sse__break_hits256(__m256i v)
{
	return _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('\n')),
			       _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\r')));
}

/* Bit i set when byte i of the 32 at p is CR or LF. */
SSE__TARGET_AVX2 static inline uint32_t sse__break_mask32(__m256i v)
{
	return (uint32_t)_mm256_movemask_epi8(sse__break_hits256(v));
}

/* Copy the 64 bytes at src to dst; return their masks. Callers look at
 * the CR mask only for blocks that hold a break, and the compiler moves
 * its computation there. */
SSE__TARGET_AVX2 static inline struct sse__masks64 sse__copy64_avx2(char *dst, const char *src)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)src);
	__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(src + 32));
	__m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
	__m256i cra = _mm256_cmpeq_epi8(a, cr), crb = _mm256_cmpeq_epi8(b, cr);
	struct sse__masks64 mk;

	_mm256_storeu_si256((__m256i *)(void *)dst, a);
	_mm256_storeu_si256((__m256i *)(void *)(dst + 32), b);
	mk.brk = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(cra, _mm256_cmpeq_epi8(a, lf))) |
		 (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_or_si256(crb, _mm256_cmpeq_epi8(b, lf)))
			 << 32;
	mk.cr = (uint32_t)_mm256_movemask_epi8(cra) |
		(uint64_t)(uint32_t)_mm256_movemask_epi8(crb) << 32;
	return mk;
}

/* The masks of the 64 bytes at src, read only (sizing: nothing to copy). */
SSE__TARGET_AVX2 static inline struct sse__masks64 sse__masks64_avx2(const char *src)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)src);
	__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(src + 32));
	__m256i cr = _mm256_set1_epi8('\r');
	__m256i cra = _mm256_cmpeq_epi8(a, cr), crb = _mm256_cmpeq_epi8(b, cr);
	struct sse__masks64 mk;

	mk.brk = sse__break_mask32(a) | (uint64_t)sse__break_mask32(b) << 32;
	mk.cr = (uint32_t)_mm256_movemask_epi8(cra) |
		(uint64_t)(uint32_t)_mm256_movemask_epi8(crb) << 32;
	return mk;
}

/* Copy the 64 bytes at src to dst, unscanned. */
SSE__TARGET_AVX2 static inline void sse__move64_avx2(char *dst, const char *src)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)src);
	__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(src + 32));

	_mm256_storeu_si256((__m256i *)(void *)dst, a);
	_mm256_storeu_si256((__m256i *)(void *)(dst + 32), b);
}

/*
 * The AVX2 part of sse__copy_line: 32 bytes a step while 32 bytes of input
 * and of room are left, then the line's last bytes with one load that ends
 * at end, overlapping bytes already copied (written again, same values).
 * Returns the break, end, or where it stopped for want of bytes or room.
 */
SSE__TARGET_AVX2 static inline const char *sse__copy_line_avx2(char **dst, const char *dst_end,
								const char *src, const char *end)
{
	const char *start = src;
	char *d = *dst;

	while (end - src >= 32 && dst_end - d >= 32) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)src);
		uint32_t m = sse__break_mask32(v);

		_mm256_storeu_si256((__m256i *)(void *)d, v);
		if (m) {
			*dst = d + __builtin_ctz(m);
			return src + __builtin_ctz(m);
		}
		src += 32;
		d += 32;
	}
	if (src < end && end - start >= 32 && dst_end - d >= end - src) {
		size_t rest = (size_t)(end - src), back = 32 - rest; /* back: copied already */
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(end - 32));
		uint32_t m = sse__break_mask32(v) >> back;
		size_t n = m ? (size_t)__builtin_ctz(m) : rest;

		_mm256_storeu_si256((__m256i *)(void *)(d - back), v);
		src += n;
		d += n;
	}
	*dst = d;
	return src;
}
#endif

#if SSE__HAVE_AVX512
/* The AVX-512 primitives: one vector is a whole block, and its compares
 * give the block's masks as they are. */
SSE__TARGET_AVX512 static inline uint64_t sse__break_mask64(__m512i v)
{
	return _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n')) |
	       _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
}

SSE__TARGET_AVX512 static inline struct sse__masks64 sse__masks64_avx512(const char *src)
{
	__m512i v = _mm512_loadu_si512((const void *)src);
	struct sse__masks64 mk;

	mk.cr = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
	mk.brk = mk.cr | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
	return mk;
}

SSE__TARGET_AVX512 static inline struct sse__masks64 sse__copy64_avx512(char *dst, const char *src)
{
	__m512i v = _mm512_loadu_si512((const void *)src);
	struct sse__masks64 mk;

	_mm512_storeu_si512((void *)dst, v);
	mk.cr = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
	mk.brk = mk.cr | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
	return mk;
}

SSE__TARGET_AVX512 static inline void sse__move64_avx512(char *dst, const char *src)
{
	_mm512_storeu_si512((void *)dst, _mm512_loadu_si512((const void *)src));
}

/* sse__copy_line_avx2 64 bytes a step. */
SSE__TARGET_AVX512 static inline const char *sse__copy_line_avx512(char **dst, const char *dst_end,
								    const char *src, const char *end)
{
	const char *start = src;
	char *d = *dst;

	while (end - src >= 64 && dst_end - d >= 64) {
		__m512i v = _mm512_loadu_si512((const void *)src);
		uint64_t m = sse__break_mask64(v);

		_mm512_storeu_si512((void *)d, v);
		if (m) {
			*dst = d + __builtin_ctzll(m);
			return src + __builtin_ctzll(m);
		}
		src += 64;
		d += 64;
	}
	if (src < end && end - start >= 64 && dst_end - d >= end - src) {
		size_t rest = (size_t)(end - src), back = 64 - rest; /* back: copied already */
		__m512i v = _mm512_loadu_si512((const void *)(end - 64));
		uint64_t m = sse__break_mask64(v) >> back;
		size_t n = m ? (size_t)__builtin_ctzll(m) : rest;

		_mm512_storeu_si512((void *)(d - back), v);
		src += n;
		d += n;
	}
	*dst = d;
	return src;
}
#endif

#if SSE__HAVE_SSE2
static inline unsigned sse__break_mask16(__m128i v)
{
	__m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')),
				   _mm_cmpeq_epi8(v, _mm_set1_epi8('\r')));

	return (unsigned)_mm_movemask_epi8(hit);
}

/* sse__copy64_avx2 with SSE2 only: four 16-byte vectors, written out
 * (a loop would shift by a variable and keep the CR mask in it). */
static inline uint64_t sse__mask64(__m128i a, __m128i b, __m128i c, __m128i d)
{
	return (uint64_t)(unsigned)_mm_movemask_epi8(a) |
	       (uint64_t)(unsigned)_mm_movemask_epi8(b) << 16 |
	       (uint64_t)(unsigned)_mm_movemask_epi8(c) << 32 |
	       (uint64_t)(unsigned)_mm_movemask_epi8(d) << 48;
}

static inline struct sse__masks64 sse__copy64_sse2(char *dst, const char *src)
{
	__m128i a = _mm_loadu_si128((const __m128i *)(const void *)src);
	__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + 16));
	__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(src + 32));
	__m128i d = _mm_loadu_si128((const __m128i *)(const void *)(src + 48));
	__m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
	__m128i cra = _mm_cmpeq_epi8(a, cr), crb = _mm_cmpeq_epi8(b, cr);
	__m128i crc = _mm_cmpeq_epi8(c, cr), crd = _mm_cmpeq_epi8(d, cr);
	struct sse__masks64 mk;

	_mm_storeu_si128((__m128i *)(void *)dst, a);
	_mm_storeu_si128((__m128i *)(void *)(dst + 16), b);
	_mm_storeu_si128((__m128i *)(void *)(dst + 32), c);
	_mm_storeu_si128((__m128i *)(void *)(dst + 48), d);
	mk.brk = sse__mask64(_mm_or_si128(cra, _mm_cmpeq_epi8(a, lf)),
			     _mm_or_si128(crb, _mm_cmpeq_epi8(b, lf)),
			     _mm_or_si128(crc, _mm_cmpeq_epi8(c, lf)),
			     _mm_or_si128(crd, _mm_cmpeq_epi8(d, lf)));
	mk.cr = sse__mask64(cra, crb, crc, crd);
	return mk;
}

/* sse__masks64_avx2 with SSE2 only. */
static inline struct sse__masks64 sse__masks64_sse2(const char *src)
{
	__m128i a = _mm_loadu_si128((const __m128i *)(const void *)src);
	__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + 16));
	__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(src + 32));
	__m128i d = _mm_loadu_si128((const __m128i *)(const void *)(src + 48));
	__m128i cr = _mm_set1_epi8('\r');
	struct sse__masks64 mk;

	mk.brk = (uint64_t)sse__break_mask16(a) | (uint64_t)sse__break_mask16(b) << 16 |
		 (uint64_t)sse__break_mask16(c) << 32 | (uint64_t)sse__break_mask16(d) << 48;
	mk.cr = sse__mask64(_mm_cmpeq_epi8(a, cr), _mm_cmpeq_epi8(b, cr), _mm_cmpeq_epi8(c, cr),
			    _mm_cmpeq_epi8(d, cr));
	return mk;
}

/*
 * The masks of the n < 64 bytes at src, bit i for byte i, reading none
 * outside them: 16 bytes a step, the last step (when n >= 16) a load that
 * ends at src + n, shifted past the bytes already taken.
 */
static inline struct sse__masks64 sse__masks_short(const char *src, size_t n)
{
	struct sse__masks64 mk = {0, 0};
	__m128i cr = _mm_set1_epi8('\r');
	size_t i = 0;

	for (; n - i >= 16; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(src + i));

		mk.brk |= (uint64_t)sse__break_mask16(v) << i;
		mk.cr |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr)) << i;
	}
	if (i < n && n >= 16) {
		unsigned back = (unsigned)(16 - (n - i));
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(src + n - 16));

		mk.brk |= (uint64_t)(sse__break_mask16(v) >> back) << i;
		mk.cr |= (uint64_t)((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr)) >> back) << i;
		return mk;
	}
	for (; i < n; i++) {
		mk.brk |= (uint64_t)(src[i] == '\n' || src[i] == '\r') << i;
		mk.cr |= (uint64_t)(src[i] == '\r') << i;
	}
	return mk;
}

static inline void sse__move64_sse2(char *dst, const char *src)
{
	__m128i a = _mm_loadu_si128((const __m128i *)(const void *)src);
	__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + 16));
	__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(src + 32));
	__m128i d = _mm_loadu_si128((const __m128i *)(const void *)(src + 48));

	_mm_storeu_si128((__m128i *)(void *)dst, a);
	_mm_storeu_si128((__m128i *)(void *)(dst + 16), b);
	_mm_storeu_si128((__m128i *)(void *)(dst + 32), c);
	_mm_storeu_si128((__m128i *)(void *)(dst + 48), d);
}

/* The 16-byte steps of sse__copy_line, as sse__copy_line_avx2 does them. */
static inline const char *sse__copy_line_sse2(char **dst, const char *dst_end, const char *src,
					      const char *end)
{
	const char *start = src;
	char *d = *dst;

	while (end - src >= 16 && dst_end - d >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)src);
		unsigned m = sse__break_mask16(v);

		_mm_storeu_si128((__m128i *)(void *)d, v);
		if (m) {
			*dst = d + __builtin_ctz(m);
			return src + __builtin_ctz(m);
		}
		src += 16;
		d += 16;
	}
	if (src < end && end - start >= 16 && dst_end - d >= end - src) {
		size_t rest = (size_t)(end - src), back = 16 - rest;
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(end - 16));
		unsigned m = sse__break_mask16(v) >> back;
		size_t n = m ? (size_t)__builtin_ctz(m) : rest;

		_mm_storeu_si128((__m128i *)(void *)(d - back), v);
		src += n;
		d += n;
	}
	*dst = d;
	return src;
}
#endif

/*
 * Copy 64 bytes from src to dst: sse__copy64 also returns their masks,
 * sse__move64 does not look; sse__masks64 only looks and copies nothing.
 * The block loop's primitives, for callers compiled once per level (level
 * is a constant there, so no branch remains).
 */
#if SSE__HAVE_SSE2
static ALWAYS_INLINE struct sse__masks64 sse__copy64(char *dst, const char *src, int level)
{
#if SSE__HAVE_AVX512
	if (level >= SSE__SCAN_AVX512)
		return sse__copy64_avx512(dst, src);
#endif
#if SSE__HAVE_AVX2
	if (level >= SSE__SCAN_AVX2)
		return sse__copy64_avx2(dst, src);
#endif
	(void)level;
	return sse__copy64_sse2(dst, src);
}

static ALWAYS_INLINE struct sse__masks64 sse__masks64(const char *src, int level)
{
#if SSE__HAVE_AVX512
	if (level >= SSE__SCAN_AVX512)
		return sse__masks64_avx512(src);
#endif
#if SSE__HAVE_AVX2
	if (level >= SSE__SCAN_AVX2)
		return sse__masks64_avx2(src);
#endif
	(void)level;
	return sse__masks64_sse2(src);
}

static ALWAYS_INLINE void sse__move64(char *dst, const char *src, int level)
{
#if SSE__HAVE_AVX512
	if (level >= SSE__SCAN_AVX512) {
		sse__move64_avx512(dst, src);
		return;
	}
#endif
#if SSE__HAVE_AVX2
	if (level >= SSE__SCAN_AVX2) {
		sse__move64_avx2(dst, src);
		return;
	}
#endif
	(void)level;
	sse__move64_sse2(dst, src);
}
#endif

/*
 * Copy [src, end) up to its first CR or LF, as far as [*dst, dst_end) has
 * room; return where copying stopped in src (a break, end, or the first
 * byte that did not fit). The vector loops store whole vectors, so they
 * may write past the line's end, up to as many bytes as input remains:
 * callers whose output is at least as long as their remaining input (the
 * encoder: every input byte yields at least one output byte) overwrite
 * those bytes later, so nothing past their final size is touched.
 */
static ALWAYS_INLINE const char *sse__copy_line(char **dst, const char *dst_end, const char *src,
						const char *end, int level)
{
	char *d;

#if SSE__HAVE_AVX512
	if (level >= SSE__SCAN_AVX512) {
		src = sse__copy_line_avx512(dst, dst_end, src, end);
		if (src == end || *src == '\n' || *src == '\r')
			return src;
	}
#endif
#if SSE__HAVE_AVX2
	if (level >= SSE__SCAN_AVX2) {
		src = sse__copy_line_avx2(dst, dst_end, src, end);
		if (src == end || *src == '\n' || *src == '\r')
			return src;
	}
#endif
	(void)level;
#if SSE__HAVE_SSE2
	src = sse__copy_line_sse2(dst, dst_end, src, end);
	d = *dst;
	while (src < end && d < dst_end && *src != '\n' && *src != '\r')
		*d++ = *src++;
#else
	{
		const char *stop = sse__find_break(src, end);
		size_t n = (size_t)(stop - src);

		d = *dst;
		if (n > (size_t)(dst_end - d))
			n = (size_t)(dst_end - d);
		memcpy(d, src, n);
		d += n;
		src += n;
	}
#endif
	*dst = d;
	return src;
}

#endif
