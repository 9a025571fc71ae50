package btf

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
)

const (
	maxHops    = 32      // typedef/const/... chain, as libbpf's MAX_RESOLVE_DEPTH
	maxMembers = 1 << 20 // member records one Offset call may visit
)

// record is the fixed part of a type record.
type record struct {
	name, info, sizeType uint32
	data                 int // offset in Spec.types of the kind-specific data
}

func (r record) kind() uint32 { return r.info >> 24 & 0x1f }
func (r record) vlen() int    { return int(r.info & 0xffff) }
func (r record) kflag() bool  { return r.info>>31 != 0 }

// recAt returns the record at off, which index found to start one.
func (s *Spec) recAt(off int) record {
	t := s.types
	return record{s.u32(t, off), s.u32(t, off+4), s.u32(t, off+8), off + typeHdr}
}

// rec returns type id's record; ok is false for void and ids out of range,
// which member and typedef references in a hostile blob may be.
func (s *Spec) rec(id uint32) (r record, ok bool) {
	if id == 0 || uint64(id) > uint64(s.n) {
		return r, false
	}
	i := int(id - 1)
	off := int(s.cp[i/every])
	for range i % every {
		off += recordLen(s.u32(s.types, off+4))
	}
	return s.recAt(off), true
}

// idAt returns the id of the record at off, which index found to start one.
func (s *Spec) idAt(off int) uint32 {
	j, found := slices.BinarySearch(s.cp, uint32(off))
	if !found {
		j--
	}
	id := j*every + 1
	for o := int(s.cp[j]); o < off; o += recordLen(s.u32(s.types, o+4)) {
		id++
	}
	return uint32(id)
}

// nameIs reports whether the string at off is name, without allocating.
// name must not be empty or contain NUL (see validName).
func (s *Spec) nameIs(off uint32, name string) bool {
	end := uint64(off) + uint64(len(name))
	return end < uint64(len(s.strs)) && s.strs[end] == 0 && string(s.strs[off:end]) == name
}

func (s *Spec) isAnon(off uint32) bool {
	return uint64(off) < uint64(len(s.strs)) && s.strs[off] == 0
}

func validName(name string) bool { return name != "" && strings.IndexByte(name, 0) < 0 }

// key8 is a cheap prefilter for name comparison: the first 8 bytes of the
// string at off, zeroed from its NUL on. Scanning thousands of names costs
// one load and a few ALU ops each, and the compare branch is almost never
// taken, so it predicts well.
func (s *Spec) key8(off uint32) uint64 {
	var x uint64
	if uint64(off)+8 <= uint64(len(s.strs)) {
		x = binary.LittleEndian.Uint64(s.strs[off:])
	} else {
		for i := uint64(0); i < 8 && uint64(off)+i < uint64(len(s.strs)); i++ {
			x |= uint64(s.strs[uint64(off)+i]) << (8 * i)
		}
	}
	// The has-zero-byte expression flags the lowest zero byte exactly
	// (bytes above it may be flagged falsely), so lowest>>7 - 1 masks
	// the bytes below it, or all of x when there is none.
	zero := (x - 0x0101010101010101) &^ x & 0x8080808080808080
	lowest := zero & -zero
	return x & (lowest>>7 - 1)
}

func nameKey(name string) uint64 {
	var x uint64
	for i := 0; i < 8 && i < len(name); i++ {
		x |= uint64(name[i]) << (8 * i)
	}
	return x
}

// find returns the position in offs, from i on, of the next record named
// name, or -1.
func (s *Spec) find(offs []uint32, i int, name string) int {
	key := nameKey(name)
	for ; i < len(offs); i++ {
		n := s.u32(s.types, int(offs[i]))
		if s.key8(n) == key && s.nameIs(n, name) {
			return i
		}
	}
	return -1
}

// FuncID returns the type id of the BTF_KIND_FUNC named name.
func (s *Spec) FuncID(name string) (uint32, error) {
	defer runtime.KeepAlive(s) // s.types may be a mapping s's cleanup unmaps
	if validName(name) {
		if i := s.find(s.funcs, 0, name); i >= 0 {
			return s.idAt(int(s.funcs[i])), nil
		}
	}
	return 0, fmt.Errorf("%w: func %q", ErrNotFound, name)
}

