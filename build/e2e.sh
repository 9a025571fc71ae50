#!/bin/bash
# build/e2e.sh: tier 3, `make e2e`. Swaps the root of a real Debian
# bookworm guest (build/vm.sh) from /dev/vda2 onto an LV while a prober on
# the host opens a fresh SSH login every 0.5 s, checks the result, runs
# `rootswap finish`, reboots, checks again, and prints a summary table.
# Exits non-zero if any check failed; a check that was not reached counts
# as failed.
#
# Environment: ROOTSWAP_BIN (default ./rootswap), ROOTSWAP_E2E_PROFILE
# (a build/vm.sh profile, default systemd; ROOTSWAP_E2E_VARIANT is its old
# name; "all" runs every profile in turn and prints one line each),
# ROOTSWAP_E2E_OUT (directory for logs and the guest's logs, default
# /tmp/rootswap-e2e-PROFILE, -fault for a fault run, emptied first),
# ROOTSWAP_E2E_KEEP=1 leaves the
# guest running at the end, ROOTSWAP_E2E_FINISH_ARGS (default
# "--grub-install /dev/vda"), ROOTSWAP_E2E_GUEST_PREP (a shell command run
# in the guest before `plan`, default none), ROOTSWAP_VM_CACHE as for
# vm.sh. The per-phase checks run inside the guest: build/vm/e2e-checks.sh.
# ROOTSWAP_E2E_FAULT=kill-session kills the SSH session that started
# `run` during the copy: the engine must go on and the host stay reachable.
# ROOTSWAP_E2E_FAULT=no-init breaks the new root after finish (its
# /sbin/init renamed away): the boot guard must bring the guest back on
# the old root by itself, reachable over SSH, with `rootswap status`
# saying so; then the new root is repaired from the old one and tried
# again with grub-reboot, and must come up and be confirmed. Without a fault, the reboot after finish must come up on the
# new root through the guard, and its confirmation make it GRUB's default.
# ROOTSWAP_E2E_FINISH=0 skips finish and the reboot. ROOTSWAP_E2E_RUN_ARGS
# adds options to plan and run (none by default: every profile swaps
# without --kill; the sysvinit and openrc guests' dhclient, started by
# ifupdown, is killed and started again by its command line); with
# `--copy files --mkfs TYPE` the checks want / of TYPE after the swap.
# ROOTSWAP_E2E_DEBS: a directory of .deb files installed in the guest
# before `plan` (the mkfs tools a profile's image lacks: xfsprogs,
# btrfs-progs and their libraries, from `apt-get download`), without
# their triggers: finish's update-initramfs takes their hooks in.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
vm=$here/vm.sh
bin=${ROOTSWAP_BIN:-./rootswap}
profile=${ROOTSWAP_E2E_PROFILE:-${ROOTSWAP_E2E_VARIANT:-systemd}}

# all: each profile in turn, in a process of its own; one line each.
if [ "$profile" = all ]; then
	lines=()
	rc_all=0
	for p in $("$vm" profiles); do
		o=${ROOTSWAP_E2E_OUT:+$ROOTSWAP_E2E_OUT/$p}
		ROOTSWAP_E2E_PROFILE=$p ROOTSWAP_E2E_OUT=${o:-/tmp/rootswap-e2e-$p} "$0"
		rc=$?
		o=${o:-/tmp/rootswap-e2e-$p}
		if [ "$rc" = 0 ]; then
			lines+=("$(printf '%-10s PASS  %s' "$p" "$(grep -m1 '^checks:' "$o/summary.txt" 2>/dev/null)")")
		else
			rc_all=1
			lines+=("$(printf '%-10s FAIL  %s; first failed: %s' "$p" "$(grep -m1 '^checks:' "$o/summary.txt" 2>/dev/null)" \
				"$(grep -m1 'FAILED:' "$o/summary.txt" 2>/dev/null | sed 's/^ *FAILED: //' | cut -c1-160)")")
		fi
	done
	printf '\n== all profiles\n'
	printf '%s\n' "${lines[@]}"
	exit $rc_all
fi

