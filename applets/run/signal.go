package run

import (
	"os"
	"os/signal"
)

func signalIgnoreOne(s os.Signal) { signal.Ignore(s) }
