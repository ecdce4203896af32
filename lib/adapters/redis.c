/*
 * libsse-redis: a hub backed by Redis Streams, over two hiredis async
 * connections driven by the application's loop (commands; pub/sub).
 *
 * hiredis 0.14 has no command timeouts: every command waits in a FIFO of
 * our own (replies come in order), and a head past its deadline tears
 * the connection down, which fails it and everything behind it.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <sse.h>
#include <sse/redis.h>

enum { EPOCH_MAX = 64, FETCH_COUNT = 512, SYNC_COUNT = 512, KEY_MAX = 512 };
/* Configs of 0.3 end before keepalive_ms: read without it. */
#define OLD_CONFIG_SIZE offsetof(struct sse_redis_config, keepalive_ms)
#define SYNC_BYTES ((size_t)1 << 20)

/* ---- the scripts
 *
 * The epoch is made when the meta hash is missing: from the server's
 * TIME (seconds, microseconds) and a counter. A Redis that lost its data
 * restarts later on its clock, so its new epoch differs from every one it
 * made before; the counter (which survives as long as the data does)
 * tells apart epochs made again within one microsecond after the keys
 * were deleted. A new epoch starts a new log: the old stream is dropped. */
#define LUA_EPOCH                                                              \
	"local function epoch()\n"                                             \
	"  local e = redis.call('HGET', KEYS[1], 'epoch')\n"                   \
	"  if e then return e end\n"                                           \
	"  local t = redis.call('TIME')\n"                                     \
	"  local n = redis.call('INCR', KEYS[3])\n"                            \
	"  e = string.format('%x%05x%x', tonumber(t[1]), tonumber(t[2]), n)\n" \
	"  redis.call('DEL', KEYS[2])\n"                                       \
	"  redis.call('HSET', KEYS[1], 'epoch', e, 'offset', 0)\n"             \
	"  return e\n"                                                         \
	"end\n"

/* KEYS: meta, log, epochs; ARGV: frame without id, MAXLEN, live channel. */
static const char publish_lua[] =
	LUA_EPOCH
	"local e = epoch()\n"
	"local off = redis.call('HINCRBY', KEYS[1], 'offset', 1)\n"
	"local f = 'id: ' .. e .. '-' .. off .. '\\n' .. ARGV[1]\n"
	"redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], off .. '-0', 'f', f)\n"
	"redis.call('PUBLISH', ARGV[3], f)\n"
	"return {e, off}\n";

/* KEYS: meta, log, epochs; ARGV: from offset, COUNT, bytes at most.
 * Returns {epoch, last offset, first offset kept, (offset, frame)...}. */
static const char read_lua[] =
	LUA_EPOCH
	"local e = epoch()\n"
	"local last = tonumber(redis.call('HGET', KEYS[1], 'offset') or 0)\n"
	"local first = last + 1\n"
	"local h = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)\n"
	"if #h > 0 then first = tonumber(string.match(h[1][1], '^%d+')) end\n"
	"local out = {e, last, first}\n"
	"local from, max, bytes = tonumber(ARGV[1]), tonumber(ARGV[3]), 0\n"
	"if from < first or from > last or tonumber(ARGV[2]) < 1 then return out end\n"
	"for i, x in ipairs(redis.call('XRANGE', KEYS[2], from .. '-0', '+', 'COUNT', ARGV[2])) do\n"
	"  local f = x[2][2]\n"
	"  if i > 1 and bytes + #f > max then break end\n"
	"  bytes = bytes + #f\n"
	"  out[#out + 1] = tonumber(string.match(x[1], '^%d+'))\n"
	"  out[#out + 1] = f\n"
	"end\n"
	"return out\n";

enum script { S_PUBLISH, S_READ, S_COUNT };
static const char *const script_text[S_COUNT] = {publish_lua, read_lua};

/* ---- objects */

enum op_kind { OP_LOAD, OP_PUBLISH, OP_FETCH, OP_SYNC };

/* A command waiting for its reply, in the command connection's FIFO. */
struct op {
	struct op *next;
	struct sse_redis *r;
	enum op_kind kind;
	enum script script; /* OP_LOAD: which */
	uint64_t deadline;
	char *frame; /* OP_PUBLISH: the frame without id, for EVAL again */
	size_t len;
	sse_redis_published_fn cb;
	void *user;
	struct sse_history_fetch *f; /* OP_FETCH: NULL once cancelled */
	uint64_t from;
	size_t max;
};

