package bpfiter

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// The few eBPF instructions the iterator programs use, encoded by hand:
// a program this small does not justify a BPF toolchain or a loader
// library, and its field offsets come from the running kernel's BTF.

// Register numbers.
const (
	r0 = iota
	r1
	r2
	r3
	r4
	r5
	r6
	r7
	r8
	r9
	fp // r10, the read-only frame pointer
)

// Opcode parts (include/uapi/linux/bpf.h, bpf_common.h).
const (
	clsLDX   = 0x01
	clsST    = 0x02
	clsSTX   = 0x03
	clsALU64 = 0x07
	clsJMP   = 0x05
	clsJMP32 = 0x06 // compares the low 32 bits

	sizeW  = 0x00 // 4 bytes
	sizeH  = 0x08 // 2 bytes
	sizeB  = 0x10 // 1 byte
	sizeDW = 0x18 // 8 bytes

	modeMEM = 0x60

	srcK = 0x00 // immediate operand
	srcX = 0x08 // register operand

	aluADD = 0x00
	aluAND = 0x50
	aluMOV = 0xb0

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJGT  = 0x20
	jmpJNE  = 0x50
	jmpJSGT = 0x60
	jmpCALL = 0x80
	jmpEXIT = 0x90
)

// Helper function numbers (enum bpf_func_id).
const (
	fnProbeReadKernel = 113
	fnSeqWrite        = 127
	fnDPath           = 147
)

// insn is one 8-byte instruction; jumps to a label are resolved by asm.
type insn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
	label    string // this instruction's label
	target   string // for jumps: the label to jump to
}

func ldx(size uint8, dst, src uint8, off int16) insn {
	return insn{code: clsLDX | modeMEM | size, dst: dst, src: src, off: off}
}

func movReg(dst, src uint8) insn { return insn{code: clsALU64 | aluMOV | srcX, dst: dst, src: src} }
func movImm(dst uint8, imm int32) insn {
	return insn{code: clsALU64 | aluMOV | srcK, dst: dst, imm: imm}
}
func addImm(dst uint8, imm int32) insn {
	return insn{code: clsALU64 | aluADD | srcK, dst: dst, imm: imm}
}

// jmpImm jumps to target when dst OP imm.
func jmpImm(op uint8, dst uint8, imm int32, target string) insn {
	return insn{code: clsJMP | op | srcK, dst: dst, imm: imm, target: target}
}

// MaxDevs is the most filesystems a walk can be narrowed to; more, and
// it reports every file.
const MaxDevs = 16

func call(fn int32) insn { return insn{code: clsJMP | jmpCALL, imm: fn} }

// asm encodes a program, resolving jump labels to relative offsets.
func asm(prog []insn) ([]byte, error) {
	labels := map[string]int{}
	for n, i := range prog {
		if i.label != "" {
			labels[i.label] = n
		}
	}
	out := make([]byte, 0, 8*len(prog))
	for n, i := range prog {
		if i.target != "" {
			to, ok := labels[i.target]
			if !ok {
				return nil, fmt.Errorf("bpf program: no label %q", i.target)
			}
			i.off = int16(to - n - 1)
		}
		out = append(out, i.code, i.dst&0xf|i.src<<4)
		out = binary.LittleEndian.AppendUint16(out, uint16(i.off))
		out = binary.LittleEndian.AppendUint32(out, uint32(i.imm))
	}
	return out, nil
}

// helperName names a helper the programs call, as the verifier does.
func helperName(fn int32) string {
	switch fn {
	case fnMapLookupElem:
		return "bpf_map_lookup_elem"
	case fnProbeReadKernel:
		return "bpf_probe_read_kernel"
	case fnSeqWrite:
		return "bpf_seq_write"
	case fnDPath:
		return "bpf_d_path"
	}
	return "unknown"
}

func sizeName(size uint8) string {
	switch size {
	case sizeB:
		return "u8"
	case sizeH:
		return "u16"
	case sizeW:
		return "u32"
	}
	return "u64"
}

func jmpOp(op uint8) string {
	switch op {
	case jmpJEQ:
		return "=="
	case jmpJGT:
		return ">"
	case jmpJGE:
		return ">="
	case jmpJLT:
		return "<"
	case jmpJLE:
		return "<="
	case jmpJNE:
		return "!="
	case jmpJSGT:
		return "s>"
	}
	return fmt.Sprintf("op%#x", op)
}

// String spells the instruction the way the kernel verifier's log does
// ("(79) r7 = *(u64 *)(r6 +16)"), so that a refusal quoted from the log
// can be read next to the golden listings. Jumps show the resolved
// offset when the instruction came out of Disasm, its label otherwise.
func (i insn) String() string {
	reg := func(r uint8) string { return fmt.Sprintf("r%d", r) }
	mem := func(size, r uint8, off int16) string {
		return fmt.Sprintf("*(%s *)(%s %+d)", sizeName(size), reg(r), off)
	}
	target := func() string {
		if i.target != "" {
			return i.target
		}
		return fmt.Sprintf("pc%+d", i.off)
	}
	var s string
	switch cls, op := i.code&0x07, i.code&0xf0; {
	case cls == clsLDX:
		s = fmt.Sprintf("%s = %s", reg(i.dst), mem(i.code&0x18, i.src, i.off))
	case cls == clsSTX:
		s = fmt.Sprintf("%s = %s", mem(i.code&0x18, i.dst, i.off), reg(i.src))
	case cls == clsST:
		s = fmt.Sprintf("%s = %d", mem(i.code&0x18, i.dst, i.off), i.imm)
	case cls == clsALU64:
		src := fmt.Sprint(i.imm)
		if i.code&srcX != 0 {
			src = reg(i.src)
		}
		switch op {
		case aluMOV:
			s = fmt.Sprintf("%s = %s", reg(i.dst), src)
		case aluADD:
			s = fmt.Sprintf("%s += %s", reg(i.dst), src)
		case aluAND:
			s = fmt.Sprintf("%s &= %s", reg(i.dst), src)
		}
	case cls == clsJMP && op == jmpCALL && i.src == pseudoKfuncCall:
		s = fmt.Sprintf("call kfunc#%d", i.imm)
	case cls == clsJMP && op == jmpCALL:
		s = fmt.Sprintf("call %s#%d", helperName(i.imm), i.imm)
	case cls == clsJMP && op == jmpEXIT:
		s = "exit"
	case cls == clsJMP && op == jmpJA:
		s = "goto " + target()
	case cls == clsJMP || cls == clsJMP32:
		dst, src := reg(i.dst), fmt.Sprintf("%#x", uint32(i.imm))
		if cls == clsJMP32 {
			dst = fmt.Sprintf("w%d", i.dst)
		}
		if i.code&srcX != 0 {
			src = reg(i.src)
		}
		s = fmt.Sprintf("if %s %s %s goto %s", dst, jmpOp(op), src, target())
	}
	if s == "" {
		s = fmt.Sprintf("unknown code %#02x", i.code)
	}
	return fmt.Sprintf("(%02x) %s", i.code, s)
}

// Disasm decodes an assembled program into a listing, one instruction a
// line, numbered as the verifier numbers them.
func Disasm(prog []byte) string {
	var b strings.Builder
	for n := 0; n+8 <= len(prog); n += 8 {
		p := prog[n:]
		i := insn{
			code: p[0], dst: p[1] & 0xf, src: p[1] >> 4,
			off: int16(binary.LittleEndian.Uint16(p[2:])),
			imm: int32(binary.LittleEndian.Uint32(p[4:])),
		}
		fmt.Fprintf(&b, "%d: %s\n", n/8, i)
	}
	return b.String()
}
