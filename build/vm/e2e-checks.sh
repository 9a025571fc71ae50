#!/bin/sh
# Runs inside the test machine (build/e2e.sh copies it in): every check of
# one phase in one SSH login, since a login costs ~2 s under TCG. Prints
# one line per check: PASS|FAIL <TAB> name <TAB> detail.
#   e2e-checks.sh PHASE NEWROOT_DEV STATE_BEFORE MARKER [AFTER_TOKEN]
#   e2e-checks.sh before         before the swap: writes what runs now
# STATE_BEFORE is `systemctl is-system-running` before the swap ("-"
# without systemd); AFTER_TOKEN, when given, must be in
# /root/rootswap-e2e-after. /root/rootswap-e2e-services and -daemons
# (written by `before`) list what must still be active afterwards.
# /etc/rootswap-vm/profile says which profile the guest is (an image
# built before profiles has none: the systemd one).
PROFILE=systemd INIT=systemd ROOTFS=ext3
[ -r /etc/rootswap-vm/profile ] && . /etc/rootswap-vm/profile
# A file-mode swap (--mkfs TYPE) makes / another type: NEWFS.
NEWFS=${ROOTSWAP_E2E_NEWFS:-$ROOTFS}
olddev=vda2

# services prints the service manager's active services; services
# running, only those with a process (a boot runs other oneshots: with /
# on LVM the initramfs checks it, not systemd-fsck-root).
services() {
	if [ -d /run/systemd/system ]; then
		# systemd-fsckd is socket-activated and exits when idle.
		systemctl list-units --type=service --state="${1:-active}" --no-legend --plain | awk '$1 != "systemd-fsckd.service" { print $1 }'
	elif [ -d /run/openrc/started ]; then
		ls /run/openrc/started
	else
		# sysv-rc: the runlevel's scripts whose status says running.
		rl=$(runlevel | awk '{ print $2 }')
		for l in /etc/rc"$rl".d/S*; do
			s=$(basename "$(readlink -f "$l")")
			/etc/init.d/"$s" status >/dev/null 2>&1 && echo "$s"
		done | sort -u
	fi
}
daemon_list() {
	if [ -d /run/systemd/system ]; then
		daemons="sshd:ssh journald:systemd-journald udev:systemd-udevd dbus:dbus rsyslog:rsyslog cron:cron"
	else
		daemons="sshd:sshd udev:systemd-udevd dbus:dbus-daemon rsyslog:rsyslogd cron:cron"
	fi
	[ "$PROFILE" = ubuntu ] && daemons="$daemons dockerd:docker containerd:containerd"
	# ifupdown's DHCP client: no service, restarted by its command line.
	[ ! -d /run/systemd/system ] && [ -e /run/dhclient.eth0.pid ] && daemons="$daemons dhclient:dhclient"
	echo "$daemons"
}
if [ "$1" = before ]; then
	services >/root/rootswap-e2e-services
	services running >/root/rootswap-e2e-services-running
	for s in $(daemon_list); do
		if [ -d /run/systemd/system ]; then
			[ "$(systemctl is-active "${s#*:}")" = active ] && echo "${s%%:*}"
		else
			pidof -s "${s#*:}" >/dev/null && echo "${s%%:*}"
		fi
	done >/root/rootswap-e2e-daemons
	ip -4 -o addr show eth0 | awk '{ print $4 }' >/root/rootswap-e2e-addr
	sync
	echo "services active: $(wc -l </root/rootswap-e2e-services); daemons running: $(paste -sd' ' - </root/rootswap-e2e-daemons); eth0 $(cat /root/rootswap-e2e-addr)"
	exit 0
fi

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
src=${src%%\[*} # btrfs: /dev/X[/@]
check "/ is $newdev" "findmnt: $(findmnt -no SOURCE,FSTYPE,OPTIONS / | head -1 | cut -c1-120)" [ "$(readlink -f "$src")" = "$(readlink -f "$newdev")" ]
fstype=$(findmnt -no FSTYPE / | head -1)
check "/ is $NEWFS" "fstype $fstype" [ "$fstype" = "$NEWFS" -o "$NEWFS" = ext3 -a "$fstype" = ext4 ]

# The copy was grown to the LV: the filesystem within 2% of the device.
devbytes=$(blockdev --getsize64 "$newdev" 2>/dev/null || echo 0)
case "$NEWFS" in
ext*) fsbytes=$(tune2fs -l "$newdev" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { printf "%.0f", c * s }') ;;
xfs) fsbytes=$(xfs_info / 2>/dev/null | sed -n 's/^data *= *bsize=\([0-9]*\) *blocks=\([0-9]*\).*/\1 \2/p' | awk '{ printf "%.0f", $1 * $2 }') ;;
btrfs) fsbytes=$(btrfs filesystem show --raw / 2>/dev/null | awk '$1 == "devid" { print $4; exit }') ;;
esac
check "/ is ~3 GiB" "device $devbytes B, $NEWFS fs $fsbytes B" \
	awk -v f="${fsbytes:-0}" 'BEGIN { exit !(f >= 0.98 * 3 * 2^30 && f <= 3 * 2^30) }'

# The copy has the old filesystem's UUID until finish relabels the old
# root (until then it is the exact fallback the rollback needs); while two
# block devices share it, root=UUID= (grub.cfg) and LABEL=/UUID= in fstab
# pick either one. So after finish and the reboot it must be unique.
if [ "$phase" = "after reboot" ]; then
	uuid=$(findmnt -no UUID / | head -1)
	check "root fs UUID unique" "UUID $uuid on: $(blkid -t UUID="$uuid" -o device | tr '\n' ' ')" \
		[ "$(blkid -t UUID="$uuid" -o device | wc -l)" = 1 ]
fi

# relabel-old: once released, the old root no longer shares its identity
# with the copy, before finish too: an ext block copy's source gets the
# label oldroot and a UUID of its own; xfs and btrfs copies got theirs
# before the pivot (new-uuid).
if [ "$phase" = "after swap" ]; then
	olduuid=$(blkid -p -s UUID -o value /dev/$olddev) oldlabel=$(blkid -p -s LABEL -o value /dev/$olddev)
	newuuid=$(blkid -p -s UUID -o value "$newdev")
	check "old root's UUID not the new root's" "old $olduuid, new $newuuid" [ -n "$olduuid" -a "$olduuid" != "$newuuid" ]
	case "$ROOTFS" in
	ext*) check "old root relabelled oldroot" "old root's label: $oldlabel" [ "$oldlabel" = oldroot ] ;;
	esac
