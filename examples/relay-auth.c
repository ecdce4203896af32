/*
 * sse-relay: who may subscribe and publish.
 *
 * Tokens. A JSON Web Token (RFC 7519) signed with HS256 (a shared secret,
 * --jwt-hs256-secret-file) or RS256 (--jwt-rs256-public-key) comes in
 * "Authorization: Bearer", else in a cookie (--jwt-cookie), else in a
 * query parameter (--jwt-query: EventSource cannot set headers). libjwt
 * checks the signature with the key of the algorithm the token names, and
 * only with that: each key is used for its own algorithm and the token
 * must name it again once verified, so an RS256 public key is never taken
 * for an HMAC secret, and "none" is never accepted. exp is required and
 * strict (the relay's clock ends the stream at it, and a reconnect with
 * the same token must fail); nbf and iat may be AUTH_LEEWAY_S ahead of
 * us. The "sse" claim lists channels:
 *
 *     {"sse": {"subscribe": ["*"], "publish": ["default"]}}
 *
 * A request without a token, or with a bad one, gets 401 "unauthorized"
 * (and WWW-Authenticate: Bearer); a good token that does not grant the
 * channel gets 403 "forbidden"; neither says more. With neither key,
 * subscribing is open and publishing needs --token if it is set; with a
 * key, --token still lets a publisher in (the operator's backend).
 *
 * A subscriber's stream ends at its token's exp: that is its lifetime's
 * deadline when earlier (relay-conn.c), so it closes on an event boundary
 * like a rotation, at no cost per subscriber.
 *
 * Origins. --cors-origin lists the origins whose pages may read the
 * relay's answers, with credentials (cookies); '*' lets any other origin
 * read them without credentials. A POST /publish whose Origin is neither
 * the relay's own nor allowed is refused 403: a form on a foreign page
 * cannot publish, with or without a token. A token in a cookie counts
 * only for requests from no origin, the relay's own, or a listed one.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef SSE_RELAY_JWT
#include <jwt.h>
#endif

#include "relay.h"

const char auth_usage[] =
	"  --jwt-hs256-secret-file FILE\n"
	"                     accept JWTs signed HS256 with the secret in FILE (at\n"
	"                     least 32 bytes; one trailing newline is not part of it)\n"
	"  --jwt-rs256-public-key FILE\n"
	"                     accept JWTs signed RS256, verified with the PEM public key\n"
	"                     in FILE. With a key, /events needs a token whose \"sse\"\n"
	"                     claim grants \"subscribe\" to the channel \"default\" (or\n"
	"                     \"*\"), /publish one that grants \"publish\" (or --token)\n"
	"  --jwt-cookie NAME  the cookie a token may come in (default sse_token)\n"
	"  --jwt-query NAME   the query parameter a token may come in (default token)\n"
	"  --jwt-expiry stop|retry[:MS]\n"
	"                     at the token's exp a stream ends on an event boundary;\n"
	"                     retry first tells the client retry: MS (default 1000) to\n"
	"                     come back with a fresh token; stop tells nothing, and\n"
	"                     the reconnect with the old token gets 401 (default stop)\n"
	"  --cors-origin ORIGIN\n"
	"                     let pages of ORIGIN (scheme://host[:port]) read answers,\n"
	"                     with credentials; '*': any origin, without; repeatable.\n"
	"                     POST /publish from another origin gets 403\n";

/* ---- options */

static bool origin_well_formed(const char *o)
{
	const char *p = strstr(o, "://");
	size_t len = strlen(o);

	if (len == 0 || len > AUTH_ORIGIN_LEN_MAX || p == NULL || p == o || p[3] == '\0')
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)o[i] <= ' ' || o[i] == 0x7f)
			return false;
	return strchr(p + 3, '/') == NULL; /* an origin has no path */
}

static bool set_expiry(struct relay_auth *a, const char *v)
{
	char *end;
	unsigned long ms;

	if (strcmp(v, "stop") == 0) {
		a->expiry_retry_ms = 0;
		return true;
	}
	if (strcmp(v, "retry") == 0) {
		a->expiry_retry_ms = AUTH_EXPIRY_RETRY_MS;
		return true;
	}
	if (strncmp(v, "retry:", 6) != 0 || v[6] < '0' || v[6] > '9')
		return false;
	errno = 0;
	ms = strtoul(v + 6, &end, 10);
	if (errno != 0 || *end != '\0' || ms == 0 || ms > SSE_RETRY_MAX)
		return false;
	a->expiry_retry_ms = (uint32_t)ms;
	return true;
}

