package dd

import (
	"os"
	"os/signal"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watch handles the signals GNU dd handles while a copy runs: SIGUSR1
// prints the statistics and the copy goes on (unless POSIXLY_CORRECT,
// where it kills, as GNU leaves it at its default); SIGINT prints them
// and kills the process by SIGINT, so that its parent sees death by the
// signal; SIGTERM kills at once. stats prints under the copy's lock.
// Only when dd is the process (owner) does it kill; in-process it
// records the interrupt for the copy loop to see. stop ends the watch.
func watch(owner, posixlyCorrect bool, stats func(), onInterrupt func()) (stop func()) {
	ch := make(chan os.Signal, 8)
	sigs := []os.Signal{unix.SIGUSR1}
	if owner {
		sigs = append(sigs, unix.SIGINT, unix.SIGTERM)
	}
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				sig := s.(unix.Signal)
				switch {
				case sig == unix.SIGUSR1 && !posixlyCorrect:
					stats()
				case sig == unix.SIGINT:
					onInterrupt()
					dieBySignal(sig)
				case owner:
					dieBySignal(sig)
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-finished
	}
}

// dieBySignal ends the process by sig's default action, as GNU dd's
// raise() after restoring it does: the parent sees WIFSIGNALED, a shell
// 128+sig. It never returns.
func dieBySignal(sig unix.Signal) {
	runtime.LockOSThread()
	// struct kernel_sigaction all zero: SIG_DFL, no flags, empty mask;
	// zero is the same in every architecture's layout.
	var act [4]uint64
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	var set unix.Sigset_t
	set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
	for {
		time.Sleep(time.Second)
	}
}
