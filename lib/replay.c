/*
 * The replay ring: encoded frames kept for clients that reconnect with
 * Last-Event-ID, handed out by sequence number without re-encoding.
 *
 * All storage is allocated by sse_replay_new(), so publishing allocates
 * nothing:
 *  - the arena, exactly max_bytes, holds the frames back to back in
 *    publication order, circularly. A frame never wraps: one that does not
 *    fit before the arena's end starts at offset 0, and the bytes it skips
 *    stay unused until the frames before them are dropped. So each frame is
 *    contiguous (handed out without copying) and the frames together never
 *    hold more than max_bytes.
 *  - the index, 2 * max_events entries: the frame with sequence number q
 *    is entry q % (2 * max_events), so a cursor finds its frame in O(1).
 *    The frames held are always [next_seq - count, next_seq); the index
 *    has room for as many again that an asynchronous transport still
 *    holds after they were dropped (pins, below).
 *  - with application ids, a hash table of chain heads. Chains run through
 *    the index from newest to oldest by sequence number, and a link below
 *    the oldest held frame ends a chain, so dropping a frame unlinks nothing.
 *
 * Pins. A stream on an asynchronous transport hands out frames that the
 * transport keeps using after the call, until it reports them done; the
 * stream pins its oldest frame in flight (lib/follow.c), and the bytes of
 * a pinned frame and of every frame after it stay where they are, even
 * once dropped from the ring. Each arena keeps its oldest frame still held
 * (held[]): dropped frames without a pin are let go from there on. When a
 * pin blocks the room a publish needs, new frames go to a second arena,
 * allocated then and freed once the first holds nothing; when that one is
 * blocked too, publishing fails with SSE_ERR_PINNED. Memory is thus at most
 * two arenas, and only while a transport holds frames the ring has let go
 * of, which makes its stream a slow consumer (SSE_ERR_GAP) at its next write.
 *
 * Readers on other threads (sse_replay_share()). One thread writes; hubs
 * on other threads read frames in place, without a lock:
 *  - what a reader may see is published through two atomics, the live end
 *    (pub_next, stored after the frame's bytes and index entry, with
 *    release) and the first frame held (pub_first, stored as soon as a
 *    frame is dropped). Readers read only these, the entries and bytes of
 *    frames between them, and what never changes once shared (the epoch,
 *    the id base, the arenas' addresses while they hold a frame read).
 *  - a reader in the middle of a call that may read frames has a floor:
 *    it stores the first frame held as its floor, then reads the first
 *    frame held again and reads nothing before that. The writer stores
 *    pub_first before it reads the floors, and lets go of no frame at or
 *    after the lowest floor. Both sides use sequentially consistent
 *    order, so either the writer sees the floor or the reader sees the
 *    frames dropped; a frame is never reused under a reader. Between its
 *    calls a reader has no floor, so an idle thread holds nothing back.
 *  - pins are counted atomically (readers pin and unpin, the writer
 *    reads), and a pin is taken within a call, under the floor.
 * The floors are the only thing the writer waits on, and it does not
 * wait: when they keep it from the room it needs, it uses the second
 * arena, then fails with SSE_ERR_PINNED, as for a pin.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "encode.h"
#include "replay.h"

#define ID_PREFIX_LEN 4   /* "id: ", which starts every frame of a ring */
/* Characters of a generated epoch: 40 bits in base 32. */
#define EPOCH_CHARS 8

struct entry {
	uint64_t time_ms; /* now_ms at publication, for max_age_ms */
	uint64_t end_total; /* bytes ever published, through this frame */
	uint64_t next;    /* app ids: sequence number of the next older frame in the bucket */
	size_t offset;    /* the frame is arena[gen][offset, offset + len) */
	size_t len;
	uint32_t hash;    /* app ids: the id's hash, checked before the bytes */
	_Atomic uint32_t pins; /* streams whose oldest byte in flight is in this frame */
	unsigned char gen; /* which arena */
};

struct sse_replay {
	struct sse_allocator alloc;
	size_t max_events;
	size_t max_bytes;
	uint64_t max_age_ms;
	int app_ids;
	unsigned flags;      /* encoder flags for every frame */
	char *arena[2];      /* max_bytes each; the second only while pins need it */
	int cur;             /* the arena new frames go to */
	uint64_t gen_first[2]; /* sequence number of each arena's first frame */
	uint64_t held[2];    /* each arena's oldest frame still held (or pinned) */
	size_t slots;        /* index entries: 2 * max_events */
	struct entry *index; /* slots */
	uint64_t *buckets;   /* app ids: bucket_mask + 1 chain heads, 0 for none */
	size_t bucket_mask;
	/* Ring ids: the epoch NUL-terminated, then room for the id publish
	 * is writing, then the newest id ("<epoch>0" before frame 1). */
	char *ids;
	size_t ids_size;
	size_t epoch_len;
	size_t newest_len;   /* ring ids: the newest id's length */
	/* Ring ids: frame seq has the id number seq + base (mod 2^64), so a
	 * restart can move the numbers while sequence numbers, which cursors
	 * and pins rely on, only ever grow. 0 unless restarted. */
	uint64_t base;
	struct sse_event reset;
	char *reset_text;    /* the reset event's type then data, copied */
	size_t reset_text_len;
	int has_reset;
	uint64_t next_seq;
	size_t count;        /* frames held */
	size_t bytes;        /* their encoded bytes */
	uint64_t total;      /* bytes ever published: backlogs in O(1) */
	/* What readers see: next_seq and first_seq(r), published (see the
	 * top of this file); readers on this thread read them too. */
	_Atomic uint64_t pub_next, pub_first;
	struct sse__ring_reader *readers; /* shared: one per hub that may read */
	unsigned reader_count;
};

