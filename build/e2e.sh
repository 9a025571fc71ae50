#!/bin/bash
# build/e2e.sh: tier 3, `make e2e`. Swaps the root of a real Debian
# bookworm guest (build/vm.sh) from /dev/vda2 onto an LV while a prober on
# the host opens a fresh SSH login every 0.5 s, checks the result, runs
# `rootswap finish`, reboots, checks again, and prints a summary table.
# Exits non-zero if any check failed; a check that was not reached counts
# as failed.
#
# Environment: ROOTSWAP_BIN (default ./rootswap), ROOTSWAP_E2E_VARIANT
# (systemd|sysvinit, default systemd), ROOTSWAP_E2E_OUT (directory for
# logs, default a new /tmp/rootswap-e2e.*), ROOTSWAP_E2E_KEEP=1 leaves the
# guest running at the end, ROOTSWAP_E2E_FINISH_ARGS (default
# "--grub-install /dev/vda"), ROOTSWAP_VM_CACHE as for vm.sh.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
vm=$here/vm.sh
bin=${ROOTSWAP_BIN:-./rootswap}
variant=${ROOTSWAP_E2E_VARIANT:-systemd}
out=${ROOTSWAP_E2E_OUT:-$(mktemp -d /tmp/rootswap-e2e.XXXXXX)}
finish_args=${ROOTSWAP_E2E_FINISH_ARGS:---grub-install /dev/vda}
mkdir -p "$out"
guest_bin=/usr/local/sbin/rootswap
newroot_dev=/dev/mapper/sys-root

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '\n== %s\n' "$*"; }
vsh() { "$vm" ssh "$@"; }

# ---------------------------------------------------------------- checks

check_names=()
check_status=()
check_detail=()
failed=0
check() { # NAME PASS|FAIL DETAIL...
	local name=$1 st=$2
	shift 2
	check_names+=("$name")
	check_status+=("$st")
	check_detail+=("$*")
	[ "$st" = PASS ] || failed=$((failed + 1))
	printf '   %-40s %s  %s\n' "$name" "$st" "$*"
}
pass_if() { # NAME DETAIL CMD... : PASS if CMD succeeds
	local name=$1 detail=$2
	shift 2
	if "$@"; then check "$name" PASS "$detail"; else check "$name" FAIL "$detail"; fi
}

timings=()
timed() { # LABEL CMD...
	local label=$1 t rc
	shift
	t=$(now)
	"$@"
	rc=$?
	timings+=("$label=$(secs "$t" "$(now)")")
	return $rc
}

# ---------------------------------------------------------------- prober

# The prober opens a fresh SSH login (a new TCP connection, key exchange,
# a shell running `true`) every 0.5 s, one at a time, and writes
# "START_EPOCH ok|fail SECONDS" per probe. Bounded: at most 2400 probes
# (20 min at 0.5 s) or until $out/prober.stop appears.
prober_pid=""
prober() {
	local i t0 t1 r
	for ((i = 0; i < 2400; i++)); do
		[ -e "$out/prober.stop" ] && break
		t0=$(now)
		if timeout 10 "$vm" ssh -o ConnectTimeout=3 true </dev/null >/dev/null 2>&1; then r=ok; else r=fail; fi
		t1=$(now)
		echo "$t0 $r $(secs "$t0" "$t1")" >>"$out/probes.log"
		sleep "$(awk -v d="$(secs "$t0" "$t1")" 'BEGIN { s = 0.5 - d; if (s < 0) s = 0; print s }')"
	done
}
prober_start() {
	rm -f "$out/prober.stop" "$out/probes.log"
	: >"$out/probes.log"
	prober &
	prober_pid=$!
}
prober_stop() {
	[ -n "$prober_pid" ] || return 0
	touch "$out/prober.stop"
	wait "$prober_pid" 2>/dev/null
	prober_pid=""
}
# prober_report prints "TOTAL FAILED LONGEST_UNREACHABLE_SECONDS": the
# longest window from a failed probe's start to the next good probe's start.
prober_report() {
	awk '
		{ n++ }
		$2 == "fail" { f++; if (start == "") start = $1; last = $1 }
		$2 == "ok" && start != "" { w = $1 - start; if (w > max) max = w; start = "" }
		END {
			if (start != "") { w = last - start + 0.5; if (w > max) max = w }
			printf "%d %d %.1f\n", n, f, max
		}' "$out/probes.log"
}