struct conn {
	struct sse_redis *r;
	redisAsyncContext *ac; /* NULL: down */
	int fd;
	unsigned want;         /* as last told to watch */
	bool connected, closing, sub;
	bool subscribed;       /* pub/sub: the SUBSCRIBE was confirmed */
	bool probing;          /* pub/sub: a keepalive SUBSCRIBE is unanswered */
	uint64_t heard;        /* pub/sub: when it last said something */
	uint64_t deadline;     /* connecting, or waiting for a SUBSCRIBE */
	uint64_t retry_at;     /* down: when to connect again */
	unsigned failures;     /* in a row, for the backoff */
	const char *why;       /* our reason to tear it down, or NULL */
};

/* A live frame held while a hole is filled. */
struct held {
	struct held *next;
	size_t len;
	char frame[];
};

struct sse_redis {
	struct sse_allocator alloc;
	struct sse_hub *hub;
	struct sse_redis_config cfg;
	char *host;
	char key_meta[KEY_MAX], key_log[KEY_MAX], key_epochs[KEY_MAX], key_live[KEY_MAX];
	char sha[S_COUNT][41]; /* "" until SCRIPT LOAD answered */
	struct conn cmd, sub;
	struct op *head, *tail; /* the command connection's FIFO */
	struct held *held, *held_tail;
	size_t nheld;
	bool joined;            /* the ring follows the log (first sync done) */
	bool sync_wanted, sync_busy;
	bool freeing;
	uint64_t sync_at;       /* after a failed sync: not before this */
	uint64_t now, rng;
	char error[160];
	struct sse_redis_stats st;
};

/* ---- memory */

static void *mem_alloc(const struct sse_redis *r, size_t size)
{
	return r->alloc.alloc_fn(size, r->alloc.ctx);
}

static void mem_free(const struct sse_redis *r, void *p, size_t size)
{
	if (p != NULL)
		r->alloc.free_fn(p, size, r->alloc.ctx);
}

static void set_error(struct sse_redis *r, const char *what, const char *detail)
{
	snprintf(r->error, sizeof(r->error), "redis: %s%s%s", what, detail ? ": " : "",
		 detail ? detail : "");
}

/* ---- backoff: doubling from backoff_min_ms up to backoff_max_ms, each
 * delay drawn in [d/2, d] so that nodes restarted together spread out. */

static uint64_t rng_next(struct sse_redis *r)
{
	uint64_t x = r->rng; /* xorshift64 */

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return r->rng = x;
}

static uint64_t backoff(struct sse_redis *r, unsigned failures)
{
	uint64_t d = r->cfg.backoff_min_ms;

	for (unsigned i = 1; i < failures && d < r->cfg.backoff_max_ms; i++)
		d *= 2;
	if (d > r->cfg.backoff_max_ms)
		d = r->cfg.backoff_max_ms;
	return d / 2 + rng_next(r) % (d - d / 2 + 1);
}

/* ---- the fd hooks hiredis calls (ev.addRead and friends) */

static void want(struct conn *c, unsigned set, unsigned clear)
{
	unsigned w = (c->want | set) & ~clear;

	if (w == c->want)
		return;
	c->want = w;
	c->r->cfg.watch(c->fd, w, c->r->cfg.user);
}

static void ev_add_read(void *p) { want(p, SSE_REDIS_READ, 0); }
static void ev_del_read(void *p) { want(p, 0, SSE_REDIS_READ); }
static void ev_add_write(void *p) { want(p, SSE_REDIS_WRITE, 0); }
static void ev_del_write(void *p) { want(p, 0, SSE_REDIS_WRITE); }

/* The context is going (its pending callbacks have run): the fd closes
 * right after this. Schedule the reconnect. */
static void ev_cleanup(void *p)
{
	struct conn *c = p;
	struct sse_redis *r = c->r;

	want(c, 0, SSE_REDIS_READ | SSE_REDIS_WRITE);
	if (c->why != NULL)
		set_error(r, c->why, NULL);
	else if (c->ac->err != 0)
		set_error(r, c->sub ? "live feed lost" : "connection lost", c->ac->errstr);
	c->ac = NULL;
	c->connected = c->closing = c->subscribed = c->probing = false;
	c->why = NULL;
	c->failures++;
	c->retry_at = r->now + backoff(r, c->failures);
	r->st.failures++;
}

/* Tear a connection down; from within a hiredis callback the context
 * goes when the callback returns. */
static void conn_drop(struct conn *c, const char *why)
{
	if (c->ac == NULL || c->closing)
		return;
	c->closing = true;
	c->why = why;
	redisAsyncFree(c->ac);
}

static bool cmd_ready(const struct sse_redis *r)
{
	return r->cmd.ac != NULL && r->cmd.connected && !r->cmd.closing && !r->freeing;
}

/* ---- the command FIFO */

