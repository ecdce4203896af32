#!/usr/bin/env bash
# Run the ticker example and check the event stream it writes.
#   check-ticker.sh PATH-TO-TICKER
# SPDX-License-Identifier: MIT
set -euo pipefail
ticker=$1

# What it must write for "ticker 2 0", by the event-stream format: a
# retry-only block, one comment line (its wording is the example's own,
# so only the ':' is checked), then two events of two data lines each.
want_head='retry: 3000
'
want_tail='id: 1
event: tick
data: tick 1 of 2
data: 1 to go

id: 2
event: tick
data: tick 2 of 2
data: 0 to go'
got=$("$ticker" 2 0)
head=${got%%$'\n:'*}
rest=${got#*$'\n:'}
tail=${rest#*$'\n'}
if [ "$head" != "$want_head" ] || [ "$tail" != "$want_tail" ] || [ "$rest" = "$got" ]; then
	echo "FAIL: unexpected output:" >&2
	printf '%s\n' "$got" | cat -A >&2
	exit 1
fi
# $(...) dropped the trailing newlines: the stream must end "\n\n".
if [ "$("$ticker" 1 0 | tail -c 2 | od -An -c | tr -d ' ')" != '\n\n' ]; then
	echo "FAIL: the last event is not closed by a blank line" >&2
	exit 1
fi
if "$ticker" nonsense >/dev/null 2>&1; then
	echo "FAIL: a bad COUNT was accepted" >&2
	exit 1
fi
echo "ticker: output as expected"
