package bpfiter

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The programs are text in the notation of the verifier's log (and of
// the golden listings), one instruction a line, assembled when a walk
// builds them: as Go constructor calls each instruction cost the binary
// ~100 bytes of machine code, as text it costs its length. Beyond the
// verifier's notation:
//
//   - "name:" labels the instruction it precedes (on its line or the
//     next); goto and if ... goto jump to it. A label starting with "."
//     is local: the builder's scope is put before it, so that a fragment
//     can be emitted more than once.
//   - An offset or immediate is a sum of terms: numbers, 'c', symbols of
//     the builder (the Go constants of the record layouts, a walk's
//     devices or a watch's geometry), and BTF field paths such as
//     file.f_path or mnt_namespace.ns.inum: the field's offset in the
//     running kernel.
//   - A register is r0-r10, w0-w10 in 32-bit compares, or a symbol that
//     names one, spelled r and a capital (rFile).
//   - call NAME calls a helper, call kfunc NAME a kernel function by its
//     BTF id.
//   - rN = EXPR ll loads a 64-bit immediate; rN = map[fd:EXPR] a map's
//     address and rN = map[fd:EXPR][0]+EXPR one of its first value's.
//   - *(SZ *)(r10 OFF) = probe_chain(rN, OFF1, OFF2, ...) stores
//     *(...*(rN+OFF1)+OFF2...) read with bpf_probe_read_kernel, a read a
//     hop, the pointers in between passing through the slot at r10-8.
//     A NULL on the way makes the reads fail and zero the slot.
//   - rD = probe_read(SZ, rS OFF, SLOT, FAIL) reads SZ bytes at rS+OFF
//     into the stack slot at r10+SLOT with bpf_probe_read_kernel, jumps
//     to FAIL when the read fails, and loads the slot into rD.
//   - // starts a comment.

// sym is a name the program text may use for a number.
type sym struct {
	name string
	v    int64
}

// builder assembles one program from pieces of text.
type builder struct {
	fields         // the kernel's BTF; the first error is kept
	syms    []sym  // searched last to first: a later definition wins
	scope   string // put before local labels
	pending string // a label on a line of its own, for the next instruction
	prog    []insn
}

// ctx fields of the iterators and the path segment's stack, for every
// program.
func commonSyms() []sym {
	return []sym{
		{"ctxMeta", ctxMeta}, {"ctxTask", ctxTask}, {"ctxFD", ctxFD}, {"ctxFile", ctxFile}, {"ctxVMA", ctxVMA},
		{"pathMax", pathMax}, {"segBuf", segBuf}, {"segRet", segRet},
		{"S_IFMT", unix.S_IFMT}, {"S_IFSOCK", unix.S_IFSOCK},
	}
}

// newBuilder, def, fail, eat and must are not inlined: the assembler
// runs a few times per walk, and their 80 inlined copies cost the binary
// 12 KB.
//
//go:noinline
func newBuilder(s kernelBTF, syms []sym) *builder {
	// Room for the longest program but the mapped check's: few regrowths.
	return &builder{fields: fields{spec: s}, syms: append(commonSyms(), syms...), prog: make([]insn, 0, 256)}
}

// def defines (or redefines) symbol name.
//
//go:noinline
func (b *builder) def(name string, v int64) { b.syms = append(b.syms, sym{name, v}) }

//go:noinline
func (b *builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// emit appends instructions, the first taking a pending label.
func (b *builder) emit(is ...insn) {
	if b.pending != "" && len(is) > 0 {
		if is[0].label != "" {
			b.fail(fmt.Errorf("bpf program: two labels, %s and %s", b.pending, is[0].label))
		}
		is[0].label, b.pending = b.pending, ""
	}
	b.prog = append(b.prog, is...)
}

// assemble encodes the program, or returns the first error.
func (b *builder) assemble() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return asm(b.prog)
}

// text assembles src and appends it.
func (b *builder) text(src string) {
	for src != "" {
		var line string
		line, src, _ = strings.Cut(src, "\n")
		line, _, _ = strings.Cut(line, "//")
		line = strings.TrimSpace(line)
		if first, rest, _ := strings.Cut(line, " "); strings.HasSuffix(first, ":") {
			if b.pending != "" {
				b.fail(fmt.Errorf("bpf program: two labels, %s and %s", b.pending, first))
			}
			b.pending, line = b.label(first[:len(first)-1]), strings.TrimSpace(rest)
		}
		if line != "" && !b.line(line) {
			b.fail(fmt.Errorf("bpf program: cannot assemble %q", line))
		}
	}
}

func (b *builder) label(l string) string {
	if strings.HasPrefix(l, ".") {
		return b.scope + l
	}
	return l
}

// cursor reads one line.
type cursor struct {
	b  *builder
	s  string
	ok bool
}

//go:noinline
func (c *cursor) eat(p string) bool {
	if strings.HasPrefix(c.s, p) {
		c.s = c.s[len(p):]
		return true
	}
	return false
}

//go:noinline
func (c *cursor) must(p string) {
	if !c.eat(p) {
		c.ok = false
	}
}