/* A reader's floor, alone on its cache line: each reader thread writes
 * its own at every call, and the writer reads them all. */
struct sse__ring_reader {
	_Atomic uint64_t floor; /* NO_FLOOR between calls */
	atomic_bool taken;
	char pad[64 - sizeof(_Atomic uint64_t) - sizeof(atomic_bool)];
};

#define NO_FLOOR UINT64_MAX

/* ---- creating and freeing */

static int size_mul(size_t a, size_t b, size_t *out)
{
	if (b != 0 && a > SIZE_MAX / b)
		return SSE_ERR_NOMEM; /* more than any allocator could give */
	*out = a * b;
	return 0;
}

/* Chain heads: a power of two (a mask picks the bucket), at least twice the
 * frames, so chains stay short. */
static int bucket_count(size_t max_events, size_t *count)
{
	size_t n = 2;

	while (n / 2 < max_events) {
		if (n > SIZE_MAX / 2)
			return SSE_ERR_NOMEM;
		n *= 2;
	}
	*count = n;
	return 0;
}

static int alloc_storage(struct sse_replay *r)
{
	size_t size, n = 0;

	r->arena[0] = sse__alloc(&r->alloc, r->max_bytes);
	if (r->arena[0] == NULL)
		return SSE_ERR_NOMEM;
	if (size_mul(r->max_events, 2, &r->slots) != 0 ||
	    size_mul(r->slots, sizeof(*r->index), &size) != 0 ||
	    (r->index = sse__alloc(&r->alloc, size)) == NULL)
		return SSE_ERR_NOMEM;
	if (!r->app_ids)
		return 0;
	if (bucket_count(r->max_events, &n) != 0 ||
	    size_mul(n, sizeof(*r->buckets), &size) != 0 ||
	    (r->buckets = sse__alloc(&r->alloc, size)) == NULL)
		return SSE_ERR_NOMEM;
	memset(r->buckets, 0, size);
	r->bucket_mask = n - 1;
	return 0;
}

/* Where publish writes the id of the frame it encodes: epoch, digits. */
static char *id_scratch(const struct sse_replay *r)
{
	return r->ids + r->epoch_len + 1;
}

/* The id of the newest frame published, kept when it is published, since
 * the frame itself may be gone (expired) and a failed publish leaves the
 * scratch holding an id that was never used. */
static char *newest_id(const struct sse_replay *r)
{
	return id_scratch(r) + r->epoch_len + SSE__U64_DIGITS;
}

/* splitmix64: spreads the few varying bits of its input over all 64. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/*
 * A prefix that no other instance is likely to share, from what plain C
 * offers: the wall clock, the processor time, and addresses (which differ
 * between runs where the system randomises them), plus a counter for rings
 * made in the same instant by one process. Not secret, only distinct: a
 * clash needs two instances in the same second with equal addresses, and
 * then costs what plain ids cost, a resume from the wrong place.
 */
static void make_epoch(const struct sse_replay *r, char out[EPOCH_CHARS + 2])
{
	static unsigned long made;
	uint64_t x = mix((uint64_t)time(NULL) ^ mix((uint64_t)clock()) ^
			 mix((uint64_t)(uintptr_t)r) ^ mix((uint64_t)(uintptr_t)&made) ^
			 mix((uint64_t)++made << 32));

	for (size_t i = 0; i < EPOCH_CHARS; i++, x >>= 5)
		out[i] = "0123456789abcdefghijklmnopqrstuv"[x & 31];
	out[EPOCH_CHARS] = '-';
	out[EPOCH_CHARS + 1] = '\0';
}

/* The newest id: "<epoch><number>", for the number before the next frame. */
static void set_newest(struct sse_replay *r, uint64_t number)
{
	r->newest_len = r->epoch_len + sse__format_u64(number, 10, newest_id(r) + r->epoch_len);
}

/* A block for the ids of an epoch (see struct sse_replay), the epoch
 * copied into each place; NULL when out of memory. */
static char *ids_block(const struct sse_replay *r, const char *epoch, size_t len, size_t *size)
{
	char *ids;

	*size = 3 * len + 1 + 2 * SSE__U64_DIGITS;
	ids = sse__alloc(&r->alloc, *size);
	if (ids == NULL)
		return NULL;
	memcpy(ids, epoch, len + 1);
	memcpy(ids + len + 1, epoch, len);
	memcpy(ids + 2 * len + 1 + SSE__U64_DIGITS, epoch, len);
	return ids;
}

