#!/bin/bash
# build/vm.sh: the tier-3 test machine, a Debian bookworm guest under qemu
# (TCG), reached over SSH on a 127.0.0.1 port forward only.
#
#   vm.sh image [--profile NAME] [--rebuild]
#   vm.sh boot  [--profile NAME] [--kernel]
#   vm.sh ssh ARGS...            ssh root@guest ARGS...
#   vm.sh scp SRC DST            guest paths are written vm:PATH
#   vm.sh stop
#   vm.sh status
#   vm.sh profiles               the profile names, one a line
#
# Profiles (--variant is the old name of --profile), each its own cached
# image under $ROOTSWAP_VM_CACHE/NAME:
#   systemd   / on ext3 /dev/vda2, systemd (the default, what CI runs)
#   sysvinit  the same with sysvinit-core as PID 1 and sysv-rc
#   openrc    sysvinit-core as PID 1, OpenRC as the service manager
#   ubuntu    / on ext4, a swap file /swap.img, docker.io running a
#             container (an image made by `docker import`, restart=always),
#             a squashfs loop mount with a daemon running from it (a snap)
#   xfs       / on xfs
#   btrfs     / on btrfs subvolume @, /home on subvolume @home
#
# The image is built without device-mapper or loop devices on the host:
# debootstrap into a directory, mkfs -d for the /boot and / partitions,
# sfdisk + dd to assemble an msdos-labelled raw disk (p1 200 MiB /boot
# ext2, p2 2 GiB / ext3 LABEL=root, p3 the rest). The guest's first boot
# (kernel from -kernel) puts VG `sys` on p3 and grub into the MBR, then
# powers off; that disk is the cached base. Every boot runs on a fresh
# qcow2 overlay of it, from grub (or -kernel with --kernel).
# mkfs -d only makes ext filesystems, so an xfs or btrfs root is made by
# the guest: the ext3 root goes to p3 first, a boot with init=
# rootswap-convert makes p2's filesystem and copies itself onto it, then
# wipes p3; the first boot proper follows from p2.
#
# Environment: ROOTSWAP_VM_CACHE (default /var/tmp/rootswap-vm),
# ROOTSWAP_VM_MIRROR (default: the bookworm mirror apt is configured for),
# ROOTSWAP_VM_DISK_SIZE (default 8G), ROOTSWAP_VM_BOOT_TIMEOUT (180 s),
# ROOTSWAP_VM_ACCEL (default tcg: KVM does not work on the project's machines).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${ROOTSWAP_VM_CACHE:-/var/tmp/rootswap-vm}
state=$cache/run
key=$cache/id_ed25519
disk_size=${ROOTSWAP_VM_DISK_SIZE:-8G}
boot_timeout=${ROOTSWAP_VM_BOOT_TIMEOUT:-180}
suite=bookworm

# The guest: at most 2 vCPUs and 2 GiB.
qemu_common=(qemu-system-x86_64 -accel "${ROOTSWAP_VM_ACCEL:-tcg}" -m 2048 -smp 2 -display none -nodefaults -vga none)

log() { printf 'vm.sh: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# mirror prints the bookworm mirror this machine's apt uses, read from
# sources.list or the deb822 .sources files at run time.
mirror() {
	if [ -n "${ROOTSWAP_VM_MIRROR:-}" ]; then
		echo "$ROOTSWAP_VM_MIRROR"
		return
	fi
	local m="" f
	if [ -r /etc/apt/sources.list ]; then
		m=$(awk -v s="$suite" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				if ($(i + 1) == s) { print $i; exit }
			}' /etc/apt/sources.list)
	fi
	if [ -z "$m" ]; then
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -r "$f" ] || continue
			m=$(awk -v s="$suite" '
				BEGIN { RS = ""; FS = "\n" }
				{
					uris = ""; suites = ""; types = ""
					for (i = 1; i <= NF; i++) {
						line = $i
						if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); uris = line }
						else if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); suites = " " line " " }
						else if (line ~ /^Types:/) { sub(/^Types:[ \t]*/, "", line); types = " " line " " }
					}
					if (types ~ / deb / && suites ~ (" " s " ")) { split(uris, u, " "); print u[1]; exit }
				}' "$f")
			[ -n "$m" ] && break
		done
	fi
	[ -n "$m" ] || die "no apt source for $suite found in /etc/apt/sources.list{,.d/*.sources}; set ROOTSWAP_VM_MIRROR"
	echo "$m"
}

