/* A user of libsse-libevent, built outside the tree by check-install.sh:
 * a driver on a real event_base publishes one event and is freed.
 *
 * SPDX-License-Identifier: MIT */
#include <event2/event.h>
#include <stdio.h>
#include <sse/libevent.h>

int main(void)
{
	const struct sse_hub_config cfg = {
		.size = sizeof(cfg),
		.ring = {.size = sizeof(cfg.ring), .max_events = 16, .max_bytes = 4096},
	};
	const struct sse_event ev = {.data = "hello", .data_len = 5, .retry = SSE_RETRY_NONE};
	struct event_base *base = event_base_new();
	struct sse_hub *hub = NULL;
	struct sse_event_driver *d = NULL;
	uint64_t seq = 0;
	int rc;

	if (base == NULL || sse_event_driver_new(&d, base, NULL, NULL) != SSE_ERR_INVALID) {
		fprintf(stderr, "sse_event_driver_new took a NULL hub\n");
		return 1;
	}
	rc = sse_hub_new(&hub, &cfg, sse_event_drop, NULL, NULL);
	if (rc == 0)
		rc = sse_event_driver_new(&d, base, hub, NULL);
	if (rc == 0)
		rc = sse_event_publish(d, &ev, &seq);
	if (rc == 0)
		rc = event_base_loop(base, EVLOOP_NONBLOCK) < 0 ? SSE_ERR_IO : 0;
	sse_event_driver_free(d);
	event_base_free(base);
	sse_hub_free(hub);
	if (rc != 0 || seq == 0) {
		fprintf(stderr, "libsse-libevent: %s (seq %llu)\n", sse_strerror(rc),
			(unsigned long long)seq);
		return 1;
	}
	printf("libsse-libevent: a driver published event %llu on a real event_base\n",
	       (unsigned long long)seq);
	return 0;
}