static int copy_epoch(struct sse_replay *r, const char *epoch)
{
	char made[EPOCH_CHARS + 2];

	if (epoch == NULL) {
		make_epoch(r, made);
		epoch = made;
	}
	r->epoch_len = strlen(epoch);
	r->ids = ids_block(r, epoch, r->epoch_len, &r->ids_size);
	if (r->ids == NULL)
		return SSE_ERR_NOMEM;
	set_newest(r, 0); /* "<epoch>0": the point before frame 1 */
	return 0;
}

/* The reset event with its type and data copied into one block; its id
 * is set at each use. */
static int copy_reset(struct sse_replay *r, const struct sse_event *ev)
{
	size_t type_len = ev->type ? ev->type_len : 0;
	size_t data_len = ev->data ? ev->data_len : 0;
	const char *text = ""; /* empty texts point here, not at the caller's */

	r->reset_text_len = type_len + data_len;
	if (r->reset_text_len > 0) {
		r->reset_text = sse__alloc(&r->alloc, r->reset_text_len);
		if (r->reset_text == NULL)
			return SSE_ERR_NOMEM;
		if (type_len > 0)
			memcpy(r->reset_text, ev->type, type_len);
		if (data_len > 0)
			memcpy(r->reset_text + type_len, ev->data, data_len);
		text = r->reset_text;
	}
	r->reset = *ev;
	r->reset.id = NULL;
	r->reset.id_len = 0;
	r->reset.type = ev->type ? text : NULL;
	r->reset.data = ev->data ? text + type_len : NULL;
	r->has_reset = 1;
	return 0;
}

/* An epoch no id can carry would make every publish fail. */
static bool epoch_valid(const char *epoch)
{
	return epoch == NULL || epoch[strcspn(epoch, "\r\n")] == '\0';
}

static int config_valid(const struct sse_replay_config *cfg)
{
	struct sse_event reset;
	size_t size;

	if (cfg->size != sizeof(*cfg))
		return 0;
	if (cfg->max_events == 0 || cfg->max_bytes == 0 || (cfg->flags & ~SSE_ENCODE_STRICT_UTF8))
		return 0;
	if (!cfg->app_ids && !epoch_valid(cfg->epoch))
		return 0;
	if (cfg->reset_event == NULL)
		return 1;
	reset = *cfg->reset_event;
	reset.id = NULL; /* ignored: the ring sets it */
	reset.id_len = 0;
	return sse_encode_size(&reset, cfg->flags, &size) == 0;
}

