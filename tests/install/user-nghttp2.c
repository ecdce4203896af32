/* A user of libsse-nghttp2, built outside the tree by check-install.sh:
 * the adapter refuses an incomplete request on a real server session.
 *
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <sse/nghttp2.h>

int main(void)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_session *session = NULL;
	struct sse_h2_stream *st = NULL;
	struct sse_h2_config cfg;
	int rc;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return 1;
	nghttp2_session_callbacks_set_send_data_callback(cbs, sse_h2_send_data);
	if (nghttp2_session_server_new(&session, cbs, NULL) != 0)
		return 1;
	sse_h2_config_init(&cfg);
	/* No hub and no send function: refused before anything is submitted. */
	rc = sse_h2_respond(&st, session, 1, &cfg, NULL, NULL);
	nghttp2_session_del(session);
	nghttp2_session_callbacks_del(cbs);
	if (cfg.size != sizeof(cfg) || cfg.retry_ms != SSE_RETRY_NONE || rc != SSE_ERR_INVALID ||
	    st != NULL) {
		fprintf(stderr, "libsse-nghttp2: sse_h2_respond gave %d (%s)\n", rc, sse_strerror(rc));
		return 1;
	}
	printf("libsse-nghttp2: a server session's incomplete request was refused\n");
	return 0;
}
