package btf

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encoder builds BTF blobs for tests. Types get ids in the order they are
// added, so members may only refer to types added before them.
type encoder struct {
	bo    binary.AppendByteOrder
	types []byte
	strs  []byte
	n     uint32
}

func newEncoder(bo binary.AppendByteOrder) *encoder { return &encoder{bo: bo, strs: []byte{0}} }

func (e *encoder) str(s string) uint32 {
	if s == "" {
		return 0
	}
	off := len(e.strs)
	e.strs = append(append(e.strs, s...), 0)
	return uint32(off)
}

func (e *encoder) u32(v ...uint32) {
	for _, x := range v {
		e.types = e.bo.AppendUint32(e.types, x)
	}
}

// typ appends a record header; the caller appends its trailing data.
func (e *encoder) typ(name string, kind, vlen int, kflag bool, sizeType uint32) uint32 {
	info := uint32(kind)<<24 | uint32(vlen)
	if kflag {
		info |= 1 << 31
	}
	e.u32(e.str(name), info, sizeType)
	e.n++
	return e.n
}

func (e *encoder) integer(name string, size, bits uint32) uint32 {
	id := e.typ(name, kindInt, 0, false, size)
	e.u32(bits) // encoding 0, bit offset 0
	return id
}

type mem struct {
	name          string
	typ           uint32
	bitOff, width uint32 // width: bitfield size, with kflag
}

func (e *encoder) aggregate(kind int, name string, size uint32, kflag bool, ms ...mem) uint32 {
	id := e.typ(name, kind, len(ms), kflag, size)
	for _, m := range ms {
		off := m.bitOff
		if kflag {
			off |= m.width << 24
		}
		e.u32(e.str(m.name), m.typ, off)
	}
	return id
}

func (e *encoder) blob() []byte {
	b := e.bo.AppendUint16(nil, 0xeb9f)
	b = append(b, 1, 0) // version, flags
	b = e.bo.AppendUint32(b, hdrLen)
	b = e.bo.AppendUint32(b, 0)                    // type_off
	b = e.bo.AppendUint32(b, uint32(len(e.types))) // type_len
	b = e.bo.AppendUint32(b, uint32(len(e.types))) // str_off
	b = e.bo.AppendUint32(b, uint32(len(e.strs)))  // str_len
	return append(append(b, e.types...), e.strs...)
}

// ids of interesting types in the synthetic blob.
type synthIDs struct{ fn, outerFn, lateFn uint32 }

// synthetic builds a blob with, in C terms:
//
//	struct inner { int a; int b; };          typedef struct inner inner_t;
//	struct outer {                           // kind_flag set
//		int first;                           // 0
//		union { int x; int y; };             // 4
//		struct { int pad; union { int deepest; }; };  // 8, 12
//		const inner_t in;                    // 16
//		int flags:3;                         // 24, bitfield
//	};
//	struct legacy { int ok; int3 bf; };      // no kind_flag; int3 is 3 bits wide
//	struct dup { int a; };  struct dup { int a; int want; };
//	typedef struct { int counter; } atomic_t;
//	typedef int quad[4];
//	int do_thing(void);  int outer(void);  (funcs; outer also names a struct)
//
// plus one record of every other kind, so that index must step over each.
func synthetic(bo binary.AppendByteOrder) ([]byte, synthIDs) {
	e := newEncoder(bo)
	var ids synthIDs
	i32 := e.integer("int", 4, 32)
	int3 := e.integer("int3", 4, 3)
	inner := e.aggregate(kindStruct, "inner", 8, false, mem{"a", i32, 0, 0}, mem{"b", i32, 32, 0})
	innerT := e.typ("inner_t", kindTypedef, 0, false, inner)
	cInnerT := e.typ("", kindConst, 0, false, innerT)
	u := e.aggregate(kindUnion, "", 4, false, mem{"x", i32, 0, 0}, mem{"y", i32, 0, 0})
	du := e.aggregate(kindUnion, "", 4, false, mem{"deepest", i32, 0, 0})
	ds := e.aggregate(kindStruct, "", 8, false, mem{"pad", i32, 0, 0}, mem{"", du, 32, 0})
	e.aggregate(kindStruct, "outer", 32, true,
		mem{"first", i32, 0, 0},
		mem{"", u, 32, 0},
		mem{"", ds, 64, 0},
		mem{"in", cInnerT, 128, 0},
		mem{"flags", i32, 192, 3})
	e.aggregate(kindStruct, "legacy", 8, false, mem{"ok", i32, 0, 0}, mem{"bf", int3, 32, 0})
	e.aggregate(kindStruct, "dup", 4, false, mem{"a", i32, 0, 0})
	e.aggregate(kindStruct, "dup", 8, false, mem{"a", i32, 0, 0}, mem{"want", i32, 32, 0})
	anon := e.aggregate(kindStruct, "", 4, false, mem{"counter", i32, 0, 0})
	e.typ("atomic_t", kindTypedef, 0, false, anon)
	arr := e.typ("", kindArray, 0, false, 0)
	e.u32(i32, i32, 4) // elem type, index type, nelems
	e.typ("quad", kindTypedef, 0, false, arr)

	proto := e.typ("", kindFuncProto, 1, false, i32)
	e.u32(0, i32) // one unnamed int parameter
	ids.fn = e.typ("do_thing", kindFunc, 1, false, proto)
	ids.outerFn = e.typ("outer", kindFunc, 1, false, proto)

	// One of each remaining kind, with trailing data where it has some.
	e.typ("", kindPtr, 0, false, i32)
	e.typ("e", kindEnum, 2, false, 4)
	e.u32(e.str("E0"), 0, e.str("E1"), 1)
	e.typ("fwd", kindFwd, 0, false, 0)
	e.typ("", kindVolatile, 0, false, i32)
	e.typ("", kindRestrict, 0, false, i32)
	v := e.typ("v", kindVar, 0, false, i32)
	e.u32(1) // linkage
	e.typ(".data", kindDatasec, 1, false, 4)
	e.u32(v, 0, 4)
	e.typ("double", kindFloat, 0, false, 8)
	e.typ("tag", kindDeclTag, 0, false, v)
	e.u32(0xffffffff) // component_idx
	e.typ("tag", kindTypeTag, 0, false, i32)
	e.typ("e64", kindEnum64, 1, false, 8)
	e.u32(e.str("BIG"), 1, 2)
	ids.lateFn = e.typ("late", kindFunc, 0, false, proto)
	return e.blob(), ids
}