// Offset returns the byte offset of a field path inside the struct (or
// union) named typ, e.g. Offset("file", "f_path", "mnt"). Members of
// anonymous struct/union members count as direct members; typedefs and
// qualifiers are looked through when descending. A bitfield is an error.
// When several structs/unions are named typ, the first that has the path
// wins; when none is named typ, a typedef (e.g. atomic_t) is tried.
func (s *Spec) Offset(typ string, field ...string) (int, error) {
	defer runtime.KeepAlive(s)
	var first error // from the first candidate, the likeliest intended
	budget := maxMembers
	if validName(typ) {
		for i := s.find(s.aggs, 0, typ); i >= 0; i = s.find(s.aggs, i+1, typ) {
			off, err := s.walk(s.recAt(int(s.aggs[i])), typ, field, &budget)
			if err == nil {
				return off, nil
			}
			if first == nil {
				first = err
			}
		}
		if first == nil {
			// Rare, so a walk over all records is fine here.
			for off := 0; off < len(s.types); off += recordLen(s.u32(s.types, off+4)) {
				r := s.recAt(off)
				if r.kind() != kindTypedef || !s.nameIs(r.name, typ) {
					continue
				}
				if _, ok := s.resolve(r); !ok {
					continue
				}
				o, err := s.walk(r, typ, field, &budget)
				if err == nil {
					return o, nil
				}
				if first == nil {
					first = err
				}
			}
		}
	}
	if first == nil {
		first = fmt.Errorf("%w: no struct or union %q (for %s)", ErrNotFound, typ, path(typ, field))
	}
	return 0, first
}

// walk resolves the field path from r, a struct or union possibly behind
// typedefs. budget bounds the member records visited: a hostile blob can
// nest many anonymous members many times over.
func (s *Spec) walk(r record, typ string, field []string, budget *int) (int, error) {
	var total uint64 // bits
	for i, f := range field {
		agg, ok := s.resolve(r)
		if !ok {
			return 0, fmt.Errorf("btf: %s is not a struct or union", path(typ, field[:i]))
		}
		m, found := s.member(agg, f, 0, budget)
		switch {
		case *budget < 0:
			return 0, fmt.Errorf("btf: %s: more than %d members visited", path(typ, field[:i+1]), maxMembers)
		case !found:
			return 0, fmt.Errorf("%w: %s has no field %q", ErrNotFound, path(typ, field[:i]), f)
		case m.bitfield || m.bits%8 != 0:
			return 0, fmt.Errorf("btf: %s is a bitfield", path(typ, field[:i+1]))
		}
		total += m.bits
		if i+1 < len(field) {
			if r, ok = s.rec(m.typ); !ok {
				return 0, fmt.Errorf("btf: %s has a bad type reference", path(typ, field[:i+1]))
			}
		}
	}
	if total/8 > math.MaxInt32 {
		return 0, fmt.Errorf("btf: %s: offset of %d bits out of range", path(typ, field), total)
	}
	return int(total / 8), nil
}

func path(typ string, field []string) string {
	return strings.Join(append([]string{typ}, field...), ".")
}

type member struct {
	bits     uint64 // offset from the start of the struct searched
	typ      uint32
	bitfield bool
}

// member finds the member named name in struct/union agg, descending into
// anonymous struct/union members, and counts the records it visits off
// budget.
func (s *Spec) member(agg record, name string, depth int, budget *int) (member, bool) {
	if !validName(name) {
		return member{}, false
	}
	t := s.types
	for j := range agg.vlen() {
		if *budget--; *budget < 0 {
			return member{}, false
		}
		p := agg.data + 12*j
		mname, mtype, moff := s.u32(t, p), s.u32(t, p+4), s.u32(t, p+8)
		bits, bitSize := uint64(moff), uint32(0)
		if agg.kflag() {
			bits, bitSize = uint64(moff&0xffffff), moff>>24
		}
		if s.isAnon(mname) {
			if sub, ok := s.aggregate(mtype); ok && depth < maxHops {
				if m, ok := s.member(sub, name, depth+1, budget); ok {
					m.bits += bits
					return m, true
				}
			}
			continue
		}
		if s.nameIs(mname, name) {
			return member{bits, mtype, bitSize != 0 || s.intBitfield(mtype)}, true
		}
	}
	return member{}, false
}

