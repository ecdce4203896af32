/*
 * sse-relay: one connection following several channels as one merged
 * stream: GET /events?channel=a&channel=b (up to MERGE_MAX channels).
 *
 * The connection's own stream (the "outer" one) writes to the socket as
 * any subscriber's does, but follows no ring. Each channel has a stream
 * of its own in that channel's hub (an "inner" one) whose transport
 * writes nothing: it copies whole frames into the outer stream's queue,
 * each with its id line rewritten to the composite cursor
 * "a:<id>;b:<id>", every channel's position as of that frame, so that a
 * client's Last-Event-ID resumes every channel exactly. Frames are never
 * split: an inner transport takes whole frames only. Past MERGE_QUEUE
 * bytes queued the inner transports answer SSE_ERR_WOULDBLOCK (with the
 * socket full) and the socket's room calls sse_hub_writable() for each.
 * Only the first channel's stream beats (keep-alive comments); the others
 * are told not to. An inner stream the hub drops (slow, gap) closes the
 * whole connection, which resumes all with its composite id.
 *
 * A single-channel subscriber is not touched: all this is allocated for
 * merged subscribers only (struct relay_merge, whose head is what the
 * connection's u.sub points to: CONN_F_CHANNEL with no channel).
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define MERGE_QUEUE ((size_t)64 * 1024) /* outer bytes queued before inner ones wait */

struct merge_slot {
	struct relay_merge *m;
	struct sse_stream *inner;
	struct relay_channel *ch;
	bool reset;        /* its resume part was lost: its first event is the reset */
	uint8_t name_len;
	uint8_t pos_len;
	char name[CHANNEL_NAME_MAX];
	char pos[MERGE_ID_MAX]; /* the id of its last frame copied */
};

struct relay_merge {
	/* What the connection's u.sub points to: the outer stream, no
	 * channel (conn_is_merged()). */
	struct channel_sub head;
	struct relay *r;
	struct conn *c;
	struct sse_stream *outer;
	bool left;         /* out of the hubs: draining or closing */
	uint8_t n;
	struct merge_slot slot[MERGE_MAX];
};

/* ---- the request: ?channel=a&channel=b */

bool merge_wanted(const char *query, size_t len)
{
	for (size_t i = 0; i + 8 <= len; i++)
		if ((i == 0 || query[i - 1] == '&') && memcmp(query + i, "channel=", 8) == 0)
			return true;
	return false;
}

int merge_parse(const char *query, size_t len, struct merge_names *out)
{
	size_t i = 0;

	out->n = 0;
	while (i < len) {
		const char *p = query + i, *amp = memchr(p, '&', len - i);
		size_t plen = amp != NULL ? (size_t)(amp - p) : len - i;

		i += plen + 1;
		if (plen < 8 || memcmp(p, "channel=", 8) != 0)
			continue;
		if (out->n == MERGE_MAX)
			return -1;
		if (!channel_name_ok(p + 8, plen - 8))
			return -1;
		for (size_t k = 0; k < out->n; k++)
			if (out->len[k] == plen - 8 && memcmp(out->name[k], p + 8, plen - 8) == 0)
				return -1; /* twice the same */
		out->name[out->n] = p + 8;
		out->len[out->n++] = (uint8_t)(plen - 8);
	}
	return out->n > 0 ? 0 : -1;
}

/* ---- the composite cursor */

/* "a:<id>;b:<id>" into buf (MERGE_CURSOR_MAX bytes); its length. */
static size_t cursor_text(const struct relay_merge *m, char *buf)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n; i++) {
		const struct merge_slot *sl = &m->slot[i];

		if (i > 0)
			buf[n++] = ';';
		memcpy(buf + n, sl->name, sl->name_len);
		n += sl->name_len;
		buf[n++] = ':';
		memcpy(buf + n, sl->pos, sl->pos_len);
		n += sl->pos_len;
	}
	return n;
}

