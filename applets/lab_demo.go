//go:build demo

package applets

import (
	"github.com/rootswap/rootswap/applets/demo"
	"github.com/rootswap/rootswap/internal/cli"
)

// labApplets: `make demo` builds rootswap-demo with the demo tag, which
// adds the sandbox server's builder (internal/sandbox, 127 KB of the
// binary) that a server being swapped never needs.
func labApplets() []cli.Applet {
	return []cli.Applet{{Name: "demo", Summary: demo.Summary, Usage: demo.Usage, Main: demo.Main}}
}