static bool set_origin(struct relay_auth *a, const char *v)
{
	if (strcmp(v, "*") == 0) {
		a->any_origin = true;
		return true;
	}
	if (!origin_well_formed(v) || a->n_origins == AUTH_ORIGINS_MAX)
		return false;
	a->origins[a->n_origins++] = v;
	return true;
}

static const char *const option_names[] = {
	"jwt-hs256-secret-file", "jwt-rs256-public-key", "jwt-cookie", "jwt-query",
	"jwt-expiry", "cors-origin",
};

static bool set_option(struct relay_auth *a, size_t k, const char *v)
{
	switch (k) {
	case 0: a->hs256_file = v; return true;
	case 1: a->rs256_file = v; return true;
	case 2: a->cookie = v; return v[0] != '\0' && strpbrk(v, "=; \t") == NULL;
	case 3: a->query = v; return v[0] != '\0';
	case 4: return set_expiry(a, v);
	default: return set_origin(a, v);
	}
}

int auth_take_option(int argc, char **argv, int *i, struct relay_auth *a)
{
	const char *arg = argv[*i];

	if (strncmp(arg, "--", 2) != 0)
		return 0;
	for (size_t k = 0; k < sizeof(option_names) / sizeof(option_names[0]); k++) {
		size_t len = strlen(option_names[k]);
		const char *v;

		if (strncmp(arg + 2, option_names[k], len) != 0 ||
		    (arg[2 + len] != '\0' && arg[2 + len] != '='))
			continue;
#ifndef SSE_RELAY_JWT
		if (k < 5) {
			fprintf(stderr, "%s: --%s: this sse-relay was built without libjwt "
				"(install libjwt-dev and rebuild)\n", argv[0], option_names[k]);
			return -1;
		}
#endif
		v = arg[2 + len] == '=' ? arg + 3 + len : (*i + 1 < argc ? argv[++*i] : NULL);
		if (v != NULL && set_option(a, k, v))
			return 1;
		fprintf(stderr, "%s: bad value for --%s: '%s'\n", argv[0], option_names[k],
			v != NULL ? v : "");
		return -1;
	}
	return 0;
}

/* A whole file of at most AUTH_KEY_FILE_MAX bytes, NUL-terminated. */
static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = f != NULL ? malloc(AUTH_KEY_FILE_MAX + 1) : NULL;
	size_t n = buf != NULL ? fread(buf, 1, AUTH_KEY_FILE_MAX + 1, f) : 0;

	if (f != NULL)
		fclose(f);
	if (buf == NULL || n > AUTH_KEY_FILE_MAX) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int load_key(const char *path, const char *what, unsigned char **key, size_t *len)
{
	*key = read_file(path, len);
	if (*key == NULL) {
		fprintf(stderr, "sse-relay: %s %s: %s\n", what, path,
			errno != 0 ? strerror(errno) : "larger than 64 KiB");
		return -1;
	}
	return 0;
}

static int load_keys(struct relay_auth *a)
{
	if (a->hs256_file != NULL) {
		if (load_key(a->hs256_file, "--jwt-hs256-secret-file", &a->hs256_key,
			     &a->hs256_len) < 0)
			return -1;
		if (a->hs256_len > 0 && a->hs256_key[a->hs256_len - 1] == '\n')
			a->hs256_key[--a->hs256_len] = '\0';
		if (a->hs256_len > 0 && a->hs256_key[a->hs256_len - 1] == '\r')
			a->hs256_key[--a->hs256_len] = '\0';
		if (a->hs256_len < AUTH_SECRET_MIN) {
			fprintf(stderr, "sse-relay: --jwt-hs256-secret-file %s: shorter than %d "
				"bytes\n", a->hs256_file, AUTH_SECRET_MIN);
			return -1;
		}
	}
	if (a->rs256_file != NULL) {
		if (load_key(a->rs256_file, "--jwt-rs256-public-key", &a->rs256_key,
			     &a->rs256_len) < 0)
			return -1;
		if (strstr((char *)a->rs256_key, "-----BEGIN PUBLIC KEY-----") == NULL) {
			fprintf(stderr, "sse-relay: --jwt-rs256-public-key %s: not a PEM public "
				"key (-----BEGIN PUBLIC KEY-----)\n", a->rs256_file);
			return -1;
		}
	}
	return 0;
}

int auth_open(struct relay_auth *a)
{
	if (a->cookie == NULL)
		a->cookie = "sse_token";
	if (a->query == NULL)
		a->query = "token";
	if (load_keys(a) < 0) {
		auth_free(a);
		return -1;
	}
	return 0;
}

