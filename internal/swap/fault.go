package swap

import (
	"fmt"
	"strings"
	"time"
)

// FaultEnv names steps (comma-separated) that the engine fails on purpose
// before running them; "STEP:hang" blocks there instead, so a test can
// kill the engine at that point. It exists for the root tests that prove
// rollback from every step; an admin never sets it.
const FaultEnv = "ROOTSWAP_TEST_FAULT"

// InjectFromEnv turns the value of FaultEnv into an Engine.Inject.
func InjectFromEnv(v string) func(string) error {
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
