/*
 * sse-relay: a small Server-Sent Events relay, libsse's flagship example.
 *
 *     sse-relay --port P [--bind ADDR] [--token T] [--replay-events N]
 *               [--replay-bytes B] [--heartbeat MS] [--retry MS]
 *               [--stall MS] [--plain-ids]
 *
 * Anyone POSTs an event to /publish (the body is its data, ?event=NAME
 * its type); every client of GET /events receives it; a client that
 * reconnects with Last-Event-ID gets what it missed from a replay ring,
 * or an "sse-reset" event when the ring no longer has it. GET / serves a
 * page to try it in a browser. Try:
 *
 *     sse-relay --port 8080 &
 *     curl -N http://127.0.0.1:8080/events &
 *     curl -d 'hello' 'http://127.0.0.1:8080/publish?event=greeting'
 *
 * One thread, one epoll loop, non-blocking sockets; relay.h lists the
 * files and relay-conn.c explains the connection state machine. Every
 * buffer a client can fill is bounded and every wait times out, so no
 * client, however slow or hostile, can stop the others or grow memory:
 * malformed requests are answered 4xx and closed, and a subscriber that
 * stops reading is dropped once it misses events (the ring dropped what it
 * still owes) or its socket took nothing for the stall time; one that
 * reads slowly but steadily keeps its place however much it owes.
 * SIGINT or SIGTERM: stop accepting, let subscribers drain for up to a
 * second, free everything, exit 0.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

#define EPOLL_BATCH 64

/* ---- setting up and tearing down */

/* The hub (server_hub_new()): its subscribers follow the ring; it sends
 * their heartbeats and drops the slow ones (conn_subscriber_dropped()). */
static int open_hub(struct relay *r)
{
	return server_hub_new(&r->opt, conn_subscriber_dropped, r, &r->hub);
}

static int watch(struct relay *r, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};

	return epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void relay_free(struct relay *r)
{
	conn_close_all(r);
	conn_reap(r);
	sse_hub_free(r->hub);
	close_fd(&r->listen_fd);
	close_fd(&r->signal_fd);
	close_fd(&r->spare_fd);
	close_fd(&r->epoll_fd);
}

/* Everything but the listening socket, which main() opens first so that
 * a bad --bind or --port fails fast. The listening and signal
 * descriptors are told apart from connections by their epoll data: a
 * pointer to the relay's field rather than to a struct conn. */
static int relay_init(struct relay *r)
{
	int rc;

	r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	r->signal_fd = server_signals();
	r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (r->epoll_fd < 0 || r->signal_fd < 0 || r->spare_fd < 0 ||
	    watch(r, r->listen_fd, &r->listen_fd) < 0 || watch(r, r->signal_fd, &r->signal_fd) < 0) {
		fprintf(stderr, "sse-relay: setup: %s\n", strerror(errno));
		return -1;
	}
	rc = open_hub(r);
	if (rc < 0) {
		fprintf(stderr, "sse-relay: setup: %s\n", sse_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- the loop */

static void read_signals(struct relay *r)
{
	struct signalfd_siginfo si;

	while (read(r->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		r->stop_requested = true;
}

/* Stop accepting; subscribers drain for up to RELAY_GRACE_MS. */
static void begin_stop(struct relay *r)
{
	r->stopping = true;
	r->stop_deadline = r->now + RELAY_GRACE_MS;
	close_fd(&r->listen_fd); /* also leaves the epoll set */
	conn_stop_all(r);
}

static bool finished(const struct relay *r)
{
	return r->stopping && (conn_count(r) == 0 || r->now >= r->stop_deadline);
}

static void dispatch(struct relay *r, const struct epoll_event *ev)
{
	if (ev->data.ptr == &r->listen_fd)
		conn_accept_all(r);
	else if (ev->data.ptr == &r->signal_fd)
		read_signals(r);
	else
		conn_on_event(ev->data.ptr, ev->events);
}

/* How long epoll may sleep: until the next heartbeat, request timeout,
 * linger timeout or the end of the shutdown grace, whichever is first. */
static int wait_timeout(struct relay *r)
{
	uint64_t next = SSE_NO_DEADLINE, other = conn_next_deadline(r);

	/* Run again after this turn's work: streams that joined have
	 * deadlines the first run did not know. Nothing is due twice. */
	sse_hub_tick(r->hub, r->now, &next);
	if (other < next)
		next = other;
	if (r->stopping && r->stop_deadline < next)
		next = r->stop_deadline;
	if (next == SSE_NO_DEADLINE)
		return -1;
	if (next <= r->now)
		return 0;
	return next - r->now > INT_MAX ? INT_MAX : (int)(next - r->now);
}

/* One turn: the clock, due heartbeats, the events the last wait
 * returned, one fan-out for all events published meanwhile, shutdown,
 * timeouts; then closed connections are freed and the loop sleeps. */
static int run(struct relay *r)
{
	struct epoll_event events[EPOLL_BATCH];
	int n = 0;

	for (;;) {
		r->now = server_now_ms();
		/* First, so that streams see this turn's time before we use them. */
		sse_hub_tick(r->hub, r->now, NULL);
		for (int i = 0; i < n; i++)
			dispatch(r, &events[i]);
		if (r->published) {
			r->published = false;
			sse_hub_flush(r->hub); /* drops go to conn_subscriber_dropped() */
		}
		if (r->stop_requested && !r->stopping)
			begin_stop(r);
		conn_expire(r);
		conn_reap(r);
		if (finished(r))
			return 0;
		n = epoll_wait(r->epoll_fd, events, EPOLL_BATCH, wait_timeout(r));
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "sse-relay: epoll_wait: %s\n", strerror(errno));
			return -1;
		}
		if (n < 0)
			n = 0;
	}
}

/* Each subscriber holds a descriptor: take all the system allows (the
 * soft limit is often 1024, the hard one far higher). */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct relay r = {.epoll_fd = -1, .listen_fd = -1, .signal_fd = -1, .spare_fd = -1};
	int rc = server_options(argc, argv, &r.opt);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	raise_fd_limit();
	r.listen_fd = server_listen("sse-relay", &r.opt);
	rc = r.listen_fd < 0 ? -1 : relay_init(&r);
	if (rc == 0)
		rc = server_announce("sse-relay", r.listen_fd);
	if (rc == 0)
		rc = run(&r);
	if (rc == 0)
		fprintf(stderr, "sse-relay: stopped\n");
	relay_free(&r);
	return rc == 0 ? 0 : 1;
}
