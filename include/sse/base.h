/*
 * libsse — version, error codes and allocator hooks, shared by every module
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_BASE_H
#define SSE_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SSE_BUILDING) && defined(__GNUC__)
#define SSE_API __attribute__((visibility("default")))
#else
#define SSE_API
#endif

/**
 * @defgroup version Version
 * The version of the headers (macros, fixed at compile time) and of the
 * library linked at run time (sse_version()); the two differ when a
 * program runs against a newer libsse.so.0 than it was built with.
 * @{
 */
/** Major version of these headers: changes break the ABI. */
#define SSE_VERSION_MAJOR 0
/** Minor version of these headers: additions. */
#define SSE_VERSION_MINOR 4
/** Patch version of these headers: fixes only. */
#define SSE_VERSION_PATCH 0
/** The header version as a string, "major.minor.patch". */
#define SSE_VERSION_STRING "0.4.0"

/**
 * @brief The version of the library linked at run time.
 * @return (major << 16) | (minor << 8) | patch of the linked library.
 * @since 0.1
 */
SSE_API unsigned sse_version(void);
/** @} */

/**
 * @defgroup errors Errors
 * Every fallible function returns 0 or one of these negative codes.
 * @{
 */
/**
 * The error table, as an X-macro: X(name, value, description) for every
 * code. It feeds enum sse_error and sse_strerror(); an application may
 * expand it too, e.g. to map the codes to its own names.
 */
#define SSE_ERRORS(X)                                                          \
	X(SSE_ERR_INVALID, -1, "invalid argument")                             \
	X(SSE_ERR_NOMEM, -2, "out of memory")                                  \
	X(SSE_ERR_WOULDBLOCK, -3, "transport cannot take data now")            \
	X(SSE_ERR_IO, -4, "transport failed")                                  \
	X(SSE_ERR_ID_LINEBREAK, -5, "event id contains CR or LF")              \
	X(SSE_ERR_ID_NUL, -6, "event id contains NUL")                         \
	X(SSE_ERR_TYPE_LINEBREAK, -7, "event type contains CR or LF")          \
	X(SSE_ERR_RETRY, -8, "retry value out of range")                       \
	X(SSE_ERR_UTF8, -9, "text is not valid UTF-8 (strict mode)")           \
	X(SSE_ERR_BUFFER, -10, "output buffer too small")                      \
	X(SSE_ERR_QUEUE_FULL, -11, "stream queue limit would be exceeded")     \
	X(SSE_ERR_TOO_LARGE, -12, "input exceeds a size limit")                \
	X(SSE_ERR_CALLBACK, -13, "a callback asked to stop")                   \
	X(SSE_ERR_GAP, -14, "missed events: fell behind the replay ring")             \
	X(SSE_ERR_HTTP, -15, "malformed HTTP request")                          \
	X(SSE_ERR_INCOMPLETE, -16, "more input is needed")                     \
	X(SSE_ERR_STALLED, -17, "transport accepted nothing for the stall time")   \
	X(SSE_ERR_PINNED, -18, "frames still in use block the ring")                \
	X(SSE_ERR_BUSY, -19, "every place is taken")

/** The error codes, from SSE_ERRORS(): SSE_OK (0), then one negative
 * value per code (SSE_ERR_INVALID = -1, ..., SSE_ERR_BUSY = -19). */
enum sse_error {
	SSE_OK = 0, /**< Success. */
#define SSE_ERROR_ENUM(name, value, text) name = value,
	SSE_ERRORS(SSE_ERROR_ENUM)
#undef SSE_ERROR_ENUM
};

/**
 * @brief Describe an error code.
 * @param err 0 or a negative code returned by libsse.
 * @return A static description of @p err; never NULL, even if unknown.
 * @since 0.1
 */
SSE_API const char *sse_strerror(int err);
/** @} */

/**
 * @defgroup alloc Allocator hooks
 * Given per object; the struct is copied. NULL everywhere means libc.
 * All three functions must be set. @c old_size lets pool allocators work.
 * @{
 */
/** Memory functions for one object (and what it allocates later). */
struct sse_allocator {
	/** Allocate @c size bytes (never 0); NULL on failure. */
	void *(*alloc_fn)(size_t size, void *ctx);
	/** Resize a block of @c old_size bytes to @c new_size (never 0); @c ptr
	 * may be NULL with @c old_size 0. NULL on failure, and the old block
	 * is then left as it was. */
	void *(*realloc_fn)(void *ptr, size_t old_size, size_t new_size, void *ctx);
	/** Free a block of @c size bytes, the size it was allocated with;
	 * never called with NULL. */
	void (*free_fn)(void *ptr, size_t size, void *ctx);
	void *ctx; /**< Passed to every function above. */
};

/**
 * @brief What every libsse object does with the allocator it is given:
 * NULL means libc's malloc, realloc and free; otherwise all three hooks
 * must be set. For code built on libsse (an adapter, an application's
 * own objects) to follow the same rule. An allocator made here from NULL
 * may be passed on to libsse's functions: it costs them what NULL does.
 * @param out   Receives the hooks to use.
 * @param given The caller's hooks, or NULL.
 * @return 0, or SSE_ERR_INVALID: @p out is NULL, or a hook of @p given
 *         is missing (@p out is untouched).
 * @since 0.4
 */
SSE_API int sse_allocator_init(struct sse_allocator *out, const struct sse_allocator *given);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_BASE_H */