fi

check "/mnt/oldroot not mounted" "$(grep -c oldroot /proc/self/mountinfo) oldroot mounts" \
	sh -c '! grep -q oldroot /proc/self/mountinfo'

# The old root released: the kernel holds no superblock of /dev/vda2 (a
# lazy unmount leaves one behind, still in /proc/fs and /sys/fs), no
# journal thread for it, no mount of it in any namespace we can see.
held=""
for d in /proc/fs/ext4/$olddev /sys/fs/ext4/$olddev /proc/fs/jbd2/$olddev-8 /sys/fs/xfs/$olddev /sys/fs/btrfs/*/devices/$olddev; do
	[ -e "$d" ] && held="$held $d"
done
threads=$(ps -eo comm= | grep -E "^(jbd2/$olddev|xfsaild/$olddev)" | paste -sd' ' -)
mounts=$(cat /proc/[0-9]*/mountinfo 2>/dev/null | awk -v d="$(cat /sys/class/block/$olddev/dev)" '$3 == d { n++ } END { print n + 0 }')
check "old root released" "superblock:${held:- none}; threads: ${threads:-none}; mounts of $olddev in any ns: $mounts" \
	[ -z "$held" -a -z "$threads" -a "$mounts" = 0 ]

# A process is on the new root when its root is / and its executable lives
# on the new device (st_dev of /: a btrfs subvolume has its own), not on
# the old root.
newmm=$(stat -c '%Hd:%Ld' /)
# shellcheck disable=SC2317 # called through check
on_new_root() {
	[ "$(stat -Lc %d:%i "/proc/$1/root")" = "$(stat -c %d:%i /)" ] &&
		[ "$(stat -Lc '%Hd:%Ld' "/proc/$1/exe")" = "$newmm" ]
}
# A daemon that did not run before the swap either is only reported.
# shellcheck disable=SC2317 # called through check
ran_before() { [ ! -r /root/rootswap-e2e-daemons ] || grep -qx "$1" /root/rootswap-e2e-daemons; }
for s in init:- $(daemon_list); do
	name=${s%%:*} unit=${s#*:}
	if [ "$unit" != - ] && ! ran_before "$name"; then
		printf 'INFO\t%s: %s\tnot running before the swap either, not checked\n' "$phase" "$name"
		continue
	fi
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

# eth0 keeps the address it had (a DHCP client restarted by its command
# line takes up its lease again).
if [ -s /root/rootswap-e2e-addr ]; then
	addr=$(ip -4 -o addr show eth0 | awk '{ print $4 }')
	check "eth0 keeps its address" "before $(cat /root/rootswap-e2e-addr), now ${addr:-none}" [ "$addr" = "$(cat /root/rootswap-e2e-addr)" ]
fi

# Every service active before the swap is active now; after a reboot,
# every one that was running.
list=/root/rootswap-e2e-services state=active
[ "$phase" = "after reboot" ] && list=/root/rootswap-e2e-services-running state=running
if [ -r $list ]; then
	services $state >/tmp/rootswap-e2e-services.now
	gone=$(grep -vxF -f /tmp/rootswap-e2e-services.now $list | paste -sd' ' -)
	check "services $state before are $state" "$(wc -l <$list) before, $(wc -l </tmp/rootswap-e2e-services.now) now${gone:+; not $state: $gone}" \
		[ -z "$gone" ]
fi

if [ -d /run/systemd/system ] && [ "$before" != - ]; then
	# Right after a reboot the boot may still be starting: wait for it.
	now=$(timeout 120 systemctl is-system-running --wait)
	rank() { case $1 in running) echo 0 ;; degraded) echo 1 ;; *) echo 2 ;; esac; }
	failed_units=$(systemctl list-units --state=failed --no-legend --plain | awk '{ print $1 }' | paste -sd' ' -)
	check "system state no worse" "$before -> $now${failed_units:+ (failed: $failed_units)}" [ "$(rank "$now")" -le "$(rank "$before")" ]
