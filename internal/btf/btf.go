// Package btf reads just enough of the kernel's BTF (BPF Type Format) for a
// hand-assembled BPF program: the type id of a FUNC and the byte offsets of
// struct fields. It decodes no types: Parse makes one pass that notes where
// some records start, and lookups read the raw blob. Loading vmlinux BTF
// (5.5 MB, 127k types) and a dozen lookups take about 2 ms.
package btf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ErrNotFound is wrapped by lookups of names and fields the BTF lacks.
var ErrNotFound = errors.New("btf: not found")

// KernelPath is where the running kernel exposes its own BTF.
const KernelPath = "/sys/kernel/btf/vmlinux"

const (
	hdrLen  = 24 // fixed part of struct btf_header
	typeHdr = 12 // struct btf_type: name_off, info, size_or_type
)

// BTF_KIND_* values from include/uapi/linux/btf.h.
const (
	kindInt = iota + 1
	kindPtr
	kindArray
	kindStruct
	kindUnion
	kindEnum
	kindFwd
	kindTypedef
	kindVolatile
	kindConst
	kindRestrict
	kindFunc
	kindFuncProto
	kindVar
	kindDatasec
	kindFloat
	kindDeclTag
	kindTypeTag
	kindEnum64
	numKinds
)

// Trailing bytes after the 12-byte record, per kind, as 2-bit fields
// (kind*2) in units of 4 bytes: fixed, and per vlen. Shifting a constant
// instead of loading from a table keeps the record-to-record dependency
// chain in index short; it is what bounds parsing speed.
const (
	fixedWords = 1<<(2*kindInt) | 3<<(2*kindArray) | 1<<(2*kindVar) | 1<<(2*kindDeclTag)
	vlenWords  = 3<<(2*kindStruct) | 3<<(2*kindUnion) | 2<<(2*kindEnum) | 2<<(2*kindFuncProto) |
		3<<(2*kindDatasec) | 3<<(2*kindEnum64)
	knownKinds = 1<<numKinds - 2 // kinds 1..19
	funcKinds  = 1 << kindFunc
	aggKinds   = 1<<kindStruct | 1<<kindUnion
)

// Spec is a parsed BTF blob. It is safe for concurrent use.
//
// It indexes only what name lookups need, in as little memory as will do:
// in a fresh process every page of a new allocation costs a page fault,
// ~3 µs each on a VM, which for an index of every record (~0.5 MB for
// vmlinux) would add a third to the cost of parsing.
type Spec struct {
	big   bool     // blob is big-endian
	types []byte   // type section
	strs  []byte   // string section
	n     int      // number of types; ids are 1..n
	cp    []uint32 // cp[j] is where the record of type id j*every+1 starts
	funcs []uint32 // where each FUNC record starts, for FuncID
	aggs  []uint32 // where each STRUCT and UNION record starts

	mapped []byte // the mmap of /sys/kernel/btf/vmlinux that types and strs are in, if any
}

// every is the spacing of Spec.cp: finding a record by id steps over at
// most every-1 records, and cp costs 4/every bytes per type.
const every = 32

// Parse reads a raw BTF blob (header, type section, string section; little-
// or big-endian per the magic 0xeB9F). It validates the header and that
// every type record is in bounds, so arbitrary input never panics. The Spec
// keeps referring to b, which must not be modified afterwards.
func Parse(b []byte) (*Spec, error) {
	s, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("btf: %w", err)
	}
	return s, nil
}

func parse(b []byte) (*Spec, error) {
	if len(b) < hdrLen {
		return nil, fmt.Errorf("%d bytes is shorter than the %d-byte header", len(b), hdrLen)
	}
	s := &Spec{}
	switch {
	case b[0] == 0x9f && b[1] == 0xeb:
	case b[0] == 0xeb && b[1] == 0x9f:
		s.big = true
	default:
		return nil, fmt.Errorf("bad magic % x", b[:2])
	}
	if b[2] != 1 {
		return nil, fmt.Errorf("unsupported version %d", b[2])
	}
	hl := uint64(s.u32(b, 4))
	if hl < hdrLen || hl > uint64(len(b)) {
		return nil, fmt.Errorf("header length %d out of range (blob is %d bytes)", hl, len(b))
	}
	body := b[hl:]
	var err error
	if s.types, err = section(body, s.u32(b, 8), s.u32(b, 12), "type"); err != nil {
		return nil, err
	}
	if s.strs, err = section(body, s.u32(b, 16), s.u32(b, 20), "string"); err != nil {
		return nil, err
	}
	if err := s.index(); err != nil {
		return nil, err
	}
	return s, nil
}

// section returns body[off:off+n] or an error if it does not fit.
func section(body []byte, off, n uint32, what string) ([]byte, error) {
	end := uint64(off) + uint64(n)
	if end > uint64(len(body)) {
		return nil, fmt.Errorf("%s section [%d, %d) past the end of the %d bytes after the header", what, off, end, len(body))
	}
	return body[off:end:end], nil
}