int sse_replay_new(struct sse_replay **out, const struct sse_replay_config *cfg,
		   const struct sse_allocator *alloc)
{
	struct sse_allocator a;
	struct sse_replay *r;
	int rc;

	if (out == NULL || cfg == NULL || !config_valid(cfg) ||
	    sse__allocator_init(&a, alloc) != 0)
		return SSE_ERR_INVALID;
	r = sse__alloc(&a, sizeof(*r));
	if (r == NULL)
		return SSE_ERR_NOMEM;
	*r = (struct sse_replay){.alloc = a, .max_events = cfg->max_events,
				 .max_bytes = cfg->max_bytes, .max_age_ms = cfg->max_age_ms,
				 .flags = cfg->flags,
				 .app_ids = cfg->app_ids != 0, .next_seq = 1,
				 .gen_first = {1, 1}, .held = {1, 1}};
	atomic_init(&r->pub_next, 1);
	atomic_init(&r->pub_first, 1);
	rc = alloc_storage(r);
	if (rc == 0 && !r->app_ids)
		rc = copy_epoch(r, cfg->epoch);
	if (rc == 0 && cfg->reset_event)
		rc = copy_reset(r, cfg->reset_event);
	if (rc != 0) {
		sse_replay_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void sse_replay_free(struct sse_replay *r)
{
	if (r == NULL)
		return;
	/* The sizes are those allocated: each product was checked then, and a
	 * block that was never allocated is NULL, which sse__free skips. */
	sse__free(&r->alloc, r->arena[0], r->max_bytes);
	sse__free(&r->alloc, r->arena[1], r->max_bytes);
	sse__free(&r->alloc, r->index, r->slots * sizeof(*r->index));
	sse__free(&r->alloc, r->buckets, (r->bucket_mask + 1) * sizeof(*r->buckets));
	sse__free(&r->alloc, r->ids, r->ids_size);
	sse__free(&r->alloc, r->reset_text, r->reset_text_len);
	sse__free(&r->alloc, r->readers, r->reader_count * sizeof(*r->readers));
	sse__free(&r->alloc, r, sizeof(*r));
}

/* ---- the index */

static uint64_t first_seq(const struct sse_replay *r)
{
	return r->next_seq - r->count;
}

/* Ring ids: the id number the next frame gets. */
static uint64_t next_number(const struct sse_replay *r)
{
	return r->next_seq + r->base;
}

static struct entry *entry_at(const struct sse_replay *r, uint64_t seq)
{
	return r->index + (size_t)(seq % r->slots);
}

/* Readers learn of a dropped frame before the writer reads their floors
 * (release()): sequentially consistent, see the top of this file. */
static void drop_oldest(struct sse_replay *r)
{
	r->bytes -= entry_at(r, first_seq(r))->len;
	r->count--;
	atomic_store(&r->pub_first, first_seq(r));
}

/* A new frame (or a skipped number) is there: entry and bytes first. */
static void publish_end(struct sse_replay *r)
{
	atomic_store_explicit(&r->pub_next, r->next_seq, memory_order_release);
}

/* What a reader sees: the live end, and the first frame held. */
static uint64_t live_end(const struct sse_replay *r)
{
	return atomic_load_explicit(&((struct sse_replay *)r)->pub_next, memory_order_acquire);
}

static uint64_t first_held(const struct sse_replay *r)
{
	return atomic_load(&((struct sse_replay *)r)->pub_first);
}

static void drop_aged(struct sse_replay *r, uint64_t now_ms)
{
	const struct entry *e;

	if (r->max_age_ms == 0)
		return;
	while (r->count > 0) {
		e = entry_at(r, first_seq(r));
		/* A clock that went back makes nothing older. */
		if (now_ms <= e->time_ms || now_ms - e->time_ms <= r->max_age_ms)
			return;
		drop_oldest(r);
	}
}

/* ---- arenas and pins */

static int other(const struct sse_replay *r)
{
	return !r->cur;
}

static uint32_t pins_of(const struct sse_replay *r, uint64_t seq)
{
	return atomic_load_explicit(&entry_at(r, seq)->pins, memory_order_acquire);
}

/* The lowest floor of the readers on other threads: no frame from there
 * on may be let go. */
static uint64_t lowest_floor(const struct sse_replay *r)
{
	uint64_t low = NO_FLOOR;

	for (unsigned i = 0; i < r->reader_count; i++) {
		uint64_t f = atomic_load(&r->readers[i].floor);

		if (f < low)
			low = f;
	}
	return low;
}

/* Let go of the frames of arena g from its oldest on that were dropped,
 * are not pinned and no reader may be reading, up to end (the arena's end). */
static void release(struct sse_replay *r, int g, uint64_t end)
{
	uint64_t stop = lowest_floor(r);

	if (stop > end)
		stop = end;
	while (r->held[g] < stop && r->held[g] < first_seq(r) && pins_of(r, r->held[g]) == 0)
		r->held[g]++;
}

/* Release what can go, oldest first: a pin holds every frame after it,
 * in the other arena too, so the current arena lets go of nothing while
 * the other one still holds a frame; that one is freed once it holds
 * nothing. */
static void release_all(struct sse_replay *r)
{
	int o = other(r);

	if (r->arena[o] != NULL) {
		release(r, o, r->gen_first[r->cur]);
		if (r->held[o] < r->gen_first[r->cur])
			return;
		sse__free(&r->alloc, r->arena[o], r->max_bytes);
		r->arena[o] = NULL;
	}
	release(r, r->cur, r->next_seq);
}

/* The oldest frame whose bytes are still in use, in either arena. */
static uint64_t oldest_held(const struct sse_replay *r)
{
	return r->arena[other(r)] != NULL ? r->held[other(r)] : r->held[r->cur];
}

/* Whether n bytes fit in the current arena's free space after its newest
 * frame, and where. */
static int room_at(const struct sse_replay *r, size_t n, size_t *offset)
{
	const struct entry *oldest, *newest;
	size_t tail;

	if (r->held[r->cur] == r->next_seq) { /* the arena holds nothing */
		*offset = 0;
		return 1;
	}
	oldest = entry_at(r, r->held[r->cur]);
	newest = entry_at(r, r->next_seq - 1);
	tail = newest->offset + newest->len;
	if (newest->offset < oldest->offset) {
		/* wrapped: the only free run is between newest and oldest */
		*offset = tail;
		return n <= oldest->offset - tail;
	}
	if (n <= r->max_bytes - tail) {
		*offset = tail;
		return 1;
	}
	*offset = 0; /* skip the tail rather than split the frame */
	return n <= oldest->offset;
}

/* New frames go to the other arena, allocated now; the current one keeps
 * what it holds until that is let go. */
static int switch_arena(struct sse_replay *r)
{
	int o = other(r);

	if (r->arena[o] == NULL)
		r->arena[o] = sse__alloc(&r->alloc, r->max_bytes);
	if (r->arena[o] == NULL)
		return SSE_ERR_NOMEM;
	r->cur = o;
	r->gen_first[o] = r->held[o] = r->next_seq;
	return 0;
}

/*
 * Make room for a frame of n <= max_bytes bytes: drop the oldest frames as
 * the count and byte bounds require, then until the frame fits in one
 * piece and the index has a free entry. A frame that cannot be let go
 * because it is pinned sends new frames to the other arena. Returns 0 and
 * the offset, or SSE_ERR_PINNED (nothing published; some frames dropped).
 */
static int make_room(struct sse_replay *r, size_t n, size_t *offset)
{
	while (r->count > 0 && (r->count >= r->max_events || r->bytes > r->max_bytes - n))
		drop_oldest(r);
	for (;;) {
		uint64_t q;

		release_all(r);
		if (r->next_seq - oldest_held(r) < r->slots && room_at(r, n, offset))
			return 0;
		q = r->next_seq - oldest_held(r) < r->slots ? r->held[r->cur] : oldest_held(r);
		if (q >= first_seq(r) && q < r->next_seq && pins_of(r, q) == 0) {
			drop_oldest(r); /* FIFO: q goes when all before it have */
			continue;
		}
		if (r->arena[other(r)] != NULL || q != r->held[r->cur] || switch_arena(r) != 0)
			return SSE_ERR_PINNED;
	}
}

/* ---- ids */

/* FNV-1a: short ids, no seed needed since the table only holds the
 * application's own ids. */
static uint64_t hash_id(const char *id, size_t len)
{
	uint64_t h = 14695981039346656037u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)id[i];
		h *= 1099511628211u;
	}
	return h;
}

