/* A user of libsse-redis, built outside the tree by check-install.sh: a
 * node made on a hub (no Redis needed: nothing connects before the first
 * tick), a publish refused while not connected, and freed cleanly.
 *
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <sse/redis.h>

static void watch(int fd, unsigned events, void *user)
{
	(void)fd, (void)events, (void)user;
}

static void dropped(struct sse_stream *s, int err, void *user)
{
	(void)s, (void)err, (void)user;
}

static void published(int err, const char *id, size_t len, void *user)
{
	(void)err, (void)id, (void)len, (void)user;
}

int main(void)
{
	const struct sse_hub_config cfg = {
		.size = sizeof(cfg),
		.ring = {.size = sizeof(cfg.ring), .max_events = 16, .max_bytes = 4096},
	};
	const struct sse_redis_config rcfg = {.size = sizeof(rcfg), .channel = "news",
					      .watch = watch};
	const struct sse_event ev = {.data = "hello", .data_len = 5, .retry = SSE_RETRY_NONE};
	struct sse_hub *hub = NULL;
	struct sse_redis *r = NULL;
	int rc = sse_hub_new(&hub, &cfg, dropped, NULL, NULL);

	if (rc == 0)
		rc = sse_redis_new(&r, hub, &rcfg, NULL);
	if (rc == 0 && sse_redis_publish(r, &ev, published, NULL) != SSE_ERR_IO) {
		fprintf(stderr, "libsse-redis: a publish was taken without a connection\n");
		rc = 1;
	}
	sse_redis_free(r);
	sse_hub_free(hub);
	if (rc != 0) {
		fprintf(stderr, "libsse-redis: %s\n", sse_strerror(rc));
		return 1;
	}
	printf("libsse-redis %s\n", sse_redis_ready(NULL) == 0 ? "ok" : "?");
	return 0;
}
