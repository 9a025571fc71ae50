package bpfiter

import "fmt"

// The write-tracking programs run at every completion of a block
// request (the block_rq_complete tracepoint) and, for a write to the
// watched range of the watched disk, set the bits of the chunks it
// covered in a bitmap. Completion, not submission: a write submitted
// before the bits are collected but still in flight when the copier
// reads its blocks would otherwise be collected, cleared and copied as
// it was before the write landed. Marked at completion, it shows in the
// next collection, after the copier's read.
//
// Two programs, each with its own way in: "writes" is a raw tracepoint
// that reads struct request through BTF offsets with
// bpf_probe_read_kernel (nothing it reads needs the verifier to trust a
// pointer); "writes_tp" a classic tracepoint over the event's record as
// tracefs describes it (no BTF at all).

// Geometry of what one program watches, in 512-byte sectors of the disk.
type writesGeom struct {
	Major, Minor uint32 // the whole disk's device number
	Start, Len   uint64 // the watched range (a partition) on the disk
	Shift        uint8  // a chunk is 512<<Shift bytes
	BitmapFD     int    // array of u64 words, one bit per chunk
	CtlFD        int    // one value: ctlValueSize bytes
}

// The control value, u64 words: counters and the overflow list.
const (
	ctlEvents   = 0  // writes marked
	ctlCalib    = 8  // the last read of the range: its sector+1, for the self-test
	ctlLost     = 16 // non-zero: a write could not be marked
	ctlOverflow = 24 // how many overflow slots were taken
	ctlSlots    = 32 // slot i: first chunk+1, last chunk+1 at ctlSlots+16*i
	// overflowSlots holds the writes too long for the loop (large
	// discards): 1024 of them per collection... per tracking session.
	overflowSlots = 1024
	ctlValueSize  = ctlSlots + 16*overflowSlots
	// maxLoopWords is how many bitmap words one write sets in the
	// program's loop (64 chunks each); longer writes go to a slot.
	maxLoopWords = 16
)

// Stack slots.
const (
	stKey    = -4  // u32 map key
	stTmp    = -8  // u32 probe buffer
	stPtr    = -16 // u64 probe buffer
	stMajor  = -24 // u32
	stMinor  = -20 // u32
	stSector = -32
	stBytes  = -40
	stFirst  = -48 // first chunk
	stLast   = -56 // last chunk
)

// writesTail marks the chunks of one completed request. In: r6 the
// request's first sector on the disk, r7 its length in sectors, r8
// non-zero for a write (anything that changes the medium: write,
// discard, write zeroes, secure erase), zero for a read.
func writesTail(g writesGeom) []insn {
	return seq(
		ldImm64(r1, g.Start),
		[]insn{
			jmpReg(jmpJLT, r6, r1, "out"),
			aluReg(aluSUB, r6, r1), // r6: sector within the range
		},
		ldImm64(r1, g.Len),
		[]insn{
			jmpReg(jmpJGE, r6, r1, "out"),
			jmpImm(jmpJEQ, r8, 0, "read"),
			jmpImm(jmpJEQ, r7, 0, "out"),
			aluReg(aluADD, r7, r6), // end, exclusive
			jmpReg(jmpJLE, r7, r1, "end_in"),
			movReg(r7, r1),
			addImm(r7, -1).at("end_in"), // last sector
			aluImm(aluRSH, r6, int32(g.Shift)),
			aluImm(aluRSH, r7, int32(g.Shift)),
			stx(sizeDW, fp, stFirst, r6),
			stx(sizeDW, fp, stLast, r7),
		},
		ldMapValue(r1, g.CtlFD, 0),
		[]insn{
			movImm(r2, 1),
			atomicOp(atomicADD, r1, ctlEvents, r2),
			// r6 the first word, r9 how many words.
			aluImm(aluRSH, r6, 6),
			movReg(r9, r7),
			aluImm(aluRSH, r9, 6),
			aluReg(aluSUB, r9, r6),
			addImm(r9, 1),
			jmpImm(jmpJGT, r9, maxLoopWords, "overflow"),
			movImm(r7, 0), // the loop's counter: word r6+r7
		},
		// The loop sets the covered bits of each word with an atomic OR
		// (the copier swaps words to zero as it collects). The verifier
		// walks every turn: the counter is a constant in each.
		[]insn{
			jmpReg(jmpJGE, r7, r9, "out").at("loop"),
			movReg(r8, r6),
			aluReg(aluADD, r8, r7),
			stx(sizeW, fp, stKey, r8),
		},
		ldMap(r1, g.BitmapFD),
		[]insn{
			movReg(r2, fp),
			addImm(r2, stKey),
			call(fnMapLookupElem),
			jmpImm(jmpJEQ, r0, 0, "lost"),
			// mask = ~0 << lo: lo is first&63 in the first word, else 0
			movImm(r1, 0),
			jmpImm(jmpJNE, r7, 0, "lo"),
			ldx(sizeDW, r1, fp, stFirst),
			aluImm(aluAND, r1, 63),
			movImm(r3, -1).at("lo"),
			aluReg(aluLSH, r3, r1),
			// ... & ~0 >> (63-hi): hi is last&63 in the last word, else 63
			movImm(r2, 0),
			movReg(r4, r9),
			addImm(r4, -1),
			jmpReg(jmpJNE, r7, r4, "hi"),
			ldx(sizeDW, r4, fp, stLast),
			aluImm(aluAND, r4, 63),
			movImm(r2, 63),
			aluReg(aluSUB, r2, r4),
			movImm(r4, -1).at("hi"),
			aluReg(aluRSH, r4, r2),
			aluReg(aluAND, r3, r4),
			atomicOp(atomicOR, r0, 0, r3),
			addImm(r7, 1),
			jmp("loop"),
		},
		// A write longer than the loop: its chunk range in a slot.
		label("overflow", ldMapValue(r1, g.CtlFD, 0)),
		[]insn{
			movImm(r2, 1),
			atomicOp(atomicADD|atomicFET, r1, ctlOverflow, r2),
			jmpImm(jmpJGE, r2, overflowSlots, "lost"),
			aluImm(aluLSH, r2, 4),
			aluReg(aluADD, r1, r2),
			ldx(sizeDW, r3, fp, stFirst),
			addImm(r3, 1),
			stx(sizeDW, r1, ctlSlots, r3),
			ldx(sizeDW, r3, fp, stLast),
			addImm(r3, 1),
			stx(sizeDW, r1, ctlSlots+8, r3),
			jmp("out"),
		},
		label("lost", ldMapValue(r1, g.CtlFD, 0)),
		[]insn{
			movImm(r2, 1),
			stx(sizeDW, r1, ctlLost, r2),
			jmp("out"),
		},
		// A read: its sector, for the self-test that proves the program
		// sees this device's requests at the sectors it expects.
		label("read", ldMapValue(r1, g.CtlFD, 0)),
		[]insn{
			addImm(r6, 1),
			stx(sizeDW, r1, ctlCalib, r6),
			movImm(r0, 0).at("out"),
			exit(),
		},
	)
}

