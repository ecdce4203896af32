/*
 * sse-relay: what its files share. sse-relay.c has the overview.
 *
 *   sse-relay.c     signals, the event loop (options and the listening socket:
 *                   server.c, shared with the other example servers)
 *   relay-conn.c    one connection's state machine and its I/O
 *   relay-routes.c  what each endpoint does: the page, /events, /publish
 *   relay-http.c    the bits of HTTP that libsse leaves to the application
 *   relay-page.c    the HTML page served at /
 *   relay-cluster.c --redis: one node of several, fed through Redis
 *   relay-auth.c    JWTs, CORS and the Origin check: who may subscribe, publish
 *   relay-metrics.c /metrics, /healthz, /readyz, --metrics-bind
 *   relay-log.c     --access-log
 *   relay-channels.c /events/NAME, /publish/NAME: a hub per channel
 *   relay-merge.c   /events?channel=a&channel=b: several channels, one stream
 *   relay-threads.c --threads: the default channel fanned out from several threads
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sse.h>

#include "relay-auth.h"
#include "relay-channels.h"
#include "relay-cluster.h"
#include "relay-metrics.h"
#include "relay-threads.h"
#include "server.h"

/* Every buffer a client can make us fill has a bound. */
#define RELAY_HEAD_MAX ((size_t)8 * 1024)      /* request head; past it: 431 */
#define RELAY_HEAD_FIRST ((size_t)1024)        /* its buffer's first size; it doubles from there */
#define RELAY_HEAD_FIELDS 64                   /* its header fields; past them: 431 */
#define RELAY_DISCARD_MAX ((size_t)2 << 20)    /* unwanted input read before giving up */
#define RELAY_MAX_CONNS 65536u                 /* connections open at once */
#define RELAY_BODY_MEMORY ((size_t)4 << 20)    /* default --body-memory: four 1 MiB bodies */
#define RELAY_SMALL_BODY ((size_t)64 * 1024)   /* bodies past it share at most half the budget */
#define RELAY_SNDBUF 65536                     /* default --sndbuf of a subscriber's socket */

/* Descriptors: the relay's own (listening, epoll, signal, spare, stdio)
 * and room to answer "come back later" above the cap are kept out of
 * --max-conns; the last RELAY_PUBLISH_RESERVE of it are for requests
 * other than /events, so publishers get in while subscribers fill it. */
#define RELAY_FD_OVERHEAD 64u
#define RELAY_PUBLISH_RESERVE 32u

/* A client told to come back later gets a retry: in this window, so that
 * those refused together do not return together. */
#define RELAY_SHED_RETRY_MIN_MS 2000u
#define RELAY_SHED_RETRY_MAX_MS 10000u

/* Subscribers by lifetime deadline: one list per jitter step, each in
 * deadline order (same jitter, joined later, expires later). */
#define RELAY_LIFETIME_SLOTS 64u
/* The last of them is for those a token's exp ends before their lifetime
 * (relay-auth.c): in deadline order too, by insertion from its tail. */
#define RELAY_EXPIRY_SLOT (RELAY_LIFETIME_SLOTS - 1u)

/* Every wait has a bound too. */
#define RELAY_REQUEST_TIMEOUT_MS 10000u /* from accept to a complete request */
#define RELAY_LINGER_MS 1000u           /* for a client to read our answer and close */
#define RELAY_GRACE_MS 1000u            /* for subscribers to drain at shutdown */
#define RELAY_DRAIN_MS 2000u            /* for a closing subscriber to finish its frame */

/* sse-relay's own options (sse-relay.c parses them; server.c the shared ones). */
struct relay_options {
	size_t body_memory;            /* --body-memory: announced body bytes held at once */
	size_t max_conns;              /* --max-conns: 0 until set from the descriptor limit */
	size_t max_per_addr;           /* --max-per-addr: streams per address; 0: no cap */
	size_t max_conns_per_addr;     /* --max-conns-per-addr: connections per address; 0: no cap */
	int sndbuf;                    /* --sndbuf: a subscriber's SO_SNDBUF; 0: the kernel's */
	uint64_t max_lifetime_ms;      /* --max-lifetime: 0: streams live for ever */
	uint64_t shutdown_window_ms;   /* --shutdown-retry-window: 0: no retry at shutdown */
	size_t threads;                /* --threads: loop threads; 0 until resolved (threads_check()) */
};


