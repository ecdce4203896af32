/*
 * What every benchmark needs: a monotonic clock, a compiler barrier and
 * an allocation that reports instead of failing the suite.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_BENCH_COMMON_H
#define SSE_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Tell the compiler memory was read and changed, so copies and encodes
 * whose results nobody reads are still done, every iteration. */
#define BARRIER(p) __asm__ __volatile__("" : : "r"(p) : "memory")

static inline double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fputs("benchmark: out of memory\n", stderr);
		exit(0); /* a benchmark reports; it does not fail the suite */
	}
	return p;
}

#endif