// intBitfield reports whether id is an integer narrower than its storage or
// at a bit offset: how bitfields look in a struct without kind_flag.
func (s *Spec) intBitfield(id uint32) bool {
	r, ok := s.rec(id)
	if ok {
		r, ok = s.skipQualifiers(r)
	}
	if !ok || r.kind() != kindInt {
		return false
	}
	enc := s.u32(s.types, r.data)
	return enc>>16&0xff != 0 || uint64(enc&0xff) != 8*uint64(r.sizeType)
}

// skipQualifiers follows typedef/const/volatile/restrict/type_tag.
func (s *Spec) skipQualifiers(r record) (record, bool) {
	for range maxHops {
		switch r.kind() {
		case kindTypedef, kindConst, kindVolatile, kindRestrict, kindTypeTag:
			var ok bool
			if r, ok = s.rec(r.sizeType); !ok {
				return r, false
			}
		default:
			return r, true
		}
	}
	return record{}, false
}

// resolve returns the struct/union r is, through qualifiers.
func (s *Spec) resolve(r record) (record, bool) {
	r, ok := s.skipQualifiers(r)
	if !ok || (r.kind() != kindStruct && r.kind() != kindUnion) {
		return record{}, false
	}
	return r, true
}

// aggregate returns the struct/union type id is, through qualifiers.
func (s *Spec) aggregate(id uint32) (record, bool) {
	r, ok := s.rec(id)
	if !ok {
		return r, false
	}
	return s.resolve(r)
}

// Size returns the byte size of the struct/union named typ, or failing
// that of the int, enum, float or typedef named typ.
func (s *Spec) Size(typ string) (int, error) {
	defer runtime.KeepAlive(s)
	if validName(typ) {
		if i := s.find(s.aggs, 0, typ); i >= 0 {
			return sizeInt(uint64(s.recAt(int(s.aggs[i])).sizeType), typ)
		}
		// Rare, so a walk over all records is fine here.
		for off := 0; off < len(s.types); off += recordLen(s.u32(s.types, off+4)) {
			r := s.recAt(off)
			switch r.kind() {
			case kindInt, kindEnum, kindEnum64, kindFloat, kindTypedef:
				if s.nameIs(r.name, typ) {
					n, err := s.size(r, 0)
					if err != nil {
						return 0, fmt.Errorf("btf: size of %s: %w", typ, err)
					}
					return sizeInt(n, typ)
				}
			}
		}
	}
	return 0, fmt.Errorf("%w: type %q", ErrNotFound, typ)
}

func sizeInt(n uint64, typ string) (int, error) {
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("btf: size of %s: %d out of range", typ, n)
	}
	return int(n), nil
}

// size resolves the byte size of r through qualifiers and arrays.
func (s *Spec) size(r record, depth int) (uint64, error) {
	r, ok := s.skipQualifiers(r)
	if !ok {
		return 0, fmt.Errorf("bad type reference or chain too long")
	}
	switch r.kind() {
	case kindInt, kindEnum, kindEnum64, kindFloat, kindStruct, kindUnion:
		return uint64(r.sizeType), nil
	case kindArray:
		elem, ok := s.rec(s.u32(s.types, r.data))
		if !ok || depth >= maxHops {
			return 0, fmt.Errorf("bad array element type or arrays nested too deep")
		}
		n, err := s.size(elem, depth+1)
		if err != nil {
			return 0, err
		}
		count := uint64(s.u32(s.types, r.data+8))
		if count != 0 && n > math.MaxInt32/count {
			return 0, fmt.Errorf("array too large")
		}
		return n * count, nil
	case kindPtr:
		return 0, fmt.Errorf("BTF does not record pointer size")
	}
	return 0, fmt.Errorf("kind %d has no size", r.kind())
}