// peek returns the next word: up to a space, a comma or a closing
// bracket.
func (c *cursor) peek() string {
	n := strings.IndexAny(c.s, " ,)]")
	if n < 0 {
		n = len(c.s)
	}
	return c.s[:n]
}

func (c *cursor) word() string {
	w := c.peek()
	c.s = c.s[len(w):]
	return w
}

// isReg says whether w spells a register: r or w and a digit, or r and
// a capital (a symbol naming one).
func isReg(w string) bool {
	return len(w) > 1 && (w[0] == 'r' || w[0] == 'w') && '0' <= w[1] && w[1] <= '9' || len(w) > 1 && w[0] == 'r' && 'A' <= w[1] && w[1] <= 'Z'
}

// reg reads a register; wide is false for a w register.
func (c *cursor) reg() (r uint8, wide bool) {
	w := c.word()
	if !isReg(w) {
		c.ok = false
		return 0, true
	}
	n, err := strconv.ParseInt(w[1:], 10, 8)
	if w[1] > '9' {
		n, err = c.sym(w), nil
	}
	if err != nil || n < 0 || n > fp {
		c.ok = false
	}
	return uint8(n), w[0] == 'r'
}

func (c *cursor) sym(name string) int64 {
	for i := len(c.b.syms) - 1; i >= 0; i-- {
		if c.b.syms[i].name == name {
			return c.b.syms[i].v
		}
	}
	c.b.fail(fmt.Errorf("bpf program: no symbol %q", name))
	return 0
}

// expr reads a sum of numbers, characters, symbols and BTF field paths.
func (c *cursor) expr() int64 {
	w := c.word()
	if w == "" {
		c.ok = false
	}
	var v int64
	for w != "" {
		sign := int64(1)
		if w[0] == '+' || w[0] == '-' {
			if w[0] == '-' {
				sign = -1
			}
			w = w[1:]
		}
		n := strings.IndexAny(w, "+-")
		if n < 0 {
			n = len(w)
		}
		t := w[:n]
		w = w[n:]
		var x int64
		switch typ, field, btf := strings.Cut(t, "."); {
		case t == "":
			c.ok = false
		case '0' <= t[0] && t[0] <= '9':
			var err error
			if x, err = strconv.ParseInt(t, 0, 64); err != nil {
				c.ok = false
			}
		case len(t) == 3 && t[0] == '\'' && t[2] == '\'':
			x = int64(t[1])
		case btf:
			o, err := c.b.spec.Offset(typ, strings.Split(field, ".")...)
			if err != nil {
				c.b.fail(err)
			}
			x = int64(o)
		default:
			x = c.sym(t)
		}
		v += sign * x
	}
	return v
}

// mem reads "SZ *)(rN OFF)", the rest of a memory operand after "*(".
func (c *cursor) mem() (size, r uint8, off int16) {
	size = sizeCode(c.word())
	if size > sizeDW {
		c.ok = false
	}
	c.must(" *)(")
	r, _ = c.reg()
	c.must(" ")
	off = int16(c.expr())
	c.must(")")
	return size, r, off
}

func sizeCode(name string) uint8 {
	for _, s := range []uint8{sizeB, sizeH, sizeW, sizeDW} {
		if sizeName(s) == name {
			return s
		}
	}
	return 0xff
}

func aluCode(op string) (uint8, bool) {
	switch op {
	case "=":
		return aluMOV, true
	case "+=":
		return aluADD, true
	case "-=":
		return aluSUB, true
	case "&=":
		return aluAND, true
	case "|=":
		return aluOR, true
	case "<<=":
		return aluLSH, true
	case ">>=":
		return aluRSH, true
	}
	return 0, false
}

func jmpCode(op string) (uint8, bool) {
	for _, j := range []uint8{jmpJEQ, jmpJGT, jmpJGE, jmpJNE, jmpJSGT, jmpJLT, jmpJLE} {
		if jmpOp(j) == op {
			return j, true
		}
	}
	return 0, false
}

func helperID(name string) (int32, bool) {
	for _, fn := range []int32{fnMapLookupElem, fnProbeReadKernel, fnSeqWrite, fnDPath} {
		if helperName(fn) == name {
			return fn, true
		}
	}
	return 0, false
}

