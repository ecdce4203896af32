/*
 * The event-stream parser: the WHATWG HTML standard's "Parsing an event
 * stream" and "Interpreting an event stream", fed in chunks of any size.
 *
 * Lines are found with memchr and handled where they lie in the caller's
 * chunk; only a line that spans chunks is copied, into p->line.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <string.h>

#include "sse-private.h"

/* Smallest buffer worth allocating: most ids, types and lines fit. */
#define MIN_CAP 64

/* The UTF-8 byte order mark, skipped once at the start of a stream. */
static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
#define BOM_DONE 3

struct buf {
	char *ptr;
	size_t len, cap;
};

struct sse_parser {
	struct sse_allocator alloc;
	struct sse_parser_callbacks cb;
	void *user;
	size_t limit;
	int error;             /* sticky: once set, every call returns it */
	unsigned char bom;     /* BOM bytes matched so far, or BOM_DONE */
	unsigned char skip_lf; /* the last chunk ended in CR: a LF next is its CRLF */
	unsigned char id_set;  /* id_next holds an id field not yet dispatched */
	struct buf line;       /* the start of a line that spans chunks */
	struct buf data;       /* the data buffer, each line followed by LF */
	struct buf type;       /* the event type buffer */
	struct buf id_next;    /* the last event ID buffer, when id_set */
	struct buf last_id;    /* the last event ID string, as of the last dispatch */
};

/* The next CR or LF in a chunk. The next LF is remembered, so a stream whose
 * lines end in CR alone is not searched to its end for LF at every line. */
struct scan {
	const char *buf;
	size_t len;
	size_t lf; /* index of the next LF at or after the last search, or len */
};

static void buf_free(const struct sse_allocator *a, struct buf *b)
{
	sse__free(a, b->ptr, b->cap);
	*b = (struct buf){NULL, 0, 0};
}

/* Ensure room for need bytes; growth doubles but stops near the limit,
 * which bounds every buffer anyway. */
static int buf_reserve(struct sse_parser *p, struct buf *b, size_t need)
{
	size_t room = p->limit < SIZE_MAX ? p->limit + 1 : SIZE_MAX;
	size_t cap = b->cap < MIN_CAP ? MIN_CAP : b->cap;
	char *ptr;

	if (need <= b->cap)
		return 0;
	while (cap < need && cap <= SIZE_MAX / 2)
		cap *= 2;
	if (cap < need)
		cap = need; /* doubling would overflow */
	if (cap > room && need <= room)
		cap = room;
	if (b->ptr == NULL)
		ptr = sse__alloc(&p->alloc, cap);
	else
		ptr = sse__realloc(&p->alloc, b->ptr, b->cap, cap);
	if (ptr == NULL)
		return SSE_ERR_NOMEM;
	b->ptr = ptr;
	b->cap = cap;
	return 0;
}

/* Replace b's contents, NUL-terminated so callers may treat them as C strings. */
static int buf_set(struct sse_parser *p, struct buf *b, const char *s, size_t n)
{
	int rc;

	if (n == 0 && b->ptr == NULL) {
		b->len = 0; /* buf_str() gives "" without allocating */
		return 0;
	}
	rc = buf_reserve(p, b, n + 1);
	if (rc != 0)
		return rc;
	memcpy(b->ptr, s, n);
	b->ptr[n] = '\0';
	b->len = n;
	return 0;
}

static const char *buf_str(const struct buf *b)
{
	return b->ptr != NULL ? b->ptr : "";
}

/* Whether have + add bytes stay within the limit, without overflowing. */
static int fits(const struct sse_parser *p, size_t have, size_t add)
{
	return have <= p->limit && add <= p->limit - have;
}

static int callback_result(int rc)
{
	return rc != 0 ? SSE_ERR_CALLBACK : 0;
}

/* The standard's "dispatch the event". No allocation happens here: the id
 * buffer is swapped in, and the data buffer's final LF becomes its NUL. */
static int dispatch(struct sse_parser *p)
{
	struct sse_message m;

	if (p->id_set) {
		struct buf t = p->last_id;

		p->last_id = p->id_next;
		p->id_next = t;
		p->id_set = 0;
	}
	if (p->data.len == 0) {
		p->type.len = 0;
		return 0;
	}
	p->data.ptr[--p->data.len] = '\0';
	m.type = p->type.len != 0 ? p->type.ptr : "message";
	m.type_len = p->type.len != 0 ? p->type.len : sizeof("message") - 1;
	m.data = p->data.ptr;
	m.data_len = p->data.len;
	m.last_id = buf_str(&p->last_id);
	m.last_id_len = p->last_id.len;
	p->data.len = 0;
	p->type.len = 0;
	return callback_result(p->cb.on_message(&m, p->user));
}

