/*
 * Write callbacks for a non-blocking POSIX socket: send() for one run of
 * bytes, sendmsg() for a gather of pieces. The only module that needs more
 * than the C standard library (POSIX.1-2008).
 *
 * SIGPIPE: a peer that has gone away must fail the stream, not kill the
 * server, so every call asks the kernel not to raise it. Linux and the BSDs
 * have MSG_NOSIGNAL; macOS has only the per-socket SO_NOSIGPIPE, which we
 * set before each send there (idempotent, one extra system call). A system
 * with neither leaves it to the application to ignore SIGPIPE.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "sse-private.h"

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

/* glibc shows IOV_MAX in <limits.h> only to X/Open programs; 1024 is the
 * limit of Linux (UIO_MAXIOV), the BSDs and macOS alike. */
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Without MSG_NOSIGNAL, keep the promise of no SIGPIPE the per-socket way. */
static void no_sigpipe(int fd)
{
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
	int on = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
#else
	(void)fd;
#endif
}

/* A failed send: congestion is the normal state of a slow client and only
 * defers the bytes; anything else (EPIPE, ECONNRESET, ...) ends it. */
static int map_errno(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK)
		return SSE_ERR_WOULDBLOCK;
	return SSE_ERR_IO;
}

int sse_socket_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	ssize_t n;
	int fd;

	if (taken == NULL || ctx == NULL || (buf == NULL && len > 0))
		return SSE_ERR_INVALID;
	*taken = 0;
	if (len == 0)
		return 0;
	fd = *(const int *)ctx;
	no_sigpipe(fd);
	do
		n = send(fd, buf, len, SEND_FLAGS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return map_errno(errno);
	*taken = (size_t)n;
	return 0;
}

/* Copy the first pieces into out[], at most IOV_MAX of them and at most
 * SSIZE_MAX bytes in all (sendmsg refuses more with EINVAL); a piece that
 * would pass that is cut short. Returns the count, *total the bytes. */
static size_t gather(const struct sse_iovec *iov, size_t n, struct iovec *out,
		     size_t *total)
{
	size_t i, room = SSIZE_MAX;

	if (n > IOV_MAX)
		n = IOV_MAX;
	*total = 0;
	for (i = 0; i < n && room > 0; i++) {
		size_t len = iov[i].len < room ? iov[i].len : room;

		out[i].iov_base = (void *)iov[i].base; /* sendmsg only reads it */
		out[i].iov_len = len;
		*total += len;
		room -= len;
	}
	return i;
}

int sse_socket_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct iovec vec[IOV_MAX];
	struct msghdr msg = {0};
	size_t total;
	ssize_t sent;
	int fd;

	if (taken == NULL || ctx == NULL || (iov == NULL && n > 0))
		return SSE_ERR_INVALID;
	*taken = 0;
	msg.msg_iov = vec;
	msg.msg_iovlen = gather(iov, n, vec, &total);
	if (total == 0)
		return 0; /* nothing to send: spare the system call */
	fd = *(const int *)ctx;
	no_sigpipe(fd);
	do
		sent = sendmsg(fd, &msg, SEND_FLAGS);
	while (sent < 0 && errno == EINTR);
	if (sent < 0)
		return map_errno(errno);
	*taken = (size_t)sent;
	return 0;
}

struct sse_transport sse_socket_transport(int *fd)
{
	return (struct sse_transport){.size = sizeof(struct sse_transport),
				      .write = sse_socket_write,
				      .writev = sse_socket_writev,
				      .ctx = fd};
}