// probe reads size bytes at r3+off into the stack slot at.
func probe(at int16, size int32, base uint8, off int16) []insn {
	return []insn{
		movReg(r3, base),
		addImm(r3, int32(off)),
		movReg(r1, fp),
		addImm(r1, int32(at)),
		movImm(r2, size),
		call(fnProbeReadKernel),
	}
}

// writesRawProgram is the raw tracepoint program: ctx holds
// block_rq_complete's arguments (struct request *rq, blk_status_t
// error, unsigned int nr_bytes) as u64s. Every field is read with
// bpf_probe_read_kernel: a fault reads zeros, which match no disk, and
// the self-test then fails.
func writesRawProgram(s kernelBTF, g writesGeom) ([]byte, error) {
	f := &fields{spec: s}
	var (
		flags  = f.off("request", "cmd_flags")
		q      = f.off("request", "q")
		sector = f.off("request", "__sector")
		disk   = f.off("request_queue", "disk")
		major  = f.off("gendisk", "major")
		minor  = f.off("gendisk", "first_minor")
	)
	if f.err != nil {
		return nil, f.err
	}
	prog := seq(
		[]insn{
			movReg(r6, r1),
			ldx(sizeDW, r1, r6, 16), // nr_bytes
			stx(sizeDW, fp, stBytes, r1),
			ldx(sizeDW, r7, r6, 0), // rq
			jmpImm(jmpJEQ, r7, 0, "out"),
		},
		probe(stPtr, 8, r7, q),
		[]insn{ldx(sizeDW, r9, fp, stPtr)},
		probe(stPtr, 8, r9, disk),
		[]insn{
			ldx(sizeDW, r9, fp, stPtr),
			jmpImm(jmpJEQ, r9, 0, "out"),
		},
		probe(stMajor, 4, r9, major),
		probe(stMinor, 4, r9, minor),
		[]insn{
			ldx(sizeW, r1, fp, stMajor),
			jmpImm(jmpJNE, r1, int32(g.Major), "out"),
			ldx(sizeW, r1, fp, stMinor),
			jmpImm(jmpJNE, r1, int32(g.Minor), "out"),
		},
		probe(stTmp, 4, r7, flags),
		probe(stSector, 8, r7, sector),
		[]insn{
			ldx(sizeW, r8, fp, stTmp),
			aluImm(aluAND, r8, 1), // op_is_write: REQ_OP_* of a write are odd
			ldx(sizeDW, r6, fp, stSector),
			ldx(sizeDW, r7, fp, stBytes),
			aluImm(aluRSH, r7, 9),
		},
		writesTail(g),
	)
	return asm(prog)
}

// tpFormat is where the classic tracepoint's record keeps the fields
// the program reads (from tracefs's format file).
type tpFormat struct {
	ID                          uint64
	Dev, Sector, NrSector, RWBS int
}

// writesTPProgram is the classic tracepoint program over the record of
// block_rq_complete: dev (the disk, kernel encoding), sector, nr_sector
// and rwbs, whose first letter after an optional F (preflush) is R for
// a read. Anything else that moves data (W, D, N: write zeroes and
// others) marks its sectors.
func writesTPProgram(t tpFormat, g writesGeom) ([]byte, error) {
	kdev := g.Major<<20 | g.Minor&(1<<20-1)
	if t.Dev <= 0 || t.Sector <= 0 || t.NrSector <= 0 || t.RWBS <= 0 {
		return nil, fmt.Errorf("block_rq_complete format lacks a field the program reads")
	}
	prog := seq(
		[]insn{
			movReg(r9, r1),
			ldx(sizeW, r1, r9, int16(t.Dev)),
			{code: clsJMP32 | jmpJNE | srcK, dst: r1, imm: int32(kdev), target: "out"},
			ldx(sizeDW, r6, r9, int16(t.Sector)),
			ldx(sizeW, r7, r9, int16(t.NrSector)),
			movImm(r8, 1),
			ldx(sizeB, r1, r9, int16(t.RWBS)),
			jmpImm(jmpJNE, r1, 'F', "op"),
			ldx(sizeB, r1, r9, int16(t.RWBS+1)),
			jmpImm(jmpJNE, r1, 'R', "tail").at("op"),
			movImm(r8, 0),
			// tail follows
		},
		label("tail", writesTail(g)),
	)
	return asm(prog)
}