static void op_push(struct sse_redis *r, struct op *op)
{
	op->next = NULL;
	op->deadline = r->now + r->cfg.command_timeout_ms;
	if (r->tail != NULL)
		r->tail->next = op;
	else
		r->head = op;
	r->tail = op;
}

static void op_unlink(struct sse_redis *r, struct op *op)
{
	struct op **pp = &r->head, *prev = NULL;

	while (*pp != NULL && *pp != op) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	*pp = op->next;
	if (r->tail == op)
		r->tail = prev;
}

static void op_free(struct sse_redis *r, struct op *op)
{
	mem_free(r, op->frame, op->len);
	mem_free(r, op, sizeof(*op));
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Send an op's command: EVALSHA once the script is loaded, else EVAL. */
static int op_send(struct sse_redis *r, struct op *op)
{
	char n1[24], n2[24], n3[24];
	const char *argv[9];
	size_t lens[9];
	int argc = 0;
	enum script s = op->kind == OP_PUBLISH ? S_PUBLISH : S_READ;

#define ARG(p, l) (argv[argc] = (p), lens[argc] = (l), argc++)
	if (op->kind == OP_LOAD) {
		ARG("SCRIPT", 6);
		ARG("LOAD", 4);
		ARG(script_text[op->script], strlen(script_text[op->script]));
	} else {
		if (r->sha[s][0] != '\0') {
			ARG("EVALSHA", 7);
			ARG(r->sha[s], 40);
		} else {
			ARG("EVAL", 4);
			ARG(script_text[s], strlen(script_text[s]));
		}
		ARG("3", 1);
		ARG(r->key_meta, strlen(r->key_meta));
		ARG(r->key_log, strlen(r->key_log));
		ARG(r->key_epochs, strlen(r->key_epochs));
		if (op->kind == OP_PUBLISH) {
			snprintf(n1, sizeof(n1), "%" PRIu64, r->cfg.max_len);
			ARG(op->frame, op->len);
			ARG(n1, strlen(n1));
			ARG(r->key_live, strlen(r->key_live));
		} else {
			snprintf(n1, sizeof(n1), "%" PRIu64, op->from);
			snprintf(n2, sizeof(n2), "%d", op->kind == OP_FETCH ? FETCH_COUNT
					     : r->joined ? SYNC_COUNT : 0);
			snprintf(n3, sizeof(n3), "%zu", op->max);
			ARG(n1, strlen(n1));
			ARG(n2, strlen(n2));
			ARG(n3, strlen(n3));
		}
	}
#undef ARG
	if (!cmd_ready(r) ||
	    redisAsyncCommandArgv(r->cmd.ac, on_reply, op, argc, argv, lens) != REDIS_OK)
		return SSE_ERR_IO;
	op_push(r, op);
	return 0;
}

static struct op *op_new(struct sse_redis *r, enum op_kind kind)
{
	struct op *op = mem_alloc(r, sizeof(*op));

	if (op != NULL)
		*op = (struct op){.r = r, .kind = kind};
	return op;
}

/* ---- the live feed: frames into the hub in offset order */

static bool ring_epoch_is(const struct sse_redis *r, const char *e, size_t len)
{
	const char *ring = sse_replay_epoch(sse_hub_ring(r->hub));

	return strlen(ring) == len + 1 && memcmp(ring, e, len) == 0 && ring[len] == '-';
}

static uint64_t ring_next(const struct sse_redis *r)
{
	return sse_replay_next_number(sse_hub_ring(r->hub));
}

/* Restart the ring at (epoch, next); 0 or an error. */
static int restart(struct sse_redis *r, const char *e, size_t len, uint64_t next)
{
	char prefix[EPOCH_MAX + 2];
	int rc;

	if (len > EPOCH_MAX)
		return SSE_ERR_INVALID;
	memcpy(prefix, e, len);
	memcpy(prefix + len, "-", 2);
	if (ring_epoch_is(r, e, len) && ring_next(r) == next)
		return 0;
	rc = sse_hub_restart(r->hub, prefix, next);
	if (rc == 0)
		r->st.restarts++;
	return rc;
}

/* "id: <epoch>-<offset>\n...": the epoch and the offset; false if not. */
static bool parse_id(const char *f, size_t len, const char **e, size_t *elen, uint64_t *off)
{
	const char *nl = memchr(f, '\n', len), *dash = NULL;
	uint64_t n = 0;

	if (nl == NULL || len < 4 || memcmp(f, "id: ", 4) != 0)
		return false;
	for (const char *p = f + 4; p < nl; p++)
		if (*p == '-')
			dash = p;
	if (dash == NULL || dash == f + 4 || dash + 1 == nl)
		return false;
	for (const char *p = dash + 1; p < nl; p++) {
		if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	*e = f + 4;
	*elen = (size_t)(dash - f - 4);
	*off = n;
	return true;
}

/* Append the frame of the ring's next number. A frame the ring refuses
 * for its shape can never be delivered: the ring moves past it. */
static int append(struct sse_redis *r, const char *f, size_t len, uint64_t off)
{
	const char *e;
	size_t elen;
	int rc = sse_hub_publish_frame(r->hub, f, len, r->now, NULL);

	if (rc == SSE_ERR_INVALID || rc == SSE_ERR_TOO_LARGE || rc == SSE_ERR_UTF8) {
		if (parse_id(f, len, &e, &elen, &off))
			rc = restart(r, e, elen, off + 1);
	}
	return rc;
}

static void start_sync(struct sse_redis *r);

static void hold(struct sse_redis *r, const char *f, size_t len)
{
	struct held *h;

	if (r->nheld >= r->cfg.max_held) {
		/* Too many: drop them all; the sync reads them again, or the
		 * next live frame shows the hole. */
		while ((h = r->held) != NULL) {
			r->held = h->next;
			mem_free(r, h, sizeof(*h) + h->len);
			r->st.held_dropped++;
		}
		r->held_tail = NULL;
		r->nheld = 0;
	}
	h = mem_alloc(r, sizeof(*h) + len);
	if (h == NULL)
		return; /* the hole shows at the next frame, and is filled */
	h->next = NULL;
	h->len = len;
	memcpy(h->frame, f, len);
	if (r->held_tail != NULL)
		r->held_tail->next = h;
	else
		r->held = h;
	r->held_tail = h;
	r->nheld++;
}

/* One live frame: in order, a duplicate, a hole, or a new epoch. */
static void live_frame(struct sse_redis *r, const char *f, size_t len)
{
	const char *e;
	size_t elen;
	uint64_t off, next = ring_next(r);

	if (!parse_id(f, len, &e, &elen, &off))
		return; /* not ours: nothing to deliver */
	if (!r->joined || r->sync_wanted) {
		hold(r, f, len);
		return;
	}
	if (!ring_epoch_is(r, e, elen)) {
		if (restart(r, e, elen, off) != 0) {
			hold(r, f, len);
			start_sync(r);
			return;
		}
		next = off;
	}
	if (off < next)
		return;
	if (off > next || append(r, f, len, off) == SSE_ERR_PINNED) {
		hold(r, f, len);
		start_sync(r);
		return;
	}
	r->st.live++;
}

/* After a sync: the held frames, until one shows another hole. */
static void drain_held(struct sse_redis *r)
{
	struct held *h;

	while (!r->sync_wanted && (h = r->held) != NULL) {
		r->held = h->next;
		if (r->held == NULL)
			r->held_tail = NULL;
		r->nheld--;
		live_frame(r, h->frame, h->len);
		mem_free(r, h, sizeof(*h) + h->len);
	}
}

/* ---- syncing: the ring's next number up to the stream's end */

static void maybe_sync(struct sse_redis *r)
{
	struct op *op;

	if (!r->sync_wanted || r->sync_busy || !cmd_ready(r) || !r->sub.subscribed ||
	    r->now < r->sync_at)
		return;
	op = op_new(r, OP_SYNC);
	if (op == NULL)
		return;
	op->from = r->joined ? ring_next(r) : 0;
	op->max = SYNC_BYTES;
	if (op_send(r, op) != 0) {
		op_free(r, op);
		return;
	}
	r->sync_busy = true;
	r->st.syncs++;
}

static void start_sync(struct sse_redis *r)
{
	r->sync_wanted = true;
	maybe_sync(r);
}

static bool is_int(const redisReply *x)
{
	return x->type == REDIS_REPLY_INTEGER && x->integer >= 0;
}

/* The read script's reply: {epoch, last, first, (offset, frame)...}. */
static bool read_reply_ok(const redisReply *x)
{
	if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements < 3 || x->elements % 2 == 0)
		return false;
	if (x->element[0]->type != REDIS_REPLY_STRING || x->element[0]->len > EPOCH_MAX ||
	    !is_int(x->element[1]) || !is_int(x->element[2]))
		return false;
	for (size_t i = 3; i < x->elements; i += 2)
		if (!is_int(x->element[i]) || x->element[i + 1]->type != REDIS_REPLY_STRING)
			return false;
	return true;
}

/* Append a sync's frames; false when the ring could not take one. */
static bool sync_append(struct sse_redis *r, const redisReply *x)
{
	for (size_t i = 3; i < x->elements; i += 2) {
		uint64_t off = (uint64_t)x->element[i]->integer;
		const redisReply *f = x->element[i + 1];

		if (off < ring_next(r))
			continue;
		if (off > ring_next(r) || append(r, f->str, f->len, off) != 0)
			return false;
		r->st.backfilled++;
	}
	return true;
}

static void on_sync(struct sse_redis *r, const redisReply *x)
{
	const redisReply *e;
	uint64_t last, first, next;

	r->sync_busy = false;
	/* Until it succeeds, sync_wanted stays: tried again a bit later. */
	r->sync_at = r->now + r->cfg.backoff_min_ms;
	if (!read_reply_ok(x))
		return;
	e = x->element[0];
	last = (uint64_t)x->element[1]->integer;
	first = (uint64_t)x->element[2]->integer;
	next = ring_next(r);
	/* Joining, a new epoch, or a hole the stream no longer holds: the
	 * ring starts over at the log's end (its clients get the reset). */
	if (!r->joined || !ring_epoch_is(r, e->str, e->len) || (next < first && next <= last)) {
		if (restart(r, e->str, e->len, last + 1) != 0)
			return;
		r->joined = true;
	} else if (!sync_append(r, x)) {
		return;
	}
	r->sync_at = 0;
	if (ring_next(r) <= last) {
		maybe_sync(r); /* the next page */
		return;
	}
	r->sync_wanted = false;
	drain_held(r);
}

/* ---- the history provider */

static void on_fetch(struct sse_redis *r, struct op *op, const redisReply *x)
{
	struct sse_history_fetch *f = op->f;
	const redisReply *e;
	uint64_t last, first;
	int status = SSE_HISTORY_FRAMES;

	if (f == NULL)
		return; /* cancelled */
	op->f = NULL;
	if (!read_reply_ok(x)) {
		sse_history_done(f, SSE_ERR_IO);
		return;
	}
	e = x->element[0];
	last = (uint64_t)x->element[1]->integer;
	first = (uint64_t)x->element[2]->integer;
	if (!ring_epoch_is(r, e->str, e->len) || op->from > last + 1)
		status = SSE_HISTORY_UNKNOWN;
	else if (op->from < first && op->from <= last)
		status = SSE_HISTORY_GAP;
	else
		for (size_t i = 3; i < x->elements; i += 2)
			if (sse_history_frame(f, (uint64_t)x->element[i]->integer,
					      x->element[i + 1]->str, x->element[i + 1]->len) != 0)
				break;
	sse_history_done(f, status);
}

static int prov_fetch(void *ctx, struct sse_history_fetch *f, uint64_t from, size_t max)
{
	struct sse_redis *r = ctx;
	struct op *op;

	if (!cmd_ready(r))
		return SSE_ERR_IO;
	op = op_new(r, OP_FETCH);
	if (op == NULL)
		return SSE_ERR_NOMEM;
	op->f = f;
	op->from = from;
	op->max = max;
	if (op_send(r, op) != 0) {
		op_free(r, op);
		return SSE_ERR_IO;
	}
	return 0;
}

/* The reply may still come: it finds op->f NULL and is ignored. */
static void prov_cancel(void *ctx, struct sse_history_fetch *f)
{
	struct sse_redis *r = ctx;

	for (struct op *op = r->head; op != NULL; op = op->next)
		if (op->kind == OP_FETCH && op->f == f)
			op->f = NULL;
}

/* ---- replies on the command connection */

static void on_publish(struct sse_redis *r, struct op *op, const redisReply *x)
{
	char id[EPOCH_MAX + 24];
	int n;

	if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
	    x->element[0]->type != REDIS_REPLY_STRING || x->element[0]->len > EPOCH_MAX ||
	    !is_int(x->element[1])) {
		if (x != NULL && x->type != REDIS_REPLY_ERROR)
			set_error(r, "publish: unexpected reply", NULL);
		op->cb(SSE_ERR_IO, NULL, 0, op->user);
		return;
	}
	n = snprintf(id, sizeof(id), "%.*s-%lld", (int)x->element[0]->len, x->element[0]->str,
		     x->element[1]->integer);
	op->cb(0, id, (size_t)n, op->user);
}