void auth_free(struct relay_auth *a)
{
	if (a->hs256_key != NULL)
		memset(a->hs256_key, 0, a->hs256_len); /* a secret does not outlive its use */
	free(a->hs256_key);
	free(a->rs256_key);
	a->hs256_key = a->rs256_key = NULL;
}

static bool jwt_on(const struct relay_auth *a)
{
	return a->hs256_key != NULL || a->rs256_key != NULL;
}

static bool cors_on(const struct relay_auth *a)
{
	return a->n_origins > 0 || a->any_origin;
}

/* ---- the "sse" claim: a small JSON reader for what jansson wrote */

struct json {
	const char *p, *end;
};

static void json_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool json_eat(struct json *j, char ch)
{
	json_ws(j);
	if (j->p == j->end || *j->p != ch)
		return false;
	j->p++;
	return true;
}

static int hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
			ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* A string, decoded into out (cap bytes; *len: its length, or cap + 1
 * when it did not fit). A \u escape of a surrogate is refused: channel
 * names are compared byte for byte, and those have no single encoding. */
static bool json_string(struct json *j, char *out, size_t cap, size_t *len)
{
	size_t n = 0;

	if (!json_eat(j, '"'))
		return false;
	while (j->p < j->end && *j->p != '"') {
		unsigned char b[3];
		size_t bn = 1;
		char ch = *j->p++;

		b[0] = (unsigned char)ch;
		if (ch == '\\') {
			const char *esc = "\"\"\\\\//b\bf\fn\nr\rt\t";
			const char *e = j->p < j->end ? strchr(esc, *j->p) : NULL;
			int u;

			if (e != NULL && (e - esc) % 2 == 0) {
				b[0] = (unsigned char)e[1];
				j->p++;
			} else if (j->p < j->end && *j->p == 'u' && j->end - j->p >= 5 &&
				   (u = hex4(j->p + 1)) >= 0 && (u < 0xd800 || u > 0xdfff)) {
				j->p += 5;
				if (u < 0x80) {
					b[0] = (unsigned char)u;
				} else if (u < 0x800) {
					b[0] = (unsigned char)(0xc0 | u >> 6);
					b[1] = (unsigned char)(0x80 | (u & 0x3f));
					bn = 2;
				} else {
					b[0] = (unsigned char)(0xe0 | u >> 12);
					b[1] = (unsigned char)(0x80 | (u >> 6 & 0x3f));
					b[2] = (unsigned char)(0x80 | (u & 0x3f));
					bn = 3;
				}
			} else {
				return false;
			}
		}
		for (size_t i = 0; i < bn; i++, n++)
			if (n < cap)
				out[n] = (char)b[i];
	}
	if (j->p == j->end)
		return false;
	j->p++;
	*len = n <= cap ? n : cap + 1;
	return true;
}

/* Skip any value (nesting bounded): what the claim has beside our keys. */
static bool json_skip(struct json *j, int depth)
{
	size_t len;
	char close;

	json_ws(j);
	if (j->p == j->end || depth > 16)
		return false;
	if (*j->p == '"')
		return json_string(j, NULL, 0, &len);
	if (*j->p != '[' && *j->p != '{') { /* a number, true, false, null */
		while (j->p < j->end && strchr(",]} \t\r\n", *j->p) == NULL)
			j->p++;
		return true;
	}
	close = *j->p++ == '[' ? ']' : '}';
	if (json_eat(j, close))
		return true;
	do {
		if (close == '}' && (!json_string(j, NULL, 0, &len) || !json_eat(j, ':')))
			return false;
		if (!json_skip(j, depth + 1))
			return false;
	} while (json_eat(j, ','));
	return json_eat(j, close);
}

/* An array of strings: does it hold "*" or the channel? */
static bool json_array_has(struct json *j, const char *channel, size_t len)
{
	char name[256];
	size_t n;
	bool found = false;

	if (!json_eat(j, '['))
		return false;
	if (json_eat(j, ']'))
		return false;
	do {
		if (!json_string(j, name, sizeof(name), &n))
			return false;
		if ((n == 1 && name[0] == '*') || (n == len && memcmp(name, channel, len) == 0))
			found = true;
	} while (json_eat(j, ','));
	return json_eat(j, ']') && found;
}

