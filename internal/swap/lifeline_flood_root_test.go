package swap_test

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// dialFromIn connects to addr from the address src ("": any) inside the
// server's network namespace, on a thread that joined it (its loopback:
// 127.0.0.2 and so on are distinct sources to the lifeline).
func dialFromIn(s server, src, addr string) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies in the server's netns
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", s.PID1()))
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		if src != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		c, err := d.Dial("tcp", addr)
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// sshFrom runs cmd through the lifeline from the address src ("": any).
// Not reaching the lifeline at all fails the test.
func sshFrom(t *testing.T, s server, src string, cfg *ssh.ClientConfig, cmd string) (string, error) {
	t.Helper()
	conn, err := dialFromIn(s, src, "127.0.0.1:2222")
	if err != nil {
		t.Errorf("dial the lifeline from %q: %v", src, err)
		return "", err
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, "lifeline", cfg)
	if err != nil {
		conn.Close()
		return "", err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}

// userKey is a client configuration for user with key.
func userKey(user string, key ssh.Signer) *ssh.ClientConfig {
	cfg := clientConfig(ssh.PublicKeys(key))
	cfg.User = user
	return cfg
}

// Issue 13's flood during a swap: from the moment the lifeline listens,
// hundreds of connections from 127.0.0.2 that send nothing and dozens of
// clients offering refused keys with 60 KiB user names. The admin, from
// 127.0.0.3, gets in on the first try; the engine's log stays small, its
// tmpfs keeps its room; the swap ends as confirmed, its journal whole.
func TestLifelineFloodDuringSwap(t *testing.T) {
	s, admin := startWithKey(t)
	ran := make(chan string, 1)
	go func() {
		out, code := s.sh(nil, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --confirm-timeout 120s")
		ran <- fmt.Sprintf("exit %d\n%s", code, out)
	}()
	for i := 0; ; i++ {
		c, err := dialFromIn(s, "127.0.0.9", "127.0.0.1:2222")
		if err == nil {
			c.Close()
			break
		}
		if i > 600 {
			t.Fatalf("the lifeline never listened: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		if c, err := dialFromIn(s, "127.0.0.2", "127.0.0.1:2222"); err == nil {
			idle = append(idle, c)
		}
	}
	huge := strings.Repeat("x", 60<<10)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		stranger, _ := newKey(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 3; j++ {
				if _, err := sshFrom(t, s, fmt.Sprintf("127.0.1.%d", 10+i), userKey(huge, stranger), "true"); err == nil {
					t.Error("a stranger's key was let in")
				}
			}
		}()
	}
	wg.Wait()
	out := <-ran
	if !strings.HasPrefix(out, "exit 0\n") {
		t.Fatalf("run during the flood: %s", out)
	}
	for i := 0; ; i++ {
		st, _ := s.sh(nil, "/usr/sbin/rootswap status")
		if strings.HasPrefix(st, "waiting-confirm") {
			break
		}
		if i > 100 {
			t.Fatalf("never waiting for confirmation:\n%s", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, err := sshFrom(t, s, "127.0.0.3", userKey("root", admin), "PATH=; rootswap status | head -n 1")
	if err != nil || got != "waiting-confirm\n" {
		t.Fatalf("the admin's login through the lifeline during the flood: %v\n%s", err, got)
	}
	log, _ := s.sh(nil, "/bin/busybox cat /run/rootswap/engine.log")
	for _, l := range strings.Split(log, "\n") {
		if len(l) > 600 {
			t.Errorf("engine.log line of %d bytes: %.200q", len(l), l)
		}
	}
	if len(log) > 128<<10 {
		t.Errorf("engine.log holds %d bytes after the flood", len(log))
	}
	df, _ := s.sh(nil, "/bin/busybox df -k /run/rootswap | /bin/busybox tail -n 1")
	var dev string
	var size, used int64
	if _, err := fmt.Sscan(df, &dev, &size, &used); err != nil || used*2 > size {
		t.Errorf("the engine's tmpfs after the flood (%v): %s", err, df)
	}
	if out, code := s.sh(nil, "/usr/sbin/rootswap confirm"); code != 0 {
		t.Fatalf("confirm: %d\n%s", code, out)
	}
	status, code := s.waitDone()
	if code != 0 || !strings.HasPrefix(status, "succeeded") {
		t.Fatalf("status %d after the flood:\n%s", code, status)
	}
	s.checkOn(s.snapshot(), s.TargetDev)
	t.Logf("engine.log: %d bytes; tmpfs: %s", len(log), strings.TrimSpace(df))
}