cleanup() {
	prober_stop
	if [ "${ROOTSWAP_E2E_KEEP:-0}" = 1 ]; then
		echo "guest left running (ROOTSWAP_E2E_KEEP=1): $vm ssh / $vm stop"
	else
		"$vm" stop >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

root_source() { vsh findmnt -no SOURCE / 2>/dev/null | head -1; }

# on_new_root PID: the process's root is the guest's / and its executable
# lives on the filesystem mounted at / (not on the old root).
on_new_root() {
	vsh "p=$1; r=\$(stat -Lc %d:%i /proc/\$p/root) && [ \"\$r\" = \"\$(stat -c %d:%i /)\" ] &&
		e=\$(readlink /proc/\$p/exe) && case \"\$e\" in *oldroot*|*'(deleted)'*) exit 1;; esac &&
		[ \"\$(stat -Lc %d /proc/\$p/exe)\" = \"\$(stat -c %d /)\" ]"
}

# service_pid NAME: main PID of a service under this guest's init.
service_pid() {
	if [ "$variant" = systemd ]; then
		vsh systemctl show -p MainPID --value "$1" 2>/dev/null
	else
		vsh "pidof -s $2" 2>/dev/null
	fi
}

state_rank() { # systemctl is-system-running states, best first
	case "$1" in
	running) echo 0 ;;
	degraded) echo 1 ;;
	*) echo 2 ;;
	esac
}

check_services() { # PHASE
	local phase=$1 svc unit prog pid
	for svc in sshd:ssh:sshd journald:systemd-journald:systemd-journald udev:systemd-udevd:systemd-udevd \
		dbus:dbus:dbus-daemon rsyslog:rsyslog:rsyslogd cron:cron:cron init:-:init; do
		IFS=: read -r svc unit prog <<<"$svc"
		if [ "$unit" = - ]; then
			pid=1
		elif [ "$variant" = systemd ]; then
			if ! vsh systemctl is-active -q "$unit"; then
				check "$phase: $svc active" FAIL "systemctl is-active $unit: $(vsh systemctl is-active "$unit")"
				continue
			fi
			pid=$(service_pid "$unit")
		else
			[ "$svc" = journald ] && continue
			pid=$(vsh "pidof -s $prog" 2>/dev/null)
		fi
		if [ -z "$pid" ] || [ "$pid" = 0 ]; then
			check "$phase: $svc active" FAIL "no main PID"
			continue
		fi
		pass_if "$phase: $svc (pid $pid) on the new root" "exe $(vsh readlink /proc/"$pid"/exe)" on_new_root "$pid"
	done
}

check_root() { # PHASE
	local phase=$1 src bytes fsbytes
	src=$(root_source)
	pass_if "$phase: / is $newroot_dev" "findmnt: ${src:-?}" test "$src" = "$newroot_dev"
	bytes=$(vsh blockdev --getsize64 "$newroot_dev" 2>/dev/null)
	fsbytes=$(vsh "tune2fs -l $newroot_dev 2>/dev/null | awk -F: '/^Block count/ { c = \$2 } /^Block size/ { s = \$2 } END { printf \"%d\", c * s }'")
	# The filesystem was grown to the LV: within 2% of 3 GiB.
	pass_if "$phase: / is ~3 GiB" "device ${bytes:-?} B, ext fs ${fsbytes:-?} B" \
		awk -v f="${fsbytes:-0}" 'BEGIN { exit !(f >= 0.98 * 3 * 2^30 && f <= 3 * 2^30) }'
}