bool auth_allows(const struct auth_claims *cl, enum auth_action what, const char *channel,
		 size_t len)
{
	const char *want = what == AUTH_SUBSCRIBE ? "subscribe" : "publish";
	struct json j;
	char key[16];
	size_t n;

	if (cl == NULL || cl->sse == NULL)
		return false;
	j = (struct json){cl->sse, cl->sse + strlen(cl->sse)};
	if (!json_eat(&j, '{') || json_eat(&j, '}'))
		return false;
	do {
		if (!json_string(&j, key, sizeof(key), &n) || !json_eat(&j, ':'))
			return false;
		if (n == strlen(want) && memcmp(key, want, n) == 0)
			return json_array_has(&j, channel, len);
		if (!json_skip(&j, 0))
			return false;
	} while (json_eat(&j, ','));
	return false;
}

/* ---- finding and verifying a token */

static bool name_is(const struct sse_http_header *h, const char *name)
{
	return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static bool copy_token(const char *s, size_t len, char *out, size_t cap)
{
	if (len == 0 || len >= cap)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

/* "Authorization: Bearer <token>": 1 found, 0 no such field, -1 unusable. */
static int bearer_token(const struct sse_http_request *req, char *out, size_t cap)
{
	const struct sse_http_header *h = sse_http_find_header(req, "Authorization");
	size_t i = strlen("Bearer");

	if (h == NULL)
		return 0;
	if (h->value_len <= i || strncasecmp(h->value, "Bearer", i) != 0 || h->value[i] != ' ')
		return -1;
	while (i < h->value_len && h->value[i] == ' ')
		i++;
	return copy_token(h->value + i, h->value_len - i, out, cap) ? 1 : -1;
}

/* The cookie NAME in any Cookie field ("a=1; NAME=token"): 1 found, else 0. */
static int cookie_token(const struct sse_http_request *req, const char *name, char *out,
			size_t cap)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < req->header_count; i++) {
		const struct sse_http_header *h = &req->headers[i];
		const char *p = h->value, *end = h->value + h->value_len;

		if (!name_is(h, "Cookie"))
			continue;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p));
			const char *stop = semi != NULL ? semi : end;

			while (p < stop && (*p == ' ' || *p == '\t'))
				p++;
			if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
				const char *v = p + nlen + 1;
				size_t vlen = (size_t)(stop - v);

				if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
					v++, vlen -= 2;
				return copy_token(v, vlen, out, cap) ? 1 : -1;
			}
			p = stop + 1;
		}
	}
	return 0;
}

/* The request's token, from the first place that has one: 1 found, 0 none,
 * -1 unusable (then no other place is tried). */
static int find_token(const struct conn *c, const struct sse_http_request *req,
		      const char *query, size_t query_len, char *out, size_t cap)
{
	const struct relay_auth *a = &c->relay->auth;
	enum auth_origin o = (enum auth_origin)c->u.req->origin;
	size_t len = 0;
	int rc = bearer_token(req, out, cap);

	/* A cookie goes with every request to us, also from a foreign page. */
	if (rc == 0 && (o == AUTH_ORIGIN_NONE || o == AUTH_ORIGIN_SAME || o == AUTH_ORIGIN_LISTED))
		rc = cookie_token(req, a->cookie, out, cap);
	if (rc != 0)
		return rc;
	rc = sse_http_query_param(query, query_len, a->query, strlen(a->query), out, cap - 1, &len);
	if (rc <= 0)
		return rc < 0 ? -1 : 0;
	out[len] = '\0';
	return len > 0 && strlen(out) == len ? 1 : -1;
}

static uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#ifdef SSE_RELAY_JWT
/* A claim that is a non-negative integer: 1 there, 0 absent, -1 there
 * but something else (a string, a fraction: refused, not read as 0). */
static int int_claim(jwt_t *jwt, const char *name, uint64_t *v)
{
	char *json = jwt_get_grants_json(jwt, name), *end;
	int rc;

	if (json == NULL)
		return 0;
	errno = 0;
	*v = strtoull(json, &end, 10);
	rc = json[0] >= '0' && json[0] <= '9' && *end == '\0' && errno == 0 ? 1 : -1;
	free(json);
	return rc;
}

