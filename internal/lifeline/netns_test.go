package lifeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/testutil"
)

// inNetNS runs fn on an OS thread with a network namespace of its own,
// holding only a loopback interface that is brought up first. Sockets made
// on that thread (net.Listen, net.Dial run synchronously on the calling
// goroutine) live in the namespace; the thread is never reused.
func inNetNS(t *testing.T, fn func() error) {
	t.Helper()
	testutil.RequireRoot(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with the goroutine.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		if err := loopbackUp(); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// loopbackUp sets IFF_UP on lo, as `ip link set lo up` would.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("ioctl(SIOCGIFFLAGS) lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("ioctl(SIOCSIFFLAGS, IFF_UP) lo: %w", err)
	}
	return nil
}

// TestDefaultListenInNetNS starts the lifeline with no Listen and no Port,
// as `rootswap run` does by default, and logs in over IPv4 and IPv6.
func TestDefaultListenInNetNS(t *testing.T) {
	key := newSigner(t)
	var calls atomic.Int32
	inNetNS(t, func() error {
		log := &testutil.SyncBuffer{}
		s, err := Start(context.Background(), Options{
			AuthorizedKeys: []ssh.PublicKey{key.PublicKey()},
			Shell:          testShell(&calls, nil),
			Log:            log,
		})
		if err != nil {
			return err
		}
		defer s.Close()

		addrs := s.Addrs()
		tcp, ok := addrs[0].(*net.TCPAddr)
		if len(addrs) != 1 || !ok || !tcp.IP.IsUnspecified() || tcp.Port != DefaultPort {
			return fmt.Errorf("listening on %v, want every address on port %d", addrs, DefaultPort)
		}
		targets := []string{"127.0.0.1"}
		if tcp.IP.To4() == nil {
			targets = append(targets, "::1") // a dual-stack socket: v6 and v4
		} else {
			t.Log("IPv6 is off here: checked IPv4 only")
		}
		for _, host := range targets {
			addr := net.JoinHostPort(host, fmt.Sprint(DefaultPort))
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
				User:            "root",
				Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
				HostKeyCallback: ssh.FixedHostKey(s.HostKey()),
			})
			if err != nil {
				conn.Close()
				return fmt.Errorf("login over %s: %w", addr, err)
			}
			c := ssh.NewClient(cc, chans, reqs)
			sess, err := c.NewSession()
			if err != nil {
				c.Close()
				return err
			}
			out, err := sess.Output("echo over " + host)
			c.Close()
			if want := "over " + host + "\n"; err != nil || string(out) != want {
				return fmt.Errorf("%s: got %q, %v; want %q", addr, out, err, want)
			}
		}
		if err := s.Close(); err != nil {
			return err
		}
		if !bytes.Contains([]byte(log.String()), []byte("accepted ssh-ed25519 key "+ssh.FingerprintSHA256(key.PublicKey()))) {
			return errors.New("log lacks the accepted key:\n" + log.String())
		}
		return nil
	})
	if n := calls.Load(); n == 0 {
		t.Error("shell never ran")
	}
}