static void on_load(struct sse_redis *r, struct op *op, const redisReply *x)
{
	if (x != NULL && x->type == REDIS_REPLY_STRING && x->len == 40)
		memcpy(r->sha[op->script], x->str, 41);
}

/* Scripts vanish when Redis restarts or SCRIPT FLUSH runs: send it
 * again as EVAL. True when the op was sent again. */
static bool resend_noscript(struct sse_redis *r, struct op *op, const redisReply *x)
{
	enum script s = op->kind == OP_PUBLISH ? S_PUBLISH : S_READ;

	if (x == NULL || x->type != REDIS_REPLY_ERROR || strncmp(x->str, "NOSCRIPT", 8) != 0 ||
	    op->kind == OP_LOAD)
		return false;
	r->sha[s][0] = '\0';
	return op_send(r, op) == 0;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct op *op = privdata;
	struct sse_redis *r = op->r;
	const redisReply *x = reply;

	(void)ac;
	op_unlink(r, op);
	if (x != NULL)
		r->cmd.failures = 0; /* Redis answers: the backoff starts over */
	if (resend_noscript(r, op, x))
		return;
	if (x == NULL)
		set_error(r, r->cmd.why ? r->cmd.why : "connection lost", NULL);
	else if (x->type == REDIS_REPLY_ERROR)
		set_error(r, "error reply", x->str);
	switch (op->kind) {
	case OP_LOAD: on_load(r, op, x); break;
	case OP_PUBLISH: on_publish(r, op, x); break;
	case OP_FETCH: on_fetch(r, op, x); break;
	case OP_SYNC: on_sync(r, x); break;
	}
	op_free(r, op);
}