// index records where every 32nd type record, each FUNC and each
// struct/union starts: the only pass over the whole type section. Records
// are variable-length, so this is also what bounds-checks them. The loop
// is bound by the latency from one record's info word to the next record's
// address; it is kept small so that nothing else lengthens that chain.
func (s *Spec) index() error {
	t, big := s.types, s.big
	// Capacities from vmlinux's proportions (bytes of type section per
	// record, FUNC, struct/union), so that it needs no regrowth.
	cp := make([]uint32, len(t)/(24*every)+2)
	funcs := make([]uint32, len(t)/52+1)
	aggs := make([]uint32, len(t)/210+1)
	var nt, nf, na uint // unsigned: cheaper division and no sign checks
	off := 0
	// No calls in the inner loop, not even on error paths: the compiler
	// would then keep its variables on the stack. Room for a batch of
	// records is made beforehand.
	const batch = 4096
outer:
	for off <= len(t)-typeHdr {
		// Each record stores to funcs[nf], aggs[na] and cp[(nt+every-1)/every].
		cpRoom := uint(len(cp)-1)*every + 1 - nt
		room := min(batch, uint(len(funcs))-nf, uint(len(aggs))-na, cpRoom)
		if room == 0 {
			if nf == uint(len(funcs)) {
				funcs = grow(funcs)
			}
			if na == uint(len(aggs)) {
				aggs = grow(aggs)
			}
			if cpRoom == 0 {
				cp = grow(cp)
			}
			continue
		}
		for end := nt + room; nt < end && off <= len(t)-typeHdr; nt++ {
			// A 3-index slice of constant capacity needs no pointer
			// masking, which would lengthen the critical path.
			info := binary.LittleEndian.Uint32(t[off+4 : off+8 : off+8])
			if big {
				info = bits.ReverseBytes32(info)
			}
			kind := info >> 24 & 0x1f
			n := recordLen(info)
			if knownKinds>>kind&1 == 0 || n > len(t)-off {
				break outer
			}
			// Unconditional stores and conditional counts: kinds
			// alternate too irregularly for a branch to predict well.
			// Records nt-every+1..nt store to the slot that record nt,
			// the last of them, owns when nt is a multiple of every.
			cp[(nt+every-1)/every] = uint32(off)
			funcs[nf] = uint32(off)
			aggs[na] = uint32(off)
			nf += uint(funcKinds >> kind & 1)
			na += uint(aggKinds >> kind & 1)
			off += n
		}
	}
	if off != len(t) {
		return s.badRecord(off, int(nt)+1)
	}
	s.n, s.cp, s.funcs, s.aggs = int(nt), cp[:(nt+every-1)/every], funcs[:nf], aggs[:na]
	return nil
}

// recordLen is the length of a type record with this info word, trailing
// data included; 12 for unknown kinds.
func recordLen(info uint32) int {
	sh := info >> 23 & 0x3e // 2*kind
	return typeHdr + 4*int(uint64(fixedWords)>>sh&3+(uint64(vlenWords)>>sh&3)*uint64(info&0xffff))
}

// badRecord describes why index stopped at the record at off.
func (s *Spec) badRecord(off, id int) error {
	t := s.types
	if len(t)-off < typeHdr {
		return fmt.Errorf("type %d: record header truncated at byte %d of the type section", id, off)
	}
	info := s.u32(t, off+4)
	kind := info >> 24 & 0x1f
	if knownKinds>>kind&1 == 0 {
		return fmt.Errorf("type %d: unknown kind %d", id, kind)
	}
	return fmt.Errorf("type %d (kind %d, vlen %d) at byte %d runs past the %d-byte type section", id, kind, info&0xffff, off, len(t))
}

func grow(s []uint32) []uint32 { return append(s, make([]uint32, len(s))...) }

func (s *Spec) u32(b []byte, off int) uint32 {
	if s.big {
		return binary.BigEndian.Uint32(b[off:])
	}
	return binary.LittleEndian.Uint32(b[off:])
}

// LoadKernel reads and parses the running kernel's BTF,
// /sys/kernel/btf/vmlinux.
func LoadKernel() (*Spec, error) { return Load(KernelPath) }

// Load reads and parses the BTF blob at path. A sysfs file is mapped
// rather than read when the kernel allows it.
func Load(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("btf: %w", err)
	}
	defer f.Close()
	if b := mapSysfs(f); b != nil {
		s, err := parse(b)
		if err != nil {
			unix.Munmap(b)
			return nil, fmt.Errorf("btf: %s: %w", path, err)
		}
		// Nothing outside the Spec refers to the mapping (lookups return
		// plain numbers), so it can go when the Spec does. SetFinalizer,
		// not AddCleanup: no generic copy for the Spec (issue 10).
		s.mapped = b
		runtime.SetFinalizer(s, func(s *Spec) { unix.Munmap(s.mapped) })
		return s, nil
	}
	b, err := readAll(f)
	if err != nil {
		return nil, fmt.Errorf("btf: %w", err)
	}
	s, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("btf: %s: %w", path, err)
	}
	return s, nil
}

// mapSysfs maps a sysfs file read-only, or returns nil. Reading a sysfs
// binary attribute returns at most a page per read(2), ~3 ms for vmlinux;
// since Linux 6.16 /sys/kernel/btf/vmlinux can be mapped instead, at no
// copy. Only sysfs: a regular file truncated under a mapping would SIGBUS.
func mapSysfs(f *os.File) []byte {
	var fs unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &fs) != nil || fs.Type != unix.SYSFS_MAGIC {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Size <= 0 || st.Size > 1<<31 {
		return nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return b
}

// readAll reads f to its end, sized by its stat size when it has one.
func readAll(f *os.File) ([]byte, error) {
	size := 0
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.Size() < 1<<31 {
		size = int(fi.Size())
	}
	b := make([]byte, 0, size+1) // +1: EOF without regrowing
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