# ---------------------------------------------------------------- run

t_all=$(now)
echo "rootswap e2e: variant $variant, logs in $out"
[ -x "$bin" ] || {
	echo "e2e: $bin not found or not executable (make build, or set ROOTSWAP_BIN)" >&2
	exit 1
}

say "image"
timed image "$vm" image --variant "$variant" || {
	check "image built" FAIL "see vm.sh output"
	exit 1
}

say "boot"
timed boot "$vm" boot --variant "$variant" >"$out/port" || {
	check "guest boots to SSH" FAIL "see ${ROOTSWAP_VM_CACHE:-/var/tmp/rootswap-vm}/run/serial.log"
	exit 1
}
check "guest boots to SSH" PASS "port $(cat "$out/port")"

say "prepare"
state_before=$(vsh systemctl is-system-running 2>/dev/null)
[ "$variant" = systemd ] || state_before=running
echo "   system state before: $state_before; / is $(root_source)"
marker=$(cat /proc/sys/kernel/random/uuid)
pass_if "marker written" "/root/rootswap-e2e-marker" vsh "echo $marker >/root/rootswap-e2e-marker && sync"
pass_if "lvcreate -L 3g -n root sys" "$newroot_dev" \
	vsh "lvcreate -q -y -L 3g -n root sys >/dev/null && udevadm settle && test -b $newroot_dev && test -b /dev/sys/root"
pass_if "binary copied in" "$guest_bin" "$vm" scp "$bin" "vm:$guest_bin"
version=$(vsh "$guest_bin" --version 2>&1)
pass_if "rootswap --version in the guest" "$version" test -n "$version"

say "plan"
vsh "$guest_bin" plan --to /dev/sys/root >"$out/plan.txt" 2>&1
rc=$?
sed 's/^/   | /' "$out/plan.txt"
pass_if "rootswap plan" "exit $rc" test "$rc" = 0

say "run (prober: a fresh SSH login every 0.5 s)"
prober_start
t_run=$(now)
vsh -o ServerAliveInterval=5 -o ServerAliveCountMax=6 "$guest_bin" run --to /dev/sys/root --yes >"$out/run.txt" 2>&1
rc=$?
timings+=("run=$(secs "$t_run" "$(now)")")
sed 's/^/   | /' "$out/run.txt"
if grep -qi 'not implemented' "$out/run.txt"; then
	check "rootswap run" FAIL "exit $rc: not implemented"
else
	pass_if "rootswap run" "exit $rc" test "$rc" = 0
fi
swapped=0
[ "$rc" = 0 ] && swapped=1

# A run that waits for confirmation is confirmed from a fresh login,
# which is the proof the new root serves SSH.
"$vm" wait-ssh 120 || true
status_line=$(vsh "$guest_bin" status 2>/dev/null | head -1)
echo "   status: ${status_line:-?}"
if [ "$status_line" = waiting-confirm ]; then
	vsh "$guest_bin" confirm >"$out/confirm.txt" 2>&1
	rc=$?
	pass_if "rootswap confirm" "exit $rc" test "$rc" = 0
fi
sleep 5 # a few probes after the swap settled
prober_stop
read -r probes probes_failed unreachable <<<"$(prober_report)"
echo "   probes: $probes, failed: $probes_failed, longest unreachable: ${unreachable} s"

say "checks after the swap"
check_root "after swap"
pass_if "after swap: /mnt/oldroot not mounted" "findmnt /mnt/oldroot" vsh "! findmnt /mnt/oldroot >/dev/null && ! grep -q oldroot /proc/self/mountinfo"
check_services "after swap"
if [ "$variant" = systemd ]; then
	state_after=$(vsh systemctl is-system-running 2>/dev/null)
	pass_if "after swap: system state no worse" "$state_before -> $state_after" \
		test "$(state_rank "$state_after")" -le "$(state_rank "$state_before")"