static void link_id(struct sse_replay *r, struct entry *e, uint64_t seq, const char *id,
		    size_t len)
{
	uint64_t h = hash_id(id, len);
	uint64_t *head = &r->buckets[h & r->bucket_mask];

	e->hash = (uint32_t)h;
	e->next = *head;
	*head = seq;
}


/* The event to encode: with ring ids, ev plus the id of the next frame. */
static int event_to_publish(struct sse_replay *r, const struct sse_event *ev,
			    struct sse_event *out)
{
	char *id;

	*out = *ev;
	if (r->app_ids)
		return ev->id != NULL && ev->id_len > 0 ? 0 : SSE_ERR_INVALID;
	if (ev->id != NULL)
		return SSE_ERR_INVALID;
	id = id_scratch(r); /* only ring ids have r->ids */
	out->id = id;
	out->id_len = r->epoch_len + sse__format_u64(r->next_seq + r->base, 10, id + r->epoch_len);
	return 0;
}

/* ---- publish */

/* Index the frame just written at offset; id is its id (ring ids: the
 * newest id from now on; app ids: linked for seek). */
static void append(struct sse_replay *r, const char *id, size_t id_len, size_t offset, size_t len,
		   uint64_t now_ms)
{
	uint64_t seq = r->next_seq;
	struct entry *e = entry_at(r, seq);

	r->total += len;
	*e = (struct entry){.time_ms = now_ms, .end_total = r->total, .offset = offset, .len = len,
			    .gen = (unsigned char)r->cur};
	if (r->app_ids) {
		link_id(r, e, seq, id, id_len);
	} else {
		memcpy(newest_id(r), id, id_len);
		r->newest_len = id_len;
	}
	r->next_seq++;
	r->count++;
	r->bytes += len;
	publish_end(r);
}

int sse_replay_publish(struct sse_replay *r, const struct sse_event *ev, uint64_t now_ms,
		       uint64_t *seq)
{
	struct sse_event e;
	size_t n = 0, offset;
	int rc;

	if (r == NULL || ev == NULL)
		return SSE_ERR_INVALID;
	rc = event_to_publish(r, ev, &e);
	if (rc == 0)
		rc = sse_encode_size(&e, r->flags, &n);
	if (rc != 0)
		return rc;
	if (n > r->max_bytes)
		return SSE_ERR_TOO_LARGE;
	/* Everything that can fail has been checked: from here the ring changes. */
	drop_aged(r, now_ms);
	rc = make_room(r, n, &offset);
	if (rc != 0)
		return rc;
	/* Checked by sse_encode_size() above: written without a second check. */
	rc = sse__encode_unchecked(&e, r->arena[r->cur] + offset, n);
	if (rc != 0)
		return rc; /* not reached: n is e's size */
	append(r, e.id, e.id_len, offset, n, now_ms);
	if (seq != NULL)
		*seq = r->next_seq - 1;
	return 0;
}

/* ---- frames encoded elsewhere */

/* A line that sets the id ("id" alone or "id:..."): only the first may. */
static bool is_id_field(const char *line, size_t n)
{
	return n >= 2 && line[0] == 'i' && line[1] == 'd' && (n == 2 || line[2] == ':');
}

/*
 * Whether a frame is one event shaped as our encoder writes it, with the
 * id "<epoch><number>": that id line first, no other id line, no CR, and
 * no blank line but the final one. Bytes from a log or a network are not
 * trusted to be one well-formed event: a stray blank line would make two
 * events, a second id line would set another Last-Event-ID.
 */
