/*
 * sse-relay: what its files share. sse-relay.c has the overview.
 *
 *   sse-relay.c     signals, the event loop (options and the listening socket:
 *                   server.c, shared with the other example servers)
 *   relay-conn.c    one connection's state machine and its I/O
 *   relay-routes.c  what each endpoint does: the page, /events, /publish
 *   relay-http.c    the bits of HTTP that libsse leaves to the application
 *   relay-page.c    the HTML page served at /
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sse.h>

#include "server.h"

/* Every buffer a client can make us fill has a bound. */
#define RELAY_HEAD_MAX ((size_t)8 * 1024)      /* request head; past it: 431 */
#define RELAY_HEAD_FIRST ((size_t)1024)        /* its buffer's first size; it doubles from there */
#define RELAY_HEAD_FIELDS 64                   /* its header fields; past them: 431 */
#define RELAY_DISCARD_MAX ((size_t)2 << 20)    /* unwanted input read before giving up */
#define RELAY_MAX_CONNS 65536u                 /* connections open at once */

/* Every wait has a bound too. */
#define RELAY_REQUEST_TIMEOUT_MS 10000u /* from accept to a complete request */
#define RELAY_LINGER_MS 1000u           /* for a client to read our answer and close */
#define RELAY_GRACE_MS 1000u            /* for subscribers to drain at shutdown */


/*
 * A connection's life (relay-conn.c drives it, relay-routes.c decides):
 *
 *   READING_HEAD --GET /events-----------------------------> STREAMING
 *     |   \--------any other answer---> RESPONDING --> LINGERING
 *     \--POST /publish--> READING_BODY ----/
 *
 * and from every state to CLOSED, which only waits to be freed.
 */
enum conn_state {
	CONN_READING_HEAD, /* collecting the request head */
	CONN_READING_BODY, /* collecting Content-Length bytes of a publish */
	CONN_RESPONDING,   /* writing a complete, short response */
	CONN_LINGERING,    /* answered, write side shut: reading until the client closes */
	CONN_STREAMING,    /* a subscriber of /events */
	CONN_CLOSED,       /* descriptor closed; freed at the end of the loop turn */
};

struct relay;
struct conn;

/* Called when a publish body is complete. */
typedef void (*conn_body_fn)(struct conn *c, const char *body, size_t len);

/*
 * What a connection needs only until it is answered: the request and
 * the response to it. One allocation with the head buffer at its end,
 * which grows while the head is read (nothing points into it before it
 * is parsed); freed when the connection becomes a subscriber or lingers,
 * so that a subscriber keeps nothing of its request.
 */
struct conn_request {
	/* READING_HEAD on: the head, and maybe the first bytes of a body. */
	size_t head_cap;          /* RELAY_HEAD_FIRST, doubling up to RELAY_HEAD_MAX */
	size_t head_len;
	size_t head_end;          /* bytes of the head, once parsed */
	size_t scan;              /* where the search for the head's end resumes */
	bool head_started;        /* past the empty lines a request may begin with */
	bool peeked;              /* the first bytes were checked for garbage */
	/* READING_BODY */
	char *body;
	size_t body_len, body_cap, body_want;
	conn_body_fn on_body;
	const char *event_type;   /* a publish's ?event=, decoded in head; NULL: none */
	size_t event_type_len;
	/* RESPONDING */
	size_t reply_head_len;
	const char *reply_body;   /* static, or text below */
	size_t reply_body_len;
	size_t reply_sent;        /* of head then body */
	char text[64];            /* a short body: a status line, a published id */
	char reply_head[256];
	char head[];              /* head_cap bytes */
};

/*
 * One connection, kept small: most of them are idle subscribers. The
 * part for its state is allocated apart (the request) or is the stream.
 */
struct conn {
	struct conn *prev, *next; /* on the relay's list for its state */
	struct relay *relay;
	union {
		struct conn_request *req;  /* READING_HEAD, READING_BODY, RESPONDING */
		struct sse_stream *stream; /* STREAMING */
	} u;                               /* LINGERING, CLOSED: neither (NULL) */
	uint64_t deadline;        /* when a request or a linger times out */
	uint32_t discarded;       /* LINGERING, STREAMING: bytes of input dropped */
	int fd;
	enum conn_state state;
};

/* An intrusive, doubly linked list of connections. */
struct conn_list {
	struct conn *head, *tail;
	size_t len;
};

struct relay {
	struct server_options opt;
	int epoll_fd;
	int listen_fd;  /* -1 once we stop accepting */
	int signal_fd;
	int spare_fd;   /* held in reserve for running out of descriptors */
	struct sse_hub *hub;  /* the ring every event is encoded into once, its subscribers */
	/* Each connection is on exactly one list, by its state. The two
	 * timed lists each have one timeout for all, so appending keeps them
	 * sorted by deadline and expiring costs O(expired). */
	struct conn_list requests;    /* READING_HEAD, READING_BODY, RESPONDING */
	struct conn_list lingering;
	struct conn_list subscribers;
	struct conn_list closed;
	uint64_t now;                 /* monotonic ms, read once per loop turn */
	bool published;               /* events came since the hub's last fan-out */
	bool stop_requested;          /* a signal came; acted on between events */
	bool stopping;                /* no longer accepting; draining subscribers */
	uint64_t stop_deadline;
};

/* relay-conn.c: the event loop's side. */
void conn_accept_all(struct relay *r);
void conn_on_event(struct conn *c, uint32_t events);
void conn_expire(struct relay *r);
uint64_t conn_next_deadline(const struct relay *r);
size_t conn_count(const struct relay *r);
void conn_stop_all(struct relay *r);
void conn_close_all(struct relay *r);
void conn_reap(struct relay *r);
void conn_subscriber_dropped(struct sse_stream *s, int err, void *user);

/* relay-conn.c: what a route may do with the connection it serves. */
void conn_reply(struct conn *c, int status, const char *extra_headers, const char *content_type,
		const char *body, size_t len);
void conn_reply_status(struct conn *c, int status, const char *extra_headers);
void conn_reply_text(struct conn *c, int status, const char *text, size_t len);
void conn_read_body(struct conn *c, size_t len, bool send_continue, conn_body_fn done);
void conn_subscribe(struct conn *c, struct sse_stream *s);
void conn_close(struct conn *c);

/* relay-routes.c */
void route_request(struct conn *c, const struct sse_http_request *req);

/* relay-http.c */
enum http_length {
	HTTP_LENGTH_NONE,      /* no Content-Length */
	HTTP_LENGTH_OK,
	HTTP_LENGTH_BAD,       /* malformed or repeated: 400 */
	HTTP_LENGTH_TOO_LARGE, /* over the bound: 413 */
};
void http_split_target(const struct sse_http_request *req, const char **path, size_t *path_len,
		       const char **query, size_t *query_len);
bool http_span_is(const char *s, size_t len, const char *lit);
enum http_length http_content_length(const struct sse_http_request *req, size_t max,
				     size_t *len);
bool http_expects_continue(const struct sse_http_request *req);
bool http_bearer_matches(const struct sse_http_request *req, const char *token);
bool http_host_ok(const struct sse_http_request *req);

/* relay-page.c */
extern const char relay_page[];
extern const size_t relay_page_len;

#endif
