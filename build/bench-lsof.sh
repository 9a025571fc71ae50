#!/bin/bash
# bench-lsof: `rootswap lsof MOUNT` against `lsof MOUNT` with 1000
# processes holding 7 descriptors each on a loop-mounted ext4; `rootswap
# lsof --no-bpf` (reading /proc, as on hosts without BTF) is shown beside
# them, and which way rootswap read (ROOTSWAP_DEBUG=1: BPF walks, which
# programs the kernel refused). Needs root, lsof, mkfs.ext4 and losetup.
# Runs in a private mount namespace; the image lives in a tmpfs and every
# process it starts is killed on exit.
#   PROCS=1000 FDS=7 RUNS=5 build/bench-lsof.sh
set -eu
cd "$(dirname "$0")/.."
bin=${ROOTSWAP_BIN:-$PWD/rootswap}
procs=${PROCS:-1000}
fds=${FDS:-7}
runs=${RUNS:-5}

if [ "$(id -u)" != 0 ]; then echo "bench-lsof: needs root, skipped"; exit 0; fi
for t in lsof unshare mkfs.ext4 losetup; do
	command -v $t >/dev/null || { echo "bench-lsof: $t not installed, skipped"; exit 0; }
done
[ -x "$bin" ] || { echo "bench-lsof: $bin not built (make build)"; exit 1; }

if [ -z "${BENCH_LSOF_INNER:-}" ]; then
	exec env BENCH_LSOF_INNER=1 unshare --mount --propagation private bash "$0" "$@"
fi

mnt=$(mktemp -d /tmp/bench-lsof.XXXXXX)
pidfile=$mnt.pids
cleanup() {
	if [ -s "$pidfile" ]; then
		kill $(cat "$pidfile") 2>/dev/null || true
		for p in $(cat "$pidfile"); do
			while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
		done
	fi
	umount "$mnt" 2>/dev/null || true
	umount "$mnt.img" 2>/dev/null || true
	rmdir "$mnt" "$mnt.img" 2>/dev/null || true
	rm -f "$pidfile"
}
trap cleanup EXIT INT TERM
mkdir "$mnt.img"
mount -t tmpfs -o size=80m bench "$mnt.img"
truncate -s 64M "$mnt.img/ext4"
mkfs.ext4 -q -F "$mnt.img/ext4"
mount -o loop "$mnt.img/ext4" "$mnt"

i=3
while [ $i -lt $((fds + 3)) ]; do
	echo data >"$mnt/f$i"
	i=$((i + 1))
done
# Every holder opens the files as descriptors 3.. (odd ones read-only,
# even ones read-write) and execs sleep, so the processes are as small as
# sleep itself. The shell does it (no python3 needed, e.g. in the Debian
# guest), which its single-digit redirections allow up to FDS=7.
[ "$fds" -le 7 ] || { echo "bench-lsof: FDS must be at most 7"; exit 1; }
redirs=""
i=3
while [ $i -lt $((fds + 3)) ]; do
	if [ $((i % 2)) = 1 ]; then redirs="$redirs $i<$mnt/f$i"; else redirs="$redirs $i<>$mnt/f$i"; fi
	i=$((i + 1))
done
n=0
while [ $n -lt "$procs" ]; do
	eval "exec $redirs /bin/sleep 100000" </dev/null >/dev/null 2>&1 &
	echo $! >>"$pidfile"
	n=$((n + 1))
done
# Wait until every child has exec'd sleep with its descriptors open.
for p in $(cat "$pidfile"); do
	tries=0
	until [ "$(cat /proc/$p/comm 2>/dev/null)" = sleep ]; do
		tries=$((tries + 1))
		[ $tries -lt 200 ] || { echo "bench-lsof: process $p did not start"; exit 1; }
		sleep 0.05
	done
done

# The clock is read without starting a process (bash's EPOCHREALTIME, in
# microseconds): a `date` per reading would add its own start-up, ~2 ms
# here, to every run of both tools, which flatters the slower one's ratio.
# time_runs CMD...: prints the best and the median wall time in ms.
time_runs() {
	ts=""
	r=0
	while [ $r -lt "$runs" ]; do
		t0=${EPOCHREALTIME/./}
		"$@" >/dev/null 2>&1 || true
		t1=${EPOCHREALTIME/./}
		ts="$ts $((t1 - t0))"
		r=$((r + 1))
	done
	echo $ts | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f\n", a[1]/1000, a[int((NR+1)/2)]/1000}'
}
lines_ours=$("$bin" lsof "$mnt" | wc -l)
lines_lsof=$(lsof -n -P -w "$mnt" | wc -l)
set -- $(time_runs "$bin" lsof "$mnt")
ours_best=$1 ours_med=$2
set -- $(time_runs lsof -n -P -w "$mnt")
lsof_best=$1 lsof_med=$2
set -- $(time_runs "$bin" lsof --no-bpf "$mnt")
proc_best=$1 proc_med=$2

# Which way rootswap read: the BPF walks, and each program this kernel
# refused (the scan then took the next one, or /proc for that part).
debug=$(ROOTSWAP_DEBUG=1 "$bin" lsof -w "$mnt" 2>&1 >/dev/null || true)
how=$(echo "$debug" | sed -n 's/^rootswap lsof: read with //p' | head -1 | cut -c1-80)
refused=$(echo "$debug" | grep -o 'load [a-z_]* program: [a-z ]*' | sed 's/^load //; s/ program:/:/' | paste -sd, - || true)
[ -z "$refused" ] || how="$how (refused: $refused)"
# Whether the kernel showed no file of the mount is mapped, so the walk
# over every process's mappings was skipped.
maps=$(echo "$debug" | sed -n 's/^rootswap lsof: mappings \(not walked\|walked\): /\1: /p' | head -1)
[ -z "$maps" ] || how="$how; mappings $maps"
echo "lsof MOUNT, $procs processes x $fds fds on a loop-mounted ext4, $(uname -r), $(nproc) CPUs, $runs runs each"
echo "rootswap read with: $how"
printf '%-22s %10s %10s %8s\n' tool best_ms median_ms lines
printf '%-22s %10s %10s %8s\n' "rootswap lsof" "$ours_best" "$ours_med" "$lines_ours"
printf '%-22s %10s %10s %8s\n' "lsof -n -P -w" "$lsof_best" "$lsof_med" "$lines_lsof"
printf '%-22s %10s %10s %8s\n' "rootswap lsof --no-bpf" "$proc_best" "$proc_med" "$lines_ours"
awk -v a="$ours_best" -v b="$lsof_best" -v c="$ours_med" -v d="$lsof_med" \
	'BEGIN { printf "ratio rootswap/lsof: best %.3f, median %.3f (goal <= 0.1)\n", a/b, c/d }'
