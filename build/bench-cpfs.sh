#!/bin/sh
# Benchmarks rootswap cpfs (the file-mode copy) against rsync -aHAX
# --numeric-ids and cp -ax in one run, on a copy of a real root: this
# host's /etc, /usr/bin, /usr/sbin, /usr/share and /usr/local/go (TREES)
# in an ext4 image, built once and cached in BENCH_CACHE
# (/var/tmp/rootswap-bench); each run copies it to BENCH_DIR (/dev/shm)
# and mounts it read-only through a loop device. Every tool copies into a
# fresh ext4 on another loop device; caches are dropped before each run
# and the wall time includes a sync. Goals: <= 0.7x rsync's wall time,
# <= 1.0x cp's. RUNS repeats each and keeps the best. Needs root.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-cpfs: needs root (loop devices, drop_caches)"; exit 1; }
BIN=${ROOTSWAP_BIN:-$PWD/rootswap}
[ -x "$BIN" ] || { echo "bench-cpfs: $BIN missing (make build)"; exit 1; }
for t in rsync cp mkfs.ext4 losetup bc; do
	command -v $t >/dev/null || { echo "bench-cpfs: $t not installed (apt-get install $t)"; exit 1; }
done
RUNS=${RUNS:-2}
TREES=${TREES:-/etc /usr/bin /usr/sbin /usr/share /usr/local/go}
cache=${BENCH_CACHE:-/var/tmp/rootswap-bench}
mkdir -p "$cache"
img=$cache/root-$(echo "$TREES" | md5sum | cut -c1-8).img
dir=$(mktemp -d "${BENCH_DIR:-/dev/shm}/bench-cpfs.XXXXXX")
srcdev= dstdev=
cleanup() {
	umount "$dir/dst" "$dir/src" 2>/dev/null || true
	[ -n "$srcdev" ] && losetup -d "$srcdev" 2>/dev/null
	[ -n "$dstdev" ] && losetup -d "$dstdev" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
mkdir "$dir/src" "$dir/dst"

if [ ! -e "$img" ]; then
	echo "bench-cpfs: building $img from $TREES (once)"
	mb=$(du -smc $TREES 2>/dev/null | tail -1 | cut -f1)
	truncate -s $((mb * 3 / 2 + 256))M "$img.tmp"
	mkfs.ext4 -F -q "$img.tmp"
	mount -o loop "$img.tmp" "$dir/src"
	for t in $TREES; do
		mkdir -p "$dir/src$(dirname "$t")"
		cp -ax "$t" "$dir/src$t"
	done
	umount "$dir/src"
	mv "$img.tmp" "$img"
fi
cp --sparse=always "$img" "$dir/src.img"
size=$(stat -c %s "$img")
truncate -s "$size" "$dir/dst.img"
srcdev=$(losetup --find --show "$dir/src.img")
dstdev=$(losetup --find --show "$dir/dst.img")
mount -o ro "$srcdev" "$dir/src"
files=$(find "$dir/src" -xdev | wc -l)
used=$(df -m --output=used "$dir/src" | tail -1)
echo "bench-cpfs: $TREES: $files entries, $used MiB in ext4 on loop devices over $(df --output=fstype "$dir" | tail -1), $(nproc) CPUs"

# fresh makes a new ext4 on the target and mounts it; right after an
# unmount udev's probe may still hold the device (mkfs: "in use").
fresh() {
	n=0
	until mkfs.ext4 -F -q "$dstdev" 2>/dev/null; do
		n=$((n + 1))
		[ $n -lt 20 ] || { echo "bench-cpfs: mkfs.ext4 $dstdev keeps failing" >&2; return 1; }
		sleep 0.5
	done
	mount "$dstdev" "$dir/dst"
}

# best CMD...: a fresh target, caches dropped; the best wall time of
# RUNS (command and sync), in seconds.
best() {
	b=
	for _ in $(seq "$RUNS"); do
		fresh
		sync
		echo 3 >/proc/sys/vm/drop_caches
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || { echo "bench-cpfs: failed: $*" >&2; umount "$dir/dst"; return 1; }
		sync
		e=$(date +%s.%N)
		umount "$dir/dst"
		t=$(echo "$e - $s" | bc -l)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
	done
	echo "$b"
}

# The copy is checked once: every attribute and the contents.
fresh
"$BIN" cpfs --verify --content "$dir/src" "$dir/dst" | tail -1
umount "$dir/dst"

r=$(best "$BIN" cpfs "$dir/src" "$dir/dst")
y=$(best rsync -aHAX --numeric-ids "$dir/src/" "$dir/dst/")
c=$(best cp -ax "$dir/src/." "$dir/dst/")
printf '%-34s %8.2f s\n' "rootswap cpfs" "$r" "rsync -aHAX --numeric-ids" "$y" "cp -ax" "$c"
ry=$(echo "$r / $y" | bc -l)
rc=$(echo "$r / $c" | bc -l)
printf 'ratio to rsync %.2f (goal <= 0.7), to cp %.2f (goal <= 1.0)\n' "$ry" "$rc"
[ "$(echo "$ry <= 0.7 && $rc <= 1.0" | bc -l)" = 1 ]
