/*
 * libsse — emit Server-Sent Events (text/event-stream) from C.
 *
 * The umbrella header: users include this one. Each module has its own
 * header under sse/; doc/guide.md explains how the parts fit. The
 * byte-level rules come from the WHATWG HTML standard, "Server-sent events".
 *
 * Layers, lowest first: base, encode, parse, http; stream; replay (the
 * ring, data only); following a ring (in sse/stream.h); hub; handoff (publishing from
 * other threads); socket.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SSE_H
#define SSE_H

#include <sse/base.h>
#include <sse/encode.h>
#include <sse/parse.h>
#include <sse/stream.h>
#include <sse/timers.h>
#include <sse/replay.h>
#include <sse/history.h>
#include <sse/hub.h>
#include <sse/handoff.h>
#include <sse/http.h>
#include <sse/socket.h>

#endif /* SSE_H */
