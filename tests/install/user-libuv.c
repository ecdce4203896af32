/* A user of libsse-libuv, built outside the tree by check-install.sh:
 * a driver on a real loop publishes one event and closes cleanly.
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L /* uv.h uses POSIX types (pthread_rwlock_t) */
#include <stdio.h>
#include <sse/libuv.h>

int main(void)
{
	const struct sse_hub_config cfg = {
		.size = sizeof(cfg),
		.ring = {.size = sizeof(cfg.ring), .max_events = 16, .max_bytes = 4096},
	};
	const struct sse_event ev = {.data = "hello", .data_len = 5, .retry = SSE_RETRY_NONE};
	uv_loop_t loop;
	struct sse_hub *hub = NULL;
	struct sse_uv_hub *d = NULL;
	uint64_t seq = 0;
	int rc;

	if (uv_loop_init(&loop) != 0)
		return 1;
	if (sse_uv_hub_new(&d, &loop, NULL, NULL) != SSE_ERR_INVALID) {
		fprintf(stderr, "sse_uv_hub_new took a NULL hub\n");
		return 1;
	}
	rc = sse_hub_new(&hub, &cfg, sse_uv_drop, NULL, NULL);
	if (rc == 0)
		rc = sse_uv_hub_new(&d, &loop, hub, NULL);
	if (rc == 0)
		rc = sse_uv_hub_publish(d, &ev, &seq);
	sse_uv_hub_close(d);
	uv_run(&loop, UV_RUN_DEFAULT); /* the driver's close callbacks */
	if (uv_loop_close(&loop) != 0) {
		fprintf(stderr, "libsse-libuv: handles left open on the loop\n");
		return 1;
	}
	sse_hub_free(hub);
	if (rc != 0 || seq == 0) {
		fprintf(stderr, "libsse-libuv: %s (seq %llu)\n", sse_strerror(rc),
			(unsigned long long)seq);
		return 1;
	}
	printf("libsse-libuv: a driver published event %llu on a real loop and closed\n",
	       (unsigned long long)seq);
	return 0;
}
