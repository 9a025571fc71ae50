package bootguard

// Unit is a file of the confirmation unit, under the new root.
type Unit struct {
	Path string // /etc/systemd/system/rootswap-firstboot.service
	Text string // empty: a symlink to Link
	Link string
	Mode uint32
}

// UnitName is the confirmation unit's name in every init system.
const UnitName = "rootswap-firstboot"

// Units are the confirmation unit's files for an init system: "systemd",
// "sysv" (an LSB script, enabled by update-rc.d, which Debian's OpenRC
// honours too) or "openrc" (openrc-run, linked into the default runlevel).
// The unit runs `rootswap-bootguard confirm` once the network and sshd
// are started; it waits for sshd's banner itself, and does nothing on the
// boots after a confirmation.
func Units(kind string) []Unit {
	const run = GuardPath + " confirm"
	switch kind {
	case "systemd":
		p := "/etc/systemd/system/" + UnitName + ".service"
		return []Unit{{Path: p, Mode: 0o644, Text: `[Unit]
Description=rootswap: confirm the first boot of the new root (rootswap status)
After=network-online.target ssh.service sshd.service
RequiresMountsFor=/boot
ConditionPathExists=` + RootRecord + `

[Service]
Type=simple
ExecStart=` + run + `

[Install]
WantedBy=multi-user.target
`}, {Path: "/etc/systemd/system/multi-user.target.wants/" + UnitName + ".service", Link: p}}
	case "sysv":
		return []Unit{{Path: "/etc/init.d/" + UnitName, Mode: 0o755, Text: `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ` + UnitName + `
# Required-Start:    $remote_fs $network
# Should-Start:      ssh sshd
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:
# Short-Description: rootswap: confirm the first boot of the new root
### END INIT INFO
case "$1" in
start) [ -e ` + RootRecord + ` ] && ` + run + ` </dev/null >/dev/null 2>&1 & ;;
esac
exit 0
`}}
	case "openrc":
		p := "/etc/init.d/" + UnitName
		return []Unit{{Path: p, Mode: 0o755, Text: `#!/sbin/openrc-run
description="rootswap: confirm the first boot of the new root"
depend() { need net; after sshd; }
start() { ` + run + ` </dev/null >/dev/null 2>&1 & }
`}, {Path: "/etc/runlevels/default/" + UnitName, Link: p}}
	}
	return nil
}