/* exp (required, strict), nbf and iat (with leeway) against now. */
static bool times_ok(jwt_t *jwt, uint64_t now_ms, uint64_t *exp_ms)
{
	uint64_t exp = 0, nbf = 0, iat = 0; /* set when their claim is there */
	int has_nbf = int_claim(jwt, "nbf", &nbf), has_iat = int_claim(jwt, "iat", &iat);
	uint64_t now_s = now_ms / 1000;

	if (int_claim(jwt, "exp", &exp) != 1 || has_nbf < 0 || has_iat < 0)
		return false;
	if ((has_nbf && nbf > now_s + AUTH_LEEWAY_S) || (has_iat && iat > now_s + AUTH_LEEWAY_S))
		return false;
	*exp_ms = exp > UINT64_MAX / 1000 ? UINT64_MAX : exp * 1000;
	return now_ms < *exp_ms;
}

/* Verify with the key of one algorithm; the token must name that one. */
static bool verify_with(const char *token, jwt_alg_t alg, const unsigned char *key, size_t len,
			uint64_t now_ms, struct auth_claims *out)
{
	jwt_t *jwt = NULL;
	bool ok;

	if (key == NULL || jwt_decode(&jwt, token, key, (int)len) != 0 || jwt == NULL)
		return false;
	ok = jwt_get_alg(jwt) == alg && times_ok(jwt, now_ms, &out->exp_ms);
	if (ok)
		out->sse = jwt_get_grants_json(jwt, "sse");
	jwt_free(jwt);
	return ok;
}

static bool verify(const struct relay_auth *a, const char *token, uint64_t now_ms,
		   struct auth_claims *out)
{
	/* Each key only for its own algorithm, checked after verifying: a
	 * token that names HS256 and was signed with the public key as its
	 * secret verifies with the PEM, names the wrong algorithm, and fails. */
	return verify_with(token, JWT_ALG_HS256, a->hs256_key, a->hs256_len, now_ms, out) ||
	       verify_with(token, JWT_ALG_RS256, a->rs256_key, a->rs256_len, now_ms, out);
}
#else
static bool verify(const struct relay_auth *a, const char *token, uint64_t now_ms,
		   struct auth_claims *out)
{
	(void)a, (void)token, (void)now_ms, (void)out;
	return false; /* not reached: without libjwt there is no key */
}
#endif

/* ---- answers */

static void unauthorized(struct conn *c)
{
	static const char body[] = "unauthorized\n";

	conn_reply(c, 401, "WWW-Authenticate: Bearer\r\n", "text/plain; charset=utf-8", body,
		   sizeof(body) - 1);
}