func TestSynthetic(t *testing.T) {
	for _, bo := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(bo.String(), func(t *testing.T) {
			b, ids := synthetic(bo)
			s, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]uint32{"do_thing": ids.fn, "outer": ids.outerFn, "late": ids.lateFn} {
				if got, err := s.FuncID(name); got != want || err != nil {
					t.Errorf("FuncID(%q) = %d, %v; want %d", name, got, err, want)
				}
			}
			for _, c := range []struct {
				path []string
				want int
			}{
				{[]string{"outer", "first"}, 0},
				{[]string{"outer", "x"}, 4},
				{[]string{"outer", "y"}, 4},
				{[]string{"outer", "pad"}, 8},
				{[]string{"outer", "deepest"}, 12},
				{[]string{"outer", "in"}, 16},
				{[]string{"outer", "in", "b"}, 20},
				{[]string{"outer"}, 0},
				{[]string{"inner", "b"}, 4},
				{[]string{"legacy", "ok"}, 0},
				{[]string{"dup", "want"}, 4},
				{[]string{"atomic_t", "counter"}, 0},
			} {
				if got, err := s.Offset(c.path[0], c.path[1:]...); got != c.want || err != nil {
					t.Errorf("Offset(%q) = %d, %v; want %d", c.path, got, err, c.want)
				}
			}
			for name, want := range map[string]int{"outer": 32, "inner": 8, "inner_t": 8, "int": 4, "atomic_t": 4, "quad": 16, "e": 4, "e64": 8} {
				if got, err := s.Size(name); got != want || err != nil {
					t.Errorf("Size(%q) = %d, %v; want %d", name, got, err, want)
				}
			}
		})
	}
}

