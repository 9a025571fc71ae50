package initsys

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Reading what every /etc/init.d script names is the dear part of
// finding a process's service (a Debian script takes a millisecond to
// parse), and plan asks for each of a thousand processes. A System
// detected by Detect therefore keeps the parsed scripts in an index and
// reads a script again only when its entry changed (name, size, mtime,
// inode); one lookup reads the pidfiles once and each process once, so
// a question about every process (busybox's Running) costs one pass.

// cache is what a System keeps between lookups. Config holds it by
// pointer, so every copy of a System's Config shares it.
type cache struct {
	mu      sync.Mutex
	dir     string
	entries map[string]cachedScript
	scripts []initScript // the service scripts, in rcS order
	files   map[string]cachedFile
}

// stamp tells whether a file changed since it was read.
type stamp struct {
	size  int64
	mtime int64
	ino   uint64
	mode  os.FileMode
}

func stampOf(fi os.FileInfo) stamp {
	s := stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// cachedScript is one /etc/init.d entry as last read; script is nil for
// an entry that is no service script (a directory, a binary, too big).
type cachedScript struct {
	stamp  stamp
	script *initScript
}

type cachedFile struct {
	stamp stamp
	data  []byte
	err   error
}

// newCache is the cache Detect gives each System.
func newCache() *cache { return &cache{} }

// isServiceScriptName leaves out the rc drivers, backups and the K??
// stop links.
func isServiceScriptName(n string) bool {
	return !(notServiceScripts[n] || strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") ||
		strings.Contains(n, ".dpkg-") || strings.HasSuffix(n, ".rpmnew") || strings.HasSuffix(n, ".rpmsave") ||
		strings.HasPrefix(n, "K") && isRCNumbered(n))
}

// initScripts are the service scripts under Root/etc/init.d, in the order
// rcS runs them (lexical: S01 before S50), parsed once while unchanged.
// The returned slice is shared: callers only read it.
func (c Config) initScripts() []initScript {
	dir := c.path("/etc/init.d")
	if c.cache == nil {
		return readScripts(dir)
	}
	c.cache.mu.Lock()
	defer c.cache.mu.Unlock()
	if c.cache.dir != dir {
		c.cache.dir, c.cache.entries = dir, nil
	}
	if c.cache.entries == nil {
		c.cache.entries = map[string]cachedScript{}
	}
	changed := false
	seen := map[string]bool{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if !isServiceScriptName(n) {
			continue
		}
		seen[n] = true
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			if _, had := c.cache.entries[n]; had {
				delete(c.cache.entries, n)
				changed = true
			}
			continue
		}
		st := stampOf(fi)
		if old, ok := c.cache.entries[n]; ok && old.stamp == st {
			continue
		}
		c.cache.entries[n] = cachedScript{stamp: st, script: readScript(dir, n, fi)}
		changed = true
	}
	for n := range c.cache.entries {
		if !seen[n] {
			delete(c.cache.entries, n)
			changed = true
		}
	}
	if changed || c.cache.scripts == nil {
		c.cache.scripts = c.cache.scripts[:0:0]
		for _, e := range c.cache.entries {
			if e.script != nil {
				c.cache.scripts = append(c.cache.scripts, *e.script)
			}
		}
		sort.Slice(c.cache.scripts, func(i, j int) bool { return c.cache.scripts[i].Name < c.cache.scripts[j].Name })
	}
	return c.cache.scripts
}

