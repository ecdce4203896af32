/*
 * libsse — write callbacks for POSIX sockets
 *
 * Part of the public API; include <sse.h> for all of it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_SOCKET_H
#define SSE_SOCKET_H

#include <sse/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup socket Socket adapters (POSIX)
 * Write callbacks for a non-blocking socket. @p user points to the int
 * file descriptor. They send with MSG_NOSIGNAL (SO_NOSIGPIPE where only
 * that exists; on a system with neither, ignore SIGPIPE yourself), retry
 * EINTR, map EAGAIN to SSE_ERR_WOULDBLOCK, and a peer that is gone
 * (EPIPE, ECONNRESET) to SSE_ERR_IO, which fails the stream.
 * @{
 */
SSE_API int sse_socket_write(const void *buf, size_t len, size_t *taken, void *user);
/** At most IOV_MAX pieces go in one sendmsg; the rest waits for the next call. */
SSE_API int sse_socket_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *user);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_SOCKET_H */
