package bpfiter

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// The instructions the write-tracking programs need beyond the
// iterators' few: 64-bit immediates and map references, register
// arithmetic, unsigned compares and atomics (include/uapi/linux/bpf.h).
// text.go assembles them.

const (
	clsLD   = 0x00
	modeIMM = 0x00
	// modeATOMIC with imm = the operation: atomic read-modify-write of
	// memory (Linux 5.12+ for OR and FETCH).
	modeATOMIC = 0xc0
	atomicADD  = 0x00
	atomicOR   = 0x40
	atomicFET  = 0x01 // BPF_FETCH: src gets the old value

	aluSUB = 0x10
	aluOR  = 0x40
	aluLSH = 0x60
	aluRSH = 0x70

	jmpJGE = 0x30
	jmpJLT = 0xa0
	jmpJLE = 0xb0

	// ld_imm64 src values: imm is a map fd; imm is a map fd and the
	// second half's imm an offset into its (first) value.
	pseudoMapFD    = 1
	pseudoMapValue = 2

	fnMapLookupElem = 1
)

// writesString spells the instructions of the write-tracking programs
// that insn.String does not know, in the verifier log's notation.
func writesString(i, next insn) (string, bool) {
	reg := func(r uint8) string { return fmt.Sprintf("r%d", r) }
	cls, op := i.code&0x07, i.code&0xf0
	switch {
	case i.code == clsLD|modeIMM|sizeDW:
		switch i.src {
		case pseudoMapFD:
			return fmt.Sprintf("(18) %s = map[fd:%d]", reg(i.dst), i.imm), true
		case pseudoMapValue:
			return fmt.Sprintf("(18) %s = map[fd:%d][0]+%d", reg(i.dst), i.imm, next.imm), true
		}
		return fmt.Sprintf("(18) %s = %#x", reg(i.dst), uint64(uint32(i.imm))|uint64(uint32(next.imm))<<32), true
	case i.code == clsSTX|modeATOMIC|sizeDW:
		mem := fmt.Sprintf("*(u64 *)(%s %+d)", reg(i.dst), i.off)
		switch i.imm {
		case atomicOR:
			return fmt.Sprintf("(db) lock %s |= %s", mem, reg(i.src)), true
		case atomicADD:
			return fmt.Sprintf("(db) lock %s += %s", mem, reg(i.src)), true
		case atomicADD | atomicFET:
			return fmt.Sprintf("(db) %s = atomic64_fetch_add((u64 *)(%s %+d), %s)", reg(i.src), reg(i.dst), i.off, reg(i.src)), true
		}
	case cls == clsALU64:
		src := fmt.Sprint(i.imm)
		if i.code&srcX != 0 {
			src = reg(i.src)
		}
		sym := map[uint8]string{aluSUB: "-=", aluOR: "|=", aluLSH: "<<=", aluRSH: ">>="}[op]
		if sym != "" {
			return fmt.Sprintf("(%02x) %s %s %s", i.code, reg(i.dst), sym, src), true
		}
	}
	return "", false
}

// DisasmWrites is Disasm for the write-tracking programs: it also spells
// 64-bit loads, map references, atomics and the ALU operations beyond
// mov, add and and.
func DisasmWrites(prog []byte) string {
	var b strings.Builder
	dec := func(p []byte) insn {
		return insn{
			code: p[0], dst: p[1] & 0xf, src: p[1] >> 4,
			off: int16(binary.LittleEndian.Uint16(p[2:])),
			imm: int32(binary.LittleEndian.Uint32(p[4:])),
		}
	}
	for n := 0; n+8 <= len(prog); n += 8 {
		i := dec(prog[n:])
		var next insn
		if n+16 <= len(prog) {
			next = dec(prog[n+8:])
		}
		s, ok := writesString(i, next)
		if !ok {
			s = i.String()
		}
		fmt.Fprintf(&b, "%d: %s\n", n/8, s)
		if i.code == clsLD|modeIMM|sizeDW {
			n += 8 // the second half of a 64-bit load
		}
	}
	return b.String()
}
