/*
 * ticker: write a few Server-Sent Events to standard output.
 *
 *     ticker [COUNT [INTERVAL_MS]]      (defaults: 5 events, 250 ms apart)
 *
 * The quick-start example: one struct sse_stream whose write callback
 * writes to fd 1. It shows the emitting side of the API: the opening
 * retry, a comment, ids, an event type, and data with line breaks, which
 * the encoder splits into one "data:" line each. Pipe it into anything:
 *
 *     ./ticker 3 | cat -A
 *
 * Standard output may be a pipe or socket in non-blocking mode: the write
 * callback then reports SSE_ERR_WOULDBLOCK, the stream keeps the rest
 * queued, and main() waits with poll() and calls sse_stream_flush(), as a
 * server's event loop would.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sse.h>

/* Take what fd 1 accepts now. A short count is fine: the stream queues the
 * rest and hands it back on the next sse_stream_flush(). */
static int write_stdout(const void *buf, size_t len, size_t *taken, void *ctx)
{
	ssize_t n;

	(void)ctx;
	do {
		n = write(STDOUT_FILENO, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return SSE_ERR_WOULDBLOCK;
		return SSE_ERR_IO;
	}
	*taken = (size_t)n;
	return 0;
}

/* Block until the stream's queue is empty; a server would return to its
 * event loop instead and flush when the socket is writable. */
static int drain(struct sse_stream *s)
{
	struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
	int rc = sse_stream_error(s);

	while (rc == 0 && sse_stream_pending(s) > 0) {
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return SSE_ERR_IO;
		rc = sse_stream_flush(s);
		if (rc == SSE_ERR_WOULDBLOCK)
			rc = 0;
	}
	return rc;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int parse_arg(const char *arg, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A ticker hello as a comment: clients ignore it, curl shows it. */
static int send_hello(struct sse_stream *s, long count)
{
	char text[128];
	int n = snprintf(text, sizeof(text), "ticker: %ld events from libsse %s",
			 count, SSE_VERSION_STRING);

	return sse_stream_comment(s, text, (size_t)n);
}

/* Event i of count: id "i", type "tick", and two lines of data. */
static int send_tick(struct sse_stream *s, long i, long count)
{
	char id[32], data[128];
	int id_len = snprintf(id, sizeof(id), "%ld", i);
	int data_len = snprintf(data, sizeof(data), "tick %ld of %ld\n%ld to go",
				i, count, count - i);
	struct sse_event ev = {
		.id = id,
		.id_len = (size_t)id_len,
		.type = "tick",
		.type_len = strlen("tick"),
		.data = data,
		.data_len = (size_t)data_len,
		.retry = SSE_RETRY_NONE,
	};

	return sse_stream_send(s, &ev);
}

int main(int argc, char **argv)
{
	static const struct sse_transport out = {.size = sizeof(out), .write = write_stdout};
	struct sse_stream *s = NULL;
	long count = 5, interval = 250;
	int rc;

	if (argc > 3 || (argc > 1 && parse_arg(argv[1], 1000000, &count) < 0) ||
	    (argc > 2 && parse_arg(argv[2], 3600000, &interval) < 0)) {
		fprintf(stderr, "usage: %s [COUNT [INTERVAL_MS]]\n", argv[0]);
		return 2;
	}
	rc = sse_stream_new(&s, &out, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "ticker: sse_stream_new: %s\n", sse_strerror(rc));
		return 1;
	}
	/* What a server writes right after the response head: clients should
	 * wait 3 s before reconnecting. */
	rc = sse_stream_set_retry(s, 3000);
	if (rc == 0)
		rc = sse_stream_start(s, now_ms());
	if (rc == 0)
		rc = send_hello(s, count);
	if (rc == 0)
		rc = drain(s);
	for (long i = 1; rc == 0 && i <= count; i++) {
		if (i > 1)
			sleep_ms(interval);
		rc = send_tick(s, i, count);
		if (rc == 0)
			rc = drain(s);
	}
	if (rc < 0)
		fprintf(stderr, "ticker: %s\n", sse_strerror(rc));
	sse_stream_free(s);
	return rc < 0 ? 1 : 0;
}