// readScripts parses every service script in dir, without a cache.
func readScripts(dir string) []initScript {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []initScript
	for _, e := range ents {
		if !isServiceScriptName(e.Name()) {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if s := readScript(dir, e.Name(), fi); s != nil {
			out = append(out, *s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// readScript parses dir/n, nil when it is no shell script.
func readScript(dir, n string, fi os.FileInfo) *initScript {
	if !fi.Mode().IsRegular() || fi.Size() > maxScriptSize {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, n))
	if err != nil || bytes.IndexByte(b, 0) >= 0 {
		return nil
	}
	return &initScript{Name: n, Facts: ParseScript(n, string(b))}
}

// readCached reads a small configuration file (/etc/inittab) again only
// when it changed.
func (c Config) readCached(p string) ([]byte, error) {
	if c.cache == nil {
		return os.ReadFile(p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	c.cache.mu.Lock()
	defer c.cache.mu.Unlock()
	if c.cache.files == nil {
		c.cache.files = map[string]cachedFile{}
	}
	f, ok := c.cache.files[p]
	if st := stampOf(fi); !ok || f.stamp != st {
		f.stamp = st
		f.data, f.err = os.ReadFile(p)
		c.cache.files[p] = f
	}
	return f.data, f.err
}

// lookup answers questions about many processes against one reading of
// the scripts, pidfiles and /proc: ServiceOf makes one per call,
// Running one for its pass over every process, and NewLookup one for a
// caller's pass (plan's over every holder of /). What it read is not
// read again, so it is good for one pass, not across restarts.
type lookup struct {
	c       Config
	scripts []initScript
	byPID   map[int][]string // pidfiles (under Root) holding each pid
	records []openRCRecord
	loaded  struct{ scripts, pidfiles, records bool }
	procs   map[int]*procFacts
	byComm  map[string]int
}

// procFacts is what a lookup read of one process.
type procFacts struct {
	ppid      int
	ppidOK    bool
	zombie    bool
	comm      *string
	id        *procIdentity
	underRoot *bool
}

func (c Config) newLookup() *lookup { return &lookup{c: c, procs: map[int]*procFacts{}} }

func (l *lookup) initScripts() []initScript {
	if !l.loaded.scripts {
		l.scripts, l.loaded.scripts = l.c.initScripts(), true
	}
	return l.scripts
}

// pidfiles maps each pid to the pidfiles holding it: those under /run
// and /var/run, and those the scripts name elsewhere.
func (l *lookup) pidfiles() map[int][]string {
	if l.loaded.pidfiles {
		return l.byPID
	}
	l.loaded.pidfiles = true
	c := l.c
	files := c.pidfiles()
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		seen[f] = true
	}
	for _, p := range scriptPidfiles(l.initScripts()) {
		if f := c.path(p); !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	l.byPID = map[int][]string{}
	for _, f := range files {
		if p, ok := readPidfile(f); ok {
			l.byPID[p] = append(l.byPID[p], f)
		}
	}
	return l.byPID
}

func (l *lookup) openRCRecords() []openRCRecord {
	if !l.loaded.records {
		l.records, l.loaded.records = l.c.openRCRecords(), true
	}
	return l.records
}

func (l *lookup) facts(pid int) *procFacts {
	if f, ok := l.procs[pid]; ok {
		return f
	}
	f := &procFacts{}
	if b, err := os.ReadFile(l.c.proc(strconv.Itoa(pid), "stat")); err == nil {
		f.ppid, f.zombie, f.ppidOK = parseStat(b)
	}
	l.procs[pid] = f
	return f
}

func (l *lookup) ppid(pid int) (int, bool) {
	f := l.facts(pid)
	return f.ppid, f.ppidOK
}

func (l *lookup) comm(pid int) string {
	f := l.facts(pid)
	if f.comm == nil {
		c := l.c.comm(pid)
		f.comm = &c
	}
	return *f.comm
}

// findComm is the lowest pid whose comm is name.
func (l *lookup) findComm(name string) (int, bool) {
	if l.byComm == nil {
		l.byComm = map[string]int{}
		for _, pid := range l.c.pids() {
			c := l.comm(pid)
			if best, ok := l.byComm[c]; !ok || pid < best {
				l.byComm[c] = pid
			}
		}
	}
	pid, ok := l.byComm[name]
	return pid, ok
}

func (l *lookup) identity(pid int) procIdentity {
	f := l.facts(pid)
	if f.id == nil {
		id := l.c.identity(pid)
		f.id = &id
	}
	return *f.id
}

func (l *lookup) underRoot(pid int) bool {
	f := l.facts(pid)
	if f.underRoot == nil {
		u := l.c.underRoot(pid)
		f.underRoot = &u
	}
	return *f.underRoot
}

// ancestry is pid followed by its parents, up to (not including) PID 1.
func (l *lookup) ancestry(pid int) []int { return ancestry(pid, l.ppid) }

// parseStat reads the parent and the zombie state from /proc/PID/stat:
// "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so
// fields start after the last ')'.
func parseStat(b []byte) (ppid int, zombie, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, f[0] == "Z", err == nil
}
