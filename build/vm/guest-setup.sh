#!/bin/sh
# Runs inside the chroot of the test machine's root (build/vm.sh image),
# after debootstrap and the kernel install. Environment: VARIANT
# (systemd|sysvinit), BOOT_UUID (the /boot filesystem's UUID). The files
# it installs were copied by vm.sh to /tmp/rootswap-vm/.
set -eu
src=/tmp/rootswap-vm
export DEBIAN_FRONTEND=noninteractive

echo rootswap-vm >/etc/hostname
cat >/etc/hosts <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	rootswap-vm
::1		localhost ip6-localhost ip6-loopback
HOSTS

# The story's layout: /boot on p1, / on p2 found by its label.
cat >/etc/fstab <<FSTAB
# <file system>	<mount point>	<type>	<options>		<dump>	<pass>
LABEL=root	/		ext3	errors=remount-ro	0	1
UUID=$BOOT_UUID	/boot		ext2	defaults		0	2
FSTAB

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

case "$VARIANT" in
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
sysvinit)
	apt-get install -y --no-install-recommends sysvinit-core ifupdown isc-dhcp-client
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
	echo "guest-setup: unknown VARIANT $VARIANT" >&2
	exit 2
	;;
esac

apt-get clean
rm -rf /var/lib/apt/lists/*
