#!/bin/sh
# Runs inside the test machine (build/e2e.sh copies it in): every check of
# one phase in one SSH login, since a login costs ~2 s under TCG. Prints
# one line per check: PASS|FAIL <TAB> name <TAB> detail.
#   e2e-checks.sh PHASE NEWROOT_DEV STATE_BEFORE MARKER [AFTER_TOKEN]
# STATE_BEFORE is `systemctl is-system-running` before the swap ("-" on
# sysvinit); AFTER_TOKEN, when given, must be in /root/rootswap-e2e-after.
phase=$1 newdev=$2 before=$3 marker=$4 after=${5:-}

result() { printf '%s\t%s: %s\t%s\n' "$1" "$phase" "$2" "$3"; }
check() { # NAME DETAIL CMD...
	name=$1 detail=$2
	shift 2
	if "$@"; then result PASS "$name" "$detail"; else result FAIL "$name" "$detail"; fi
}

# The engine may mount the LV by the name it was given (/dev/sys/root),
# the initramfs by its dm name: both must be the one device.
src=$(findmnt -no SOURCE / | head -1)
check "/ is $newdev" "findmnt: $src" [ "$(readlink -f "$src")" = "$(readlink -f "$newdev")" ]

# The copy was grown to the LV: the ext filesystem within 2% of the device.
devbytes=$(blockdev --getsize64 "$newdev" 2>/dev/null || echo 0)
fsbytes=$(tune2fs -l "$newdev" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { printf "%.0f", c * s }')
check "/ is ~3 GiB" "device $devbytes B, ext fs $fsbytes B" \
	awk -v f="${fsbytes:-0}" 'BEGIN { exit !(f >= 0.98 * 3 * 2^30 && f <= 3 * 2^30) }'

# The copy has the old filesystem's UUID until finish relabels the old
# root (until then it is the exact fallback the rollback needs); while two
# block devices share it, root=UUID= (grub.cfg) and LABEL=/UUID= in fstab
# pick either one. So after finish and the reboot it must be unique.
if [ "$phase" = "after reboot" ]; then
	uuid=$(findmnt -no UUID /)
	check "root fs UUID unique" "UUID $uuid on: $(blkid -t UUID="$uuid" -o device | tr '\n' ' ')" \
		[ "$(blkid -t UUID="$uuid" -o device | wc -l)" = 1 ]
fi

check "/mnt/oldroot not mounted" "$(grep -c oldroot /proc/self/mountinfo) oldroot mounts" \
	sh -c '! grep -q oldroot /proc/self/mountinfo'

# A process is on the new root when its root is / and its executable lives
# on the new device (major:minor), not on the old root.
newmm=$(stat -Lc '%Hr:%Lr' "$newdev" 2>/dev/null)
# shellcheck disable=SC2317 # called through check
on_new_root() {
	[ "$(stat -Lc %d:%i "/proc/$1/root")" = "$(stat -c %d:%i /)" ] &&
		[ "$(stat -Lc '%Hd:%Ld' "/proc/$1/exe")" = "$newmm" ]
}
if [ -d /run/systemd/system ]; then
	services="sshd:ssh journald:systemd-journald udev:systemd-udevd dbus:dbus rsyslog:rsyslog cron:cron"
else
	services="sshd:sshd udev:systemd-udevd dbus:dbus-daemon rsyslog:rsyslogd cron:cron"
fi
for s in init:- $services; do
	name=${s%%:*} unit=${s#*:}
	if [ "$unit" = - ]; then
		pid=1
	elif [ -d /run/systemd/system ]; then
		st=$(systemctl is-active "$unit")
		[ "$st" = active ] || { result FAIL "$name active" "systemctl is-active $unit: $st"; continue; }
		pid=$(systemctl show -p MainPID --value "$unit")
	else
		pid=$(pidof -s "$unit")
	fi
	if [ -z "$pid" ] || [ "$pid" = 0 ]; then
		result FAIL "$name running" "no main PID"
		continue
	fi
	stable_pids="${stable_pids:-} $pid"
	exe=$(readlink "/proc/$pid/exe")
	check "$name (pid $pid) on the new root" "exe $exe, dev $(stat -Lc '%Hd:%Ld' "/proc/$pid/exe") (new $newmm)" on_new_root "$pid"
done

if [ -d /run/systemd/system ] && [ "$before" != - ]; then
	# Right after a reboot the boot may still be starting: wait for it.
	now=$(timeout 120 systemctl is-system-running --wait)
	rank() { case $1 in running) echo 0 ;; degraded) echo 1 ;; *) echo 2 ;; esac; }
	check "system state no worse" "$before -> $now" [ "$(rank "$now")" -le "$(rank "$before")" ]
fi

# lsof through the kernel's BPF walks must say what /proc says. Two runs
# see different short-lived processes (the prober's logins, kworkers), so
# compare the rows of the long-running daemons checked above.
if [ -x /usr/local/sbin/rootswap ] && [ -n "${stable_pids:-}" ]; then
	rs=/usr/local/sbin/rootswap
	how=$(ROOTSWAP_DEBUG=1 $rs lsof -w / 2>&1 >/dev/null | sed -n 's/^rootswap lsof: //p' | cut -c1-120 | paste -sd';' -)
	rows() { $rs lsof -w "$@" / | awk -v pids=" $stable_pids " 'NR > 1 && index(pids, " " $2 " ")'; }
	# The daemons themselves open and close files now and then (systemd
	# right after a boot): a difference must persist over three tries,
	# and the detail shows it.
	tries=0
	while :; do
		bpf_rows=$(rows) proc_rows=$(rows --no-bpf)
		tries=$((tries + 1))
		[ -n "$bpf_rows" ] && [ "$bpf_rows" = "$proc_rows" ] && break
		[ $tries -lt 3 ] || break
		sleep 2
	done
	diff=$(printf '%s\n' "$bpf_rows" >/tmp/rs-lsof-bpf; printf '%s\n' "$proc_rows" | diff /tmp/rs-lsof-bpf - | grep '^[<>]' | head -4 | cut -c1-160 | paste -sd'|' -)
	# shellcheck disable=SC2317 # called through check
	same_rows() { [ -n "$bpf_rows" ] && [ "$bpf_rows" = "$proc_rows" ]; }
	check "lsof / same rows through BPF and /proc" "$(echo "$bpf_rows" | wc -l) rows of pids$stable_pids, try $tries; $how${diff:+; differs: $diff}" same_rows
fi

check "marker present" "/root/rootswap-e2e-marker" grep -qx "$marker" /root/rootswap-e2e-marker
if [ -n "$after" ]; then
	check "post-swap file present" "/root/rootswap-e2e-after" grep -qx "$after" /root/rootswap-e2e-after
fi
exit 0
