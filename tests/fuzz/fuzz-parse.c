/*
 * libFuzzer target for the parser. The input is a few option bytes and an
 * event stream. The stream is fed whole, split in two at a position the
 * input chooses, one byte at a time, and in random chunks: every way must
 * report the same callbacks, codes and last id, since the standard's parser
 * does not know how bytes arrived. Without a limit or an early stop, what
 * was reported must also equal a plain whole-buffer reading of the
 * standard's rules written below. Any difference aborts.
 *
 * Input: [pos lo][pos hi][options][arg] stream...
 *   options & 3 == 1: sse_parser_set_limit(1 + arg)
 *   options & 4:      on_message stops the parser at message (arg & 3) + 1
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roundtrip-model.h"
#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct opts {
	size_t limit;   /* 0: the default */
	int stop_at;    /* 0: never; else the message number that stops */
	size_t split;   /* where the two-chunk feed cuts */
	uint64_t seed;  /* random chunk sizes */
};

struct run {
	struct rt_log log;
	int seen;
	int stop_at;
	int rc_feed, rc_end;
};

static void die(const char *what, const struct rt_log *a, const struct rt_log *b, size_t at)
{
	fprintf(stderr, "fuzz-parse: %s\n", what);
	if (a && b) {
		fprintf(stderr, " first:\n");
		rt_record_print(stderr, a, at);
		fprintf(stderr, " second:\n");
		rt_record_print(stderr, b, at);
	}
	abort();
}

static int on_message(const struct sse_message *m, void *user)
{
	struct run *r = user;

	rt_log_message(&r->log, m->type, m->type_len, m->data, m->data_len, m->last_id,
		       m->last_id_len);
	return ++r->seen == r->stop_at;
}

static int on_retry(uint64_t ms, void *user)
{
	rt_log_retry(&((struct run *)user)->log, ms);
	return 0;
}

static int on_comment(const char *text, size_t len, void *user)
{
	rt_log_comment(&((struct run *)user)->log, text, len);
	return 0;
}

static const struct sse_parser_callbacks callbacks = {on_message, on_retry, on_comment};

enum how { WHOLE, SPLIT, BYTES, RANDOM };

static size_t next_chunk(enum how how, const struct opts *o, size_t off, size_t len,
			 uint64_t *rng)
{
	if (how == SPLIT && off < o->split)
		return o->split - off;
	if (how == BYTES)
		return 1;
	if (how == RANDOM) {
		size_t n = 1 + rt_below(rng, 64);
		return n < len - off ? n : len - off;
	}
	return len - off;
}

/* Feed s in the chunks `how` says; an empty chunk is fed too, as a caller
 * may. Stops at the first error, which the parser must keep returning. */
static void feed(struct sse_parser *p, struct run *r, enum how how, const struct opts *o,
		 const char *s, size_t len)
{
	uint64_t rng = o->seed;
	size_t off = 0;

	r->rc_feed = sse_parser_feed(p, s, 0);
	while (r->rc_feed == 0 && off < len) {
		size_t n = next_chunk(how, o, off, len, &rng);
		r->rc_feed = sse_parser_feed(p, s + off, n);
		off += n;
	}
	if (r->rc_feed != 0 && sse_parser_feed(p, "\n", 1) != r->rc_feed)
		die("a failed parser did not keep returning its error", NULL, NULL, 0);
}

static void run_once(struct run *r, enum how how, const struct opts *o, const char *s,
		     size_t len)
{
	struct sse_parser *p = NULL;
	const char *id;
	size_t id_len = 0;

	memset(r, 0, sizeof(*r));
	r->stop_at = o->stop_at;
	if (sse_parser_new(&p, &callbacks, r, NULL) != 0)
		die("sse_parser_new failed", NULL, NULL, 0);
	if (o->limit && sse_parser_set_limit(p, o->limit) != 0)
		die("sse_parser_set_limit failed", NULL, NULL, 0);
	feed(p, r, how, o, s, len);
	r->rc_end = sse_parser_end(p);
	id = sse_parser_last_id(p, &id_len);
	rt_log_end(&r->log, id ? id : "", id ? id_len : 0);
	sse_parser_free(p);
}

static void same_runs(const struct run *a, const struct run *b, const char *how)
{
	size_t at = rt_log_diff(&a->log, &b->log);

	if (at != SIZE_MAX) {
		fprintf(stderr, "fuzz-parse: whole feed and %s differ\n", how);
		die("callbacks differ", &a->log, &b->log, at);
	}
	if (a->rc_feed != b->rc_feed || a->rc_end != b->rc_end) {
		fprintf(stderr, "fuzz-parse: whole: feed %d end %d; %s: feed %d end %d\n",
			a->rc_feed, a->rc_end, how, b->rc_feed, b->rc_end);
		die("return codes differ", NULL, NULL, 0);
	}
}

/* ---- the standard's rules, read plainly over the whole buffer ------------ */

struct ref {
	struct rt_log *log;
	char *data, *type, *id;
	size_t data_len, type_len, id_len;
	char *last_id; /* the event source's last event id string */
	size_t last_id_len;
};

