#!/bin/sh
# Runs inside the chroot of the test machine's root (build/vm.sh image),
# after debootstrap and the kernel install. Environment: PROFILE (the
# profile's name), INIT (systemd|sysvinit|openrc), ROOTFS
# (ext3|ext4|xfs|btrfs), BOOT_UUID (the /boot filesystem's UUID). The
# files it installs were copied by vm.sh to /tmp/rootswap-vm/.
set -eu
src=/tmp/rootswap-vm
export DEBIAN_FRONTEND=noninteractive

echo rootswap-vm >/etc/hostname
cat >/etc/hosts <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	rootswap-vm
::1		localhost ip6-localhost ip6-loopback
HOSTS

# What the guest is, for rootswap-firstboot and the e2e checks.
mkdir -p /etc/rootswap-vm
printf 'PROFILE=%s\nINIT=%s\nROOTFS=%s\n' "$PROFILE" "$INIT" "$ROOTFS" >/etc/rootswap-vm/profile

# The story's layout: /boot on p1, / on p2 found by its label.
{
	printf '# <file system>\t<mount point>\t<type>\t<options>\t\t<dump>\t<pass>\n'
	case "$ROOTFS" in
	ext*) printf 'LABEL=root\t/\t\t%s\terrors=remount-ro\t0\t1\n' "$ROOTFS" ;;
	xfs) printf 'LABEL=root\t/\t\txfs\tdefaults\t\t0\t0\n' ;;
	btrfs)
		printf 'LABEL=root\t/\t\tbtrfs\tdefaults,subvol=@\t0\t0\n'
		printf 'LABEL=root\t/home\t\tbtrfs\tdefaults,subvol=@home\t0\t0\n'
		;;
	*) echo "guest-setup: unknown ROOTFS $ROOTFS" >&2 && exit 2 ;;
	esac
	printf 'UUID=%s\t/boot\t\text2\tdefaults\t\t0\t2\n' "$BOOT_UUID"
} >/etc/fstab

# No password login at all: the key in authorized_keys is the way in.
usermod -p '*' root
install -d -m 0700 /root/.ssh
install -m 0600 $src/authorized_keys /root/.ssh/authorized_keys
cat >/etc/ssh/sshd_config.d/rootswap-vm.conf <<'SSHD'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
SSHD

# Serial console and predictable-name-free eth0, for grub boots too.
cat >/etc/default/grub <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=0"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | debconf-set-selections

install -m 0755 $src/rootswap-firstboot /usr/local/sbin/rootswap-firstboot
install -m 0755 $src/rootswap-convert /usr/local/sbin/rootswap-convert

# The tools the root's filesystem needs (the convert boot's mkfs, the
# engine's grow and check).
case "$ROOTFS" in
xfs) apt-get install -y -q --no-install-recommends xfsprogs ;;
btrfs) apt-get install -y -q --no-install-recommends btrfs-progs ;;
esac

case "$INIT" in
systemd)
	# DHCP on qemu's user net; keep the lease across a networkd restart
	# (the swap restarts services) so SSH does not drop for that.
	cat >/etc/systemd/network/10-eth.network <<'NET'
[Match]
Name=eth* en*

[Network]
DHCP=ipv4
KeepConfiguration=dhcp

[DHCPv4]
SendRelease=no
NET
	systemctl enable systemd-networkd.service
	install -m 0644 $src/rootswap-firstboot.service /etc/systemd/system/
	systemctl enable rootswap-firstboot.service
	# Timers that would use CPU (slow under TCG) or the network (there is none).
	for t in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
		systemctl mask "$t"
	done
	;;
sysvinit | openrc)
	# orphan-sysvinit-scripts: bookworm's rsyslog has no init script of
	# its own any more.
	if [ "$INIT" = openrc ]; then
		# sysvinit-core stays PID 1; OpenRC replaces sysv-rc as the
		# service manager (inittab runs openrc for each runlevel).
		apt-get install -y -q --no-install-recommends sysvinit-core openrc ifupdown isc-dhcp-client orphan-sysvinit-scripts
	else
		apt-get install -y -q --no-install-recommends sysvinit-core ifupdown isc-dhcp-client orphan-sysvinit-scripts
	fi
	cat >/etc/network/interfaces <<'NET'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
NET
	install -m 0755 $src/rootswap-firstboot.init /etc/init.d/rootswap-firstboot
	update-rc.d rootswap-firstboot defaults
	;;
*)
	echo "guest-setup: unknown INIT $INIT" >&2
	exit 2
	;;
esac

if [ "$PROFILE" = ubuntu ]; then
	# An Ubuntu server's usual extras. docker.io runs a container from an
	# image imported from a tarball (there is no registry to pull from),
	# made by rootswap-firstboot with dockerd running; the swap file
	# /swap.img is made there too (mkfs -d would copy it with holes).
	# apparmor: dockerd loads its docker-default profile with
	# apparmor_parser whenever the kernel has AppArmor on (Debian's does).
	apt-get install -y -q --no-install-recommends docker.io apparmor squashfs-tools busybox-static
	mkdir -p /var/lib/rootswap-vm/ctr/bin
	cp /bin/busybox /var/lib/rootswap-vm/ctr/bin/busybox
	ln -s busybox /var/lib/rootswap-vm/ctr/bin/sh
	tar -C /var/lib/rootswap-vm/ctr -cf /var/lib/rootswap-vm/ctr-rootfs.tar .
	rm -rf /var/lib/rootswap-vm/ctr
	mkdir -p /srv/ctr-data

	# A snap, as snapd lays it out: a squashfs image under
	# /var/lib/snapd/snaps, loop-mounted by a mount unit at /snap/NAME/REV,
	# and a daemon whose executable lives on it.
	rm -rf /tmp/snap && mkdir -p /tmp/snap/bin
	cp /usr/bin/sleep /tmp/snap/bin/hello-daemon
	mkdir -p /var/lib/snapd/snaps /snap/hello/1
	mksquashfs /tmp/snap /var/lib/snapd/snaps/hello_1.snap -noappend -quiet -all-root
	rm -rf /tmp/snap
	cat >/etc/systemd/system/snap-hello-1.mount <<'UNIT'
[Unit]
Description=Mount unit for hello, revision 1

[Mount]
What=/var/lib/snapd/snaps/hello_1.snap
Where=/snap/hello/1
Type=squashfs
Options=nodev,ro,x-gdu.hide

[Install]
WantedBy=multi-user.target
UNIT
	cat >/etc/systemd/system/snap.hello.daemon.service <<'UNIT'
[Unit]
Description=Service for snap application hello.daemon
Requires=snap-hello-1.mount
After=snap-hello-1.mount

[Service]
ExecStart=/snap/hello/1/bin/hello-daemon infinity
WorkingDirectory=/snap/hello/1
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
	systemctl enable snap-hello-1.mount snap.hello.daemon.service docker.service
fi

apt-get clean
rm -rf /var/lib/apt/lists/*
