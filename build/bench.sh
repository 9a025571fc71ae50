#!/bin/sh
# Runs every build/bench-*.sh in turn; each prints its own side-by-side table.
set -eu
cd "$(dirname "$0")/.."
status=0
for b in build/bench-*.sh; do
	[ -e "$b" ] || continue
	echo "== $b"
	bash "$b" || status=1
done
exit $status
