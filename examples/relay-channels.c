/*
 * sse-relay: channels. /events/NAME and /publish/NAME reach a channel of
 * that name: a hub of its own (its own ring, ids with an epoch of its own,
 * the bounds of the relay's options), created by the first publish or
 * subscribe and freed once nobody subscribes to it and nothing was
 * published to it for --channel-idle. --max-channels caps how many exist
 * at once (a publish beyond it: 503; a subscribe: 200 with a retry:).
 * /events and /publish are the default channel, r->hub, never freed.
 *
 * The table is a hash of names (FNV-1a from a seed of this run, so that
 * no client can aim at a bucket). Every hub is ticked each loop turn
 * and swept for idleness now and then: O(channels), bounded by the cap.
 * --redis feeds only the default channel (named ones answer 501).
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define CHANNEL_BUCKETS 1024u
#define CHANNEL_SWEEP_MAX_MS 1000u /* idleness is seen within this */

struct relay_channel {
	struct relay_channel *next;  /* in its bucket */
	struct relay_channel *dirty; /* on r->ch.dirty */
	struct sse_hub *hub;
	uint64_t active;             /* r->now of its last publish or subscriber */
	uint32_t conns;              /* connections holding it (channel_hold()) */
	bool is_dirty;
	uint8_t len;
	char name[CHANNEL_NAME_MAX];
};

const char channel_usage[] =
	"  --max-channels N   named channels (/events/NAME, /publish/NAME) at once\n"
	"                     (default 1024; 0: none); past it a publish gets 503,\n"
	"                     a subscriber 200 with a retry:\n"
	"  --channel-idle MS  free a channel with no subscriber and no publish for\n"
	"                     MS, its ring with it (default 60000)\n";

/* ---- options */

static bool number(const char *arg, unsigned long long max, unsigned long long *v)
{
	char *end;

	if (arg == NULL || arg[0] < '0' || arg[0] > '9')
		return false;
	errno = 0;
	*v = strtoull(arg, &end, 10);
	return errno == 0 && *end == '\0' && *v <= max;
}

int channel_take_option(int argc, char **argv, int *i, struct channel_options *o)
{
	static const char *const names[] = {"--max-channels", "--channel-idle"};
	const char *a = argv[*i];

	for (size_t k = 0; k < 2; k++) {
		size_t len = strlen(names[k]);
		const char *arg;
		unsigned long long v;

		if (strncmp(a, names[k], len) != 0 || (a[len] != '\0' && a[len] != '='))
			continue;
		arg = a[len] == '=' ? a + len + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
		if (number(arg, k == 0 ? 1000000ull : 30ull * 86400000, &v)) {
			if (k == 0)
				o->max = (size_t)v;
			else
				o->idle_ms = v;
			return 1;
		}
		fprintf(stderr, "%s: bad value for %s: '%s'\n", argv[0], names[k],
			arg != NULL ? arg : "");
		return -1;
	}
	return 0;
}

/* ---- the table */

bool channel_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > CHANNEL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static struct relay_channel **bucket(const struct relay *r, const char *name, size_t len)
{
	uint64_t h = r->ch.seed | 1;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 0x100000001b3ull;
	return &r->ch.buckets[(h ^ (h >> 29)) % CHANNEL_BUCKETS];
}

static struct relay_channel *create(struct relay *r, const char *name, size_t len)
{
	struct relay_channel *ch;

	if (r->ch.count >= r->ch.opt.max) {
		r->ch.refused++;
		return NULL;
	}
	if (r->ch.buckets == NULL) {
		r->ch.buckets = calloc(CHANNEL_BUCKETS, sizeof(*r->ch.buckets));
		r->ch.seed = r->rng;
		if (r->ch.buckets == NULL)
			return NULL;
	}
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return NULL;
	/* Its ring gets an epoch of its own (server_hub_new()): an id of
	 * another channel is unknown here, answered with the reset event. */
	if (server_hub_new(&r->opt, conn_subscriber_dropped, r, &ch->hub) < 0) {
		free(ch);
		return NULL;
	}
	/* Its clock starts now: a subscriber's first heartbeat is due an
	 * interval from now, not from time 0. */
	(void)sse_hub_tick(ch->hub, r->now, NULL);
	memcpy(ch->name, name, len);
	ch->len = (uint8_t)len;
	ch->active = r->now;
	ch->next = *bucket(r, name, len);
	*bucket(r, name, len) = ch;
	r->ch.count++;
	r->ch.created++;
	return ch;
}

struct relay_channel *channel_get(struct relay *r, const char *name, size_t len)
{
	struct relay_channel *ch = NULL;

	if (r->ch.buckets != NULL)
		for (ch = *bucket(r, name, len); ch != NULL; ch = ch->next)
			if (ch->len == len && memcmp(ch->name, name, len) == 0)
				break;
	return ch != NULL ? ch : create(r, name, len);
}

