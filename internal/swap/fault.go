package swap

import (
	"fmt"
	"strings"
	"time"
)

// FaultEnv names steps (comma-separated) that the engine fails on purpose
// before running them; "STEP:hang" blocks there instead, so a test can
// kill the engine at that point. "STEP/OP#N:hang" blocks right after the
// step's Nth operation of that kind (pivot, private, move, mount,
// unmount, remount), before its outcome is journaled: "pivot/private#1:hang",
// "move-mounts/move#2:hang"; "precopy/round#N:hang" and
// "copy/frozen:hang" block once the first chunk of that copy round is
// written. It exists for the root tests that prove
// rollback from every step; an admin never sets it.
const FaultEnv = "ROOTSWAP_TEST_FAULT"

// InjectFromEnv turns the value of FaultEnv into an Engine.Inject. note,
// when set, is told the point before the engine hangs there.
func InjectFromEnv(v string, note func(string)) func(string) error {
	if v == "" {
		return nil
	}
	fail, hang := map[string]bool{}, map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if name, ok := strings.CutSuffix(s, ":hang"); ok {
			hang[name] = true
		} else {
			fail[s] = true
		}
	}
	return func(step string) error {
		if hang[step] {
			if note != nil {
				note("fault injected: hanging at " + step)
			}
			for {
				time.Sleep(time.Hour)
			}
		}
		if fail[step] {
			return fmt.Errorf("injected fault (%s=%s)", FaultEnv, v)
		}
		return nil
	}
}
