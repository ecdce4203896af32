/*
 * sse-relay: who may subscribe and publish (relay-auth.c).
 *
 * JSON Web Tokens (HS256 or RS256, verified by libjwt when the relay is
 * built with it) grant channels to subscribe and publish to; CORS answers
 * name only the origins of an allowlist; a publish from a browser page of
 * another origin is refused. The plain --token (server.c) still lets a
 * publisher in on its own.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RELAY_AUTH_H
#define RELAY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sse.h>

#define AUTH_ORIGINS_MAX 32      /* --cors-origin given at most */
#define AUTH_ORIGIN_LEN_MAX 128  /* and each at most this long */
#define AUTH_LEEWAY_S 5          /* nbf and iat may be this far in our future */
#define AUTH_KEY_FILE_MAX 65536  /* bytes of a secret or a public key file */
#define AUTH_SECRET_MIN 32       /* HS256 needs a key as long as its hash (RFC 7518 3.2) */
#define AUTH_EXPIRY_RETRY_MS 1000u /* --jwt-expiry retry: the retry: told at expiry */
#define AUTH_CORS_LINES_MAX 256  /* auth_cors_lines() never writes more */

/* The relay has one channel today: its endpoints are this one. */
#define AUTH_CHANNEL_DEFAULT "default"

enum auth_action { AUTH_SUBSCRIBE, AUTH_PUBLISH };

/* Where a request comes from, by its Origin field (auth_classify()). */
enum auth_origin {
	AUTH_ORIGIN_NONE,    /* no Origin: not a browser's cross-origin request */
	AUTH_ORIGIN_SAME,    /* Origin is the Host the request was sent to */
	AUTH_ORIGIN_LISTED,  /* on the allowlist: CORS with credentials */
	AUTH_ORIGIN_ANY,     /* matched only by --cors-origin '*': CORS, no credentials */
	AUTH_ORIGIN_FOREIGN, /* anything else: no CORS, and no publishing */
};

/* The options of relay-auth.c and what they load. */
struct relay_auth {
	const char *hs256_file;     /* --jwt-hs256-secret-file */
	const char *rs256_file;     /* --jwt-rs256-public-key (PEM) */
	const char *cookie;         /* --jwt-cookie: the cookie a token may come in */
	const char *query;          /* --jwt-query: the query parameter, for EventSource */
	uint32_t expiry_retry_ms;   /* --jwt-expiry retry[:MS]; 0: stop */
	const char *origins[AUTH_ORIGINS_MAX]; /* --cors-origin, but '*' */
	size_t n_origins;
	bool any_origin;            /* --cors-origin '*' */
	unsigned char *hs256_key;   /* the secret; NULL: no HS256 tokens */
	size_t hs256_len;
	unsigned char *rs256_key;   /* the PEM, NUL-terminated; NULL: no RS256 tokens */
	size_t rs256_len;
};

/* What a verified token grants: the JSON of its "sse" claim, e.g.
 * {"subscribe": ["*"], "publish": ["default"]}, and its expiry. */
struct auth_claims {
	char *sse;       /* owned; NULL: grants nothing */
	uint64_t exp_ms; /* Unix time, in ms */
};

struct conn;
struct relay;

extern const char auth_usage[];

/* "--name V" of ours at argv[*i]: 1 taken, 0 not ours, -1 bad (told). */
int auth_take_option(int argc, char **argv, int *i, struct relay_auth *a);
/* Read the key files: 0, or -1 (told). */
int auth_open(struct relay_auth *a);
void auth_free(struct relay_auth *a);

/* May the claims do what to the channel (len bytes)? */
bool auth_allows(const struct auth_claims *cl, enum auth_action what, const char *channel,
		 size_t len);

/* A request's origin, kept in its conn_request for the answer's CORS lines. */
void auth_classify(struct conn *c, const struct sse_http_request *req);
/* May the request do what to the channel? false: answered 401 or 403.
 * A subscriber's token sets the request's not_after. */
bool auth_admit(struct conn *c, const struct sse_http_request *req, const char *query,
		size_t query_len, enum auth_action what, const char *channel, size_t len);
/* An OPTIONS preflight of /events or /publish with CORS on: answered, true. */
bool auth_preflight(struct conn *c, const struct sse_http_request *req, const char *path,
		    size_t path_len);
/* The CORS lines of an answer to the connection's request ("" without CORS). */
size_t auth_cors_lines(const struct conn *c, char *buf, size_t cap);
/* The event stream's response head, with its CORS lines. */
int auth_stream_head(const struct conn *c, char *buf, size_t cap, size_t *len);

#endif
