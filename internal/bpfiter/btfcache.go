package bpfiter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/rootswap/rootswap/internal/btf"
	"golang.org/x/sys/unix"
)

// DefaultBTFCache is where the answers the programs asked of the kernel's
// BTF are kept between runs: parsing vmlinux's BTF (5 MB) is the largest
// fixed cost of a scan (~1.5 ms of a 20 ms lsof), and the answers hold
// for as long as the kernel runs. /run is cleared at boot, and the file
// also names the boot it belongs to.
const DefaultBTFCache = "/run/rootswap-btf.cache"

const btfCacheMagic = "rootswap-btf-cache 1"

// btfAnswers answers Offset and FuncID from the cache file, and parses
// the kernel's BTF only when a question is not in it (the first run of a
// boot, or a new program). Its methods may run side by side.
type btfAnswers struct {
	path, key string // key: the boot and the BTF blob the answers came from
	load      func() (kernelBTF, error)

	mu      sync.Mutex
	answers map[string]string // "o task_struct.pid" → "1234"; "f name" → "56"; "!" prefix: an error
	spec    kernelBTF
	specErr error
	dirty   bool
}

// openBTF returns the kernel's BTF answers: from the cache at path when it
// is valid for this boot and blob, else from the blob itself (parsed now,
// so that a kernel without BTF fails here, as before). path "" caches
// nothing.
func openBTF(path, blob string, load func() (kernelBTF, error)) (*btfAnswers, error) {
	a := &btfAnswers{path: path, load: load, answers: map[string]string{}}
	if path != "" {
		a.key = btfKey(blob)
	}
	if a.key != "" && a.read() {
		return a, nil
	}
	a.answers = map[string]string{}
	if _, err := a.parsed(); err != nil {
		return nil, err
	}
	return a, nil
}

// btfKey names this boot and BTF blob; "" when either cannot be told.
func btfKey(blob string) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	var st unix.Stat_t
	if unix.Stat(blob, &st) != nil {
		return ""
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return fmt.Sprintf("boot=%s size=%d release=%s", strings.TrimSpace(string(boot)), st.Size, unix.ByteSliceToString(u.Release[:]))
}

// read loads the cache file; false when it is missing, foreign (not
// root's own, or writable by others: its offsets go into programs the
// kernel runs), of another boot or malformed.
func (a *btfAnswers) read() bool {
	f, err := os.Open(a.path)
	if err != nil {
		return false
	}
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Uid != 0 || st.Mode&0o022 != 0 || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	sc := bufio.NewScanner(f)
	if !sc.Scan() || sc.Text() != btfCacheMagic || !sc.Scan() || sc.Text() != a.key {
		return false
	}
	for sc.Scan() {
		q, ans, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			return false
		}
		a.answers[q] = ans
	}
	return sc.Err() == nil
}

// parsed is the kernel's BTF, parsed on first need.
func (a *btfAnswers) parsed() (kernelBTF, error) {
	if a.spec == nil && a.specErr == nil {
		a.spec, a.specErr = a.load()
	}
	return a.spec, a.specErr
}

// ask answers question q from the cache or, failing that, with find on
// the parsed BTF, and remembers the answer.
func (a *btfAnswers) ask(q string, find func(kernelBTF) (int, error)) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ans, ok := a.answers[q]
	if !ok {
		spec, err := a.parsed()
		if err != nil {
			return 0, err
		}
		n, err := find(spec)
		if err != nil {
			if !errors.Is(err, btf.ErrNotFound) {
				return 0, err // not an answer about the kernel: ask again next time
			}
			ans = "!" + err.Error()
		} else {
			ans = strconv.Itoa(n)
		}
		a.answers[q], a.dirty = ans, true
	}
	if msg, isErr := strings.CutPrefix(ans, "!"); isErr {
		return 0, notFound(msg)
	}
	n, err := strconv.Atoi(ans)
	if err != nil {
		return 0, fmt.Errorf("btf cache %s: %q: %w", a.path, q, err)
	}
	return n, nil
}

// notFound is a cached lookup failure, still a btf.ErrNotFound.
func notFound(msg string) error {
	return fmt.Errorf("%w%s", btf.ErrNotFound, strings.TrimPrefix(msg, btf.ErrNotFound.Error()))
}

func (a *btfAnswers) Offset(typ string, field ...string) (int, error) {
	return a.ask("o "+typ+"."+strings.Join(field, "."), func(s kernelBTF) (int, error) { return s.Offset(typ, field...) })
}

func (a *btfAnswers) FuncID(name string) (uint32, error) {
	n, err := a.ask("f "+name, func(s kernelBTF) (int, error) {
		id, err := s.FuncID(name)
		return int(id), err
	})
	return uint32(n), err
}

// save writes the answers when some are new: to a temporary file renamed
// over the cache, so a reader sees the old file or the new one. A cache
// that cannot be written (read-only /run, no /run) is only slower.
func (a *btfAnswers) save() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.dirty || a.key == "" {
		return
	}
	a.dirty = false
	var b bytes.Buffer
	b.WriteString(btfCacheMagic + "\n" + a.key + "\n")
	for q, ans := range a.answers {
		if strings.ContainsAny(q+ans, "\t\n") {
			continue
		}
		b.WriteString(q + "\t" + ans + "\n")
	}
	tmp, err := os.CreateTemp(filepath.Dir(a.path), filepath.Base(a.path)+".*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b.Bytes())
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), a.path) != nil {
		os.Remove(tmp.Name())
	}
}

// loadKernelBTF parses the running kernel's BTF.
func loadKernelBTF() (kernelBTF, error) {
	s, err := btf.LoadKernel()
	if err != nil {
		return nil, err
	}
	return s, nil
}