struct sse_hub *channel_hub(const struct relay_channel *ch)
{
	return ch->hub;
}

void channel_published(struct relay *r, struct relay_channel *ch)
{
	ch->active = r->now;
	r->published = true;
	if (!ch->is_dirty) {
		ch->is_dirty = true;
		ch->dirty = r->ch.dirty;
		r->ch.dirty = ch;
	}
}

void channel_hold(struct relay_channel *ch)
{
	ch->conns++;
}

/* Idleness counts from the last subscriber's leaving. */
void channel_release(struct relay *r, struct relay_channel *ch)
{
	ch->conns--;
	ch->active = r->now;
}

/* ---- the loop's side */

void channels_flush(struct relay *r)
{
	struct relay_channel *ch;

	while ((ch = r->ch.dirty) != NULL) {
		r->ch.dirty = ch->dirty;
		ch->is_dirty = false;
		sse_hub_flush(ch->hub); /* drops go to conn_subscriber_dropped() */
	}
}

/* The counters of a hub about to go, kept for channels_hub_totals(). */
static void retire_stats(struct relay *r, const struct sse_hub *hub)
{
	struct sse_hub_stats st = {.size = sizeof(st)};

	if (sse_hub_stats(hub, &st) != 0)
		return;
#define RETIRE(name, kind, help) r->ch.retired.name += st.name;
	SSE_HUB_STATS(RETIRE)
#undef RETIRE
}

static void free_channel(struct relay *r, struct relay_channel *ch)
{
	retire_stats(r, ch->hub);
	sse_hub_free(ch->hub);
	free(ch);
	r->ch.count--;
	r->ch.freed++;
}

/* Free the channels nobody holds that were idle long enough (never
 * one on the dirty list: it was published to in this turn). */
static void sweep(struct relay *r)
{
	for (size_t i = 0; i < CHANNEL_BUCKETS; i++)
		for (struct relay_channel **p = &r->ch.buckets[i]; *p != NULL;) {
			struct relay_channel *ch = *p;

			if (ch->conns == 0 && !ch->is_dirty && r->now - ch->active >= r->ch.opt.idle_ms) {
				*p = ch->next;
				free_channel(r, ch);
			} else {
				p = &ch->next;
			}
		}
}

void channels_tick(struct relay *r, uint64_t *next)
{
	uint64_t sweep_every = r->ch.opt.idle_ms / 2 + 1;

	if (r->ch.count == 0)
		return;
	for (size_t i = 0; i < CHANNEL_BUCKETS; i++)
		for (struct relay_channel *ch = r->ch.buckets[i]; ch != NULL; ch = ch->next) {
			uint64_t n = SSE_NO_DEADLINE;

			sse_hub_tick(ch->hub, r->now, &n);
			if (next != NULL && n < *next)
				*next = n;
		}
	if (r->now >= r->ch.next_sweep) {
		sweep(r);
		r->ch.next_sweep = r->now + (sweep_every < CHANNEL_SWEEP_MAX_MS ? sweep_every
										 : CHANNEL_SWEEP_MAX_MS);
	}
	if (next != NULL && r->ch.count > 0 && r->ch.next_sweep < *next)
		*next = r->ch.next_sweep;
}

/* At exit, after every connection closed. */
void channels_free(struct relay *r)
{
	for (size_t i = 0; r->ch.buckets != NULL && i < CHANNEL_BUCKETS; i++)
		while (r->ch.buckets[i] != NULL) {
			struct relay_channel *ch = r->ch.buckets[i];

			r->ch.buckets[i] = ch->next;
			free_channel(r, ch);
		}
	free(r->ch.buckets);
	r->ch.buckets = NULL;
}

/* ---- /metrics */

static void add_stats(struct sse_hub_stats *sum, const struct sse_hub *hub)
{
	struct sse_hub_stats st = {.size = sizeof(st)};

	if (sse_hub_stats(hub, &st) != 0)
		return;
#define ADD(name, kind, help) sum->name += st.name;
	SSE_HUB_STATS(ADD)
#undef ADD
}

int channels_hub_totals(const struct relay *r, struct sse_hub_stats *out)
{
	int rc = sse_hub_stats(r->hub, out);

	if (rc != 0 || out->size != sizeof(*out))
		return rc;
	/* Counters of freed hubs (their gauges were 0: nobody held them). */
#define ADD(name, kind, help) out->name += r->ch.retired.name;
	SSE_HUB_STATS(ADD)
#undef ADD
	for (size_t i = 0; r->ch.buckets != NULL && i < CHANNEL_BUCKETS; i++)
		for (const struct relay_channel *ch = r->ch.buckets[i]; ch != NULL; ch = ch->next)
			add_stats(out, ch->hub);
	return 0;
}
