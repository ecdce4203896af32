/*
 * Allocation through the per-object hooks of struct sse_allocator.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>

#include "sse-private.h"

static void *libc_alloc(size_t size, void *ctx)
{
	(void)ctx;
	return malloc(size);
}

static void *libc_realloc(void *ptr, size_t old_size, size_t new_size, void *ctx)
{
	(void)old_size;
	(void)ctx;
	return realloc(ptr, new_size);
}

static void libc_free(void *ptr, size_t size, void *ctx)
{
	(void)size;
	(void)ctx;
	free(ptr);
}

const struct sse_allocator sse__libc_allocator = {libc_alloc, libc_realloc, libc_free, NULL};

int sse_allocator_init(struct sse_allocator *out, const struct sse_allocator *given)
{
	return out != NULL ? sse__allocator_init(out, given) : SSE_ERR_INVALID;
}

bool sse__allocator_is_libc(const struct sse_allocator *a)
{
	return a == NULL || (a->alloc_fn == libc_alloc && a->realloc_fn == libc_realloc &&
			     a->free_fn == libc_free);
}

int sse__allocator_init(struct sse_allocator *out, const struct sse_allocator *user)
{
	if (user == NULL) {
		*out = sse__libc_allocator;
		return 0;
	}
	if (!user->alloc_fn || !user->realloc_fn || !user->free_fn)
		return SSE_ERR_INVALID;
	*out = *user;
	return 0;
}

void *sse__alloc(const struct sse_allocator *a, size_t size)
{
	/* malloc(0) may return NULL or not; never ask, so callers see one rule. */
	return a->alloc_fn(size ? size : 1, a->ctx);
}

void *sse__realloc(const struct sse_allocator *a, void *ptr, size_t old_size, size_t new_size)
{
	return a->realloc_fn(ptr, old_size, new_size ? new_size : 1, a->ctx);
}

void sse__free(const struct sse_allocator *a, void *ptr, size_t size)
{
	if (ptr != NULL)
		a->free_fn(ptr, size, a->ctx);
}

int sse__grow(const struct sse_allocator *a, void **ptr, size_t *cap, size_t elem)
{
	size_t n = *cap ? *cap * 2 : 64;
	void *p;

	if (n > SIZE_MAX / elem)
		return SSE_ERR_NOMEM;
	p = sse__realloc(a, *ptr, *cap * elem, n * elem);
	if (p == NULL)
		return SSE_ERR_NOMEM;
	*ptr = p;
	*cap = n;
	return 0;
}