/* The part of a composite id for channel name: 1 and it, or 0. */
static int cursor_part(const char *id, size_t len, const char *name, size_t name_len,
		       const char **part, size_t *part_len)
{
	size_t i = 0;

	while (i < len) {
		const char *p = id + i, *semi = memchr(p, ';', len - i);
		size_t plen = semi != NULL ? (size_t)(semi - p) : len - i;

		i += plen + 1;
		if (plen > name_len && p[name_len] == ':' && memcmp(p, name, name_len) == 0) {
			*part = p + name_len + 1;
			*part_len = plen - name_len - 1;
			return 1;
		}
	}
	return 0;
}

/* ---- the inner transports */

struct span_iter {
	const struct sse_iovec *iov;
	size_t n, i, off;
};

/* The byte at the iterator's place, moving on; -1 at the end. */
static int next_byte(struct span_iter *it)
{
	while (it->i < it->n && it->off >= it->iov[it->i].len) {
		it->i++;
		it->off = 0;
	}
	if (it->i >= it->n)
		return -1;
	return (unsigned char)((const char *)it->iov[it->i].base)[it->off++];
}

/* Move the iterator k bytes on, a piece at a time. */
static void skip(struct span_iter *it, size_t k)
{
	while (it->i < it->n && k > 0) {
		size_t left = it->iov[it->i].len - it->off;

		if (k < left) {
			it->off += k;
			return;
		}
		k -= left;
		it->i++;
		it->off = 0;
	}
}

/* The length of the whole unit at from (a comment line ":...\n", or a
 * frame ending with an empty line); 0 if it is not whole in iov. */
static size_t unit_len(const struct sse_iovec *iov, size_t n, size_t from)
{
	struct span_iter it = {iov, n, 0, 0};
	size_t len = 0;
	int ch, prev = '\n';
	bool comment;

	skip(&it, from);
	ch = next_byte(&it);
	if (ch < 0)
		return 0;
	comment = ch == ':';
	for (len = 1; ch >= 0; len++) {
		if (ch == '\n' && (comment || prev == '\n'))
			return len;
		prev = ch;
		ch = next_byte(&it);
	}
	return 0;
}

/* Copy len bytes of iov from from into the outer stream. */
static int copy_out(struct sse_stream *outer, const struct sse_iovec *iov, size_t n,
		    size_t from, size_t len)
{
	for (size_t i = 0; i < n && len > 0; i++) {
		size_t l = iov[i].len;
		int rc;

		if (from >= l) {
			from -= l;
			continue;
		}
		l = l - from < len ? l - from : len;
		rc = sse_stream_send_raw(outer, (const char *)iov[i].base + from, l);
		if (rc < 0 && rc != SSE_ERR_WOULDBLOCK)
			return rc;
		from = 0;
		len -= l;
	}
	return 0;
}

/* The reset event of slot's channel, its data naming the channel. */
static int send_reset(struct merge_slot *sl, const char *cursor, size_t cursor_len)
{
	struct sse_event ev = {.retry = SSE_RETRY_NONE};

	if (sse_replay_reset_event(sse_hub_ring(channel_hub(sl->ch)), &ev) != 1)
		return 0;
	ev.id = cursor;
	ev.id_len = cursor_len;
	ev.data = sl->name;
	ev.data_len = sl->name_len;
	return sse_stream_send(sl->m->outer, &ev);
}

/* One whole frame of a channel: its id becomes the composite cursor. */
static int copy_frame(struct merge_slot *sl, const struct sse_iovec *iov, size_t n,
		      size_t from, size_t len)
{
	struct span_iter it = {iov, n, 0, 0};
	char cursor[4 + MERGE_CURSOR_MAX + 1];
	size_t head = 0, id_len = 0, clen;
	int ch, rc;

	skip(&it, from);
	/* Ring frames start "id: <id>\n"; one without an id goes as it is. */
	for (head = 0; head < 4 && head < len; head++)
		if (next_byte(&it) != "id: "[head])
			return copy_out(sl->m->outer, iov, n, from, len);
	while ((ch = next_byte(&it)) >= 0 && ch != '\n') {
		if (id_len < MERGE_ID_MAX)
			sl->pos[id_len] = (char)ch;
		id_len++;
	}
	if (id_len > MERGE_ID_MAX)
		return SSE_ERR_TOO_LARGE; /* not a ring id: ends the connection */
	sl->pos_len = (uint8_t)id_len;
	head = 4 + id_len + 1;
	memcpy(cursor, "id: ", 4);
	clen = cursor_text(sl->m, cursor + 4);
	if (sl->reset) {
		sl->reset = false;
		return send_reset(sl, cursor + 4, clen);
	}
	cursor[4 + clen] = '\n';
	rc = sse_stream_send_raw(sl->m->outer, cursor, 4 + clen + 1);
	if (rc < 0 && rc != SSE_ERR_WOULDBLOCK)
		return rc;
	return copy_out(sl->m->outer, iov, n, from + head, len - head);
}

