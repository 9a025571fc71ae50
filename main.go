// Command rootswap replaces the root filesystem of a running Linux host.
package main

import (
	"os"

	"github.com/rootswap/rootswap/applets"
)

func main() { os.Exit(applets.Main(os.Args)) }
