/*
 * sse-relay --threads N: the default channel fanned out from several loop
 * threads sharing its ring (relay-threads.c).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RELAY_THREADS_H
#define RELAY_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <sse.h>

#define RELAY_THREADS_MAX 256u /* --threads: loop threads at most */

struct relay;
struct conn;
struct relay_threads;

/* After the options: --threads resolved (0: not given, so the CPUs the
 * process may use; 1 with --redis, which cannot share a ring). 0, or -1
 * (told) for --threads N > 1 with --redis. */
int threads_check(struct relay *r);

/* Once the hub, the log and the clocks are there: share the default
 * channel's ring and start the other threads. 0, or -1 (told). With one
 * thread: nothing, 0. */
int threads_open(struct relay *r);
/* Before anything they use goes: tell them to close what they hold, join
 * them, free their hubs. NULL r->threads: nothing. */
void threads_free(struct relay *r);

/* The main thread's side. Is this epoll data pointer ours (a thread
 * finished draining)? Read it. */
bool threads_owns(const struct relay *r, const void *ptr);
void threads_on_event(struct relay *r);
/* A subscriber of the default channel, admitted: hand it, with its
 * Last-Event-ID, to the thread with the fewest subscribers (of a tie, not
 * the main one, which has requests too), which streams it from then on.
 * false: the main thread has fewer (or no memory); it stays here. After
 * true, c is the other thread's from the end of this loop turn: it is in
 * no list of this one. */
bool threads_handoff(struct conn *c, const char *id, size_t id_len);
/* At the end of a loop turn: pass on the connections handed off, and wake
 * once each thread that has new frames or connections to take. */
void threads_turn_end(struct relay *r);
/* Shutdown: each thread drains its subscribers as the main one does. */
void threads_stop(struct relay *r);

/* For counts and /metrics, from the main thread: the connections the
 * other threads hold (all of them subscribers, or on their way to it),
 * of which draining; their hubs' counters added to sum (not the
 * published ones: the main hub's count every event once); a gauge of
 * subscribers per thread. */
size_t threads_conns(const struct relay *r);
size_t threads_draining(const struct relay *r);
void threads_hub_totals(const struct relay *r, struct sse_hub_stats *sum);
void threads_render(FILE *f, const struct relay *r);

#endif
