package elfdeps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// stdlib reads what Read reads with debug/elf: the first PT_INTERP up to
// its first NUL and ImportedLibraries. The latter goes through the section
// headers, Read through the program headers; on well-formed files the two
// agree.
func stdlib(t testing.TB, r io.ReaderAt) (*Info, error) {
	t.Helper()
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	info := &Info{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, err
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			info.Interp = string(b)
			break
		}
	}
	if info.Needed, err = f.ImportedLibraries(); err != nil {
		return nil, err
	}
	return info, nil
}

func compareStdlib(t *testing.T, path string) *Info {
	t.Helper()
	got, err := Read(path)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := stdlib(t, f)
	if err != nil {
		t.Fatalf("debug/elf on %s: %v", path, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Read(%s) = %+v, debug/elf says %+v", path, got, want)
	}
	return got
}

func hostFile(t *testing.T, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if p, err := filepath.EvalSymlinks(c); err == nil {
			return p
		}
	}
	t.Skipf("none of %v on this machine", candidates)
	return ""
}

func TestHostBinaries(t *testing.T) {
	for _, tc := range []struct {
		name       string
		candidates []string
		check      func(*Info) bool // beyond agreeing with debug/elf
	}{
		{"ls", []string{"/bin/ls", "/usr/bin/ls"}, needsLibc},
		{"python3", []string{"/usr/bin/python3"}, needsLibc},
		// glibc's libc.so.6 is executable: it has PT_INTERP and needs ld.so.
		{"libc", []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib64/libc.so.6", "/lib/libc.so.6"},
			func(i *Info) bool { return len(i.Needed) > 0 }},
		{"ld.so", []string{"/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"},
			func(i *Info) bool { return i.Interp == "" && len(i.Needed) == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := hostFile(t, tc.candidates...)
			if got := compareStdlib(t, path); !tc.check(got) {
				t.Errorf("Read(%s) = %+v", path, got)
			}
		})
	}
}

func needsLibc(i *Info) bool { return i.Interp != "" && contains(i.Needed, "libc.so.6") }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestGoBinaries builds a small program the way rootswap is built (static)
// and as a CGO-free PIE (which has PT_INTERP and a dynamic section without
// DT_NEEDED), plus static 32-bit and big-endian ones.
func TestGoBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     []string
		args    []string
		dynamic bool
	}{
		{"static", nil, nil, false},
		{"pie", nil, []string{"-buildmode=pie"}, true},
		{"386", []string{"GOARCH=386"}, nil, false},
		{"s390x", []string{"GOARCH=s390x"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name)
			args := append(append([]string{"build", "-trimpath", "-o", out}, tc.args...), src)
			cmd := exec.Command(goTool, args...)
			cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS="), tc.env...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go %v: %v\n%s", args, err, b)
			}
			got := compareStdlib(t, out)
			if (got.Interp != "") != tc.dynamic || len(got.Needed) != 0 {
				t.Errorf("Read(%s) = %+v, want dynamic=%v and no DT_NEEDED", tc.name, got, tc.dynamic)
			}
		})
	}
}

// crafted describes a small ELF file: one PT_LOAD mapping the whole file,
// PT_INTERP, PT_DYNAMIC, and section headers so that debug/elf can read
// it too.
type crafted struct {
	is64   bool
	bo     binary.ByteOrder
	interp string // "" for no PT_INTERP
	needed []string
}

// layout gives the offsets build chose, for tests that corrupt them.
type layout struct {
	phoff, phentsize uint64 // program headers: 0 PT_LOAD, 1 PT_DYNAMIC, 2 PT_INTERP
	dynstr, dynamic  uint64
	dynent           uint64 // entries: DT_NEEDED..., DT_STRTAB, DT_STRSZ, DT_NULL
	shoff            uint64
}

const base = 0x10000 // the PT_LOAD's virtual address

