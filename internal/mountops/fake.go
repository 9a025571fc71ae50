package mountops

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Call is one state-changing call a Fake received.
type Call struct {
	Op     string // "mount", "umount2", "pivot_root", "chdir", "mkdir", "create"
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	Perm   fs.FileMode
}

// String spells the call like the C call it stands for, flags by name:
//
//	mount("/mnt/oldroot/proc", "/proc", "", MS_MOVE, "")
func (c Call) String() string {
	q := strconv.Quote
	switch c.Op {
	case "mount":
		return fmt.Sprintf("mount(%s, %s, %s, %s, %s)", q(c.Source), q(c.Target), q(c.FSType), FlagNames(c.Flags), q(c.Data))
	case "umount2":
		return fmt.Sprintf("umount2(%s, %s)", q(c.Target), UnmountFlagNames(int(c.Flags)))
	case "pivot_root":
		return fmt.Sprintf("pivot_root(%s, %s)", q(c.Source), q(c.Target))
	case "mkdir", "create":
		return fmt.Sprintf("%s(%s, %#o)", c.Op, q(c.Target), uint32(c.Perm.Perm()))
	default:
		return fmt.Sprintf("%s(%s)", c.Op, q(c.Target))
	}
}

// Fake is a Mounter that records every state-changing call instead of
// making it. Every path exists as a directory unless listed in Missing
// (or in Files, as a regular file); MkdirAll and CreateFile make missing
// paths exist. Fail, when set, decides an errno per call; the Fake wraps
// it the way System does.
type Fake struct {
	Calls   []Call
	Missing map[string]bool
	Files   map[string]bool
	Fail    func(Call) error
}

var _ Mounter = (*Fake)(nil)

// Strings is Calls as strings, for comparing in tests.
func (f *Fake) Strings() []string {
	out := make([]string, len(f.Calls))
	for i, c := range f.Calls {
		out[i] = c.String()
	}
	return out
}

func (f *Fake) record(c Call) error {
	f.Calls = append(f.Calls, c)
	if f.Fail != nil {
		return f.Fail(c)
	}
	return nil
}

// Mount records mount(2).
func (f *Fake) Mount(source, target, fstype string, flags uintptr, data string) error {
	err := f.record(Call{Op: "mount", Source: source, Target: target, FSType: fstype, Flags: flags, Data: data})
	return mountError(source, target, fstype, flags, data, err)
}

// Unmount records umount2(2).
func (f *Fake) Unmount(target string, flags int) error {
	return unmountError(target, flags, f.record(Call{Op: "umount2", Target: target, Flags: uintptr(flags)}))
}

// PivotRoot records pivot_root(2).
func (f *Fake) PivotRoot(newroot, putold string) error {
	return pivotError(newroot, putold, f.record(Call{Op: "pivot_root", Source: newroot, Target: putold}))
}

// Chdir records chdir(2).
func (f *Fake) Chdir(dir string) error {
	if err := f.record(Call{Op: "chdir", Target: dir}); err != nil {
		return &os.PathError{Op: "chdir", Path: dir, Err: err}
	}
	return nil
}

// Lstat answers from Missing and Files; it is not recorded.
func (f *Fake) Lstat(p string) (fs.FileInfo, error) {
	if f.Missing[p] {
		return nil, &os.PathError{Op: "lstat", Path: p, Err: unix.ENOENT}
	}
	mode := fs.ModeDir | 0o755
	if f.Files[p] {
		mode = 0o644
	}
	return fakeInfo{name: path.Base(p), mode: mode}, nil
}

// MkdirAll records the mkdir and makes p and its parents exist.
func (f *Fake) MkdirAll(p string, perm fs.FileMode) error {
	if err := f.record(Call{Op: "mkdir", Target: p, Perm: perm}); err != nil {
		return &os.PathError{Op: "mkdir", Path: p, Err: err}
	}
	for d := p; d != "/" && d != "."; d = path.Dir(d) {
		delete(f.Missing, d)
	}
	return nil
}

// CreateFile records the create and makes p exist as a file.
func (f *Fake) CreateFile(p string, perm fs.FileMode) error {
	if err := f.record(Call{Op: "create", Target: p, Perm: perm}); err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	delete(f.Missing, p)
	if f.Files == nil {
		f.Files = map[string]bool{}
	}
	f.Files[p] = true
	return nil
}

type fakeInfo struct {
	name string
	mode fs.FileMode
}

func (i fakeInfo) Name() string       { return i.name }
func (i fakeInfo) Size() int64        { return 0 }
func (i fakeInfo) Mode() fs.FileMode  { return i.mode }
func (i fakeInfo) ModTime() time.Time { return time.Time{} }
func (i fakeInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fakeInfo) Sys() any           { return nil }