/* ---- the pub/sub connection */

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct sse_redis *r = privdata;
	const redisReply *x = reply, *kind;

	(void)ac;
	if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements != 3)
		return; /* NULL: the connection is going */
	kind = x->element[0];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	r->sub.heard = r->now;
	if (strcmp(kind->str, "subscribe") == 0 && r->sub.subscribed) {
		r->sub.probing = false; /* a keepalive answered: nothing was missed */
		r->sub.deadline = SSE_NO_DEADLINE;
	} else if (strcmp(kind->str, "subscribe") == 0) {
		/* Live first, then the stream: nothing falls between. */
		r->sub.subscribed = true;
		r->sub.deadline = SSE_NO_DEADLINE;
		r->sub.failures = 0;
		start_sync(r);
	} else if (strcmp(kind->str, "message") == 0 &&
		   x->element[2]->type == REDIS_REPLY_STRING) {
		live_frame(r, x->element[2]->str, x->element[2]->len);
	}
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	struct conn *c = cac->ev.data;
	struct sse_redis *r = c->r;
	int rc = REDIS_OK;

	if (status != REDIS_OK)
		return; /* hiredis frees it next: ev_cleanup */
	c->connected = true;
	c->deadline = c->sub ? r->now + r->cfg.command_timeout_ms : SSE_NO_DEADLINE;
	if (c->sub) {
		rc = redisAsyncCommand(c->ac, on_message, r, "SUBSCRIBE %s", r->key_live);
	} else {
		for (int s = 0; s < S_COUNT; s++) {
			struct op *op = op_new(r, OP_LOAD);

			if (op == NULL)
				break;
			op->script = (enum script)s;
			if (op_send(r, op) != 0)
				op_free(r, op);
		}
		maybe_sync(r);
	}
	if (rc != REDIS_OK)
		c->deadline = r->now; /* torn down at the next tick */
}

