/*
 * sse-relay: channels (relay-channels.c). /events/NAME and /publish/NAME
 * each reach a hub of their own, created on first use and freed when
 * idle; /events and /publish stay the default channel, r->hub.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RELAY_CHANNELS_H
#define RELAY_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sse.h>

#define CHANNEL_NAME_MAX 64        /* [A-Za-z0-9._-]{1,64} */
#define CHANNEL_MAX_DEFAULT 1024u  /* --max-channels */
#define CHANNEL_IDLE_DEFAULT_MS 60000u /* --channel-idle */

struct relay;
struct relay_channel;

/* A named channel's subscriber: what its connection points to instead of
 * its stream (CONN_F_CHANNEL), so that a default-channel subscriber keeps
 * its size. */
struct channel_sub {
	struct sse_stream *stream;
	struct relay_channel *ch;
};

struct channel_options {
	size_t max;       /* --max-channels, besides the default one */
	uint64_t idle_ms; /* --channel-idle: no subscriber, no publish for this long */
};

/* The table of named channels (in struct relay). */
struct relay_channels {
	struct relay_channel **buckets; /* NULL until the first channel */
	struct relay_channel *dirty;    /* published to in this loop turn */
	size_t count;
	uint64_t seed;
	uint64_t next_sweep;
	uint64_t created, freed, refused; /* for /metrics */
	struct sse_hub_stats retired;   /* counters of the hubs freed */
	struct channel_options opt;
};

extern const char channel_usage[];

/* --max-channels, --channel-idle: 1 taken, 0 not ours, -1 bad (told). */
int channel_take_option(int argc, char **argv, int *i, struct channel_options *o);
/* A valid name: [A-Za-z0-9._-]{1,CHANNEL_NAME_MAX}. */
bool channel_name_ok(const char *name, size_t len);
/* The channel of that (valid) name, created if need be; NULL: over
 * --max-channels (counted in refused) or out of memory. */
struct relay_channel *channel_get(struct relay *r, const char *name, size_t len);
struct sse_hub *channel_hub(const struct relay_channel *ch);
/* A publish went into its hub: flush it at the end of the turn. */
void channel_published(struct relay *r, struct relay_channel *ch);
/* A subscriber joins (its connection holds the channel) and leaves. */
void channel_hold(struct relay_channel *ch);
void channel_release(struct relay *r, struct relay_channel *ch);
/* The loop's side: fan-out of this turn's publishes, ticks of every hub
 * and the idle sweep (the next deadline of all into *next if not NULL). */
void channels_flush(struct relay *r);
void channels_tick(struct relay *r, uint64_t *next);
void channels_free(struct relay *r);
/* Every hub's counters summed: the default's, the live channels' and
 * those of freed channels (gauges: live only). */
int channels_hub_totals(const struct relay *r, struct sse_hub_stats *out);

/* A merged stream (relay-merge.c): GET /events?channel=a&channel=b. */
#define MERGE_MAX 8          /* channels one connection may follow */
#define MERGE_ID_MAX 64      /* bytes of one channel's id in the cursor */
/* The composite cursor "a:<id>;b:<id>": at most this many bytes. */
#define MERGE_CURSOR_MAX (MERGE_MAX * (CHANNEL_NAME_MAX + 1 + MERGE_ID_MAX + 1))

struct conn;
struct relay_merge;

struct merge_names {  /* pointing into the request's head */
	const char *name[MERGE_MAX];
	uint8_t len[MERGE_MAX];
	uint8_t n;
};

/* A query with a channel= parameter asks for a merged stream. */
bool merge_wanted(const char *query, size_t len);
/* Its channels: 0, or -1 (more than MERGE_MAX, a bad name, one twice). */
int merge_parse(const char *query, size_t len, struct merge_names *out);
/* The channels held (created if need be); NULL: --max-channels, memory. */
struct relay_merge *merge_new(struct relay *r, const struct merge_names *names);
/* Subscribe to every channel from its part of id; outer is the socket's
 * stream, which m owns from now on (merge_free() frees it). */
int merge_begin(struct relay_merge *m, struct conn *c, struct sse_stream *outer,
		const char *id, size_t id_len);
void merge_attach(struct conn *c, struct relay_merge *m);
/* A merged subscriber's merge (conn_is_merged()). */
struct relay_merge *merge_of(const struct conn *c);
void merge_writable(struct conn *c);
void merge_leave(struct relay_merge *m, int reason);
void merge_free(struct relay *r, struct relay_merge *m);

#endif
