//go:build !demo

package applets

import "github.com/rootswap/rootswap/internal/cli"

// labApplets: the shipped binary has no lab applet (see lab_demo.go).
func labApplets() []cli.Applet { return nil }