int sse__replay_check_frame(const struct sse_replay *r, uint64_t number, const char *f,
			    size_t len)
{
	char digits[SSE__U64_DIGITS];
	size_t nd = sse__format_u64(number, 10, digits);
	size_t head = ID_PREFIX_LEN + r->epoch_len + nd + 1; /* through the id line's LF */
	const char *p, *end;

	if (f == NULL)
		return SSE_ERR_INVALID;
	end = f + len;
	if (len < head + 1 || memcmp(f, "id: ", ID_PREFIX_LEN) != 0 ||
	    memcmp(f + ID_PREFIX_LEN, r->ids, r->epoch_len) != 0 ||
	    memcmp(f + ID_PREFIX_LEN + r->epoch_len, digits, nd) != 0 || f[head - 1] != '\n' ||
	    end[-1] != '\n' || end[-2] != '\n' || memchr(f, '\r', len) != NULL)
		return SSE_ERR_INVALID;
	/* The lines between the id line and the final blank one. */
	for (p = f + head; p < end - 1;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)(nl - p);

		if (n == 0 || is_id_field(p, n))
			return SSE_ERR_INVALID;
		p = nl + 1;
	}
	if ((r->flags & SSE_ENCODE_STRICT_UTF8) && !sse_utf8_valid(f, len))
		return SSE_ERR_UTF8;
	return 0;
}

int sse_replay_publish_frame(struct sse_replay *r, const char *frame, size_t len,
			     uint64_t now_ms, uint64_t *seq)
{
	size_t offset;
	int rc;

	if (r == NULL || r->app_ids)
		return SSE_ERR_INVALID;
	rc = sse__replay_check_frame(r, next_number(r), frame, len);
	if (rc != 0)
		return rc;
	if (len > r->max_bytes)
		return SSE_ERR_TOO_LARGE;
	drop_aged(r, now_ms);
	rc = make_room(r, len, &offset);
	if (rc != 0)
		return rc;
	memcpy(r->arena[r->cur] + offset, frame, len);
	/* The id line's LF is the first in the frame. */
	append(r, frame + ID_PREFIX_LEN,
	       (size_t)((const char *)memchr(frame, '\n', len) - frame) - ID_PREFIX_LEN, offset, len,
	       now_ms);
	if (seq != NULL)
		*seq = r->next_seq - 1;
	return 0;
}

/* ---- restarting the numbering */

/* Drop every frame; pinned bytes stay until released, as always. */
static void drop_all(struct sse_replay *r)
{
	while (r->count > 0)
		drop_oldest(r);
	release_all(r);
}

/*
 * Skip one sequence number, with no frame: every cursor, even one at the
 * live end, is then before the first frame, so every follower learns
 * that it missed events instead of sliding into other numbers. Its index
 * entry is an empty frame where the newest one ended, so the arena's
 * free space is read as before, and nothing pins it.
 */
static int skip_seq(struct sse_replay *r)
{
	struct entry *e;
	size_t offset = 0;

	if (r->next_seq - oldest_held(r) >= r->slots)
		return SSE_ERR_PINNED; /* the index is full of pinned frames */
	if (r->held[r->cur] < r->next_seq) {
		const struct entry *newest = entry_at(r, r->next_seq - 1);

		offset = newest->offset + newest->len;
	}
	e = entry_at(r, r->next_seq);
	*e = (struct entry){.end_total = r->total, .offset = offset, .gen = (unsigned char)r->cur};
	r->next_seq++;
	publish_end(r);
	atomic_store(&r->pub_first, first_seq(r));
	release_all(r);
	return 0;
}

int sse_replay_restart(struct sse_replay *r, const char *epoch, uint64_t next)
{
	char *ids = NULL;
	size_t size = 0, len = 0;
	int rc;

	/* Shared: readers read the epoch and the base without a lock. */
	if (r == NULL || r->app_ids || r->readers != NULL || next == 0 || !epoch_valid(epoch))
		return SSE_ERR_INVALID;
	if (epoch != NULL && strcmp(epoch, r->ids) == 0)
		epoch = NULL; /* the same epoch: kept */
	/* Within one epoch a number names one event: never issue it twice. */
	if (epoch == NULL && next < next_number(r))
		return SSE_ERR_INVALID;
	if (epoch != NULL) {
		len = strlen(epoch);
		ids = ids_block(r, epoch, len, &size);
		if (ids == NULL)
			return SSE_ERR_NOMEM;
	}
	drop_all(r);
	rc = skip_seq(r);
	if (rc != 0) {
		sse__free(&r->alloc, ids, size);
		return rc;
	}
	if (ids != NULL) {
		sse__free(&r->alloc, r->ids, r->ids_size);
		r->ids = ids;
		r->ids_size = size;
		r->epoch_len = len;
	}
	r->base = next - r->next_seq;
	set_newest(r, next - 1);
	return 0;
}

uint64_t sse_replay_next_number(const struct sse_replay *r)
{
	return r && !r->app_ids ? next_number(r) : 0;
}

int sse_replay_expire(struct sse_replay *r, uint64_t now_ms)
{
	if (r == NULL)
		return SSE_ERR_INVALID;
	drop_aged(r, now_ms);
	return 0;
}

/* ---- seek */

/* Strict decimal: digits only, no sign, no leading zero, no overflow, so
 * each sequence number has exactly one spelling. */