static void conn_open(struct conn *c)
{
	struct sse_redis *r = c->r;
	redisAsyncContext *ac = redisAsyncConnect(r->host, r->cfg.port);

	r->st.connects++;
	r->st.sub_connects += c->sub;
	if (ac == NULL || ac->err != 0) {
		set_error(r, "cannot connect", ac ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		c->failures++;
		c->retry_at = r->now + backoff(r, c->failures);
		r->st.failures++;
		return;
	}
	c->ac = ac;
	c->fd = ac->c.fd;
	c->want = 0;
	c->deadline = r->now + r->cfg.connect_timeout_ms;
	ac->ev.data = c;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect); /* watches for writable */
}

/* ---- the loop's calls */

int sse_redis_handle(struct sse_redis *r, int fd, unsigned events)
{
	struct conn *cs[2];

	if (r == NULL)
		return SSE_ERR_INVALID;
	cs[0] = &r->cmd;
	cs[1] = &r->sub;
	for (int i = 0; i < 2; i++) {
		struct conn *c = cs[i];

		if (c->ac == NULL || c->fd != fd)
			continue;
		/* Either call may free the context (ev_cleanup sets ac NULL). */
		if ((events & SSE_REDIS_READ) != 0)
			redisAsyncHandleRead(c->ac);
		if ((events & SSE_REDIS_WRITE) != 0 && c->ac != NULL)
			redisAsyncHandleWrite(c->ac);
		return 0;
	}
	return SSE_ERR_INVALID;
}

static void next_at(uint64_t *next, uint64_t t)
{
	if (t < *next)
		*next = t;
}

/* A silent pub/sub connection is asked again to SUBSCRIBE: Redis
 * confirms even a channel already subscribed, through on_message. (A
 * PING would do, but hiredis 0.14 drops its pub/sub-shaped answer and
 * keeps its callback for ever.) */