/* Room in the outer queue: flush it to the socket first. Without room
 * the socket said EAGAIN: its room comes back as EPOLLOUT, which calls
 * merge_writable(). */
static bool outer_room(struct relay_merge *m)
{
	if (sse_stream_pending(m->outer) <= MERGE_QUEUE)
		return true;
	(void)sse_stream_flush(m->outer);
	return sse_stream_pending(m->outer) <= MERGE_QUEUE;
}

static int inner_writev(const struct sse_iovec *iov, size_t n, size_t *taken, void *ctx)
{
	struct merge_slot *sl = ctx;
	struct relay_merge *m = sl->m;
	size_t done = 0, len;
	int rc;

	if (m->left || !outer_room(m))
		return SSE_ERR_WOULDBLOCK;
	while ((len = unit_len(iov, n, done)) > 0) {
		struct span_iter it = {iov, n, 0, 0};
		bool comment;

		skip(&it, done);
		comment = next_byte(&it) == ':';
		/* Keep-alives of the first channel only: one per interval. */
		rc = !comment ? copy_frame(sl, iov, n, done, len)
			      : sl == &m->slot[0] ? copy_out(m->outer, iov, n, done, len) : 0;
		if (rc < 0)
			return rc;
		done += len;
		if (!outer_room(m))
			break;
	}
	if (done == 0)
		return SSE_ERR_WOULDBLOCK;
	*taken = done;
	return 0;
}

/* ---- the merge's life */

struct relay_merge *merge_new(struct relay *r, const struct merge_names *names)
{
	struct relay_merge *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->r = r;
	for (size_t i = 0; i < names->n; i++) {
		struct merge_slot *sl = &m->slot[i];

		sl->ch = channel_get(r, names->name[i], names->len[i]);
		if (sl->ch == NULL) {
			merge_free(r, m);
			return NULL;
		}
		channel_hold(sl->ch);
		m->n++;
		sl->m = m;
		memcpy(sl->name, names->name[i], names->len[i]);
		sl->name_len = names->len[i];
	}
	return m;
}

/* Slot's part of id (the composite cursor): a part missing from a
 * non-empty id is lost (the reset event), an empty id: live only. */
static void slot_part(const struct merge_slot *sl, const char *id, size_t id_len,
		      const char **part, size_t *part_len)
{
	*part = "-";
	*part_len = id_len > 0 ? 1 : 0;
	if (id_len > 0)
		(void)cursor_part(id, id_len, sl->name, sl->name_len, part, part_len);
}

/* Where slot stands before its first frame: its part when the ring has
 * it, else the ring's newest id (a cut before its first event resumes it
 * from there, not live). Set for every slot before any subscribes: the
 * first one's replay carries the others' positions. */
static int slot_position(struct merge_slot *sl, const char *id, size_t id_len)
{
	struct sse_hub *hub = channel_hub(sl->ch);
	const char *part, *newest;
	size_t part_len, newest_len = 0;
	uint64_t cursor;
	int rc;

	slot_part(sl, id, id_len, &part, &part_len);
	/* Where it stands before any frame: the ring's newest id, so that a
	 * cut before its first event resumes it from there, not live. */
	newest = sse_replay_newest_id(sse_hub_ring(hub), &newest_len);
	rc = part_len > 0 ? sse_replay_seek(sse_hub_ring(hub), part, part_len, &cursor)
			  : SSE_REPLAY_LIVE;
	sl->reset = rc != SSE_REPLAY_FOUND && rc != SSE_REPLAY_LIVE;
	if (rc == SSE_REPLAY_FOUND) {
		newest = part;
		newest_len = part_len;
	}
	if (newest_len > MERGE_ID_MAX)
		return SSE_ERR_TOO_LARGE;
	memcpy(sl->pos, newest, newest_len);
	sl->pos_len = (uint8_t)newest_len;
	return 0;
}