fi
pass_if "after swap: marker present" "" vsh "grep -qx $marker /root/rootswap-e2e-marker"
after=$(cat /proc/sys/kernel/random/uuid)
pass_if "after swap: file written on the new root" "/root/rootswap-e2e-after" vsh "echo $after >/root/rootswap-e2e-after && sync"
vsh "$guest_bin" status --json >"$out/status.json" 2>"$out/status.err"
pass_if "rootswap status --json" "$out/status.json" jq -e . "$out/status.json" >/dev/null 2>&1

say "finish + reboot"
if [ "$swapped" = 1 ]; then
	# shellcheck disable=SC2086
	vsh "$guest_bin" finish $finish_args >"$out/finish.txt" 2>&1
	rc=$?
	sed 's/^/   | /' "$out/finish.txt"
	pass_if "rootswap finish" "exit $rc" test "$rc" = 0
	t=$(now)
	vsh "systemd-run --on-active=1 systemctl reboot >/dev/null 2>&1 || (sleep 1; reboot) >/dev/null 2>&1 &" || true
	for ((i = 0; i < 60; i++)); do # until the old system is gone
		timeout 10 "$vm" ssh -o ConnectTimeout=2 true 2>/dev/null || break
		sleep 1
	done
	if "$vm" wait-ssh 300; then
		timings+=("reboot=$(secs "$t" "$(now)")")
		check "reboot: SSH back" PASS ""
		check_root "after reboot"
		pass_if "after reboot: marker present" "" vsh "grep -qx $marker /root/rootswap-e2e-marker"
		pass_if "after reboot: post-swap file present" "" vsh "grep -qx $after /root/rootswap-e2e-after"
		check_services "after reboot"
	else
		check "reboot: SSH back" FAIL "see serial log"
	fi
else
	check "rootswap finish" FAIL "not reached: run did not succeed"
	check "reboot onto the new root" FAIL "not reached: run did not succeed"
fi

# ---------------------------------------------------------------- summary

say "summary"
printf '%-28s %s\n' "step" "seconds"
for kv in "${timings[@]}"; do
	printf '%-28s %s\n' "${kv%%=*}" "${kv#*=}"
done
if jq -e . "$out/status.json" >/dev/null 2>&1; then
	# The engine's own timeline: steps and the two windows, from its journal.
	jq -r '
		def secs: if type == "number" then (if . > 1e6 then . / 1e9 else . end) else . end;
		((.steps // .timeline // [])[]? | "engine: \(.name // .step)\t\((.duration_seconds // .seconds // .duration // "?") | secs)"),
		((.windows // {}) | to_entries[]? | "window: \(.key)\t\(.value | secs)"),
		(if .read_only_seconds then "window: read-only\t\(.read_only_seconds)" else empty end),
		(if .ssh_unreachable_seconds then "window: ssh-unreachable\t\(.ssh_unreachable_seconds)" else empty end)
	' "$out/status.json" 2>/dev/null | awk -F'\t' '{ printf "%-28s %s\n", $1, $2 }'
else
	printf '%-28s %s\n' "engine timeline" "n/a (no rootswap status --json)"
fi
printf '%-28s %s\n' "probes (every 0.5 s)" "${probes:-0}"
printf '%-28s %s\n' "probes failed" "${probes_failed:-0}"
printf '%-28s %s\n' "ssh unreachable (prober)" "${unreachable:-0}"
printf '%-28s %s\n' "total" "$(secs "$t_all" "$(now)")"
echo
n=${#check_names[@]}
echo "checks: $((n - failed)) passed, $failed failed"
for ((i = 0; i < n; i++)); do
	[ "${check_status[i]}" = PASS ] || printf '   FAILED: %s  %s\n' "${check_names[i]}" "${check_detail[i]}"
done
echo "logs: $out"
[ "$failed" = 0 ]