static void set_bytes(char **dst, size_t *dst_len, const char *s, size_t n)
{
	*dst = realloc(*dst, n + 1);
	if (*dst == NULL)
		abort();
	if (n)
		memcpy(*dst, s, n);
	*dst_len = n;
}

static void append_bytes(char **dst, size_t *dst_len, const char *s, size_t n)
{
	*dst = realloc(*dst, *dst_len + n + 1);
	if (*dst == NULL)
		abort();
	if (n)
		memcpy(*dst + *dst_len, s, n);
	*dst_len += n;
}

static void ref_dispatch(struct ref *f)
{
	set_bytes(&f->last_id, &f->last_id_len, f->id, f->id_len);
	if (f->data_len > 0) {
		f->data_len--; /* the one trailing LF every data line added */
		if (f->type_len)
			rt_log_message(f->log, f->type, f->type_len, f->data, f->data_len,
				       f->last_id, f->last_id_len);
		else
			rt_log_message(f->log, "message", 7, f->data, f->data_len,
				       f->last_id, f->last_id_len);
	}
	f->data_len = f->type_len = 0;
}

/* "consists of only ASCII digits": an empty value is taken as not a number,
 * as browsers do. Past UINT64_MAX it saturates, as sse.h documents. */
static void ref_retry(struct ref *f, const char *v, size_t n)
{
	uint64_t ms = 0;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return;
		if (ms > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10)
			ms = UINT64_MAX;
		else
			ms = ms * 10 + (uint64_t)(v[i] - '0');
	}
	rt_log_retry(f->log, ms);
}

static void ref_field(struct ref *f, const char *name, size_t nl, const char *v, size_t vl)
{
	if (nl == 5 && memcmp(name, "event", 5) == 0)
		set_bytes(&f->type, &f->type_len, v, vl);
	else if (nl == 4 && memcmp(name, "data", 4) == 0) {
		append_bytes(&f->data, &f->data_len, v, vl);
		append_bytes(&f->data, &f->data_len, "\n", 1);
	} else if (nl == 2 && memcmp(name, "id", 2) == 0) {
		if (vl == 0 || memchr(v, '\0', vl) == NULL)
			set_bytes(&f->id, &f->id_len, v, vl);
	} else if (nl == 5 && memcmp(name, "retry", 5) == 0)
		ref_retry(f, v, vl);
}

static void ref_line(struct ref *f, const char *s, size_t n)
{
	const char *colon = n ? memchr(s, ':', n) : NULL;
	size_t k;

	if (n == 0) {
		ref_dispatch(f);
		return;
	}
	if (s[0] == ':') {
		rt_log_comment(f->log, s + 1, n - 1);
		return;
	}
	if (colon == NULL) {
		ref_field(f, s, n, "", 0);
		return;
	}
	k = (size_t)(colon - s) + 1;
	if (k < n && s[k] == ' ')
		k++;
	ref_field(f, s, (size_t)(colon - s), s + k, n - k);
}

static void ref_parse(const char *s, size_t n, struct rt_log *log)
{
	struct ref f = {log, NULL, NULL, NULL, 0, 0, 0, NULL, 0};
	size_t i = 0;

	if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	for (;;) {
		size_t j = i;
		while (j < n && s[j] != '\r' && s[j] != '\n')
			j++;
		if (j == n)
			break; /* a line never ended is discarded with the stream */
		ref_line(&f, s + i, j - i);
		i = j + (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n' ? 2 : 1);
	}
	free(f.data);
	free(f.type);
	free(f.id);
	free(f.last_id);
}

/* The reference has no RT_END: where a cut-off event leaves the last id is
 * the parser's own business, checked above across chunkings only. */
static void same_as_reference(const struct run *whole, const char *s, size_t n)
{
	struct rt_log want;
	struct rt_log got = whole->log;
	size_t at;

	rt_log_init(&want);
	ref_parse(s, n, &want);
	got.n--;
	at = rt_log_diff(&want, &got);
	if (at != SIZE_MAX)
		die("parser differs from the standard's rules (first: reference)", &want, &got,
		    at);
	rt_log_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"whole", "split", "bytes", "random"};
	struct opts o = {0, 0, 0, 0};
	struct run whole, other;
	const char *s = (const char *)data + 4;
	size_t n;

	if (size < 4)
		return 0;
	n = size - 4;
	o.split = ((size_t)data[0] | (size_t)data[1] << 8) % (n + 1);
	o.limit = (data[2] & 3) == 1 ? (size_t)data[3] + 1 : 0;
	o.stop_at = data[2] & 4 ? (data[3] & 3) + 1 : 0;
	o.seed = (uint64_t)data[0] << 8 | data[1];
	run_once(&whole, WHOLE, &o, s, n);
	for (int how = SPLIT; how <= RANDOM; how++) {
		run_once(&other, (enum how)how, &o, s, n);
		same_runs(&whole, &other, names[how]);
		rt_log_free(&other.log);
	}
	if (o.limit == 0 && o.stop_at == 0 && n < SSE_PARSER_DEFAULT_LIMIT) {
		if (whole.rc_feed != 0 || whole.rc_end != 0)
			die("the parser failed on a stream within its limits", NULL, NULL, 0);
		same_as_reference(&whole, s, n);
	}
	rt_log_free(&whole.log);
	return 0;
}