static void keepalive(struct conn *c, uint64_t now, uint64_t *next)
{
	struct sse_redis *r = c->r;
	uint64_t every = r->cfg.keepalive_ms;

	if (!c->sub || !c->subscribed || c->probing || every == UINT64_MAX)
		return;
	if (now - c->heard < every) {
		next_at(next, c->heard + every);
		return;
	}
	c->probing = true;
	c->deadline = now + r->cfg.command_timeout_ms;
	if (redisAsyncCommand(c->ac, on_message, r, "SUBSCRIBE %s", r->key_live) != REDIS_OK)
		c->deadline = now; /* torn down at the next tick */
	next_at(next, c->deadline);
}

static void conn_tick(struct conn *c, uint64_t now, uint64_t *next)
{
	struct sse_redis *r = c->r;

	if (c->ac == NULL && now >= c->retry_at)
		conn_open(c);
	if (c->ac == NULL) {
		next_at(next, c->retry_at);
		return;
	}
	if (now >= c->deadline) {
		r->st.timeouts++;
		conn_drop(c, !c->connected ? "connect timed out"
			     : c->probing  ? "live feed silent: no answer to a keepalive in time"
					   : "no answer to SUBSCRIBE in time");
		next_at(next, c->ac == NULL ? c->retry_at : now);
		return;
	}
	next_at(next, c->deadline);
	keepalive(c, now, next);
}

int sse_redis_tick(struct sse_redis *r, uint64_t now_ms, uint64_t *next_ms)
{
	uint64_t next = SSE_NO_DEADLINE;

	if (r == NULL)
		return SSE_ERR_INVALID;
	r->now = now_ms;
	if (r->head != NULL && now_ms >= r->head->deadline) {
		/* Redis does not answer: start both over (a partition would
		 * else leave the live feed silent without a word). */
		r->st.timeouts++;
		conn_drop(&r->cmd, "command timed out");
		conn_drop(&r->sub, "command timed out");
	}
	conn_tick(&r->cmd, now_ms, &next);
	conn_tick(&r->sub, now_ms, &next);
	maybe_sync(r);
	if (r->head != NULL)
		next_at(&next, r->head->deadline);
	if (r->sync_wanted && !r->sync_busy && cmd_ready(r) && r->sub.subscribed)
		next_at(&next, r->sync_at > now_ms ? r->sync_at : now_ms);
	if (next_ms != NULL)
		*next_ms = next;
	return 0;
}

int sse_redis_publish(struct sse_redis *r, const struct sse_event *ev,
		      sse_redis_published_fn cb, void *user)
{
	struct op *op;
	size_t size;
	int rc;

	if (r == NULL || ev == NULL || cb == NULL || ev->id != NULL)
		return SSE_ERR_INVALID;
	if (!cmd_ready(r)) {
		if (r->error[0] == '\0')
			set_error(r, "not connected", NULL);
		return SSE_ERR_IO;
	}
	rc = sse_encode_size(ev, r->cfg.flags, &size);
	if (rc != 0)
		return rc;
	op = op_new(r, OP_PUBLISH);
	if (op == NULL || (op->frame = mem_alloc(r, size)) == NULL) {
		mem_free(r, op, sizeof(*op));
		return SSE_ERR_NOMEM;
	}
	op->len = size;
	op->cb = cb;
	op->user = user;
	rc = sse_encode(ev, r->cfg.flags, op->frame, size, &op->len);
	if (rc == 0 && op_send(r, op) != 0)
		rc = SSE_ERR_IO;
	if (rc != 0) {
		op->len = size;
		op_free(r, op);
	}
	return rc;
}

/* ---- new and free */

static int config_copy(struct sse_redis *r, const struct sse_redis_config *cfg)
{
	const char *host = cfg->host != NULL ? cfg->host : "127.0.0.1";
	size_t hlen = strlen(host) + 1;
	const char *ch = cfg->channel;
	int n;

	memset(&r->cfg, 0, sizeof(r->cfg));
	memcpy(&r->cfg, cfg, cfg->size); /* a config of 0.3 ends before keepalive_ms */
	r->cfg.size = sizeof(r->cfg);
	r->cfg.keepalive_ms = r->cfg.keepalive_ms ? r->cfg.keepalive_ms : 15000;
	r->cfg.port = cfg->port != 0 ? cfg->port : 6379;
	r->cfg.max_len = cfg->max_len != 0 ? cfg->max_len : 10000;
	r->cfg.connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
	r->cfg.command_timeout_ms = cfg->command_timeout_ms ? cfg->command_timeout_ms : 2000;
	r->cfg.backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
	r->cfg.backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 10000;
	if (r->cfg.backoff_max_ms < r->cfg.backoff_min_ms)
		r->cfg.backoff_max_ms = r->cfg.backoff_min_ms;
	r->cfg.max_held = cfg->max_held != 0 ? cfg->max_held : 1024;
	n = snprintf(r->key_meta, KEY_MAX, "sse:{%s}:meta", ch);
	if (n < 0 || n >= KEY_MAX)
		return SSE_ERR_INVALID;
	snprintf(r->key_log, KEY_MAX, "sse:{%s}:log", ch);
	snprintf(r->key_epochs, KEY_MAX, "sse:{%s}:epochs", ch);
	snprintf(r->key_live, KEY_MAX, "sse:{%s}:live", ch);
	r->host = mem_alloc(r, hlen);
	if (r->host == NULL)
		return SSE_ERR_NOMEM;
	memcpy(r->host, host, hlen);
	return 0;
}