profiles="systemd sysvinit openrc ubuntu xfs btrfs"

# profile_arg checks a profile name.
profile_arg() {
	case " $profiles " in
	*" $1 "*) echo "$1" ;;
	*) die "unknown profile '$1' (want one of: $profiles)" ;;
	esac
}

# profile_vars sets init (systemd|sysvinit|openrc), rootfs
# (ext3|ext4|xfs|btrfs) and rootflags for profile $1.
profile_vars() {
	rootflags=""
	case "$1" in
	systemd) init=systemd rootfs=ext3 ;;
	sysvinit) init=sysvinit rootfs=ext3 ;;
	openrc) init=openrc rootfs=ext3 ;;
	ubuntu) init=systemd rootfs=ext4 ;;
	xfs) init=systemd rootfs=xfs ;;
	btrfs) init=systemd rootfs=btrfs rootflags=subvol=@ ;;
	*) die "unknown profile '$1'" ;;
	esac
}

# kernel_append is the command line of a -kernel boot of profile $1.
kernel_append() {
	local init rootfs rootflags
	profile_vars "$1"
	echo "root=LABEL=root${rootflags:+ rootflags=$rootflags} console=ttyS0,115200 net.ifnames=0"
}

# ---------------------------------------------------------------- image

# Mounts for the chroot, torn down by chroot_down (also from the trap).
chroot_mounts=()
chroot_up() {
	local r=$1 d
	for d in proc sys dev dev/pts; do
		mkdir -p "$r/$d"
	done
	mount -t proc proc "$r/proc" && chroot_mounts+=("$r/proc")
	mount -t sysfs sysfs "$r/sys" && chroot_mounts+=("$r/sys")
	mount --bind /dev "$r/dev" && chroot_mounts+=("$r/dev")
	mount --bind /dev/pts "$r/dev/pts" && chroot_mounts+=("$r/dev/pts")
	# No daemon may start inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod +x "$r/usr/sbin/policy-rc.d"
}
chroot_down() {
	local i
	for ((i = ${#chroot_mounts[@]} - 1; i >= 0; i--)); do
		umount "${chroot_mounts[i]}" 2>/dev/null || umount -l "${chroot_mounts[i]}" || true
	done
	chroot_mounts=()
}
in_chroot() {
	local r=$1
	shift
	chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# Packages the story's server has, plus what the tests use.
base_packages=systemd,systemd-sysv,udev,dbus,openssh-server,openssh-sftp-server,lvm2,rsyslog,cron,initramfs-tools,e2fsprogs,lsof,zstd,kmod,procps,iproute2,psmisc

# stage_rootfs debootstraps bookworm and installs the kernel and grub into
# $cache/rootfs-common, shared by every profile. lvm2 is in before the
# kernel so the initramfs (built here, at host speed) has it.
stage_rootfs() {
	local r=$cache/rootfs-common m t
	if [ -e "$r.done" ]; then
		log "debootstrap: cached ($r)"
		return
	fi
	m=$(mirror)
	rm -rf "$r" && mkdir -p "$r"
	t=$(now)
	log "debootstrap $suite from the configured mirror into $r"
	debootstrap --variant=minbase --include="$base_packages" "$suite" "$r" "$m" >"$cache/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $cache/debootstrap.log"
	echo "debootstrap_seconds=$(elapsed "$t")" >"$cache/rootfs-times"
	log "debootstrap: $(elapsed "$t") s"

	t=$(now)
	printf 'deb %s %s main\n' "$m" "$suite" >"$r/etc/apt/sources.list"
	chroot_up "$r"
	if ! {
		in_chroot "$r" sh -c 'echo "grub-pc grub-pc/install_devices multiselect" | debconf-set-selections;
			echo "grub-pc grub-pc/install_devices_empty boolean true" | debconf-set-selections' &&
			in_chroot "$r" apt-get update -q &&
			in_chroot "$r" apt-get install -y -q --no-install-recommends linux-image-amd64 grub-pc
	} >"$cache/kernel-install.log" 2>&1; then
		chroot_down
		die "kernel/grub install failed; see $cache/kernel-install.log"
	fi
	chroot_down
	rm -f "$r/usr/sbin/policy-rc.d"
	# (no grep -q in a pipe: under pipefail its early exit fails the pipe)
	in_chroot "$r" sh -c 'lsinitramfs /boot/initrd.img-*' >"$cache/initramfs.list" 2>&1
	grep 'sbin/lvm$' "$cache/initramfs.list" >/dev/null || die "the initramfs in $r/boot has no lvm"
	echo "kernel_install_seconds=$(elapsed "$t")" >>"$cache/rootfs-times"
	log "kernel + grub install: $(elapsed "$t") s"
	touch "$r.done"
}

ensure_key() {
	[ -e "$key" ] && return
	mkdir -p "$cache"
	ssh-keygen -q -t ed25519 -N '' -C rootswap-vm -f "$key"
}

# build_image makes $cache/PROFILE/base.raw (booted once) and the kernel
# and initrd beside it.
build_image() {
	local v=$1 dir=$cache/$1 work r boot t0 t uuid root_mb boot_mb total p1 p2 p3 init rootfs rootflags
	profile_vars "$v"
	t0=$(now)
	ensure_key
	stage_rootfs
	work=$dir/work
	r=$work/rootfs
	boot=$work/boot
	rm -rf "$work" && mkdir -p "$work"
	t=$(now)
	cp -a "$cache/rootfs-common" "$r"

	mkdir -p "$r/tmp/rootswap-vm"
	cp "$here"/vm/guest-setup.sh "$here"/vm/rootswap-firstboot "$here"/vm/rootswap-firstboot.service \
		"$here"/vm/rootswap-firstboot.init "$here"/vm/rootswap-convert "$r/tmp/rootswap-vm/"
	cp "$key.pub" "$r/tmp/rootswap-vm/authorized_keys"
	uuid=$(cat /proc/sys/kernel/random/uuid)
	chroot_up "$r"
	in_chroot "$r" PROFILE="$v" INIT="$init" ROOTFS="$rootfs" BOOT_UUID="$uuid" \
		sh /tmp/rootswap-vm/guest-setup.sh >"$work/setup.log" 2>&1 || {
		chroot_down
		cp "$work/setup.log" "$dir/setup.log"
		die "guest setup failed; see $dir/setup.log"
	}
	chroot_down
	cp "$work/setup.log" "$dir/setup.log"
	rm -rf "$r/tmp/rootswap-vm" "$r/usr/sbin/policy-rc.d"

	# /boot becomes its own filesystem; the root keeps an empty mountpoint.
	mkdir -p "$boot"
	mv "$r"/boot/* "$boot"/
	cp "$boot"/vmlinuz-* "$dir/vmlinuz.new"
	cp "$boot"/initrd.img-* "$dir/initrd.img.new"
	log "$v: rootfs configured in $(elapsed "$t") s ($(du -sm "$r" | cut -f1) MiB root, $(du -sm "$boot" | cut -f1) MiB boot)"

	t=$(now)
	boot_mb=200
	root_mb=2048
	truncate -s "${boot_mb}M" "$work/boot.img"
	truncate -s "${root_mb}M" "$work/root.img"
	mke2fs -q -F -t ext2 -U "$uuid" -L boot -d "$boot" "$work/boot.img" "${boot_mb}M"
	rm -f "$dir/disk.raw.new"
	truncate -s "$disk_size" "$dir/disk.raw.new"
	total=$(($(stat -c %s "$dir/disk.raw.new") / 512))
	p1=2048
	p2=$((p1 + boot_mb * 2048))
	p3=$((p2 + root_mb * 2048))
	sfdisk -q "$dir/disk.raw.new" <<-EOF2
		label: dos
		start=$p1, size=$((boot_mb * 2048)), type=83, bootable
		start=$p2, size=$((root_mb * 2048)), type=83
		start=$p3, size=$((total - p3)), type=8e
	EOF2
	dd if="$work/boot.img" of="$dir/disk.raw.new" bs=1M seek=$((p1 / 2048)) conv=notrunc,sparse status=none
	case "$rootfs" in
	ext*)
		mke2fs -q -F -t "$rootfs" -L root -d "$r" "$work/root.img" "${root_mb}M"
		dd if="$work/root.img" of="$dir/disk.raw.new" bs=1M seek=$((p2 / 2048)) conv=notrunc,sparse status=none
		;;
	*)
		# Staged on p3 as ext3; the convert boot below moves it to p2.
		mke2fs -q -F -t ext3 -L staging -d "$r" "$work/root.img" "${root_mb}M"
		dd if="$work/root.img" of="$dir/disk.raw.new" bs=1M seek=$((p3 / 2048)) conv=notrunc,sparse status=none
		;;
	esac
	rm -rf "$work"
	log "$v: disk assembled in $(elapsed "$t") s"

	local serial
	case "$rootfs" in
	ext*) ;;
	*)
		t=$(now)
		serial=$dir/convert.serial.log
		rm -f "$serial"
		timeout 1200 "${qemu_common[@]}" -no-reboot \
			-drive file="$dir/disk.raw.new",if=virtio,format=raw \
			-kernel "$dir/vmlinuz.new" -initrd "$dir/initrd.img.new" \
			-append "root=/dev/vda3 ro init=/usr/local/sbin/rootswap-convert rootswap.fs=$rootfs console=ttyS0,115200 panic=5" \
			-nic none -serial file:"$serial" || die "$v: convert boot: qemu failed or timed out; see $serial"
		grep -q 'ROOTSWAP-CONVERT-OK' "$serial" || die "$v: the convert boot did not make the $rootfs root; see $serial"
		# The staged copy is garbage now: holes, so the cached image keeps
		# no second root (first boot puts the PV there).
		fallocate --punch-hole --offset $((p3 * 512)) --length $((root_mb * 1024 * 1024)) "$dir/disk.raw.new"
		log "$v: / made $rootfs on p2 in $(elapsed "$t") s"
		;;
	esac

	# First boot: VG sys, grub-install, update-grub, poweroff.
	t=$(now)
	serial=$dir/firstboot.serial.log
	rm -f "$serial"
	timeout 1200 "${qemu_common[@]}" -no-reboot \
		-drive file="$dir/disk.raw.new",if=virtio,format=raw \
		-kernel "$dir/vmlinuz.new" -initrd "$dir/initrd.img.new" \
		-append "$(kernel_append "$v") panic=5" \
		-nic user,model=virtio-net-pci,restrict=on \
		-serial file:"$serial" || die "$v: first boot: qemu failed or timed out; see $serial"
	grep -q 'ROOTSWAP-FIRSTBOOT-OK' "$serial" || die "$v: first boot did not finish its setup; see $serial"
	log "$v: first boot (VG, grub) in $(elapsed "$t") s"

	mv "$dir/disk.raw.new" "$dir/base.raw"
	mv "$dir/vmlinuz.new" "$dir/vmlinuz"
	mv "$dir/initrd.img.new" "$dir/initrd.img"
	{
		cat "$cache/rootfs-times" 2>/dev/null || true
		echo "first_boot_seconds=$(elapsed "$t")"
		echo "image_total_seconds=$(elapsed "$t0")"
		echo "built=$(date -u +%FT%TZ)"
	} >"$dir/build-times"
	log "$v: image ready in $(elapsed "$t0") s: $dir/base.raw" \
		"($(du -m --apparent-size "$dir/base.raw" | cut -f1) MiB apparent, $(du -m "$dir/base.raw" | cut -f1) MiB on disk)"
}

cmd_image() {
	local v=systemd rebuild=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--profile | --variant) v=$(profile_arg "${2:-}") || exit 1; shift ;;
		--profile=* | --variant=*) v=$(profile_arg "${1#*=}") || exit 1 ;;
		--rebuild) rebuild=1 ;;
		*) die "image: unknown argument $1" ;;
		esac
		shift
	done
	[ "$(id -u)" = 0 ] || die "image: needs root (debootstrap, chroot)"
	mkdir -p "$cache/$v"
	# A cached image needs no lock (another profile may be building).
	if [ "$rebuild" = 0 ] && [ -e "$cache/$v/base.raw" ]; then
		log "$v: image cached: $cache/$v/base.raw"
		return
	fi
	exec 9>"$cache/image.lock"
	flock 9
	if [ "$rebuild" = 1 ]; then
		rm -rf "$cache/rootfs-common" "$cache/rootfs-common.done" "$cache/$v/base.raw"
	fi
	if [ -e "$cache/$v/base.raw" ]; then
		log "$v: image cached: $cache/$v/base.raw"
		return
	fi
	trap chroot_down EXIT
	build_image "$v"
	trap - EXIT
}

# ---------------------------------------------------------------- run

running() {
	[ -e "$state/qemu.pid" ] && kill -0 "$(cat "$state/qemu.pid")" 2>/dev/null
}

free_port() {
	local p i
	for i in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		ss -Hltn "sport = :$p" | grep -q . || {
			echo "$p"
			return
		}
	done
	die "no free TCP port found"
}

ssh_opts() {
	echo -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o ConnectTimeout=5 -o LogLevel=ERROR -o IdentitiesOnly=yes
}

cmd_boot() {
	local v=systemd kernel=0 port t i
	while [ $# -gt 0 ]; do
		case "$1" in
		--profile | --variant) v=$(profile_arg "${2:-}") || exit 1; shift ;;
		--profile=* | --variant=*) v=$(profile_arg "${1#*=}") || exit 1 ;;
		--kernel) kernel=1 ;;
		*) die "boot: unknown argument $1" ;;
		esac
		shift
	done
	running && die "a guest is already running (pid $(cat "$state/qemu.pid"), port $(cat "$state/port")); vm.sh stop first"
	[ -e "$cache/$v/base.raw" ] || die "no $v image in $cache; run: vm.sh image --profile $v"
	rm -rf "$state" && mkdir -p "$state"
	qemu-img create -q -f qcow2 -b "$cache/$v/base.raw" -F raw "$state/overlay.qcow2"
	echo "$v" >"$state/variant"
	local bootargs=()
	if [ "$kernel" = 1 ]; then
		# root= comes from here, not from grub.cfg: after `rootswap finish`
		# only a grub boot follows the new root.
		bootargs=(-kernel "$cache/$v/vmlinuz" -initrd "$cache/$v/initrd.img"
			-append "$(kernel_append "$v")")
	fi
	t=$(now)
	for i in 1 2 3; do
		port=$(free_port)
		if "${qemu_common[@]}" "${bootargs[@]}" \
			-drive file="$state/overlay.qcow2",if=virtio,format=qcow2 \
			-nic user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:"$port"-:22 \
			-serial file:"$state/serial.log" \
			-daemonize -pidfile "$state/qemu.pid" 2>"$state/qemu.err"; then
			break
		fi
		port=""
	done
	[ -n "$port" ] || die "qemu did not start: $(cat "$state/qemu.err")"
	echo "$port" >"$state/port"
	log "$v guest started (pid $(cat "$state/qemu.pid"), ssh 127.0.0.1:$port, serial $state/serial.log)"
	wait_ssh "$boot_timeout" || die "no SSH after ${boot_timeout} s; see $state/serial.log"
	log "SSH up after $(elapsed "$t") s"
	echo "$port"
}

# wait_ssh polls a fresh SSH login every second until it works.
wait_ssh() {
	local limit=$1 i
	for ((i = 0; i < limit; i++)); do
		running || return 1
		# shellcheck disable=SC2046
		ssh $(ssh_opts) -p "$(cat "$state/port")" root@127.0.0.1 true 2>/dev/null && return 0
		sleep 1
	done
	return 1
}

# cmd_ssh passes leading options (-o X, -t, ...) to ssh before the
# defaults, since ssh keeps the first value it sees for each option.
cmd_ssh() {
	running || die "no guest running"
	local opts=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--) shift && break ;;
		-o | -i | -l | -F | -E) opts+=("$1" "$2") && shift 2 ;;
		-*) opts+=("$1") && shift ;;
		*) break ;;
		esac
	done
	# shellcheck disable=SC2046
	exec ssh "${opts[@]}" $(ssh_opts) -p "$(cat "$state/port")" root@127.0.0.1 "$@"
}

cmd_scp() {
	[ $# = 2 ] || die "usage: vm.sh scp SRC DST (guest paths as vm:PATH)"
	running || die "no guest running"
	local a b
	a=${1/#vm:/root@127.0.0.1:}
	b=${2/#vm:/root@127.0.0.1:}
	# shellcheck disable=SC2046
	exec scp -q $(ssh_opts) -P "$(cat "$state/port")" "$a" "$b"
}

cmd_wait_ssh() {
	running || die "no guest running"
	wait_ssh "${1:-$boot_timeout}"
}

cmd_stop() {
	local pid i
	if running; then
		pid=$(cat "$state/qemu.pid")
		# shellcheck disable=SC2046
		timeout 15 ssh $(ssh_opts) -p "$(cat "$state/port")" root@127.0.0.1 poweroff >/dev/null 2>&1 || true
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "guest did not power off in 60 s; killing qemu $pid"
			kill "$pid" 2>/dev/null || true
			sleep 1
			kill -9 "$pid" 2>/dev/null || true
		fi
		log "guest stopped"
	fi
	rm -f "$state/overlay.qcow2" "$state/qemu.pid" "$state/port"
}

cmd_status() {
	local v
	if running; then
		echo "running: pid $(cat "$state/qemu.pid") profile $(cat "$state/variant") ssh 127.0.0.1:$(cat "$state/port")"
		echo "overlay: $state/overlay.qcow2 ($(du -m "$state/overlay.qcow2" | cut -f1) MiB)"
		echo "serial:  $state/serial.log"
	else
		echo "running: no"
	fi
	for v in $profiles; do
		if [ -e "$cache/$v/base.raw" ]; then
			echo "image $v: $cache/$v/base.raw ($(du -m "$cache/$v/base.raw" | cut -f1) MiB used of $(du -m --apparent-size "$cache/$v/base.raw" | cut -f1) MiB)" \
				"$(tr '\n' ' ' <"$cache/$v/build-times" 2>/dev/null)"
		else
			echo "image $v: not built"
		fi
	done
}

sub=${1:-}
[ $# -gt 0 ] && shift
case "$sub" in
image) cmd_image "$@" ;;
boot) cmd_boot "$@" ;;
ssh) cmd_ssh "$@" ;;
scp) cmd_scp "$@" ;;
wait-ssh) cmd_wait_ssh "$@" ;;
stop) cmd_stop ;;
status) cmd_status ;;
port) running && cat "$state/port" ;;
profiles) printf '%s\n' $profiles ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