func (c crafted) build() ([]byte, layout) {
	var l layout
	word, ehsize, shentsize := uint64(4), uint64(52), uint64(40)
	l.phentsize, l.dynent = 32, 8
	if c.is64 {
		word, ehsize, shentsize = 8, 64, 64
		l.phentsize, l.dynent = 56, 16
	}
	nph := uint64(2)
	if c.interp != "" {
		nph = 3
	}
	l.phoff = ehsize
	interpOff := l.phoff + nph*l.phentsize
	interp := []byte(c.interp)
	if c.interp != "" {
		interp = append(interp, 0)
	}
	l.dynstr = interpOff + uint64(len(interp))
	dynstr := []byte{0}
	var nameOff []uint64
	for _, n := range c.needed {
		nameOff = append(nameOff, uint64(len(dynstr)))
		dynstr = append(append(dynstr, n...), 0)
	}
	l.dynamic = (l.dynstr + uint64(len(dynstr)) + 7) &^ 7
	ndyn := uint64(len(c.needed)) + 3
	shstr := []byte("\x00.interp\x00.dynstr\x00.dynamic\x00.shstrtab\x00")
	shstrOff := l.dynamic + ndyn*l.dynent
	l.shoff = (shstrOff + uint64(len(shstr)) + 7) &^ 7
	size := l.shoff + 5*shentsize

	b := make([]byte, size)
	put := func(off, n, v uint64) {
		switch n {
		case 2:
			c.bo.PutUint16(b[off:], uint16(v))
		case 4:
			c.bo.PutUint32(b[off:], uint32(v))
		case 8:
			c.bo.PutUint64(b[off:], v)
		}
	}
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 1, 1, 1
	if c.is64 {
		b[4] = 2
	}
	if c.bo == binary.BigEndian {
		b[5] = 2
	}
	// e_type ET_DYN, e_version 1, then e_phoff, e_shoff and the sizes.
	put(16, 2, 3)
	put(20, 4, 1)
	put(24+word, word, l.phoff)
	put(24+2*word, word, l.shoff)
	h := 24 + 3*word + 4
	put(h, 2, ehsize)
	put(h+2, 2, l.phentsize)
	put(h+4, 2, nph)
	put(h+6, 2, shentsize)
	put(h+8, 2, 5)
	put(h+10, 2, 4)

	phdr := func(i, typ, off, filesz uint64) {
		p := l.phoff + i*l.phentsize
		put(p, 4, typ)
		if c.is64 {
			put(p+8, 8, off)
			put(p+16, 8, base+off)
			put(p+24, 8, base+off)
			put(p+32, 8, filesz)
			put(p+40, 8, filesz)
		} else {
			put(p+4, 4, off)
			put(p+8, 4, base+off)
			put(p+12, 4, base+off)
			put(p+16, 4, filesz)
			put(p+20, 4, filesz)
		}
	}
	phdr(0, ptLoad, 0, size)
	phdr(1, ptDynamic, l.dynamic, ndyn*l.dynent)
	if c.interp != "" {
		phdr(2, ptInterp, interpOff, uint64(len(interp)))
	}
	copy(b[interpOff:], interp)
	copy(b[l.dynstr:], dynstr)
	dyn := func(i, tag, val uint64) {
		put(l.dynamic+i*l.dynent, word, tag)
		put(l.dynamic+i*l.dynent+word, word, val)
	}
	for i, o := range nameOff {
		dyn(uint64(i), dtNeeded, o)
	}
	dyn(uint64(len(nameOff)), dtStrtab, base+l.dynstr)
	dyn(uint64(len(nameOff))+1, dtStrsz, uint64(len(dynstr)))
	copy(b[shstrOff:], shstr)

	shdr := func(i, name, typ, off, sz, link, entsize uint64) {
		s := l.shoff + i*shentsize
		put(s, 4, name)
		put(s+4, 4, typ)
		put(s+8+word, word, base+off) // sh_addr
		put(s+8+2*word, word, off)
		put(s+8+3*word, word, sz)
		put(s+8+4*word, 4, link)
		put(s+8+4*word+8+word, word, entsize)
	}
	shdr(1, 1, uint64(elf.SHT_PROGBITS), interpOff, uint64(len(interp)), 0, 0)
	shdr(2, 9, uint64(elf.SHT_STRTAB), l.dynstr, uint64(len(dynstr)), 0, 0)
	shdr(3, 17, uint64(elf.SHT_DYNAMIC), l.dynamic, ndyn*l.dynent, 2, l.dynent)
	shdr(4, 26, uint64(elf.SHT_STRTAB), shstrOff, uint64(len(shstr)), 0, 0)
	return b, l
}

var classes = []struct {
	name string
	is64 bool
	bo   binary.ByteOrder
}{
	{"elf32-lsb", false, binary.LittleEndian},
	{"elf32-msb", false, binary.BigEndian},
	{"elf64-lsb", true, binary.LittleEndian},
	{"elf64-msb", true, binary.BigEndian},
}

