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
 * Write callbacks for a non-blocking socket. Their context (struct
 * sse_transport.ctx) points to the int file descriptor, which must stay
 * valid as long as the stream: typically a member of the application's
 * connection struct, whose address goes in ctx while the struct itself is
 * the stream's user pointer. They send with MSG_NOSIGNAL (SO_NOSIGPIPE
 * where only that exists; on a system with neither, ignore SIGPIPE
 * yourself), retry EINTR, map EAGAIN to SSE_ERR_WOULDBLOCK, and a peer
 * that is gone (EPIPE, ECONNRESET) to SSE_ERR_IO, which fails the stream.
 * They copy what they take (the kernel does), so any bytes may be given.
 * @{
 */
/**
 * @brief An sse_write_fn for a non-blocking socket: one send().
 * @param buf, len, taken As for sse_write_fn.
 * @param ctx Points to the int file descriptor.
 * @return 0 and *taken, SSE_ERR_WOULDBLOCK (EAGAIN), SSE_ERR_IO (any other
 *         errno), or SSE_ERR_INVALID for a NULL ctx or taken.
 * @since 0.1
 */
SSE_API int sse_socket_write(const void *buf, size_t len, size_t *taken, void *ctx);
/**
 * @brief An sse_writev_fn for a non-blocking socket: one sendmsg().
 * At most IOV_MAX pieces go in one sendmsg; the rest waits for the next call.
 * @param iov, n, taken As for sse_writev_fn.
 * @param ctx Points to the int file descriptor.
 * @return As sse_socket_write().
 * @since 0.1
 */
SSE_API int sse_socket_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx);

/** @brief A ready transport for a socket.
 * @param fd Address of the descriptor; it must stay valid as long as the
 *           stream.
 * @return A transport of sse_socket_write() and sse_socket_writev() on
 * the descriptor at @p fd (no flush, no wake), ready for sse_stream_new().
 * @since 0.2 */
SSE_API struct sse_transport sse_socket_transport(int *fd);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_SOCKET_H */