// line assembles one instruction (or the few of a pseudo-instruction).
func (b *builder) line(s string) bool {
	c := &cursor{b: b, s: s, ok: true}
	var i insn
	switch {
	case c.eat("exit"):
		i.code = clsJMP | jmpEXIT
	case c.eat("goto "):
		i.code, i.target = clsJMP|jmpJA, b.label(c.word())
	case c.eat("call kfunc "):
		i.code, i.src, i.imm = clsJMP|jmpCALL, pseudoKfuncCall, b.kfunc(c.word())
	case c.eat("call "):
		i.code = clsJMP | jmpCALL
		i.imm, c.ok = helperID(c.word())
	case c.eat("if "):
		var wide bool
		i.dst, wide = c.reg()
		i.code = clsJMP
		if !wide {
			i.code = clsJMP32
		}
		c.must(" ")
		op, ok := jmpCode(c.word())
		c.ok = c.ok && ok
		c.must(" ")
		if isReg(c.peek()) {
			i.code |= op | srcX
			i.src, _ = c.reg()
		} else {
			i.code |= op | srcK
			i.imm = int32(c.expr())
		}
		c.must(" goto ")
		i.target = b.label(c.word())
	case c.eat("lock *("):
		// lock *(u64 *)(rD OFF) += rS, or |=
		var size uint8
		size, i.dst, i.off = c.mem()
		i.code = clsSTX | modeATOMIC | size
		if !c.eat(" += ") {
			c.must(" |= ")
			i.imm = atomicOR
		}
		i.src, _ = c.reg()
	case c.eat("*("):
		var size uint8
		size, i.dst, i.off = c.mem()
		c.must(" = ")
		switch {
		case isReg(c.peek()):
			i.code = clsSTX | modeMEM | size
			i.src, _ = c.reg()
		case c.eat("probe_chain("):
			return c.ok && i.dst == fp && c.probeChain(i.off, size)
		default:
			i.code = clsST | modeMEM | size
			i.imm = int32(c.expr())
		}
	default:
		var wide bool
		i.dst, wide = c.reg()
		c.ok = c.ok && wide
		c.must(" ")
		op, ok := aluCode(c.word())
		c.ok = c.ok && ok
		c.must(" ")
		switch {
		case op == aluMOV && c.eat("*("):
			var size uint8
			size, i.src, i.off = c.mem()
			i.code = clsLDX | modeMEM | size
		case op == aluMOV && c.eat("map[fd:"):
			// The map's fd, relocated by the kernel; with [0]+OFF the
			// address of byte OFF of its first value.
			i.code, i.src, i.imm = clsLD|modeIMM|sizeDW, pseudoMapFD, int32(c.expr())
			c.must("]")
			var hi insn
			if c.eat("[0]+") {
				i.src, hi.imm = pseudoMapValue, int32(c.expr())
			}
			b.emit(i, hi)
			return c.ok && c.s == ""
		case op == aluMOV && c.eat("probe_read("):
			return c.probeRead(i.dst)
		case op == aluMOV && c.eat("atomic64_fetch_add((u64 *)("):
			src := i.dst
			i.code = clsSTX | modeATOMIC | sizeDW
			i.imm = atomicADD | atomicFET
			i.dst, _ = c.reg()
			c.must(" ")
			i.off = int16(c.expr())
			c.must("), ")
			i.src, _ = c.reg()
			c.must(")")
			c.ok = c.ok && i.src == src
		default:
			if isReg(c.peek()) {
				i.code = clsALU64 | op | srcX
				i.src, _ = c.reg()
				break
			}
			v := c.expr()
			if op == aluMOV && c.eat(" ll") {
				b.emit(insn{code: clsLD | modeIMM | sizeDW, dst: i.dst, imm: int32(v)}, insn{imm: int32(v >> 32)})
				return c.ok && c.s == ""
			}
			i.code = clsALU64 | op | srcK
			i.imm = int32(v)
		}
	}
	if !c.ok || c.s != "" {
		return false
	}
	b.emit(i)
	return true
}

// probeChain reads the rest of "probe_chain(rN, OFF, ...)" and emits
// the reads, the last size bytes into the stack at r10+dst.
func (c *cursor) probeChain(dst int16, size uint8) bool {
	base, _ := c.reg()
	n := int32(8)
	if size == sizeW {
		n = 4
	}
	for first := true; c.ok && c.eat(", "); first = false {
		off := int32(c.expr())
		ptr := movReg(r3, base)
		if !first {
			ptr = ldx(sizeDW, r3, fp, -8)
		}
		at, size := int32(-8), int32(8)
		if !strings.HasPrefix(c.s, ",") { // the last hop
			at, size = int32(dst), n
		}
		c.b.emit(ptr, addImm(r3, off), movReg(r1, fp), addImm(r1, at), movImm(r2, size), call(fnProbeReadKernel))
	}
	c.must(")")
	return c.ok && c.s == ""
}

// probeRead reads the rest of "rD = probe_read(SZ, rS OFF, SLOT, FAIL)"
// and emits it.
func (c *cursor) probeRead(dst uint8) bool {
	size := sizeCode(c.word())
	n := int32(8)
	switch size {
	case sizeW:
		n = 4
	case sizeH:
		n = 2
	case sizeB:
		n = 1
	}
	c.must(", ")
	src, _ := c.reg()
	c.must(" ")
	off := int32(c.expr())
	c.must(", ")
	slot := int16(c.expr())
	c.must(", ")
	fail := c.b.label(c.word())
	c.must(")")
	c.b.emit(movReg(r3, src), addImm(r3, off), movReg(r1, fp), addImm(r1, int32(slot)), movImm(r2, n),
		call(fnProbeReadKernel), jmpImm(jmpJNE, r0, 0, fail), ldx(size, dst, fp, slot))
	return c.ok && size <= sizeDW && c.s == ""
}