func TestCrafted(t *testing.T) {
	for _, cl := range classes {
		for _, tc := range []struct {
			name string
			want Info
		}{
			{"dynamic", Info{Interp: "/lib/ld-musl-armhf.so.1", Needed: []string{"libc.so", "libz.so.1"}}},
			{"library", Info{Needed: []string{"libc.so.6"}}},
			{"static", Info{}},
		} {
			t.Run(cl.name+"/"+tc.name, func(t *testing.T) {
				b, _ := crafted{cl.is64, cl.bo, tc.want.Interp, tc.want.Needed}.build()
				got, err := Parse(bytes.NewReader(b), int64(len(b)), "crafted")
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(*got, tc.want) {
					t.Errorf("Parse = %+v, want %+v", *got, tc.want)
				}
				std, err := stdlib(t, bytes.NewReader(b))
				if err != nil {
					t.Fatalf("debug/elf: %v", err)
				}
				if !reflect.DeepEqual(got, std) {
					t.Errorf("Parse = %+v, debug/elf says %+v", got, std)
				}
			})
		}
	}
}

func TestCorrupt(t *testing.T) {
	for _, cl := range classes {
		c := crafted{cl.is64, cl.bo, "/lib/ld.so.1", []string{"libc.so.6", "libm.so.6"}}
		_, l := c.build()
		word := uint64(4)
		if cl.is64 {
			word = 8
		}
		put := func(b []byte, off, n, v uint64) {
			switch n {
			case 2:
				cl.bo.PutUint16(b[off:], uint16(v))
			case 4:
				cl.bo.PutUint32(b[off:], uint32(v))
			case 8:
				cl.bo.PutUint64(b[off:], v)
			}
		}
		// Offsets of a program header's p_offset and p_filesz.
		phOff := func(i uint64) uint64 { return l.phoff + i*l.phentsize + 4 + (word-4)*1 }
		phFilesz := func(i uint64) uint64 { return l.phoff + i*l.phentsize + 4 + 3*word + 4*(word/8) }
		phVaddr := func(i uint64) uint64 { return phOff(i) + word }
		dynVal := func(i uint64) uint64 { return l.dynamic + i*l.dynent + word }
		huge := uint64(1)<<(8*word) - 1
		phentOff, phnumOff := 24+3*word+4+2, 24+3*word+4+4
		for _, tc := range []struct {
			name   string
			mutate func(b []byte) []byte
			want   string
		}{
			{"empty", func(b []byte) []byte { return nil }, "ELF identification (16 bytes at offset 0) beyond the end of the file (0 bytes)"},
			{"magic", func(b []byte) []byte { b[1] = 'X'; return b }, "not an ELF file"},
			{"class", func(b []byte) []byte { b[4] = 3; return b }, "unknown ELF class 3"},
			{"data", func(b []byte) []byte { b[5] = 0; return b }, "unknown ELF data encoding 0"},
			{"version", func(b []byte) []byte { b[6] = 2; return b }, "unknown ELF version 2"},
			{"short-header", func(b []byte) []byte { return b[:40] }, "ELF header"},
			{"phentsize", func(b []byte) []byte { put(b, phentOff, 2, 16); return b }, "program header size 16"},
			{"phdrs-huge", func(b []byte) []byte { put(b, phentOff, 2, 0xffff); put(b, phnumOff, 2, 0xffff); return b }, "exceeds 65536 bytes"},
			{"phoff", func(b []byte) []byte { put(b, 24+word, word, huge); return b }, "program header table"},
			{"phdrs-cut", func(b []byte) []byte { return b[:l.phoff+l.phentsize] }, "program header table"},
			{"interp-offset", func(b []byte) []byte { put(b, phOff(2), word, huge); return b }, "PT_INTERP (program header 2)"},
			{"interp-size", func(b []byte) []byte { put(b, phFilesz(2), word, 1<<20); return b }, "PT_INTERP (program header 2) of 1048576 bytes"},
			{"interp-nul", func(b []byte) []byte { put(b, phFilesz(2), word, 5); return b }, "not NUL-terminated"},
			{"dynamic-offset", func(b []byte) []byte { put(b, phOff(1), word, huge-3); return b }, "PT_DYNAMIC (program header 1)"},
			{"dynamic-size", func(b []byte) []byte { put(b, phFilesz(1), word, huge&^15); return b }, "PT_DYNAMIC (program header 1)"},
			{"no-strtab", func(b []byte) []byte { put(b, dynVal(2)-word, word, 0x7fff0000); return b }, "no DT_STRTAB"},
			{"strtab-unmapped", func(b []byte) []byte { put(b, dynVal(2), word, 0x10); return b }, "in no PT_LOAD"},
			{"load-offset", func(b []byte) []byte { put(b, phOff(0), word, huge-base+1); return b }, "beyond the end of the file"},
			{"load-vaddr", func(b []byte) []byte { put(b, phVaddr(0), word, 0); return b }, "in no PT_LOAD"},
			{"strsz", func(b []byte) []byte { put(b, dynVal(3), word, huge); return b }, "DT_STRSZ"},
			{"name-offset", func(b []byte) []byte { put(b, dynVal(1), word, 1<<20); return b }, "DT_NEEDED name at 1048576 beyond the string table"},
			{"name-nul", func(b []byte) []byte { put(b, dynVal(3), word, 14); return b }, "not NUL-terminated within the string table"},
			{"name-empty", func(b []byte) []byte { put(b, dynVal(1), word, 0); return b }, "DT_NEEDED name at 0 is empty"},
			{"file-cut", func(b []byte) []byte { return b[:l.dynstr+3] }, "beyond the end of the file"},
		} {
			t.Run(cl.name+"/"+tc.name, func(t *testing.T) {
				b, _ := c.build()
				b = tc.mutate(b)
				got, err := Parse(bytes.NewReader(b), int64(len(b)), "/x/corrupt")
				if err == nil {
					t.Fatalf("Parse = %+v, want an error with %q", got, tc.want)
				}
				var fe *Error
				if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "/x/corrupt: ") || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q, want an *Error naming /x/corrupt with %q", err, tc.want)
				}
			})
		}
	}
}