func TestLookupErrors(t *testing.T) {
	b, _ := synthetic(binary.LittleEndian)
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path     []string
		notFound bool
		mention  string // the error names this
	}{
		{[]string{"nosuch", "a"}, true, `"nosuch"`},
		{[]string{"outer", "nosuch"}, true, `outer has no field "nosuch"`},
		{[]string{"outer", "in", "nosuch"}, true, `outer.in has no field "nosuch"`},
		{[]string{"outer", ""}, true, `outer has no field ""`},
		{[]string{"", "a"}, true, `""`},
		{[]string{"fwd", "a"}, true, `"fwd"`},
		{[]string{"outer", "flags"}, false, "outer.flags is a bitfield"},
		{[]string{"legacy", "bf"}, false, "legacy.bf is a bitfield"},
		{[]string{"outer", "first", "x"}, false, "outer.first is not a struct"},
	} {
		_, err := s.Offset(c.path[0], c.path[1:]...)
		if err == nil {
			t.Errorf("Offset(%q): no error", c.path)
			continue
		}
		if got := errors.Is(err, ErrNotFound); got != c.notFound {
			t.Errorf("Offset(%q) = %v; errors.Is(ErrNotFound) = %v, want %v", c.path, err, got, c.notFound)
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Offset(%q) = %v; want it to mention %s", c.path, err, c.mention)
		}
	}
	for _, name := range []string{"nosuch", "int", "inner", "", "do\x00thing"} {
		if _, err := s.FuncID(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("FuncID(%q) = %v; want ErrNotFound", name, err)
		}
	}
	if _, err := s.Size("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Size(nosuch) = %v; want ErrNotFound", err)
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := synthetic(binary.LittleEndian)
	le := binary.LittleEndian
	// edit returns a copy of good changed by f.
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	typeLen := le.Uint32(good[12:])
	for _, c := range []struct {
		name    string
		blob    []byte
		mention string
	}{
		{"empty", nil, "shorter than"},
		{"header only", good[:hdrLen-1], "shorter than"},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 0; return b }), "bad magic"},
		{"version", edit(func(b []byte) []byte { b[2] = 2; return b }), "version"},
		{"hdr_len", edit(func(b []byte) []byte { le.PutUint32(b[4:], 1<<30); return b }), "header length"},
		{"truncated", good[:len(good)-1], "string section"},
		{"type section past end", edit(func(b []byte) []byte { le.PutUint32(b[12:], 1<<31); return b }), "type section"},
		// Records: int at 0, int3 at 16, struct inner (12+24 bytes) at 32.
		{"record header cut", edit(func(b []byte) []byte { le.PutUint32(b[12:], 20); return b }), "truncated"},
		{"record past end", edit(func(b []byte) []byte { le.PutUint32(b[12:], 48); return b }), "runs past"},
		// The last records: enum64 e64 (12+12 bytes), func late (12).
		{"vlen past end", edit(func(b []byte) []byte { b[hdrLen+typeLen-36+4] = 0xff; return b }), "runs past"},
		{"unknown kind", edit(func(b []byte) []byte { b[hdrLen+7] = 25; return b }), "unknown kind 25"},
	} {
		_, err := Parse(c.blob)
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: Parse = %v; want an error mentioning %q", c.name, err, c.mention)
		}
	}
}

// TestKernel runs against the running kernel's BTF.
func TestKernel(t *testing.T) {
	if _, err := os.Stat(KernelPath); err != nil {
		t.Skip(err)
	}
	s, err := LoadKernel()
	if err != nil {
		t.Fatal(err)
	}
	if id, err := s.FuncID("bpf_iter_task_file"); id == 0 || err != nil {
		t.Errorf("FuncID(bpf_iter_task_file) = %d, %v", id, err)
	}
	fPath, err1 := s.Offset("file", "f_path")
	mnt, err2 := s.Offset("path", "mnt")
	both, err3 := s.Offset("file", "f_path", "mnt")
	if err := errors.Join(err1, err2, err3); err != nil || fPath+mnt != both {
		t.Errorf("file.f_path %d + path.mnt %d = %d, file.f_path.mnt = %d (%v)", fPath, mnt, fPath+mnt, both, err)
	}
	if _, err := s.Offset("inode", "__i_nlink"); err != nil {
		t.Error(err)
	}
	if got, err := s.Size("path"); got != 16 || err != nil {
		t.Errorf("Size(path) = %d, %v; want 16", got, err)
	}
	for _, f := range kernelFields {
		if _, err := s.Offset(f[0], f[1:]...); err != nil {
			t.Error(err)
		}
	}

	// Reading (what kernels before 6.16, which cannot map the file, get),
	// loading a regular file and Parse give the same answers.
	f, err := os.Open(KernelPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	fromFile, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []*Spec{fromFile, parsed} {
		for _, f := range kernelFields {
			got, err1 := other.Offset(f[0], f[1:]...)
			want, err2 := s.Offset(f[0], f[1:]...)
			if got != want || err1 != nil || err2 != nil {
				t.Errorf("Offset(%q) = %d, %v; mapped: %d, %v", f, got, err1, want, err2)
			}
		}
	}
}

// kernelFields is what an lsof-style task_file iterator reads.
var kernelFields = [][]string{
	{"task_struct", "tgid"},
	{"task_struct", "fs"},
	{"task_struct", "nsproxy"},
	{"file", "f_path", "mnt"},
	{"file", "f_inode"},
	{"path", "dentry"},
	{"inode", "i_ino"},
	{"inode", "__i_nlink"},
	{"super_block", "s_dev"},
	{"mount", "mnt_id"},
	{"fs_struct", "root"},
	{"mm_struct", "exe_file"},
	{"nsproxy", "mnt_ns"},
	{"mnt_namespace", "ns", "inum"},
	{"ns_common", "inum"},
}

// BenchmarkKernel is what one rootswap lsof pays: load the running
// kernel's BTF, find the iterator's FUNC, resolve the fields.
func BenchmarkKernel(b *testing.B) {
	if _, err := os.Stat(KernelPath); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		s, err := LoadKernel()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.FuncID("bpf_iter_task_file"); err != nil {
			b.Fatal(err)
		}
		for _, f := range kernelFields {
			if _, err := s.Offset(f[0], f[1:]...); err != nil {
				b.Fatal(err)
			}
		}
	}
}