/*
 * A connection's life (relay-conn.c drives it, relay-routes.c decides):
 *
 *   READING_HEAD --GET /events-----------------------------> STREAMING
 *     |   \--------any other answer---> RESPONDING --> LINGERING   |
 *     \--POST /publish--> READING_BODY ----/    |        lifetime, |
 *                ^                              |        shutdown  v
 *                \-------keep-alive------------/               DRAINING
 *
 * and from every state to CLOSED, which only waits to be freed. A
 * DRAINING subscriber finishes the frame it is in, is told its retry
 * (at shutdown), and closes on that event boundary.
 */
enum conn_state {
	CONN_READING_HEAD, /* collecting the request head */
	CONN_READING_BODY, /* collecting Content-Length bytes of a publish */
	CONN_RESPONDING,   /* writing a complete, short response */
	CONN_LINGERING,    /* answered, write side shut: reading until the client closes */
	CONN_STREAMING,    /* a subscriber of /events */
	CONN_DRAINING,     /* a subscriber closing on the next event boundary */
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
	size_t consumed;          /* head and body bytes of the head buffer: a next request follows */
	conn_body_fn on_body;
	struct cluster_pending *pending; /* --redis: a publish waiting for Redis */
	bool budgeted;            /* body_want is taken from the relay's body budget */
	bool expect_continue;     /* answer 100 Continue when the body may come */
	bool keep_alive;          /* after the answer, read the next request */
	const char *event_type;   /* a publish's ?event=, decoded in head; NULL: none */
	size_t event_type_len;
	const char *channel;      /* /publish/NAME: NAME, in head; NULL: the default */
	size_t channel_len;
	/* RESPONDING */
	size_t reply_head_len;
	const char *reply_body;   /* static, or text below */
	size_t reply_body_len;
	size_t reply_sent;        /* of head then body */
	char text[64];            /* a short body: a status line, a published id */
	char *owned;              /* a body of ours to free (/metrics), or NULL */
	uint16_t status;          /* of the answer, for the access log */
	char log_target[80];      /* --access-log: "METHOD /path", no query */
	uint64_t not_after;       /* a subscriber's token ends it then (r->now's clock); 0: never */
	uint8_t origin;           /* enum auth_origin, for the answer's CORS lines */
	uint8_t origin_index;     /* AUTH_ORIGIN_LISTED: which --cors-origin */
	char reply_head[512];     /* CORS lines and a preflight's take room */
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
		struct sse_stream *stream; /* STREAMING, DRAINING */
		struct channel_sub *sub;   /* the same, of a named channel (CONN_F_CHANNEL) */
	} u;                               /* LINGERING, CLOSED: neither (NULL) */
	uint64_t deadline;        /* when a request, a linger, a lifetime or a drain ends */
	struct relay_peer *peer;  /* its address, counted: --max-conns-per-addr, --max-per-addr */
	uint32_t discarded;       /* LINGERING, STREAMING: bytes of input dropped */
	int fd;
	uint8_t state;            /* enum conn_state */
	uint8_t slot;             /* STREAMING: its list of r->subscribers */
	uint8_t flags;            /* CONN_F_* */
	/* --access-log. These 12 bytes cost no memory: malloc's 72-byte
	 * chunk that 64 bytes of struct took had room for them. */
	uint32_t born;            /* ops_clock() when it began (a request: its own start) */
	uint64_t sent;            /* STREAMING, DRAINING: bytes written */
};

/* struct conn's flags. */
#define CONN_F_NL1 0x1u       /* the last byte written was a line feed */
#define CONN_F_NL2 0x2u       /* the last two were: an event boundary */
#define CONN_F_WAITING 0x4u   /* READING_BODY: waits for body budget */
#define CONN_F_LEFT_HUB 0x8u  /* DRAINING: out of the hub, writing its last bytes */
#define CONN_F_RETRY 0x10u    /* DRAINING: tell a jittered retry before closing */
#define CONN_F_OPS 0x20u      /* came on --metrics-bind: its endpoints only */
#define CONN_F_CHANNEL 0x40u  /* STREAMING, DRAINING: u.sub, not u.stream */
#define CONN_F_PEER_STREAM 0x80u /* counted in its peer's streams (--max-per-addr) */

