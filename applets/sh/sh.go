// Package sh is the sh applet: the rescue shell (package rescue), also
// installed as `rescue`.
package sh

import (
	"context"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/rescue"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "rescue shell: applets and basic commands in-process"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap sh [-eux] [-c CMD [NAME [ARG]...] | SCRIPT [ARG]...]
A shell (POSIX sh with bash extensions, mvdan.cc/sh) whose commands need no
program on disk: every rootswap applet (also as "rootswap APPLET") and
ls cat cp mv rm mkdir rmdir ln stat touch head tail grep wc sleep
mount umount df ps kill free dmesg chroot sync reboot poweroff
run in-process, so it works with an empty PATH and no /bin. Other names
are looked up in PATH. "help" lists everything; "CMD -h" its options.
With no CMD or SCRIPT it is interactive when stdin is a terminal (line
editing: arrows, Ctrl-A/E/U/K/W/C/D, history; $HISTFILE keeps it),
else it runs the script read from stdin.
  -c CMD  run CMD; NAME is $0, ARGs are $1...
  -e      exit when a command fails    -u  unset variables are errors
  -x      print commands as they run   -i  interactive without a terminal
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	return rescue.Run(ctx, env, rescue.Options{Chdir: true}, args)
}