static void forbidden(struct conn *c)
{
	static const char body[] = "forbidden\n";

	conn_reply(c, 403, NULL, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

/* The JWT part of auth_admit(). */
static bool admit_token(struct conn *c, const struct sse_http_request *req, const char *query,
			size_t query_len, enum auth_action what, const char *channel, size_t len)
{
	struct relay *r = c->relay;
	char token[RELAY_HEAD_MAX];
	struct auth_claims cl = {0};
	uint64_t now = real_ms(), mono;
	bool ok;

	if (find_token(c, req, query, query_len, token, sizeof(token)) != 1 ||
	    !verify(&r->auth, token, now, &cl)) {
		free(cl.sse);
		unauthorized(c);
		return false;
	}
	ok = auth_allows(&cl, what, channel, len);
	free(cl.sse);
	if (!ok) {
		forbidden(c);
		return false;
	}
	/* exp on the loop's clock, read now: r->now is this turn's start. */
	mono = server_now_ms();
	c->u.req->not_after = mono + (cl.exp_ms - now); /* exp_ms > now */
	if (c->u.req->not_after < mono)
		c->u.req->not_after = UINT64_MAX; /* wrapped: a far exp */
	return true;
}

bool auth_admit(struct conn *c, const struct sse_http_request *req, const char *query,
		size_t query_len, enum auth_action what, const char *channel, size_t len)
{
	struct relay *r = c->relay;
	const char *plain = r->opt.token;

	if (what == AUTH_PUBLISH && c->u.req->origin == AUTH_ORIGIN_FOREIGN) {
		forbidden(c);
		return false;
	}
	if (what == AUTH_PUBLISH && plain != NULL && http_bearer_matches(req, plain))
		return true;
	if (jwt_on(&r->auth))
		return admit_token(c, req, query, query_len, what, channel, len);
	if (what == AUTH_PUBLISH && plain != NULL) {
		unauthorized(c);
		return false;
	}
	return true;
}

/* ---- origins and CORS */

/* Does the origin ("scheme://authority") name the Host it was sent to? */
static bool same_origin(const struct sse_http_header *origin, const struct sse_http_request *req)
{
	const struct sse_http_header *host = sse_http_find_header(req, "Host");
	const char *sep = memmem(origin->value, origin->value_len, "://", 3);
	const char *auth = sep != NULL ? sep + 3 : NULL;
	size_t len = auth != NULL ? (size_t)(origin->value + origin->value_len - auth) : 0;

	return host != NULL && auth != NULL && len > 0 && len == host->value_len &&
	       strncasecmp(auth, host->value, len) == 0;
}

void auth_classify(struct conn *c, const struct sse_http_request *req)
{
	const struct relay_auth *a = &c->relay->auth;
	struct conn_request *rq = c->u.req;
	const struct sse_http_header *origin = NULL;
	size_t n = 0;

	for (size_t i = 0; i < req->header_count; i++)
		if (name_is(&req->headers[i], "Origin"))
			origin = &req->headers[i], n++;
	rq->origin = AUTH_ORIGIN_NONE;
	if (n == 0)
		return;
	rq->origin = AUTH_ORIGIN_FOREIGN; /* two of them: neither counts */
	if (n > 1)
		return;
	for (size_t i = 0; i < a->n_origins; i++) {
		if (strlen(a->origins[i]) == origin->value_len &&
		    strncasecmp(a->origins[i], origin->value, origin->value_len) == 0) {
			rq->origin = AUTH_ORIGIN_LISTED;
			rq->origin_index = (uint8_t)i;
			return;
		}
	}
	if (same_origin(origin, req))
		rq->origin = AUTH_ORIGIN_SAME;
	else if (a->any_origin)
		rq->origin = AUTH_ORIGIN_ANY;
}

size_t auth_cors_lines(const struct conn *c, char *buf, size_t cap)
{
	const struct relay_auth *a = &c->relay->auth;
	const struct conn_request *rq = c->u.req;
	int n = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (!cors_on(a) || cap == 0)
		return 0;
	if (rq->origin == AUTH_ORIGIN_LISTED)
		n = snprintf(buf, cap, "Access-Control-Allow-Origin: %s\r\n"
			     "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n",
			     a->origins[rq->origin_index]);
	else if (rq->origin == AUTH_ORIGIN_ANY)
		n = snprintf(buf, cap, "Access-Control-Allow-Origin: *\r\nVary: Origin\r\n");
	else
		n = snprintf(buf, cap, "Vary: Origin\r\n");
	if (n < 0 || (size_t)n >= cap) {
		buf[0] = '\0'; /* not reached: origins are short */
		return 0;
	}
	return (size_t)n;
}

/* /events, /publish, or a channel below one of them. */
static bool cors_path(const char *path, size_t len, const char *base)
{
	size_t n = strlen(base);

	return len >= n && memcmp(path, base, n) == 0 && (len == n || path[n] == '/');
}

bool auth_preflight(struct conn *c, const struct sse_http_request *req, const char *path,
		    size_t path_len)
{
	static const char allow[] =
		"Access-Control-Allow-Methods: GET, POST\r\n"
		"Access-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID\r\n"
		"Access-Control-Max-Age: 600\r\n";
	enum auth_origin o = (enum auth_origin)c->u.req->origin;

	if (!cors_on(&c->relay->auth) || !http_span_is(req->method, req->method_len, "OPTIONS") ||
	    (!cors_path(path, path_len, "/events") && !cors_path(path, path_len, "/publish")))
		return false;
	/* An origin not allowed gets no CORS lines: its browser refuses. */
	conn_reply(c, 200, o == AUTH_ORIGIN_LISTED || o == AUTH_ORIGIN_ANY ? allow : NULL,
		   "text/plain; charset=utf-8", "", 0);
	return true;
}

int auth_stream_head(const struct conn *c, char *buf, size_t cap, size_t *len)
{
	const struct relay_auth *a = &c->relay->auth;
	const struct conn_request *rq = c->u.req;
	static const char vary[] = "Vary: Origin\r\n\r\n";
	struct sse_http_options o = {0};
	int rc;

	if (rq->origin == AUTH_ORIGIN_LISTED) {
		o.cors_origin = a->origins[rq->origin_index];
		o.cors_credentials = 1;
	} else if (rq->origin == AUTH_ORIGIN_ANY) {
		o.cors_origin = "*";
	}
	rc = sse_http_response_head(&o, buf, cap, len);
	if (rc < 0 || !cors_on(a))
		return rc;
	/* The head ends with a blank line: Vary goes before it. */
	if (*len + sizeof(vary) - 3 > cap)
		return SSE_ERR_BUFFER;
	memcpy(buf + *len - 2, vary, sizeof(vary) - 1);
	*len += sizeof(vary) - 3;
	return 0;
}