static int parse_seq(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(unsigned char)s[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Ring ids: whether id is "<our epoch><number>" (strict decimal). */
static bool parse_ring_id(const struct sse_replay *r, const char *id, size_t len,
			  uint64_t *number)
{
	return len >= r->epoch_len && memcmp(id, r->ids, r->epoch_len) == 0 &&
	       parse_seq(id + r->epoch_len, len - r->epoch_len, number) == 0;
}

static int find_ring_id(const struct sse_replay *r, const char *id, size_t len, uint64_t *seq)
{
	uint64_t number;

	/* A number past the newest was never ours (or is from a log this
	 * ring has not caught up with): nothing to resume from. */
	if (!parse_ring_id(r, id, len, &number) || number >= live_end(r) + r->base)
		return SSE_REPLAY_UNKNOWN;
	/* The number before the first frame is a point all after which is
	 * held: found. Below it, frames the client needs are gone. */
	if (number + 1 < first_held(r) + r->base)
		return SSE_REPLAY_GAP;
	*seq = number - r->base;
	return SSE_REPLAY_FOUND;
}

/* Whether a frame's id is exactly id: the frame starts "id: <id>\n" and a
 * stored id has no LF, so a LF right after len bytes ends it there. */
static int frame_has_id(const struct sse_replay *r, const struct entry *e, const char *id,
			size_t len)
{
	const char *f = r->arena[e->gen] + e->offset;

	return len < e->len - ID_PREFIX_LEN && f[ID_PREFIX_LEN + len] == '\n' &&
	       memcmp(f + ID_PREFIX_LEN, id, len) == 0;
}

static int find_app_id(const struct sse_replay *r, const char *id, size_t len, uint64_t *seq)
{
	uint64_t h = hash_id(id, len);
	uint64_t first = first_seq(r);

	/* A LF could match across the frame's lines; no id of ours has one. */
	if (memchr(id, '\n', len) != NULL)
		return SSE_REPLAY_UNKNOWN;
	/* Newest first, so a duplicate id finds its latest frame. */
	for (uint64_t q = r->buckets[h & r->bucket_mask]; q >= first; q = entry_at(r, q)->next) {
		const struct entry *e = entry_at(r, q);

		if (e->hash == (uint32_t)h && frame_has_id(r, e, id, len)) {
			*seq = q;
			return SSE_REPLAY_FOUND;
		}
	}
	/* Dropped, or never ours: an opaque id cannot tell which. */
	return SSE_REPLAY_UNKNOWN;
}

int sse_replay_seek(const struct sse_replay *r, const char *id, size_t len, uint64_t *cursor)
{
	uint64_t seq = 0;
	int status;

	if (r == NULL || cursor == NULL)
		return SSE_ERR_INVALID;
	if (id == NULL || len == 0) {
		*cursor = live_end(r);
		return SSE_REPLAY_LIVE;
	}
	if (r->app_ids)
		status = find_app_id(r, id, len, &seq);
	else
		status = find_ring_id(r, id, len, &seq);
	*cursor = status == SSE_REPLAY_FOUND ? seq + 1 : live_end(r);
	return status;
}

/* ---- reading */

int sse_replay_frame(const struct sse_replay *r, uint64_t cursor, const char **bytes,
		     size_t *len)
{
	const struct entry *e;
	uint64_t live = r ? live_end(r) : 0;

	if (r == NULL || bytes == NULL || len == NULL || cursor > live)
		return SSE_ERR_INVALID;
	if (cursor == live)
		return 0;
	if (cursor < first_held(r))
		return SSE_ERR_GAP;
	e = entry_at(r, cursor);
	*bytes = r->arena[e->gen] + e->offset;
	*len = e->len;
	return 1;
}

uint64_t sse_replay_next_seq(const struct sse_replay *r)
{
	return r ? live_end(r) : 0;
}

uint64_t sse_replay_first_seq(const struct sse_replay *r)
{
	return r ? first_held(r) : 0;
}

size_t sse_replay_bytes(const struct sse_replay *r)
{
	return r ? r->bytes : 0;
}

size_t sse_replay_count(const struct sse_replay *r)
{
	return r ? (size_t)(live_end(r) - first_held(r)) : 0;
}

/* ---- ids and the reset event */

const char *sse_replay_newest_id(const struct sse_replay *r, size_t *len)
{
	const char *f, *end;
	size_t n;

	if (r == NULL || len == NULL)
		return NULL;
	*len = 0;
	if (!r->app_ids) {
		/* Even when its frame expired; before any frame, not "" (a
		 * client without an id would come back live and miss what is
		 * published while it is away) but the number before the next. */
		*len = r->newest_len;
		return newest_id(r);
	}
	if (sse_replay_frame(r, r->next_seq - 1, &f, &n) != 1)
		return ""; /* app ids, none held: an opaque id cannot be made up */
	end = memchr(f + ID_PREFIX_LEN, '\n', n - ID_PREFIX_LEN);
	*len = (size_t)(end - (f + ID_PREFIX_LEN));
	return f + ID_PREFIX_LEN;
}

int sse_replay_reset_event(const struct sse_replay *r, struct sse_event *ev)
{
	if (r == NULL || ev == NULL || !r->has_reset)
		return 0;
	*ev = r->reset;
	ev->id = sse_replay_newest_id(r, &ev->id_len);
	return 1;
}

const char *sse_replay_epoch(const struct sse_replay *r)
{
	if (r == NULL)
		return NULL;
	return r->app_ids ? "" : r->ids;
}

/* Pins change which bytes the ring may reuse, not what it holds for its
 * readers, so a follower pins through the const ring it was given. */
void sse__replay_pin(const struct sse_replay *r, uint64_t seq)
{
	atomic_fetch_add_explicit(&entry_at(r, seq)->pins, 1, memory_order_relaxed);
}

/* Release: a pin taken on a later frame before this one goes is seen by
 * the writer that sees this one gone (lib/follow.c pins, then unpins). */
void sse__replay_unpin(const struct sse_replay *r, uint64_t seq)
{
	atomic_fetch_sub_explicit(&entry_at(r, seq)->pins, 1, memory_order_release);
}

size_t sse__replay_run(const struct sse_replay *r, uint64_t seq, const char **bytes, size_t *len)
{
	const struct entry *first = entry_at(r, seq);
	size_t end = first->offset + first->len;
	uint64_t q = seq + 1, live = live_end(r);

	for (; q < live; q++) {
		const struct entry *e = entry_at(r, q);

		if (e->gen != first->gen || e->offset != end)
			break;
		end += e->len;
	}
	*bytes = r->arena[first->gen] + first->offset;
	*len = end - first->offset;
	return (size_t)(q - seq);
}

size_t sse__replay_held_len(const struct sse_replay *r, uint64_t seq)
{
	return entry_at(r, seq)->len;
}

/* From the entries, not r->total, which the writer changes. */
uint64_t sse__replay_backlog(const struct sse_replay *r, uint64_t cursor)
{
	return sse__replay_bytes_between(r, cursor, live_end(r));
}

uint64_t sse__replay_bytes_between(const struct sse_replay *r, uint64_t from, uint64_t to)
{
	const struct entry *e;

	if (from >= to || to > live_end(r) || from < first_held(r))
		return 0;
	e = entry_at(r, from);
	return entry_at(r, to - 1)->end_total - (e->end_total - e->len);
}

int sse__replay_parse_id(const struct sse_replay *r, const char *id, size_t len, uint64_t *number)
{
	return !r->app_ids && id != NULL && parse_ring_id(r, id, len, number);
}

uint64_t sse__replay_base(const struct sse_replay *r)
{
	return r->base;
}

/* ---- readers on other threads */

int sse_replay_share(struct sse_replay *r, unsigned readers)
{
	size_t size;

	if (r == NULL || r->app_ids || r->readers != NULL || readers == 0 ||
	    size_mul(readers, sizeof(*r->readers), &size) != 0)
		return SSE_ERR_INVALID;
	r->readers = sse__alloc(&r->alloc, size);
	if (r->readers == NULL)
		return SSE_ERR_NOMEM;
	for (unsigned i = 0; i < readers; i++) {
		atomic_init(&r->readers[i].floor, NO_FLOOR);
		atomic_init(&r->readers[i].taken, false);
	}
	r->reader_count = readers;
	return 0;
}

struct sse__ring_reader *sse__replay_reader_claim(const struct sse_replay *r)
{
	for (unsigned i = 0; i < r->reader_count; i++) {
		bool free_slot = false;

		if (atomic_compare_exchange_strong(&r->readers[i].taken, &free_slot, true))
			return &r->readers[i];
	}
	return NULL;
}

void sse__replay_reader_release(struct sse__ring_reader *rd)
{
	atomic_store_explicit(&rd->floor, NO_FLOOR, memory_order_release);
	atomic_store(&rd->taken, false);
}

/* The floor first, then what is held: see the top of this file. */
void sse__replay_reader_enter(const struct sse_replay *r, struct sse__ring_reader *rd)
{
	atomic_store(&rd->floor, first_held(r));
}

void sse__replay_reader_leave(struct sse__ring_reader *rd)
{
	atomic_store_explicit(&rd->floor, NO_FLOOR, memory_order_release);
}

bool sse__replay_shared(const struct sse_replay *r)
{
	return r->readers != NULL;
}

size_t sse__replay_id_room(const struct sse_replay *r)
{
	return r->app_ids ? 0 : r->epoch_len + SSE__U64_DIGITS + 1;
}

/* The reset event for a stream that resumes at cursor, its id written
 * into buf (sse__replay_id_room() bytes): the frame before the cursor,
 * not the live end read again, which a writer on another thread may have
 * moved since. The id must not name a frame the stream is still to get:
 * a client that left right after the reset would resume past it. */
int sse__replay_reset_event_in(const struct sse_replay *r, struct sse_event *ev, char *buf,
			       uint64_t cursor)
{
	if (!r->has_reset || r->app_ids)
		return sse_replay_reset_event(r, ev);
	*ev = r->reset;
	memcpy(buf, r->ids, r->epoch_len);
	ev->id = buf;
	ev->id_len = r->epoch_len + sse__format_u64(cursor - 1 + r->base, 10, buf + r->epoch_len);
	return 1;
}

void sse__replay_bounds(const struct sse_replay *r, size_t *events, size_t *bytes)
{
	*events = r->max_events;
	*bytes = r->max_bytes;
}