/* Append the value and the LF that joins it to the next line. The limit
 * counts the data as it would be delivered, without that final LF. */
static int append_data(struct sse_parser *p, const char *v, size_t n)
{
	int rc;

	if (!fits(p, p->data.len, n))
		return SSE_ERR_TOO_LARGE;
	rc = buf_reserve(p, &p->data, p->data.len + n + 1);
	if (rc != 0)
		return rc;
	memcpy(p->data.ptr + p->data.len, v, n);
	p->data.len += n;
	p->data.ptr[p->data.len++] = '\n';
	return 0;
}

/* An id takes effect at the next dispatch; one containing NUL is ignored. */
static int set_id(struct sse_parser *p, const char *v, size_t n)
{
	int rc;

	if (n != 0 && memchr(v, '\0', n) != NULL)
		return 0;
	rc = buf_set(p, &p->id_next, v, n);
	if (rc == 0)
		p->id_set = 1;
	return rc;
}

/* Digits only, else ignored; the value saturates rather than wrapping. */
static int set_retry(struct sse_parser *p, const char *v, size_t n)
{
	uint64_t ms = 0;
	size_t i;

	if (n == 0 || p->cb.on_retry == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned char)v[i] - (unsigned)'0';

		if (d > 9)
			return 0;
		ms = ms > (UINT64_MAX - d) / 10 ? UINT64_MAX : ms * 10 + d;
	}
	return callback_result(p->cb.on_retry(ms, p->user));
}

static int name_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* The standard's "process the field"; unknown names are ignored. */
static int process_field(struct sse_parser *p, const char *name, size_t name_len,
			 const char *v, size_t n)
{
	if (name_is(name, name_len, "data"))
		return append_data(p, v, n);
	if (name_is(name, name_len, "event"))
		return buf_set(p, &p->type, v, n);
	if (name_is(name, name_len, "id"))
		return set_id(p, v, n);
	if (name_is(name, name_len, "retry"))
		return set_retry(p, v, n);
	return 0;
}

/* One complete line, without its line ending. */
static int process_line(struct sse_parser *p, const char *s, size_t n)
{
	const char *colon;
	const char *v;
	size_t name_len;

	if (n == 0)
		return dispatch(p);
	if (s[0] == ':') {
		if (p->cb.on_comment == NULL)
			return 0;
		return callback_result(p->cb.on_comment(s + 1, n - 1, p->user));
	}
	colon = memchr(s, ':', n);
	if (colon == NULL)
		return process_field(p, s, n, s + n, 0);
	name_len = (size_t)(colon - s);
	v = colon + 1;
	if (v < s + n && *v == ' ')
		v++;
	return process_field(p, s, name_len, v, n - (size_t)(v - s));
}

/* Keep the start of a line whose end is in a later chunk. */
static int line_append(struct sse_parser *p, const char *s, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if (!fits(p, p->line.len, n))
		return SSE_ERR_TOO_LARGE;
	rc = buf_reserve(p, &p->line, p->line.len + n);
	if (rc != 0)
		return rc;
	memcpy(p->line.ptr + p->line.len, s, n);
	p->line.len += n;
	return 0;
}

/* A line ends at s + n: complete it if earlier chunks began it, else
 * handle it in place, uncopied. */
static int end_line(struct sse_parser *p, const char *s, size_t n)
{
	int rc;

	if (p->line.len == 0) {
		if (n > p->limit)
			return SSE_ERR_TOO_LARGE;
		return process_line(p, s, n);
	}
	rc = line_append(p, s, n);
	if (rc != 0)
		return rc;
	n = p->line.len;
	p->line.len = 0; /* the bytes stay in place while the line is processed */
	return process_line(p, p->line.ptr, n);
}

/* Skip a BOM at the start of the stream, which may arrive split over feeds.
 * On a mismatch the bytes matched so far were the first line's start. */