/* A subscriber of several channels as one stream (relay-merge.c): its
 * u.sub heads a struct relay_merge, with no channel of its own. */
static inline bool conn_is_merged(const struct conn *c)
{
	return (c->flags & CONN_F_CHANNEL) && c->u.sub->ch == NULL;
}

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
	struct conn_list subscribers[RELAY_LIFETIME_SLOTS];
	struct conn_list draining;    /* by drain deadline */
	struct conn_list closed;
	struct relay_options lim;
	struct cluster_options cluster_opt; /* --redis */
	struct relay_cluster *cluster;      /* NULL: a single node (relay-cluster.c) */
	struct relay_auth auth;             /* --jwt-*, --cors-origin (relay-auth.c) */
	struct ops_options ops_opt;         /* --metrics-bind, --access-log */
	struct relay_metrics m;             /* relay-metrics.c */
	struct relay_channels ch;           /* named channels (relay-channels.c) */
	struct relay_threads *threads;      /* --threads: the others; NULL with one, and on them */
	size_t body_budget;           /* of lim.body_memory, not taken */
	size_t large_taken;           /* of it, by bodies over RELAY_SMALL_BODY */
	size_t waiting;               /* requests with CONN_F_WAITING */
	bool budget_freed;            /* waiting requests may get budget now */
	uint64_t rng;                 /* xorshift64 state, for jitter */
	struct relay_peer **peers;    /* --max-per-addr: hash buckets */
	uint64_t peer_seed;
	uint64_t now;                 /* monotonic ms, read once per loop turn */
	bool published;               /* events came since the hub's last fan-out */
	bool stop_requested;          /* a signal came; acted on between events */
	bool stopping;                /* no longer accepting; draining subscribers */
	uint64_t stop_deadline;
};

/* relay-conn.c: the event loop's side. */
void conn_accept_all(struct relay *r);
void conn_accept_from(struct relay *r, int listen_fd, uint8_t flags);
void conn_on_event(struct conn *c, uint32_t events);
void conn_expire(struct relay *r);
uint64_t conn_next_deadline(const struct relay *r);
size_t conn_count(const struct relay *r);
void conn_stop_all(struct relay *r);
void conn_close_all(struct relay *r);
void conn_reap(struct relay *r);
void conn_subscriber_dropped(struct sse_stream *s, int err, void *user);
void conn_grant_bodies(struct relay *r);
void conn_drain_boundaries(struct relay *r);
size_t conn_subscriber_count(const struct relay *r);
size_t conn_local_subscribers(const struct relay *r); /* this thread's alone */
/* --threads (relay-threads.c): a connection leaves one thread's loop and
 * joins another's, in its state; false: it could not, and is closed. */
void conn_detach(struct conn *c);
bool conn_attach(struct relay *r, struct conn *c);
uint64_t relay_random(struct relay *r, uint64_t below);

/* relay-conn.c: what a route may do with the connection it serves. */
void conn_reply(struct conn *c, int status, const char *extra_headers, const char *content_type,
		const char *body, size_t len);
void conn_reply_status(struct conn *c, int status, const char *extra_headers);
void conn_reply_owned(struct conn *c, int status, const char *content_type, char *body,
		      size_t len);
void conn_reply_text(struct conn *c, int status, const char *text, size_t len);
void conn_read_body(struct conn *c, size_t len, bool send_continue, conn_body_fn done);
void conn_subscribe(struct conn *c, struct sse_stream *s, struct relay_channel *ch);
void conn_retry_later(struct conn *c);
void conn_close(struct conn *c);
struct sse_transport conn_transport(struct conn *c);

/* relay-routes.c */
void route_request(struct conn *c, const struct sse_http_request *req);
/* An admitted subscriber of channel ch (NULL: the default), from the
 * client's Last-Event-ID: its stream opened, begun and subscribed. */
void route_stream(struct conn *c, struct relay_channel *ch, const char *id, size_t id_len);

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
bool http_keep_alive(const struct sse_http_request *req);

/* relay-conn.c: connections and streams per client address, for
 * --max-conns-per-addr and --max-per-addr. */
int peers_init(struct relay *r);
void peers_free(struct relay *r);
bool peers_accept(struct conn *c);
bool peers_admit(struct conn *c);
void peers_release(struct conn *c);

/* relay-page.c */
extern const char relay_page[];
extern const size_t relay_page_len;

#endif
