/* A user of libsse-mhd, built outside the tree by check-install.sh:
 * an adapter bound to a real daemon runs one turn and is freed.
 *
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <sse/mhd.h>

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_len, void **req_cls)
{
	(void)cls, (void)conn, (void)url, (void)method, (void)version;
	(void)data, (void)data_len, (void)req_cls;
	return MHD_NO;
}

static void on_drop(struct sse_stream *s, int err, void *user)
{
	(void)s, (void)err, (void)user;
}

int main(void)
{
	const struct sse_hub_config hc = {
		.size = sizeof(hc),
		.ring = {.size = sizeof(hc.ring), .max_events = 16, .max_bytes = 4096},
	};
	struct sse_hub *hub = NULL;
	struct sse_mhd *m = NULL;
	struct MHD_Daemon *d;
	int timeout = 0, rc;

	if (sse_mhd_new(&m, NULL) != SSE_ERR_INVALID) {
		fprintf(stderr, "sse_mhd_new took a NULL config\n");
		return 1;
	}
	/* External polling, no socket: nothing to connect to, nothing to wait for. */
	d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
			     on_request, NULL, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "MHD_start_daemon failed\n");
		return 1;
	}
	rc = sse_hub_new(&hub, &hc, on_drop, NULL, NULL);
	if (rc == 0) {
		const struct sse_mhd_config mc = {.size = sizeof(mc), .hub = hub, .daemon = d};

		rc = sse_mhd_new(&m, &mc);
	}
	if (rc == 0)
		rc = sse_mhd_run(m, 0, &timeout);
	if (rc == 0 && sse_mhd_count(m) != 0)
		rc = SSE_ERR_INVALID;
	if (m != NULL)
		sse_mhd_shutdown(m);
	MHD_stop_daemon(d);
	sse_mhd_free(m);
	sse_hub_free(hub);
	if (rc != 0) {
		fprintf(stderr, "libsse-mhd: %s\n", sse_strerror(rc));
		return 1;
	}
	printf("libsse-mhd: an adapter ran a turn of a real daemon and was freed\n");
	return 0;
}
