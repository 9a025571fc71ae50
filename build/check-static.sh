#!/bin/sh
# Fails unless the binary is statically linked: it must run from a tmpfs
# copy when neither root filesystem (nor its libc) is reachable.
set -eu
bin=${1:-rootswap}
if command -v file >/dev/null 2>&1; then
	case "$(file -L "$bin")" in
	*"statically linked"*|*"static-pie linked"*) ;;
	*) echo "$bin is not statically linked: $(file -L "$bin")" >&2; exit 1 ;;
	esac
fi
if readelf -l "$bin" 2>/dev/null | grep -q INTERP; then
	echo "$bin has a program interpreter (dynamic)" >&2
	exit 1
fi