suffix=""
[ -n "${ROOTSWAP_E2E_FAULT:-}" ] && suffix=-fault
out=${ROOTSWAP_E2E_OUT:-/tmp/rootswap-e2e-$profile$suffix}
finish_args=${ROOTSWAP_E2E_FINISH_ARGS:---grub-install /dev/vda}
run_args=${ROOTSWAP_E2E_RUN_ARGS:-}
# The type / has after the swap: --mkfs's (file mode), else the profile's.
newfs=$(echo " $run_args " | sed -n 's/.* --mkfs[ =]\([a-z0-9]*\) .*/\1/p')
mkdir -p "$out"
# Only what an earlier run left here: this script's logs.
rm -f "$out"/*.txt "$out"/*.log "$out"/*.json "$out"/*.err "$out"/port "$out"/prober.stop "$out"/guest-*.tar.gz
exec > >(tee "$out/e2e.log") 2>&1
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

# The prober starts a fresh SSH login (a new TCP connection, key exchange,
# a shell running `true`) on a 0.5 s tick, one at a time: a login takes
# ~2 s under TCG, and overlapping logins load the guest so much that they
# time out (4 in flight: 6-9 s each, most over 10 s during the copy). A
# tick that finds the previous probe still running is logged as "skip".
# A probe that has not finished in 15 s counts as failed. Each writes
# "START_EPOCH ok|fail SECONDS". Bounded: 2400 ticks (20 min) or until
# $out/prober.stop appears. ROOTSWAP_E2E_PROBES_IN_FLIGHT raises the 1.
probe_one() {
	local r
	if timeout 15 "$vm" ssh -o ConnectTimeout=10 true </dev/null >/dev/null 2>&1; then r=ok; else r=fail; fi
	echo "$1 $r $(secs "$1" "$(now)")" >>"$out/probes.log"
}
prober() {
	local i t0
	for ((i = 0; i < 2400; i++)); do
		[ -e "$out/prober.stop" ] && break
		t0=$(now)
		if [ "$(jobs -rp | wc -l)" -lt "${ROOTSWAP_E2E_PROBES_IN_FLIGHT:-1}" ]; then
			probe_one "$t0" &
		else
			echo "$t0 skip 0" >>"$out/probes.log"
		fi
		sleep "$(awk -v d="$(secs "$t0" "$(now)")" 'BEGIN { s = 0.5 - d; if (s < 0) s = 0; print s }')"
	done
	wait
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
	sort -n "$out/probes.log" | awk '
		$2 == "skip" { next }
		{ n++ }
		$2 == "fail" { f++; if (start == "") start = $1; last = $1 }
		$2 == "ok" && start != "" { w = $1 - start; if (w > max) max = w; start = "" }
		END {
			if (start != "") { w = last - start + 0.5; if (w > max) max = w }
			printf "%d %d %.1f\n", n, f, max
		}'
}

# collect_logs keeps the guest's side in $out: the serial console, the
# kernel log, the system log, rootswap's journal and archive.
collect_logs() {
	local cache=${ROOTSWAP_VM_CACHE:-/var/tmp/rootswap-vm}
	[ "$booted" = 1 ] || return 0
	cp "$cache/run/serial.log" "$out/guest-serial.log" 2>/dev/null
	"$vm" port >/dev/null 2>&1 || return 0
	timeout 60 "$vm" ssh dmesg >"$out/guest-dmesg.log" 2>&1
	timeout 120 "$vm" ssh 'journalctl -b --no-pager 2>/dev/null ||
		cat /var/log/syslog /var/log/messages /var/log/daemon.log /var/log/rc.log 2>/dev/null' >"$out/guest-syslog.log" 2>&1
	timeout 60 "$vm" ssh 'ps -eo pid,ppid,stat,lstart,comm,args; echo; findmnt -l; echo; cat /proc/swaps' >"$out/guest-ps-mounts.log" 2>&1
	timeout 60 "$vm" ssh 'tar -C / -czf - run/rootswap var/log/rootswap 2>/dev/null' >"$out/guest-rootswap.tar.gz" 2>/dev/null
}

booted=0
prober_pid=""
cleanup() {
	prober_stop
	collect_logs
	# A run that did not boot the guest leaves any running one alone.
	if [ "$booted" = 0 ]; then
		:
	elif [ "${ROOTSWAP_E2E_KEEP:-0}" = 1 ]; then
		echo "guest left running (ROOTSWAP_E2E_KEEP=1): $vm ssh / $vm stop"
	else
		"$vm" stop >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

root_source() { vsh findmnt -no SOURCE / 2>/dev/null | head -1; }

# guest_checks PHASE [AFTER_TOKEN]: all checks of a phase in one login
# (build/vm/e2e-checks.sh in the guest), each recorded here.
guest_checks() {
	local st name detail n=0
	while IFS=$'\t' read -r st name detail; do
		case "$st" in
		PASS | FAIL) ;;
		*)
			echo "   | $st $name $detail"
			continue
			;;
		esac
		check "$name" "$st" "$detail"
		n=$((n + 1))
	done < <(vsh "ROOTSWAP_E2E_NEWFS=$newfs sh /root/rootswap-e2e-checks.sh $(printf '%q ' "$1" "$newroot_dev" "$state_before" "$marker" "${2:-}")" 2>&1)
	[ "$n" -gt 0 ] || check "$1: checks ran" FAIL "could not run the checks over SSH"
}

# summary prints the step timings, the engine's steps and windows, the
# prober's figures and the failed checks.
summary() {
	say "summary"
	printf '%-28s %s\n' "step" "seconds"
	for kv in "${timings[@]}"; do
		printf '%-28s %s\n' "${kv%%=*}" "${kv#*=}"
	done
	if jq -e . "$out/status.json" >/dev/null 2>&1; then
		# The engine's own timeline: steps and the two windows, from its journal.
		jq -r '
			((.steps // [])[] | "engine: \(.name)\t\(.seconds // "?")"),
			((.windows // [])[] | "window: \(.name)\t\(if .ns then .ns / 1e9 else "?" end)")
		' "$out/status.json" 2>/dev/null |
			awk -F'\t' '{ v = ($2 ~ /^[0-9.e+-]+$/) ? sprintf("%.1f", $2) : $2; printf "%-28s %s\n", $1, v }'
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
}

# reboot_guest reboots and waits for SSH from the next boot. A reboot is
# proven by a new boot_id, not by SSH dropping (a login can time out on
# a busy guest as well); a boot that falls back takes two.
reboot_guest() {
	local boot_id new_id i
	boot_id=$(vsh cat /proc/sys/kernel/random/boot_id)
	vsh "systemd-run --on-active=1 systemctl reboot >/dev/null 2>&1 ||
		nohup sh -c 'sleep 1; reboot' </dev/null >/dev/null 2>&1 &" || true
	new_id=$boot_id
	for ((i = 0; i < 60; i++)); do # 10 min at most
		sleep 5
		"$vm" wait-ssh 5 2>/dev/null || continue
		new_id=$(timeout 30 "$vm" ssh -o ConnectTimeout=20 cat /proc/sys/kernel/random/boot_id 2>/dev/null)
		[ -n "$new_id" ] && [ "$new_id" != "$boot_id" ] && return 0
	done
	return 1
}

# first_boot_confirmed: the reboot after finish went through the boot
# guard and its confirmation made the new root GRUB's default.
first_boot_confirmed() {
	local i st=""
	pass_if "first boot: init= was the boot guard" "$(vsh cat /proc/cmdline 2>&1)" vsh 'grep -q "init=/sbin/rootswap-bootguard" /proc/cmdline'
	for ((i = 0; i < 60; i++)); do
		st=$(vsh 'sed -n "s/^state=//p" /boot/rootswap/firstboot' 2>/dev/null)
		[ "$st" = confirmed ] && break
		sleep 5
	done
	pass_if "first boot: confirmed by the unit" "state=$st" test "$st" = confirmed
	local env
	env=$(vsh 'grep -a "_entry=" /boot/grub/grubenv' 2>&1 | paste -sd' ' -)
	pass_if "first boot: the new root is GRUB's default" "$env" vsh 'grep -aq "^saved_entry=gnulinux-simple-" /boot/grub/grubenv && ! grep -aq "^next_entry=." /boot/grub/grubenv'
	pass_if "first boot: the deadline keeper stopped" "no 'rootswap-bootguard keeper' process" vsh '! ps -eo args | grep -q "^rootswap-bootguard keeper"'
	vsh "$guest_bin" status >"$out/status-after-reboot.txt" 2>&1
	sed 's/^/   | /' "$out/status-after-reboot.txt"
	pass_if "first boot: rootswap status says confirmed" "$(grep -m1 '^first boot' "$out/status-after-reboot.txt")" grep -q "^first boot: the new root .* was confirmed" "$out/status-after-reboot.txt"
}

# first_boot_fell_back: with the new root broken, the guest came back on
# the old root by itself and says why.
first_boot_fell_back() {
	local src
	src=$(root_source)
	pass_if "fault: back on the old root" "/ is ${src:-?}" test "$src" = /dev/vda2
	pass_if "fault: the old root carries its new label" "$(vsh blkid /dev/vda2 2>&1)" vsh 'blkid -s LABEL -o value /dev/vda2 | grep -qx oldroot'
	pass_if "fault: the old root's default entry" "$(vsh cat /proc/cmdline 2>&1)" vsh '! grep -q rootswap-bootguard /proc/cmdline'
	vsh "$guest_bin" status >"$out/status-after-reboot.txt" 2>&1
	sed 's/^/   | /' "$out/status-after-reboot.txt"
	pass_if "fault: rootswap status says it fell back" "$(grep -m1 '^first boot' "$out/status-after-reboot.txt")" grep -q "^first boot: FELL BACK" "$out/status-after-reboot.txt"
	pass_if "fault: the guard's reason is logged" "$(grep -m1 'guard:' "$out/status-after-reboot.txt")" grep -q "guard: the new root's init /sbin/init is missing" "$out/status-after-reboot.txt"
	pass_if "fault: GRUB's default is still the old root" "$(vsh 'grep -a "_entry=" /boot/grub/grubenv' 2>&1 | paste -sd' ' -)" vsh 'grep -aq "^saved_entry=rootswap-old" /boot/grub/grubenv'
	pass_if "fault: the marker on the old root" "/root/rootswap-e2e-marker" vsh "grep -qx $marker /root/rootswap-e2e-marker"
}

# ---------------------------------------------------------------- run

t_all=$(now)
echo "rootswap e2e: profile $profile, logs in $out"
[ -x "$bin" ] || {
	check "rootswap binary" FAIL "$bin not found or not executable (make build, or set ROOTSWAP_BIN)"
	summary | tee "$out/summary.txt"
	exit 1
}

say "image"
timed image "$vm" image --profile "$profile" || {
	check "image built" FAIL "see vm.sh output"
	summary | tee "$out/summary.txt"
	exit 1
}

say "boot"
if "$vm" port >/dev/null 2>&1; then
	check "guest boots to SSH" FAIL "another guest is running (build/vm.sh status): one at a time"
	summary | tee "$out/summary.txt"
	exit 1
fi
booted=1
timed boot "$vm" boot --profile "$profile" >"$out/port" || {
	check "guest boots to SSH" FAIL "see ${ROOTSWAP_VM_CACHE:-/var/tmp/rootswap-vm}/run/serial.log"
	summary | tee "$out/summary.txt"
	exit 1
}
check "guest boots to SSH" PASS "port $(cat "$out/port")"

say "prepare"
state_before=$(vsh 'if [ -d /run/systemd/system ]; then timeout 300 systemctl is-system-running --wait; else echo -; fi' 2>/dev/null)
echo "   system state before: $state_before; / is $(root_source)"
marker=$(cat /proc/sys/kernel/random/uuid)
pass_if "marker written" "/root/rootswap-e2e-marker, /home/rootswap-e2e-marker" \
	vsh "echo $marker >/root/rootswap-e2e-marker && echo $marker >/home/rootswap-e2e-marker && sync"
pass_if "lvcreate -L 3g -n root sys" "$newroot_dev" \
	vsh "lvcreate -q -y -L 3g -n root sys >/dev/null && udevadm settle && test -b $newroot_dev && test -b /dev/sys/root"
pass_if "binary copied in" "$guest_bin" "$vm" scp "$bin" "vm:$guest_bin"
"$vm" scp "$here/vm/e2e-checks.sh" vm:/root/rootswap-e2e-checks.sh || check "checks script copied in" FAIL ""
before=$(vsh sh /root/rootswap-e2e-checks.sh before 2>&1)
echo "   before: $before"
vsh cat /root/rootswap-e2e-services >"$out/services-before.txt" 2>&1
if [ -n "${ROOTSWAP_E2E_DEBS:-}" ]; then
	install_debs() {
		tar -C "$ROOTSWAP_E2E_DEBS" -cf - . | vsh "rm -rf /root/e2e-debs && mkdir /root/e2e-debs && tar -C /root/e2e-debs -xf -" &&
			vsh "dpkg --force-depends --no-triggers -i /root/e2e-debs/*.deb >/root/e2e-debs.log 2>&1 && rm -rf /root/e2e-debs"
	}
	pass_if "debs installed" "$(cd "$ROOTSWAP_E2E_DEBS" && ls -- *.deb | paste -sd' ' -)" install_debs
fi
if [ -n "${ROOTSWAP_E2E_GUEST_PREP:-}" ]; then
	pass_if "guest prep: $ROOTSWAP_E2E_GUEST_PREP" "ROOTSWAP_E2E_GUEST_PREP" vsh "$ROOTSWAP_E2E_GUEST_PREP"
fi
# The writer (issue 12): a service appending an fsync'd line every 0.1 s
# and rewriting files on /, so plan lists it as a writer; its own ledger
# gives the outage after the swap. systemd guests only (a unit file).
writer=0
if vsh test -d /run/systemd/system; then
	"$vm" scp "$here/vm/rootswap-writer" vm:/usr/local/sbin/rootswap-writer &&
		"$vm" scp "$here/vm/rootswap-writer-check" vm:/usr/local/sbin/rootswap-writer-check &&
		"$vm" scp "$here/vm/rootswap-writer.service" vm:/etc/systemd/system/rootswap-writer.service &&
		vsh 'chmod +x /usr/local/sbin/rootswap-writer*; systemctl daemon-reload && systemctl start rootswap-writer && sleep 2 && test -s /var/lib/rootswap-writer/ledger' &&
		writer=1
	pass_if "writer started" "rootswap-writer.service" test "$writer" = 1
fi
# The address watch (guests whose eth0 ifup's dhclient keeps): rootswap's
# own shell, run from a tmpfs of its own under /run (/run itself is
# noexec) so that it holds nothing of /, samples eth0's address every
# 0.1 s through the swap (build/vm/rootswap-addr-watch).
watch=0
if vsh test -e /run/dhclient.eth0.pid; then
	vsh 'mkdir -p /run/rootswap-e2e-watch && mount -t tmpfs -o size=32m,mode=700 rootswap-e2e-watch /run/rootswap-e2e-watch &&
		cp /usr/local/sbin/rootswap /run/rootswap-e2e-watch/' &&
		"$vm" scp "$here/vm/rootswap-addr-watch" vm:/run/rootswap-e2e-watch/watch.sh &&
		vsh 'cd /run/rootswap-e2e-watch && a=$(ip -4 -o addr show eth0 | awk "{ print \$4 }" | cut -d/ -f1) && test -n "$a" &&
			{ setsid ./rootswap sh watch.sh "$a" </dev/null >/dev/null 2>&1 & } &&
			for i in $(seq 40); do test -s count && break; sleep 0.5; done && test -s count' &&
		watch=1
	pass_if "address watch started" "eth0 sampled every 0.1 s from /run: $(vsh 'cd /run/rootswap-e2e-watch && ls && cat count' 2>&1 | paste -sd' ' -)" test "$watch" = 1
fi
version=$(vsh "$guest_bin" --version 2>&1)
pass_if "rootswap --version in the guest" "$version" test -n "$version"

say "plan"
# shellcheck disable=SC2086
vsh "$guest_bin" plan --to /dev/sys/root $run_args >"$out/plan.txt" 2>&1
rc=$?
sed 's/^/   | /' "$out/plan.txt"
pass_if "rootswap plan" "exit $rc" test "$rc" = 0

say "run (prober: a fresh SSH login every 0.5 s)"
prober_start
t_run=$(now)
swapped=0
if [ "${ROOTSWAP_E2E_FAULT:-}" = kill-session ]; then
	# The admin's SSH connection dies during the copy.
	# shellcheck disable=SC2086 # run_args is a list of options
	vsh -o ServerAliveInterval=5 -o ServerAliveCountMax=6 "$guest_bin" run --to /dev/sys/root --yes $run_args >"$out/run.txt" 2>&1 &
	run_pid=$!
	seen=""
	for ((i = 0; i < 120; i++)); do
		seen=$(timeout 30 "$vm" ssh -o ConnectTimeout=20 "$guest_bin" status 2>/dev/null | head -1)
		case "$seen" in "running precopy" | "running copy" | "running fsck" | "running resize") break ;; esac
		sleep 1
	done
	kill "$run_pid" 2>/dev/null
	wait "$run_pid" 2>/dev/null
	sed 's/^/   | /' "$out/run.txt"
	if [ "$seen" = "running precopy" ] || [ "$seen" = "running copy" ]; then
		check "session that started run killed during the copy" PASS "status was: $seen"
	else
		check "session that started run killed during the copy" FAIL "status was: ${seen:-?}"
	fi
	swapped=1
else
	# shellcheck disable=SC2086 # run_args is a list of options
	vsh -o ServerAliveInterval=5 -o ServerAliveCountMax=6 "$guest_bin" run --to /dev/sys/root --yes $run_args >"$out/run.txt" 2>&1
	rc=$?
	sed 's/^/   | /' "$out/run.txt"
	pass_if "rootswap run" "exit $rc" test "$rc" = 0
	[ "$rc" = 0 ] && swapped=1
fi
timings+=("run=$(secs "$t_run" "$(now)")")

# `run` returns once sshd runs from the new root; the engine goes on
# (services, confirmation, releasing the old root) and `rootswap status`
# follows it from fresh logins: exit 0 succeeded, 4 running or waiting
# for confirmation, 1 failed or rolled back. A run waiting for
# confirmation is confirmed from a fresh login, the proof that the new
# root serves SSH.
status_line="?"
if [ "$swapped" = 1 ]; then
	t=$(now)
	for ((i = 0; i < 120; i++)); do # 10 min at most
		status_line=$(timeout 30 "$vm" ssh -o ConnectTimeout=20 "$guest_bin" status 2>/dev/null | head -1)
		rc=${PIPESTATUS[0]}
		if [ "$status_line" = waiting-confirm ]; then
			vsh "$guest_bin" confirm >"$out/confirm.txt" 2>&1
			rc=$?
			pass_if "rootswap confirm" "exit $rc" test "$rc" = 0
			continue
		fi
		[ "$rc" = 0 ] || [ "$rc" = 1 ] && break
		sleep 5
	done
	timings+=("engine after run=$(secs "$t" "$(now)")")
	pass_if "engine finished: succeeded" "rootswap status: ${status_line:-?}" test "$status_line" = succeeded
else
	status_line=$(vsh "$guest_bin" status 2>/dev/null | head -1)
fi
echo "   status: ${status_line:-?}"
sleep 5 # a few probes after the swap settled
prober_stop
read -r probes probes_failed unreachable <<<"$(prober_report)"
echo "   probes: $probes, failed: $probes_failed, longest unreachable: ${unreachable} s"

if [ "$watch" = 1 ]; then
	read -r w_n w_gone w_unread <<<"$(vsh 'touch /run/rootswap-e2e-watch/stop; sleep 0.5; cat /run/rootswap-e2e-watch/count')"
	pass_if "eth0's address never gone" "gone in ${w_gone:-?} of ${w_n:-?} samples (0.1 s apart; ${w_unread:-?} found no /proc: the pivot)" \
		test "${w_gone:-x}" = 0 -a "${w_n:-0}" -gt 0
	timings+=("eth0 address gone (samples)=${w_gone:-?}/${w_n:-?}")
fi

say "checks after the swap"
after=$(cat /proc/sys/kernel/random/uuid)
pass_if "after swap: file written" "/root/rootswap-e2e-after" vsh "echo $after >/root/rootswap-e2e-after && sync"
guest_checks "after swap"
if [ "$writer" = 1 ]; then
	sleep 2 # the writer's first lines from the new root
	vsh rootswap-writer-check >"$out/writer.txt" 2>&1
	wv() { awk -v k="$1" '$1 == k { print $2 }' "$out/writer.txt"; }
	echo "   writer: $(tr '\n' ' ' <"$out/writer.txt")"
	pass_if "writer: no acknowledged line lost" "lost $(wv lost_lines) of $(wv lines) lines" test "$(wv lost_lines)" = 0
	pass_if "writer: no completed rewrite lost" "lost $(wv lost_rewrites)" test "$(wv lost_rewrites)" = 0
	pass_if "writer: ledger in order" "$(wv bad_lines) bad lines" test "$(wv bad_lines)" = 0
	pass_if "writer: running after the swap" "systemctl is-active rootswap-writer" vsh systemctl is-active -q rootswap-writer
	timings+=("writer outage (its own ledger)=$(wv outage)")
fi
vsh "$guest_bin" status --json >"$out/status.json" 2>"$out/status.err"
pass_if "rootswap status --json" "$out/status.json" jq -e . "$out/status.json" >/dev/null 2>&1

say "finish + reboot"
if [ "${ROOTSWAP_E2E_FINISH:-1}" = 0 ]; then
	echo "   skipped (ROOTSWAP_E2E_FINISH=0)"
elif [ "$swapped" = 1 ]; then
	# shellcheck disable=SC2086
	vsh "$guest_bin" finish $finish_args >"$out/finish.txt" 2>&1
	rc=$?
	sed 's/^/   | /' "$out/finish.txt"
	pass_if "rootswap finish" "exit $rc" test "$rc" = 0
	fault=${ROOTSWAP_E2E_FAULT:-}
	if [ "$fault" = no-init ]; then
		# The running init is untouched; the next boot finds no /sbin/init.
		pass_if "fault: the new root's /sbin/init renamed away" "/sbin/init -> /sbin/init.rootswap-e2e-fault" \
			vsh 'mv /sbin/init /sbin/init.rootswap-e2e-fault && sync'
	fi
	t=$(now)
	if reboot_guest; then
		timings+=("reboot=$(secs "$t" "$(now)")")
		check "reboot: SSH back" PASS ""
		if [ "$fault" = no-init ]; then
			first_boot_fell_back
			# The way forward again: the new root repaired from the old
			# one and tried once more, as status says.
			pass_if "retry: the new root's init put back" "mounted from the old root" \
				vsh 'mkdir -p /mnt/rootswap-e2e && mount /dev/mapper/sys-root /mnt/rootswap-e2e &&
					mv /mnt/rootswap-e2e/sbin/init.rootswap-e2e-fault /mnt/rootswap-e2e/sbin/init && umount /mnt/rootswap-e2e'
			pass_if "retry: grub-reboot rootswap-new" "" vsh grub-reboot rootswap-new
			t=$(now)
			if reboot_guest; then
				timings+=("reboot (retry)=$(secs "$t" "$(now)")")
				pass_if "retry: on the new root" "/ is $(root_source)" test "$(root_source)" = "$newroot_dev"
				first_boot_confirmed
			else
				check "retry: SSH back" FAIL "see serial log"
			fi
		else
			guest_checks "after reboot" "$after"
			first_boot_confirmed
		fi
	else
		check "reboot: SSH back" FAIL "see serial log"
	fi
else
	check "rootswap finish" FAIL "not reached: run did not succeed"
	check "reboot onto the new root" FAIL "not reached: run did not succeed"
fi

summary | tee "$out/summary.txt"
[ "$failed" = 0 ]
