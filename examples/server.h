/*
 * What every example server shares: sse-relay's command line, the hub it
 * configures, the listening socket, and the line that says where it
 * listens ("NAME: listening on http://ADDR:PORT/", which the test
 * scripts wait for). sse-relay and the servers on libmicrohttpd,
 * libevent, libuv and nghttp2 all take the same options, so one test
 * suite drives them all.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SERVER_H
#define SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sse.h>

/* The default ring holds the frame of the largest body even when every
 * byte of it is a line break (six bytes of "data:\n" each). */
#define SERVER_BODY_MAX ((size_t)1 << 20) /* a published event's data; past it: 413 */
#define SERVER_REPLAY_BYTES ((size_t)8 << 20)
#define SERVER_BATCH_MS 2 /* the default batching window (--batch) */

struct server_options {
	const char *bind;      /* address to listen on */
	unsigned port;         /* 0: an ephemeral port */
	const char *token;     /* NULL: anyone may publish */
	size_t replay_events;  /* ring bounds */
	size_t replay_bytes;
	uint64_t heartbeat_ms; /* 0: no heartbeats */
	long retry_ms;         /* SSE_RETRY_NONE: do not tell clients */
	uint64_t stall_ms;     /* a subscriber's transport may take nothing this long */
	bool plain_ids;        /* ids without the run's epoch */
	uint64_t batch_ms;     /* the hub's batching window; 0: none */
};

/* Parse argv: 0 to run, 1 when --help was printed, -1 after printing a
 * usage error. */
int server_options(int argc, char **argv, struct server_options *o);

/* The hub of these options: strict UTF-8, ring ids with a fresh epoch
 * (plain with --plain-ids), the "sse-reset" event, heartbeats with a
 * tenth of jitter, the stall time, the batching window (--batch). */
int server_hub_new(const struct server_options *o, sse_hub_drop_fn on_drop, void *user,
		   struct sse_hub **out);

/* A non-blocking listening TCP socket on --bind and --port, or -1 (told
 * on stderr as NAME: ...). */
int server_listen(const char *name, const struct server_options *o);

/* Print "NAME: listening on http://ADDR:PORT/" for the socket's actual
 * address, and flush: 0, or -1. */
int server_announce(const char *name, int fd);

/* SIGINT and SIGTERM, blocked, as input on a non-blocking descriptor
 * (signalfd), so no code runs in a signal handler: the descriptor, or -1. */
int server_signals(void);

/* The monotonic clock in milliseconds. */
uint64_t server_now_ms(void);

/* The HTTP status for a publish the hub refused: 400 for text it cannot
 * carry (not UTF-8, a line break in the type), 413 for a frame larger
 * than the ring, 503 while frames held by slow transports fill the ring,
 * else 500. */
int server_publish_status(int err);

/* The reason phrase of the statuses these servers send. */
const char *server_reason(int status);

#endif
