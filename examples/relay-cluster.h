/*
 * sse-relay --redis: several relays as one (relay-cluster.c).
 *
 * With --redis redis://HOST[:PORT][/CHANNEL], the hub is fed by
 * libsse-redis: a publish goes to Redis and is answered when Redis
 * acknowledged it, every node's ring gets the event from Redis's live
 * feed with the same id, and a resume the ring cannot serve is answered
 * from the Redis stream. Built without hiredis, --redis is refused.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RELAY_CLUSTER_H
#define RELAY_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <sse.h>

struct relay;
struct conn;
struct server_options;
struct relay_cluster;
struct cluster_pending;

#define CLUSTER_TIMEOUT_MS 2000u /* default --redis-timeout */
#define CLUSTER_CHANNEL "sse-relay" /* the channel when the URL names none */

/* --redis and --redis-timeout. */
struct cluster_options {
	const char *url;     /* NULL: a single node */
	uint64_t timeout_ms; /* Redis connect and command timeout */
};

extern const char cluster_usage[];

/* "--redis URL", "--redis-timeout MS" (or =V) at argv[*i]: 1 taken (*i
 * moved past its value), 0 not ours, -1 bad (told). */
int cluster_take_option(int argc, char **argv, int *i, struct cluster_options *o);

/* Options that cannot go together (--plain-ids with --redis): -1, told. */
int cluster_check(const struct cluster_options *o, const struct server_options *so);

/* After the hub: join it to Redis (nothing connects before the first
 * cluster_tick()). 0, or -1 (told). Without --redis: 0, nothing done. */
int cluster_open(struct relay *r);

/* Before the hub goes. */
void cluster_free(struct relay *r);

/* Is this epoll data pointer one of the Redis connections'? */
bool cluster_owns(const struct relay *r, const void *ptr);
void cluster_on_event(struct relay *r, void *ptr, uint32_t events);

/* Run Redis's deadlines (connect, reconnect, timeouts) and answer the
 * publishes Redis answered; at the start of a turn and after its events. */
void cluster_tick(struct relay *r);
/* When the loop must run again for Redis; runs its deadlines first, as
 * publishes of this turn added some (an answer due: now). */
uint64_t cluster_next_deadline(struct relay *r);

/* Publish through Redis: the connection waits for the answer, 202 and the
 * id, or 503 and why; the loop does not. */
void cluster_publish(struct conn *c, const struct sse_event *ev);

/* The connection of a waiting publish is going: it gets no answer. */
void cluster_forget(struct conn *c);

/* Whether --redis was given; whether the node follows the log now. */
bool cluster_enabled(const struct relay *r);
bool cluster_ready(const struct relay *r, const char **why);
/* Until a node first followed the log, its ring's ids are its own: a
 * client's Last-Event-ID would get a false reset. */
bool cluster_joined(const struct relay *r);
/* The node's libsse-redis object, for its counters (/metrics); NULL
 * without --redis. */
struct sse_redis;
const struct sse_redis *cluster_redis(const struct relay *r);

#endif