// TestTruncated cuts a crafted file at every length: each cut must give
// an error naming the file (every part of it matters) and never panic.
func TestTruncated(t *testing.T) {
	for _, cl := range classes {
		b, l := crafted{cl.is64, cl.bo, "/lib/ld.so.1", []string{"libc.so.6"}}.build()
		// Parse reads up to the end of the dynamic section (DT_NEEDED,
		// DT_STRTAB, DT_STRSZ, DT_NULL); past it come only section data.
		for n := 0; n < int(l.dynamic+4*l.dynent); n++ {
			if _, err := Parse(bytes.NewReader(b[:n]), int64(n), "cut"); err == nil || !strings.HasPrefix(err.Error(), "cut: ") {
				t.Errorf("%s cut at %d: error %v, want one naming the file", cl.name, n, err)
			}
		}
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if _, err := Read(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Read(missing) error %v, want ErrNotExist naming the path", err)
	}
	text := filepath.Join(dir, "script")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Read(text)
	if got, want := err.Error(), text+`: not an ELF file (magic "#!/b")`; got != want {
		t.Errorf("Read(script) error %q, want %q", got, want)
	}
}

// FuzzRead checks that no input panics or allocates more than a small
// multiple of its size, and that whatever Parse accepts is consistent:
// with debug/elf's PT_INTERP when it can open the file, and names that
// are NUL-terminated strings of the file.
func FuzzRead(f *testing.F) {
	for _, cl := range classes {
		b, _ := crafted{cl.is64, cl.bo, "/lib/ld.so.1", []string{"libc.so.6", "libm.so.6"}}.build()
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	// A small real ELF and some of its truncations.
	for _, p := range []string{"/usr/bin/true", "/bin/true"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
			for _, n := range []int{16, 64, 1000, 4096, len(b) / 2} {
				if n < len(b) {
					f.Add(b[:n])
				}
			}
			break
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := Parse(bytes.NewReader(b), int64(len(b)), "fuzz")
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 4*uint64(len(b))+1<<20 {
			t.Errorf("Parse allocated %d bytes for a %d-byte input", n, len(b))
		}
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.Path != "fuzz" {
				t.Errorf("error %v is not an *Error naming the input", err)
			}
			return
		}
		if strings.IndexByte(got.Interp, 0) >= 0 {
			t.Errorf("Interp %q holds a NUL", got.Interp)
		}
		for _, n := range got.Needed {
			if n == "" || !bytes.Contains(b, append([]byte(n), 0)) {
				t.Errorf("needed %q is not a NUL-terminated string of the input", n)
			}
		}
		if std, err := stdlib(t, bytes.NewReader(b)); err == nil && std.Interp != got.Interp {
			t.Errorf("Interp %q, debug/elf says %q", got.Interp, std.Interp)
		}
		again, err := Parse(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("second Parse = %+v, %v; first %+v", again, err, got)
		}
	})
}
