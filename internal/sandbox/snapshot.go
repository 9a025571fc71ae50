package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// State is what the server looks like at one moment, for the demo's
// before/after tables and for test assertions. PIDs are the server's own.
type State struct {
	Root RootInfo
	// Init is PID 1; Daemons are the services (by pidfile) and the getty
	// stand-in (by command line), in Services() order, getty last.
	Init    Process
	Daemons []Process
	// Page is httpd's / fetched inside; PageErr says why not when empty.
	Page, PageErr string
	// LogLines counts the lines of /var/log/messages on the current root.
	LogLines int
	// Deleted are the open descriptors of deleted files.
	Deleted []OpenFile
	// Mounts is PID 1's mount table.
	Mounts mountinfo.Table
}

// RootInfo describes the filesystem mounted at the server's /.
type RootInfo struct {
	Device       string // RootDev, TargetDev or the mount's source
	Major, Minor uint32
	FSType       string
	Size, Free   uint64 // bytes, from statfs inside
	ReadOnly     bool
}

// Process is one process of the server and where it runs from.
type Process struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	Name string
	PID  int
	Exe  string // readlink of /proc/PID/exe, " (deleted)" included
	// RootDev and ExeDev are the st_dev of its root directory and of its
	// executable; RunsFrom names the device they are on (RootDev,
	// TargetDev, or major:minor), or both when they differ.
	RootDev, ExeDev uint64
	RunsFrom        string
	// OnServerRoot is true when both are on the filesystem now at /.
	OnServerRoot bool
	Err          string // why the process could not be inspected
}

// OpenFile is a descriptor of a process.
type OpenFile struct {
	PID, FD int
	Target  string
}

// Snapshot inspects the running server from the host, through
// /proc/PID1/root (its procfs and root), and fetches the page inside.
func (s *Server) Snapshot(ctx context.Context) (State, error) {
	var st State
	proc := s.HostPath("/proc")
	mounts, err := mountinfo.Read(proc, "1")
	if err != nil {
		return st, fmt.Errorf("sandbox: snapshot: %w", err)
	}
	st.Mounts = mounts
	root, ok := mounts.Containing("/")
	if !ok {
		return st, fmt.Errorf("sandbox: snapshot: no / in %s/1/mountinfo", proc)
	}
	st.Root = RootInfo{
		Device: s.devName(root.Dev()), Major: root.Major, Minor: root.Minor,
		FSType: root.FSType, ReadOnly: root.ReadOnly(),
	}
	if st.Root.Device == fmt.Sprintf("%d:%d", root.Major, root.Minor) {
		st.Root.Device = root.Source
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(s.HostPath("/"), &sfs); err != nil {
		return st, &os.PathError{Op: "statfs", Path: s.HostPath("/"), Err: err}
	}
	st.Root.Size = sfs.Blocks * uint64(sfs.Bsize)
	st.Root.Free = sfs.Bavail * uint64(sfs.Bsize)

	rootDev := root.Dev()
	st.Init = s.inspect(proc, "init", 1, rootDev)
	for _, name := range s.ServiceNames() {
		pid, err := s.ServicePID(name)
		if err != nil {
			st.Daemons = append(st.Daemons, Process{Name: name, Err: err.Error()})
			continue
		}
		st.Daemons = append(st.Daemons, s.inspect(proc, name, pid, rootDev))
	}
	gettys := findByCmdline(proc, GettyCmdline)
	if len(gettys) == 0 {
		st.Daemons = append(st.Daemons, Process{Name: "getty", Err: "no process runs " + GettyCmdline})
	}
	for _, pid := range gettys {
		st.Daemons = append(st.Daemons, s.inspect(proc, "getty", pid, rootDev))
	}

	if b, err := os.ReadFile(s.HostPath("/var/log/messages")); err == nil {
		st.LogLines = bytes.Count(b, []byte("\n"))
	}
	st.Deleted = deletedFiles(proc)
	if page, err := s.Fetch(ctx, "/"); err != nil {
		st.PageErr = err.Error()
	} else {
		st.Page = page
	}
	return st, nil
}

func (s *Server) inspect(proc, name string, pid int, rootDev uint64) Process {
	p := Process{Name: name, PID: pid}
	dir := filepath.Join(proc, strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.Exe = exe
	var rst, est unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "root")+"/", &rst); err != nil {
		p.Err = err.Error()
		return p
	}
	if err := unix.Stat(filepath.Join(dir, "exe"), &est); err != nil {
		p.Err = err.Error()
		return p
	}
	p.RootDev, p.ExeDev = rst.Dev, est.Dev
	p.RunsFrom = s.devName(p.RootDev)
	if p.ExeDev != p.RootDev {
		p.RunsFrom += "+" + s.devName(p.ExeDev)
	}
	p.OnServerRoot = p.RootDev == rootDev && p.ExeDev == rootDev
	return p
}

// devName names a st_dev: the loop device path when it is one of the
// sandbox's two, major:minor otherwise.
func (s *Server) devName(dev uint64) string {
	for _, d := range []string{s.RootDev, s.TargetDev} {
		var st unix.Stat_t
		if d != "" && unix.Stat(d, &st) == nil && st.Rdev == dev {
			return d
		}
	}
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
}

// pids lists the numeric entries of a procfs.
func pids(proc string) []int {
	ents, _ := os.ReadDir(proc)
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// findByCmdline returns the processes whose argv, joined by spaces, is cmdline.
func findByCmdline(proc, cmdline string) []int {
	var out []int
	for _, pid := range pids(proc) {
		b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Join(strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), " ") == cmdline {
			out = append(out, pid)
		}
	}
	return out
}

// deletedFiles lists the descriptors whose file was deleted.
func deletedFiles(proc string) []OpenFile {
	var out []OpenFile
	for _, pid := range pids(proc) {
		fddir := filepath.Join(proc, strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(fddir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			t, err := os.Readlink(filepath.Join(fddir, e.Name()))
			if err != nil || !strings.HasSuffix(t, " (deleted)") {
				continue
			}
			fd, _ := strconv.Atoi(e.Name())
			out = append(out, OpenFile{PID: pid, FD: fd, Target: t})
		}
	}
	return out
}

// WriteTable prints the state as the demo's before/after block: the root,
// then one line per process, then the checks.
func (st State) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "root\t%s (%d:%d) %s, %s\t%d MiB, %d MiB free\n", st.Root.Device, st.Root.Major, st.Root.Minor,
		st.Root.FSType, map[bool]string{true: "ro", false: "rw"}[st.Root.ReadOnly], st.Root.Size>>20, st.Root.Free>>20)
	for _, p := range append([]Process{st.Init}, st.Daemons...) {
		if p.Err != "" {
			fmt.Fprintf(tw, "%s\t-\t%s\n", p.Name, p.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\tpid %d\truns from %s\texe %s\n", p.Name, p.PID, p.RunsFrom, p.Exe)
	}
	page := "served"
	if st.PageErr != "" {
		page = st.PageErr
	}
	fmt.Fprintf(tw, "httpd page\t%s\n", page)
	fmt.Fprintf(tw, "/var/log/messages\t%d lines\n", st.LogLines)
	fmt.Fprintf(tw, "deleted-open files\t%d\n", len(st.Deleted))
	tw.Flush()
}
