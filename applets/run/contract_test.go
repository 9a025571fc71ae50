package run

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/applets/plan"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
)

// fakeMachine is a /proc and /sys that hold still between plan and run:
// a root on 8:2, no processes, no block devices.
func fakeMachine(t *testing.T) (proc, sys string) {
	t.Helper()
	dir := t.TempDir()
	proc, sys = filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
	for name, text := range map[string]string{
		"proc/self/mountinfo": "15 1 8:2 / / rw,noatime - ext4 /dev/sda2 rw\n16 15 0:22 / /run rw,nosuid - tmpfs tmpfs rw\n",
		"proc/1/comm":         "tini\n",
		"proc/meminfo":        "MemTotal: 2048000 kB\nMemAvailable: 1024000 kB\n",
		"sys/block/.keep":     "",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return proc, sys
}

// invoke runs an applet's Main on the fake machine with an empty stdin
// (run stops at its question, before it acts) and returns its output and
// exit status.
func invoke(t *testing.T, main func(context.Context, *cli.Env, []string) error, args []string, proc, sys string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	env := cli.OSEnv()
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(""), &out, &out
	env.ProcRoot, env.SysRoot = proc, sys
	err := main(context.Background(), env, args)
	var code cli.ExitCode
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &code):
		return out.String(), int(code)
	case errors.Is(err, cli.ErrUsage):
		return out.String() + err.Error(), 2
	}
	return out.String() + err.Error(), 1
}

// contract is the report up to run's question: the checks, the steps
// with their timeouts, the lifeline, the verdict and every blocker.
func contract(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "This overwrites") || strings.HasPrefix(l, "Type yes") {
			break
		}
		keep = append(keep, l)
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

// plan with run's flags shows the steps, timeouts and checks run takes,
// and refuses whatever run refuses.
func TestPlanIsRunsContract(t *testing.T) {
	target := "/dev/rootswap-contract-test-missing"
	for _, c := range []struct {
		args []string
		want []string // in both outputs
	}{
		{[]string{"--to", target, "--no-bpf"},
			[]string{"wait 2m0s for `rootswap confirm`", "wait up to 5m0s (--release-timeout)", "11. lifeline: SSH port 2222 on every address"}},
		{[]string{"--to", target, "--no-bpf", "--no-lifeline", "--confirm-timeout", "90"},
			[]string{"wait 1m30s for `rootswap confirm`", "11. lifeline: off (--no-lifeline)"}},
		{[]string{"--to", target, "--no-bpf", "--no-lifeline", "--confirm-timeout", "0", "--release-timeout", "1m", "--kill", "--stop", "cron", "--keep", "ssh"},
			[]string{"confirm automatically (--confirm-timeout 0)", "wait up to 1m0s (--release-timeout)"}},
		{[]string{"--to", target, "--no-bpf", "--lifeline-port", "2022", "--lifeline-listen", "127.0.0.1", "--release-wait", "20s", "--yes"},
			[]string{"SSH port 2022 on 127.0.0.1", "wait up to 20s (--release-timeout)"}},
	} {
		proc, sys := fakeMachine(t)
		pout, pcode := invoke(t, plan.Main, c.args, proc, sys)
		rout, rcode := invoke(t, Main, c.args, proc, sys)
		if pcode != rcode {
			t.Errorf("%q: plan exits %d, run %d\nplan:\n%s\nrun:\n%s", c.args, pcode, rcode, pout, rout)
		}
		if pcode == 0 {
			t.Errorf("%q: plan exits 0 for a missing target", c.args)
		}
		if p, r := contract(pout), contract(rout); p != r {
			t.Errorf("%q: plan and run differ\nplan:\n%s\nrun:\n%s", c.args, p, r)
		}
		for _, w := range c.want {
			if !strings.Contains(pout, w) {
				t.Errorf("%q: plan lacks %q:\n%s", c.args, w, pout)
			}
		}
	}
}

// A lifeline without a key refuses the swap in plan as in run.
func TestPlanRefusesWithoutLifelineKey(t *testing.T) {
	if _, err := os.Stat("/root/.ssh/authorized_keys"); err == nil {
		t.Skip("/root/.ssh/authorized_keys exists here")
	}
	proc, sys := fakeMachine(t)
	out, code := invoke(t, plan.Main, []string{"--to", "/dev/rootswap-contract-test-missing", "--no-bpf"}, proc, sys)
	if code != 3 || !strings.Contains(out, "lifeline SSH: ") || !strings.Contains(out, "or pass --no-lifeline") {
		t.Errorf("plan without a lifeline key: exit %d\n%s", code, out)
	}
}

// Bad flag values are usage errors in both, before anything is looked at.
func TestSharedUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--to", "/dev/x", "--confirm-timeout", "soon"},
		{"--to", "/dev/x", "--release-timeout", "-5"},
		{"--to", "/dev/x", "--backup", "/srv/old.img"},
		{"--to", "/dev/x", "--lifeline-port", "0"},
		{"--no-lifeline"},
	} {
		for name, main := range map[string]func(context.Context, *cli.Env, []string) error{"plan": plan.Main, "run": Main} {
			if out, code := invoke(t, main, args, "/nonexistent/proc", "/nonexistent/sys"); code != 2 {
				t.Errorf("%s %q: exit %d, want 2 (usage)\n%s", name, args, code, out)
			}
		}
	}
}

// The lifeline's options as plan and run both show and check them: the
// address of the admin's SSH session by default, --lifeline-keys (a file
// of root's that nobody else may write) in place of root's keys.
func TestLifelineOptionsInPlanAndRun(t *testing.T) {
	testutil.RequireRoot(t) // --lifeline-keys must be root's
	// Not under /tmp, which others may write: the check goes up to /.
	dir, err := os.MkdirTemp("/run", "rootswap-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	keys := filepath.Join(dir, "lifeline-keys")
	line := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin\n"
	if err := os.WriteFile(keys, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_CONNECTION", "192.0.2.9 50000 127.0.0.77 22")
	args := []string{"--to", "/dev/rootswap-contract-test-missing", "--no-bpf", "--lifeline-keys", keys}
	want := "11. lifeline: SSH port 2222 on 127.0.0.77, 1 key(s) from " + keys + " ("
	for name, main := range map[string]func(context.Context, *cli.Env, []string) error{"plan": plan.Main, "run": Main} {
		proc, sys := fakeMachine(t)
		if out, _ := invoke(t, main, args, proc, sys); !strings.Contains(out, want) {
			t.Errorf("%s: output lacks %q:\n%s", name, want, out)
		}
		if err := os.Chmod(keys, 0o666); err != nil {
			t.Fatal(err)
		}
		out, code := invoke(t, main, args, proc, sys)
		if code != 3 || !strings.Contains(out, "lifeline SSH: "+keys+" (for "+keys+") is writable by group or others") {
			t.Errorf("%s with a world-writable --lifeline-keys: exit %d\n%s", name, code, out)
		}
		os.Chmod(keys, 0o600)
	}
}