static int subscribe_slot(struct relay_merge *m, struct merge_slot *sl, const char *id,
			  size_t id_len, bool beat)
{
	const struct sse_transport t = {.size = sizeof(t), .writev = inner_writev, .ctx = sl};
	const char *part;
	size_t part_len;
	int rc;

	slot_part(sl, id, id_len, &part, &part_len);
	rc = sse_stream_new(&sl->inner, &t, m->c, NULL);
	if (rc == 0)
		rc = sse_hub_subscribe(channel_hub(sl->ch), sl->inner, part, part_len, NULL);
	if (rc == 0 && !beat)
		rc = sse_stream_set_heartbeat(sl->inner, 0, 0);
	return rc == SSE_ERR_WOULDBLOCK ? 0 : rc;
}

int merge_begin(struct relay_merge *m, struct conn *c, struct sse_stream *outer,
		const char *id, size_t id_len)
{
	int rc = sse_stream_set_queue_limit(outer, MERGE_QUEUE + 4 * SERVER_BODY_MAX);

	m->c = c;
	m->outer = outer;
	if (rc == 0)
		rc = sse_stream_start(outer, c->relay->now); /* retry, or a comment */
	for (size_t i = 0; (rc == 0 || rc == SSE_ERR_WOULDBLOCK) && i < m->n; i++)
		rc = slot_position(&m->slot[i], id, id_len);
	for (size_t i = 0; (rc == 0 || rc == SSE_ERR_WOULDBLOCK) && i < m->n; i++)
		rc = subscribe_slot(m, &m->slot[i], id, id_len, i == 0);
	return rc == SSE_ERR_WOULDBLOCK ? 0 : rc;
}

/* conn_subscribe() may have closed the connection (its peer left): it
 * freed the outer stream then, and m goes too. */
void merge_attach(struct conn *c, struct relay_merge *m)
{
	if (c->state != CONN_STREAMING) {
		m->outer = NULL;
		merge_free(c->relay, m);
		return;
	}
	m->head = (struct channel_sub){.stream = m->outer, .ch = NULL};
	c->u.sub = &m->head;
	c->flags |= CONN_F_CHANNEL;
}

struct relay_merge *merge_of(const struct conn *c)
{
	return (struct relay_merge *)(void *)c->u.sub; /* its first member */
}

/* The socket has room: the outer queue first, then each channel. An
 * inner stream dropped here closes the connection, which frees m: look
 * at the connection (freed only at the end of the turn), not at m. */
void merge_writable(struct conn *c)
{
	struct relay_merge *m = merge_of(c);
	uint8_t n = m->n;

	if (sse_stream_flush(m->outer) < 0 && sse_stream_error(m->outer) != 0)
		return;
	for (uint8_t i = 0; i < n && !m->left; i++) {
		(void)sse_hub_writable(channel_hub(m->slot[i].ch), m->slot[i].inner);
		if (c->state == CONN_CLOSED || !(c->flags & CONN_F_CHANNEL))
			return;
	}
}

/* On an event boundary: every channel leaves its hub (none is inside a
 * frame: they hand over whole frames only). */
void merge_leave(struct relay_merge *m, int reason)
{
	m->left = true;
	for (size_t i = 0; i < m->n; i++)
		if (m->slot[i].inner != NULL)
			(void)sse_hub_unsubscribe_reason(channel_hub(m->slot[i].ch),
							 m->slot[i].inner, reason);
}

void merge_free(struct relay *r, struct relay_merge *m)
{
	if (m == NULL)
		return;
	m->left = true;
	for (size_t i = 0; i < m->n; i++) {
		sse_stream_free(m->slot[i].inner); /* leaves its hub */
		channel_release(r, m->slot[i].ch);
	}
	sse_stream_free(m->outer);
	free(m);
}
