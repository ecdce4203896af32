/*
 * The browser model of roundtrip-model.h. Every rule here is read from the
 * WHATWG "Server-sent events" section, not from lib/: it is the oracle.
 *
 * SPDX-License-Identifier: MIT
 */
#include "roundtrip-model.h"

#include <stdlib.h>
#include <string.h>

uint64_t rt_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

size_t rt_below(uint64_t *state, size_t n)
{
	return (size_t)(rt_rand(state) % n);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL) {
		fputs("roundtrip-model: out of memory\n", stderr);
		abort();
	}
	return p;
}

static char *dup_bytes(const char *s, size_t n)
{
	char *d = xrealloc(NULL, n + 1);

	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void rt_log_init(struct rt_log *log)
{
	memset(log, 0, sizeof(*log));
}

void rt_log_free(struct rt_log *log)
{
	for (size_t i = 0; i < log->n; i++) {
		free(log->v[i].text);
		free(log->v[i].data);
		free(log->v[i].id);
	}
	free(log->v);
	rt_log_init(log);
}

static struct rt_record *log_push(struct rt_log *log, enum rt_kind kind)
{
	struct rt_record *r;

	if (log->n == log->cap) {
		log->cap = log->cap ? log->cap * 2 : 64;
		log->v = xrealloc(log->v, log->cap * sizeof(*log->v));
	}
	r = &log->v[log->n++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	return r;
}

void rt_log_message(struct rt_log *log, const char *type, size_t type_len,
		    const char *data, size_t data_len, const char *id, size_t id_len)
{
	struct rt_record *r = log_push(log, RT_MESSAGE);

	r->text = dup_bytes(type, r->text_len = type_len);
	r->data = dup_bytes(data, r->data_len = data_len);
	r->id = dup_bytes(id, r->id_len = id_len);
}

void rt_log_retry(struct rt_log *log, uint64_t retry)
{
	log_push(log, RT_RETRY)->retry = retry;
}

void rt_log_comment(struct rt_log *log, const char *text, size_t len)
{
	struct rt_record *r = log_push(log, RT_COMMENT);

	r->text = dup_bytes(text, r->text_len = len);
}

void rt_log_end(struct rt_log *log, const char *id, size_t id_len)
{
	struct rt_record *r = log_push(log, RT_END);

	r->id = dup_bytes(id, r->id_len = id_len);
}

static int same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static int same_record(const struct rt_record *a, const struct rt_record *b)
{
	return a->kind == b->kind && a->retry == b->retry &&
	       same_bytes(a->text, a->text_len, b->text, b->text_len) &&
	       same_bytes(a->data, a->data_len, b->data, b->data_len) &&
	       same_bytes(a->id, a->id_len, b->id, b->id_len);
}

size_t rt_log_diff(const struct rt_log *a, const struct rt_log *b)
{
	size_t i;

	for (i = 0; i < a->n && i < b->n; i++)
		if (!same_record(&a->v[i], &b->v[i]))
			return i;
	return a->n == b->n ? SIZE_MAX : i;
}

/* Long payloads are cut: the head and the length find the bug. */
static void print_bytes(FILE *f, const char *name, const char *s, size_t n)
{
	size_t show = n > 120 ? 120 : n;

	fprintf(f, " %s[%zu]=\"", name, n);
	for (size_t i = 0; i < show; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			fputc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
	fputs(show < n ? "\"..." : "\"", f);
}

void rt_record_print(FILE *f, const struct rt_log *log, size_t i)
{
	static const char *const kinds[] = {"message", "retry", "comment", "end"};
	const struct rt_record *r;

	if (i >= log->n) {
		fprintf(f, "  [%zu] (nothing)\n", i);
		return;
	}
	r = &log->v[i];
	fprintf(f, "  [%zu] %s", i, kinds[r->kind]);
	if (r->kind == RT_RETRY)
		fprintf(f, " %llu", (unsigned long long)r->retry);
	if (r->text)
		print_bytes(f, r->kind == RT_MESSAGE ? "type" : "text", r->text, r->text_len);
	if (r->data)
		print_bytes(f, "data", r->data, r->data_len);
	if (r->id)
		print_bytes(f, "id", r->id, r->id_len);
	fputc('\n', f);
}

static int log_on_message(const struct sse_message *m, void *user)
{
	rt_log_message(user, m->type, m->type_len, m->data, m->data_len,
		       m->last_id, m->last_id_len);
	return 0;
}

static int log_on_retry(uint64_t retry_ms, void *user)
{
	rt_log_retry(user, retry_ms);
	return 0;
}

static int log_on_comment(const char *text, size_t len, void *user)
{
	rt_log_comment(user, text, len);
	return 0;
}

const struct sse_parser_callbacks rt_log_callbacks = {
	.on_message = log_on_message,
	.on_retry = log_on_retry,
	.on_comment = log_on_comment,
};

void rt_client_init(struct rt_client *c)
{
	c->last_id = dup_bytes("", 0);
	c->last_id_len = 0;
}

void rt_client_free(struct rt_client *c)
{
	free(c->last_id);
	c->last_id = NULL;
}

/* The client joins data lines with LF, whatever ended them on the wire:
 * so every CRLF and every lone CR arrive as LF. */
static char *normalize_breaks(const char *s, size_t n, size_t *out_len)
{
	char *d = xrealloc(NULL, n + 1);
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
		d[j++] = s[i] == '\r' ? '\n' : s[i];
	}
	*out_len = j;
	return d;
}

void rt_client_event(struct rt_client *c, const struct sse_event *ev, struct rt_log *out)
{
	size_t len;
	char *data;

	/* An id field sets the last event id buffer, committed at the blank
	 * line even when no event fires; an empty id resets it. */
	if (ev->id) {
		free(c->last_id);
		c->last_id = dup_bytes(ev->id, c->last_id_len = ev->id_len);
	}
	if (ev->retry != SSE_RETRY_NONE)
		rt_log_retry(out, (uint64_t)ev->retry);
	if (ev->data == NULL)
		return;
	data = normalize_breaks(ev->data, ev->data_len, &len);
	if (ev->type && ev->type_len)
		rt_log_message(out, ev->type, ev->type_len, data, len, c->last_id, c->last_id_len);
	else
		rt_log_message(out, "message", 7, data, len, c->last_id, c->last_id_len);
	free(data);
}

static size_t line_break_at(const char *s, size_t n, size_t i)
{
	if (s[i] == '\r')
		return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
	return s[i] == '\n' ? 1 : 0;
}

/* One comment line: ": text", or ":" alone when the line is empty. */
static void comment_line(const char *s, size_t n, struct rt_log *out)
{
	char *line = xrealloc(NULL, n + 1);

	line[0] = ' ';
	if (n)
		memcpy(line + 1, s, n);
	rt_log_comment(out, line, n ? n + 1 : 0);
	free(line);
}

void rt_client_comment(const char *text, size_t len, struct rt_log *out)
{
	size_t start = 0, i = 0;

	if (text == NULL)
		text = "";

	while (i < len) {
		size_t br = line_break_at(text, len, i);
		if (br == 0) {
			i++;
			continue;
		}
		comment_line(text + start, i - start, out);
		i += br;
		start = i;
	}
	comment_line(text + start, len - start, out);
}

void rt_client_end(const struct rt_client *c, struct rt_log *out)
{
	rt_log_end(out, c->last_id, c->last_id_len);
}

/* Length of the valid sequence at s, or 0: RFC 3629 table 3-7 ranges. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0; /* overlong */
	else if (s[0] == 0xed)
		hi = 0x9f; /* surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90; /* overlong */
	else if (s[0] == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < need; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return need;
}

int rt_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t k = utf8_seq(p + i, len - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

static int has_byte(const char *s, size_t n, char c)
{
	return s && n && memchr(s, c, n) != NULL;
}

static int bad_text(const char *s, size_t n, unsigned flags)
{
	return s && (flags & SSE_ENCODE_STRICT_UTF8) && !rt_utf8_valid(s, n);
}

unsigned rt_event_faults(const struct sse_event *ev, unsigned flags)
{
	unsigned f = 0;

	if ((!ev->id && ev->id_len) || (!ev->type && ev->type_len) ||
	    (!ev->data && ev->data_len))
		f |= RT_FAULT_INVALID;
	if (has_byte(ev->id, ev->id_len, '\r') || has_byte(ev->id, ev->id_len, '\n'))
		f |= RT_FAULT_ID_LINEBREAK;
	if (has_byte(ev->id, ev->id_len, '\0'))
		f |= RT_FAULT_ID_NUL;
	if (has_byte(ev->type, ev->type_len, '\r') || has_byte(ev->type, ev->type_len, '\n'))
		f |= RT_FAULT_TYPE_LINEBREAK;
	if (ev->retry != SSE_RETRY_NONE && (ev->retry < 0 || ev->retry > SSE_RETRY_MAX))
		f |= RT_FAULT_RETRY;
	if (bad_text(ev->id, ev->id_len, flags) || bad_text(ev->type, ev->type_len, flags) ||
	    bad_text(ev->data, ev->data_len, flags))
		f |= RT_FAULT_UTF8;
	return f;
}

unsigned rt_comment_faults(const char *text, size_t len, unsigned flags)
{
	if (!text && len)
		return RT_FAULT_INVALID;
	return bad_text(text, len, flags) ? RT_FAULT_UTF8 : 0;
}

int rt_fault_allows(unsigned faults, int code)
{
	static const struct {
		unsigned fault;
		int code;
	} map[] = {
		{RT_FAULT_INVALID, SSE_ERR_INVALID},
		{RT_FAULT_ID_LINEBREAK, SSE_ERR_ID_LINEBREAK},
		{RT_FAULT_ID_NUL, SSE_ERR_ID_NUL},
		{RT_FAULT_TYPE_LINEBREAK, SSE_ERR_TYPE_LINEBREAK},
		{RT_FAULT_RETRY, SSE_ERR_RETRY},
		{RT_FAULT_UTF8, SSE_ERR_UTF8},
	};

	if (faults == 0)
		return code == SSE_OK;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if ((faults & map[i].fault) && code == map[i].code)
			return 1;
	return 0;
}

static size_t chunk_size(int mode, uint64_t *rng, size_t left)
{
	size_t n = left;

	if (mode == 1)
		n = 1;
	else if (mode == 2)
		n = 1 + rt_below(rng, 16);
	else if (mode == 3)
		n = 1 + rt_below(rng, 4096);
	return n < left ? n : left;
}

static int feed_all(struct sse_parser *p, const char *buf, size_t len, int mode,
		    uint64_t *rng)
{
	size_t off = 0;
	int rc = 0;

	while (off < len && rc == 0) {
		size_t n = chunk_size(mode, rng, len - off);
		rc = sse_parser_feed(p, buf + off, n);
		off += n;
	}
	return rc;
}

int rt_parse_chunked(const char *buf, size_t len, int mode, uint64_t *rng,
		     struct rt_log *got)
{
	struct sse_parser *p = NULL;
	const char *id;
	size_t id_len = 0;
	int rc;

	rc = sse_parser_new(&p, &rt_log_callbacks, got, NULL);
	if (rc != 0)
		return rc;
	rc = feed_all(p, buf, len, mode, rng);
	if (rc == 0)
		rc = sse_parser_end(p);
	id = sse_parser_last_id(p, &id_len);
	rt_log_end(got, id ? id : "", id ? id_len : 0);
	sse_parser_free(p);
	return rc;
}
