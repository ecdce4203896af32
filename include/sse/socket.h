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
SSE_API int sse_socket_write(const void *buf, size_t len, size_t *taken, void *ctx);
/** At most IOV_MAX pieces go in one sendmsg; the rest waits for the next call. */
SSE_API int sse_socket_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx);

/** @return A transport of sse_socket_write() and sse_socket_writev() on
 * the descriptor at @p fd (no flush, no wake), ready for sse_stream_new().
 * @since 0.2 */
SSE_API struct sse_transport sse_socket_transport(int *fd);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SSE_SOCKET_H */
