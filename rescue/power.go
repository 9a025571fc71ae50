package rescue

import (
	"bufio"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

func powerCommands() map[string]command {
	return map[string]command{
		"sync":     {usage: "usage: sync   (flush every filesystem's dirty data)\n", run: syncCmd},
		"reboot":   {usage: "usage: reboot [-f]\n  restarts the machine at once: services are not stopped, filesystems not unmounted (sync is done)\n  asks to type 'reboot' unless -f\n", run: powerCmd("reboot", unix.LINUX_REBOOT_CMD_RESTART)},
		"poweroff": {usage: "usage: poweroff [-f]\n  powers the machine off at once: services are not stopped, filesystems not unmounted (sync is done)\n  asks to type 'poweroff' unless -f\n", run: powerCmd("poweroff", unix.LINUX_REBOOT_CMD_POWER_OFF)},
		"chroot":   {usage: "usage: chroot DIR [COMMAND [ARG]...]\n  runs COMMAND (default /bin/sh, else this rescue shell via DIR/proc) with DIR as /\n", run: chroot},
	}
}

func syncCmd(c *call) error {
	if _, operands, err := getopt(c.args, "", "", false); err != nil {
		return err
	} else if len(operands) > 0 {
		return usagef("no operands")
	}
	unix.Sync()
	return nil
}

// powerCmd is reboot or poweroff: reboot(2) right away, after sync, once
// the admin typed the command's name (a stray line in a pasted script must
// not take the machine down).
func powerCmd(name string, how int) func(c *call) error {
	return func(c *call) error {
		o, operands, err := getopt(c.args, "f", "", false)
		if err != nil {
			return err
		}
		if len(operands) > 0 {
			return usagef("no operands")
		}
		if !o.has('f') {
			fmt.Fprintf(c.stderr, "%s: this %s the machine now, without stopping services or unmounting filesystems.\ntype '%s' to confirm: ",
				name, map[string]string{"reboot": "restarts", "poweroff": "powers off"}[name], name)
			answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
			if strings.TrimSpace(answer) != name {
				fmt.Fprintf(c.stderr, "%s: not confirmed, nothing done\n", name)
				return exitStatus(1)
			}
		}
		unix.Sync()
		if err := c.sh.reboot(how); err != nil {
			return fmt.Errorf("reboot(%s): %w", map[int]string{unix.LINUX_REBOOT_CMD_RESTART: "LINUX_REBOOT_CMD_RESTART", unix.LINUX_REBOOT_CMD_POWER_OFF: "LINUX_REBOOT_CMD_POWER_OFF"}[how], err)
		}
		return nil
	}
}
