/*
 * Internals shared by the library's modules. Never installed; every
 * name here is sse__ and hidden from the shared library.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_PRIVATE_H
#define SSE_PRIVATE_H

#include <stdbool.h>

#include "sse.h"

/* malloc, realloc and free, as an allocator (one for the whole library). */
extern const struct sse_allocator sse__libc_allocator;

/* Copy *user into *out, or the libc allocator when user is NULL.
 * Fails with SSE_ERR_INVALID when user leaves a function unset. */
int sse__allocator_init(struct sse_allocator *out, const struct sse_allocator *user);
/* NULL, or hooks that are libc's (sse_allocator_init() of NULL). */
bool sse__allocator_is_libc(const struct sse_allocator *a);

void *sse__alloc(const struct sse_allocator *a, size_t size);
void *sse__realloc(const struct sse_allocator *a, void *ptr, size_t old_size, size_t new_size);
void sse__free(const struct sse_allocator *a, void *ptr, size_t size);

/* Double a dynamic array of elem-sized items (64 to start): 0, or
 * SSE_ERR_NOMEM with *ptr and *cap unchanged. */
int sse__grow(const struct sse_allocator *a, void **ptr, size_t *cap, size_t elem);

/* Digits of a uint64_t in base 2..16: UINT64_MAX in decimal has 20. */
#define SSE__U64_DIGITS 20
/* v in base 10 or 16 (lowercase) into out; returns the digit count. */
size_t sse__format_u64(uint64_t v, unsigned base, char out[SSE__U64_DIGITS]);

#endif