fi

# The profile's own pieces.
if [ "$PROFILE" = ubuntu ]; then
	swaps=$(awk 'NR > 1 { print $1 }' /proc/swaps | paste -sd' ' -)
	check "swap file /swap.img active" "/proc/swaps: ${swaps:-none}" grep -q '^/swap.img ' /proc/swaps
	# dockerd starts restart=always containers a while after it starts
	# itself (the engine restarts docker.service): up to 60 s.
	for i in $(seq 30); do
		[ "$(docker inspect -f '{{.State.Running}}' rootswap-ctr 2>/dev/null)" = true ] && break
		sleep 2
	done
	ctr=$(docker inspect -f '{{.State.Status}} pid {{.State.Pid}} restarts {{.RestartCount}} started {{.State.StartedAt}}' rootswap-ctr 2>&1 | head -1)
	check "container rootswap-ctr running" "$ctr" [ "$(docker inspect -f '{{.State.Running}}' rootswap-ctr 2>/dev/null)" = true ]
	# It writes a line every 5 s into a bind mount of /srv/ctr-data.
	t1=$(wc -l </srv/ctr-data/ticks 2>/dev/null)
	sleep 6
	t2=$(wc -l </srv/ctr-data/ticks 2>/dev/null)
	check "container writes to /srv/ctr-data on /" "ticks $t1 -> $t2" [ "${t2:-0}" -gt "${t1:-0}" ]
	sq=$(findmnt -no SOURCE,FSTYPE /snap/hello/1 2>/dev/null | head -1)
	back=$(losetup -nO BACK-FILE,BACK-MAJ:MIN "$(findmnt -no SOURCE /snap/hello/1 | head -1)" 2>/dev/null)
	check "squashfs /snap/hello/1 mounted from a file on /" "$sq; loop backing $back (new / $newmm)" \
		sh -c "[ -n '$sq' ] && [ \"\$(echo '$back' | awk '{ print \$NF }')\" = '$newmm' ]"
	pid=$(systemctl show -p MainPID --value snap.hello.daemon.service)
	check "snap daemon runs from the squashfs" "pid $pid exe $(readlink "/proc/$pid/exe" 2>/dev/null)" \
		[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /snap/hello/1/bin/hello-daemon ]
fi
if [ "$ROOTFS" = btrfs ] && [ "$NEWFS" = btrfs ]; then
	check "/ is subvolume @" "$(findmnt -no OPTIONS / | head -1 | tr ',' '\n' | grep subvol | paste -sd, -)" \
		sh -c 'findmnt -no OPTIONS / | head -1 | tr , "\n" | grep -qx "subvol=/@"'
	hsrc=$(findmnt -no SOURCE /home | head -1)
	check "/home is subvolume @home of /'s filesystem" "/home: $hsrc" \
		sh -c "[ '$(findmnt -no UUID /home | head -1)' = '$(findmnt -no UUID / | head -1)' ] && findmnt -no OPTIONS /home | head -1 | tr , '\n' | grep -qx subvol=/@home"
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
check "marker in /home present" "/home/rootswap-e2e-marker" grep -qx "$marker" /home/rootswap-e2e-marker
if [ -n "$after" ]; then
	check "post-swap file present" "/root/rootswap-e2e-after" grep -qx "$after" /root/rootswap-e2e-after
fi
exit 0
