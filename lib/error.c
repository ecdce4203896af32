/*
 * Error descriptions, from the one table in sse.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "sse-private.h"

const char *sse_strerror(int err)
{
	switch (err) {
	case SSE_OK:
		return "success";
#define SSE_ERROR_TEXT(name, value, text) \
	case name:                        \
		return text;
		SSE_ERRORS(SSE_ERROR_TEXT)
#undef SSE_ERROR_TEXT
	}
	return "unknown error";
}

unsigned sse_version(void)
{
	return (SSE_VERSION_MAJOR << 16) | (SSE_VERSION_MINOR << 8) | SSE_VERSION_PATCH;
}
