// Package applets is the command table of the rootswap multicall binary
// and its dispatcher: every applet is listed here once, and help, --list
// and --install are generated from this list.
package applets

import (
	"github.com/rootswap/rootswap/applets/bootguard"
	"github.com/rootswap/rootswap/applets/confirm"
	"github.com/rootswap/rootswap/applets/cpfs"
	"github.com/rootswap/rootswap/applets/dd"
	"github.com/rootswap/rootswap/applets/finish"
	"github.com/rootswap/rootswap/applets/fsck"
	"github.com/rootswap/rootswap/applets/lsof"
	"github.com/rootswap/rootswap/applets/mountmove"
	"github.com/rootswap/rootswap/applets/pivot"
	"github.com/rootswap/rootswap/applets/plan"
	"github.com/rootswap/rootswap/applets/relabel"
	"github.com/rootswap/rootswap/applets/resize"
	"github.com/rootswap/rootswap/applets/rollback"
	"github.com/rootswap/rootswap/applets/run"
	"github.com/rootswap/rootswap/applets/sh"
	"github.com/rootswap/rootswap/applets/status"
	"github.com/rootswap/rootswap/applets/telinitu"
	"github.com/rootswap/rootswap/internal/cli"
)

// Table returns the applets in the order help lists them: the
// procedure's order, inspection first; then the lab's (labApplets).
func Table() []cli.Applet {
	return append([]cli.Applet{
		{Name: "lsof", Summary: lsof.Summary, Usage: lsof.Usage, Main: lsof.Main},
		{Name: "plan", Summary: plan.Summary, Usage: plan.Usage, Main: plan.Main},
		{Name: "run", Summary: run.Summary, Usage: run.Usage, Main: run.Main},
		{Name: "status", Summary: status.Summary, Usage: status.Usage, Main: status.Main},
		{Name: "confirm", Summary: confirm.Summary, Usage: confirm.Usage, Main: confirm.Main},
		{Name: "rollback", Summary: rollback.Summary, Usage: rollback.Usage, Main: rollback.Main},
		{Name: "finish", Summary: finish.Summary, Usage: finish.Usage, Main: finish.Main},
		{Name: "bootguard", Aliases: []string{"rootswap-bootguard"}, Summary: bootguard.Summary, Usage: bootguard.Usage, Main: bootguard.Main},
		{Name: "dd", Summary: dd.Summary, Usage: dd.Usage, Main: dd.Main},
		{Name: "cpfs", Summary: cpfs.Summary, Usage: cpfs.Usage, Main: cpfs.Main},
		{Name: "fsck", Summary: fsck.Summary, Usage: fsck.Usage, Main: fsck.Main},
		{Name: "resize", Summary: resize.Summary, Usage: resize.Usage, Main: resize.Main},
		{Name: "tune2fs-relabel", Summary: relabel.Summary, Usage: relabel.Usage, Main: relabel.Main},
		{Name: "pivot", Summary: pivot.Summary, Usage: pivot.Usage, Main: pivot.Main},
		{Name: "mount-move", Summary: mountmove.Summary, Usage: mountmove.Usage, Main: mountmove.Main},
		{Name: "telinit-u", Summary: telinitu.Summary, Usage: telinitu.Usage, Main: telinitu.Main},
		{Name: "sh", Aliases: []string{"rescue"}, Summary: sh.Summary, Usage: sh.Usage, Main: sh.Main},
	}, labApplets()...)
}