static int config_valid(const struct sse_redis_config *cfg)
{
	if (cfg == NULL || (cfg->size != sizeof(*cfg) && cfg->size != OLD_CONFIG_SIZE) ||
	    cfg->channel == NULL ||
	    cfg->channel[0] == '\0' || cfg->watch == NULL || cfg->port < 0 || cfg->port > 65535)
		return 0;
	/* A brace would end the hash tag early; a space splits SUBSCRIBE's format. */
	return strpbrk(cfg->channel, "{} \r\n") == NULL;
}

static void conn_init(struct sse_redis *r, struct conn *c, bool sub)
{
	*c = (struct conn){.r = r, .fd = -1, .sub = sub, .deadline = SSE_NO_DEADLINE};
}

int sse_redis_new(struct sse_redis **out, struct sse_hub *hub,
		  const struct sse_redis_config *cfg, const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_history prov = {.size = sizeof(prov), .fetch = prov_fetch,
				   .cancel = prov_cancel};
	struct sse_redis *r;
	int rc;

	if (out == NULL || hub == NULL || !config_valid(cfg) || sse_allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	r = a.alloc_fn(sizeof(*r), a.ctx);
	if (r == NULL)
		return SSE_ERR_NOMEM;
	memset(r, 0, sizeof(*r));
	r->alloc = a;
	r->hub = hub;
	conn_init(r, &r->cmd, false);
	conn_init(r, &r->sub, true);
	r->rng = cfg->seed != 0 ? cfg->seed
				: ((uint64_t)time(NULL) << 20) ^ (uint64_t)(uintptr_t)r;
	if (r->rng == 0)
		r->rng = 0x9e3779b97f4a7c15u; /* xorshift stays at 0 */
	rc = config_copy(r, cfg);
	prov.ctx = r;
	if (rc == 0)
		rc = sse_hub_set_history(hub, &prov);
	if (rc != 0) {
		mem_free(r, r->host, r->host ? strlen(r->host) + 1 : 0);
		mem_free(r, r, sizeof(*r));
		return rc;
	}
	*out = r;
	return 0;
}

void sse_redis_free(struct sse_redis *r)
{
	struct held *h;

	if (r == NULL)
		return;
	r->freeing = true;
	/* Subscribers waiting for history are dropped now, so that the hub
	 * takes the provider off. */
	for (struct op *op = r->head; op != NULL; op = op->next) {
		struct sse_history_fetch *f = op->f;

		if (op->kind == OP_FETCH && f != NULL) {
			op->f = NULL;
			sse_history_done(f, SSE_ERR_IO);
		}
	}
	(void)sse_hub_set_history(r->hub, NULL);
	set_error(r, "closed", NULL);
	r->cmd.why = r->sub.why = "closed";
	if (r->cmd.ac != NULL)
		redisAsyncFree(r->cmd.ac); /* runs the ops' callbacks: SSE_ERR_IO */
	if (r->sub.ac != NULL)
		redisAsyncFree(r->sub.ac);
	while ((h = r->held) != NULL) {
		r->held = h->next;
		mem_free(r, h, sizeof(*h) + h->len);
	}
	mem_free(r, r->host, strlen(r->host) + 1);
	mem_free(r, r, sizeof(*r));
}

/* ---- queries */

int sse_redis_ready(const struct sse_redis *r)
{
	return r != NULL && cmd_ready(r) && r->sub.subscribed && r->joined && !r->sync_wanted;
}

const char *sse_redis_last_error(const struct sse_redis *r)
{
	return r != NULL ? r->error : "";
}

int sse_redis_stats(const struct sse_redis *r, struct sse_redis_stats *st)
{
	if (r == NULL || st == NULL)
		return SSE_ERR_INVALID;
	*st = r->st;
	return 0;
}
