#!/bin/sh
# Benchmarks rootswap dd against GNU dd, e2image and zstd in one run, on
# loop devices over image files in BENCH_DIR (default /dev/shm: tmpfs, so
# that the figures measure the tools and not a noisy virtual disk; set
# BENCH_DIR=/var/tmp for disk-backed images). Needs root. Caches are
# dropped before every run, and every wall time includes a sync after the
# command: GNU dd does not flush, rootswap dd does (fdatasync of a block
# device target, fsync of the backup), and data still in the page cache
# is not copied yet.
#
#   full copy    rootswap dd bs=8M      vs dd bs=8M and dd bs=8M iflag=direct oflag=direct
#                (goal: >= 1.0x the faster)
#   used blocks  rootswap dd blocks=used vs e2image -ra -p (goal: <= 1.1x its wall) and dd
#   backup       rootswap dd backup=X.zst vs zstd -T0 -3 (goal: >= 0.9x its throughput,
#                size within 3 %)
#
# SIZE_MB sets the filesystem size (default 1536: /usr/share, ~760 MB,
# fills half of it). RUNS repeats each measurement and keeps the best.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-dd: needs root (loop devices, drop_caches)"; exit 1; }
BIN=${ROOTSWAP_BIN:-$PWD/rootswap}
[ -x "$BIN" ] || { echo "bench-dd: $BIN missing (make build)"; exit 1; }
for t in dd e2image zstd mkfs.ext4 losetup; do
	command -v $t >/dev/null || { echo "bench-dd: $t not installed"; exit 1; }
done
SIZE_MB=${SIZE_MB:-1536}
RUNS=${RUNS:-3}
TREE=${TREE:-/usr/share}
dir=$(mktemp -d "${BENCH_DIR:-/dev/shm}/bench-dd.XXXXXX")
srcdev= dstdev=
cleanup() {
	[ -n "$srcdev" ] && losetup -d "$srcdev" 2>/dev/null
	[ -n "$dstdev" ] && losetup -d "$dstdev" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

echo "bench-dd: ${SIZE_MB} MiB ext4 from $TREE on a loop device over $dir ($(df --output=fstype "$dir" | tail -1)), $(nproc) CPUs"
mkfs.ext4 -F -q -d "$TREE" "$dir/src.img" "${SIZE_MB}M"
truncate -s "${SIZE_MB}M" "$dir/dst.img"
# A written target, not a sparse one: as a real disk.
dd if=/dev/zero of="$dir/dst.img" bs=8M count=$((SIZE_MB / 8)) conv=notrunc status=none
srcdev=$(losetup --find --show "$dir/src.img")
dstdev=$(losetup --find --show "$dir/dst.img")
bytes=$((SIZE_MB * 1048576))
used=$(dumpe2fs -h "$srcdev" 2>/dev/null | awk -F: '/^Block count/{c=$2} /^Free blocks/{f=$2} /^Block size/{b=$2} END{print (c-f)*b}')

# best CMD...: runs CMD RUNS times after dropping caches, prints the
# best wall time in seconds (command and sync).
best() {
	b=
	for _ in $(seq "$RUNS"); do
		sync
		echo 3 >/proc/sys/vm/drop_caches
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || { echo "bench-dd: failed: $*" >&2; return 1; }
		sync
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc -l)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
	done
	echo "$b"
}
mbs() { echo "scale=1; $1 / $2 / 1000000" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
row() { printf '%-44s %8.2f s %8.1f MB/s  %s\n' "$1" "$2" "$(mbs "$3" "$2")" "$4"; }

echo
echo "== full copy, $bytes bytes"
t_rs=$(best "$BIN" dd if="$srcdev" of="$dstdev" bs=8M)
t_rsb=$(best "$BIN" dd if="$srcdev" of="$dstdev" bs=8M direct=no)
t_dd=$(best dd if="$srcdev" of="$dstdev" bs=8M)
t_ddd=$(best dd if="$srcdev" of="$dstdev" bs=8M iflag=direct oflag=direct)
faster=$t_dd
[ "$(echo "$t_ddd < $t_dd" | bc -l)" = 1 ] && faster=$t_ddd
row "rootswap dd bs=8M (O_DIRECT, default)" "$t_rs" "$bytes" "$(ratio "$faster" "$t_rs")x the faster dd"
row "rootswap dd bs=8M direct=no" "$t_rsb" "$bytes" "$(ratio "$faster" "$t_rsb")x the faster dd"
row "dd bs=8M" "$t_dd" "$bytes" ""
row "dd bs=8M iflag=direct oflag=direct" "$t_ddd" "$bytes" ""

echo
echo "== used blocks of a half-full ext4: $used of $bytes bytes"
t_used=$(best "$BIN" dd if="$srcdev" of="$dstdev" blocks=used)
t_usedb=$(best "$BIN" dd if="$srcdev" of="$dstdev" blocks=used direct=no)
t_e2i=$(best e2image -ra -p "$srcdev" "$dstdev")
row "rootswap dd blocks=used" "$t_used" "$used" "$(ratio "$t_used" "$t_e2i")x e2image's wall (goal <= 1.1)"
row "rootswap dd blocks=used direct=no" "$t_usedb" "$used" "$(ratio "$t_usedb" "$t_e2i")x e2image's wall"
row "e2image -ra -p" "$t_e2i" "$used" ""
row "dd bs=8M (everything)" "$t_dd" "$bytes" "$(ratio "$t_dd" "$t_used")x slower than blocks=used"
e2fsck -fn "$dstdev" >/dev/null 2>&1 && echo "(e2fsck -fn on the last copy: clean)" || echo "(e2fsck -fn on the last copy: NOT CLEAN)"

echo
echo "== backup of all $bytes bytes, level 3"
rm -f "$dir/rs.zst" "$dir/z.zst"
t_bk=$(best sh -c "rm -f '$dir/rs.zst'; exec '$BIN' dd if='$srcdev' of='$dstdev' bs=8M backup='$dir/rs.zst'")
t_bku=$(best sh -c "rm -f '$dir/rsu.zst'; exec '$BIN' dd if='$srcdev' of='$dstdev' blocks=used backup='$dir/rsu.zst'")
t_z=$(best sh -c "zstd -q -f -T0 -3 -c '$srcdev' > '$dir/z.zst'")
s_rs=$(stat -c %s "$dir/rs.zst")
s_rsu=$(stat -c %s "$dir/rsu.zst")
s_z=$(stat -c %s "$dir/z.zst")
row "rootswap dd backup= (copy + backup)" "$t_bk" "$bytes" "$(ratio "$t_z" "$t_bk")x zstd's throughput (goal >= 0.9); $s_rs bytes, $(ratio "$s_rs" "$s_z")x zstd's size"
row "rootswap dd blocks=used backup=" "$t_bku" "$bytes" "$(ratio "$t_z" "$t_bku")x zstd's throughput; $s_rsu bytes, $(ratio "$s_rsu" "$s_z")x zstd's size"
row "zstd -T0 -3 (backup only)" "$t_z" "$bytes" "$s_z bytes"
zstd -d -q -c "$dir/rs.zst" | cmp - "$srcdev" && echo "(zstd -d of the backup = the source)"