static int skip_bom(struct sse_parser *p, const char *buf, size_t len, size_t *pos)
{
	size_t i = 0;

	while (p->bom < BOM_DONE && i < len) {
		if (buf[i] != bom[p->bom]) {
			size_t matched = p->bom;

			p->bom = BOM_DONE;
			*pos = i;
			return line_append(p, bom, matched);
		}
		p->bom++;
		i++;
	}
	*pos = i;
	return 0;
}

static size_t next_lf(const struct scan *sc, size_t pos)
{
	const char *lf = memchr(sc->buf + pos, '\n', sc->len - pos);

	return lf != NULL ? (size_t)(lf - sc->buf) : sc->len;
}

static size_t find_eol(struct scan *sc, size_t pos)
{
	const char *cr;

	if (sc->lf < pos)
		sc->lf = next_lf(sc, pos);
	cr = memchr(sc->buf + pos, '\r', sc->lf - pos);
	return cr != NULL ? (size_t)(cr - sc->buf) : sc->lf;
}

/* Split a chunk into lines. A CR ends a line at once; whether a LF follows
 * to make it CRLF may only be known in the next chunk (p->skip_lf). */
static int feed_chunk(struct sse_parser *p, const char *buf, size_t len)
{
	struct scan sc = {buf, len, 0};
	size_t pos = 0, eol;
	int rc;

	if (p->bom < BOM_DONE && (rc = skip_bom(p, buf, len, &pos)) != 0)
		return rc;
	if (p->skip_lf && pos < len) {
		p->skip_lf = 0;
		pos += buf[pos] == '\n';
	}
	sc.lf = next_lf(&sc, pos);
	while (pos < len) {
		eol = find_eol(&sc, pos);
		if (eol == len)
			return line_append(p, buf + pos, len - pos);
		rc = end_line(p, buf + pos, eol - pos);
		if (rc != 0)
			return rc;
		pos = eol + 1;
		if (buf[eol] == '\r') {
			if (pos == len)
				p->skip_lf = 1;
			else if (buf[pos] == '\n')
				pos++;
		}
	}
	return 0;
}

int sse_parser_new(struct sse_parser **out, const struct sse_parser_callbacks *cb,
		   void *user, const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_parser *p;

	if (out == NULL || cb == NULL || cb->on_message == NULL)
		return SSE_ERR_INVALID;
	if (sse__allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	p = sse__alloc(&a, sizeof(*p));
	if (p == NULL)
		return SSE_ERR_NOMEM;
	memset(p, 0, sizeof(*p));
	p->alloc = a;
	p->cb = *cb;
	p->user = user;
	p->limit = SSE_PARSER_DEFAULT_LIMIT;
	*out = p;
	return 0;
}

void sse_parser_free(struct sse_parser *p)
{
	struct sse_allocator a;

	if (p == NULL)
		return;
	a = p->alloc; /* p itself is freed with it */
	buf_free(&a, &p->line);
	buf_free(&a, &p->data);
	buf_free(&a, &p->type);
	buf_free(&a, &p->id_next);
	buf_free(&a, &p->last_id);
	sse__free(&a, p, sizeof(*p));
}

int sse_parser_set_limit(struct sse_parser *p, size_t bytes)
{
	if (p == NULL)
		return SSE_ERR_INVALID;
	p->limit = bytes != 0 ? bytes : SSE_PARSER_DEFAULT_LIMIT;
	return 0;
}

int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len)
{
	if (p == NULL || (buf == NULL && len != 0))
		return SSE_ERR_INVALID;
	if (p->error != 0 || len == 0)
		return p->error;
	p->error = feed_chunk(p, buf, len);
	return p->error;
}

int sse_parser_end(struct sse_parser *p)
{
	if (p == NULL)
		return SSE_ERR_INVALID;
	if (p->error != 0)
		return p->error;
	/* Drop the unfinished event, including an id it set: a browser's next
	 * connection starts from the id of the last dispatched block. */
	p->line.len = 0;
	p->data.len = 0;
	p->type.len = 0;
	p->id_set = 0;
	p->skip_lf = 0;
	p->bom = 0;
	return 0;
}

const char *sse_parser_last_id(const struct sse_parser *p, size_t *len)
{
	if (p == NULL) {
		if (len != NULL)
			*len = 0;
		return NULL;
	}
	if (len != NULL)
		*len = p->last_id.len;
	return buf_str(&p->last_id);
}
