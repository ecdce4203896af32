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
 * @{
 */
#define SSE_VERSION_MAJOR 0
#define SSE_VERSION_MINOR 1
#define SSE_VERSION_PATCH 0
#define SSE_VERSION_STRING "0.1.0"

/** @return (major << 16) | (minor << 8) | patch of the linked library. */
SSE_API unsigned sse_version(void);
/** @} */

/**
 * @defgroup errors Errors
 * Every fallible function returns 0 or one of these negative codes.
 * @{
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
	X(SSE_ERR_PINNED, -18, "frames an asynchronous transport holds block the ring")

enum sse_error {
	SSE_OK = 0,
#define SSE_ERROR_ENUM(name, value, text) name = value,
	SSE_ERRORS(SSE_ERROR_ENUM)
#undef SSE_ERROR_ENUM
};

/** @return A static description of @p err; never NULL, even if unknown. */
SSE_API const char *sse_strerror(int err);
/** @} */

/**
 * @defgroup alloc Allocator hooks
 * Given per object; the struct is copied. NULL everywhere means libc.
 * All three functions must be set. @p old_size lets pool allocators work.
 * @{
 */
struct sse_allocator {
	void *(*alloc_fn)(size_t size, void *ctx);
	void *(*realloc_fn)(void *ptr, size_t old_size, size_t new_size, void *ctx);
	void (*free_fn)(void *ptr, size_t size, void *ctx);
	void *ctx;
};
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_BASE_H */
