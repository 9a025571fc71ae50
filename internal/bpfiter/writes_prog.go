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

// writesSyms names the stack slots, the control value's layout and the
// geometry g for the text of the write-tracking programs.
func writesSyms(g writesGeom) []sym {
	return []sym{
		{"stKey", stKey}, {"stTmp", stTmp}, {"stPtr", stPtr}, {"stMajor", stMajor}, {"stMinor", stMinor},
		{"stSector", stSector}, {"stBytes", stBytes}, {"stFirst", stFirst}, {"stLast", stLast},
		{"ctlEvents", ctlEvents}, {"ctlCalib", ctlCalib}, {"ctlLost", ctlLost}, {"ctlOverflow", ctlOverflow},
		{"ctlSlots", ctlSlots}, {"overflowSlots", overflowSlots}, {"maxLoopWords", maxLoopWords},
		{"start", int64(g.Start)}, {"len", int64(g.Len)}, {"shift", int64(g.Shift)},
		{"bitmapFD", int64(g.BitmapFD)}, {"ctlFD", int64(g.CtlFD)},
		{"major", int64(g.Major)}, {"minor", int64(g.Minor)}, {"kdev", int64(g.Major<<20 | g.Minor&(1<<20-1))},
	}
}

// writesTail marks the chunks of one completed request. In: r6 the
// request's first sector on the disk, r7 its length in sectors, r8
// non-zero for a write (anything that changes the medium: write,
// discard, write zeroes, secure erase), zero for a read.
const writesTail = `
	r1 = start ll
	if r6 < r1 goto out
	r6 -= r1 // r6: sector within the range
	r1 = len ll
	if r6 >= r1 goto out
	if r8 == 0 goto read
	if r7 == 0 goto out
	r7 += r6 // end, exclusive
	if r7 <= r1 goto end_in
	r7 = r1
end_in:
	r7 += -1 // last sector
	r6 >>= shift
	r7 >>= shift
	*(u64 *)(r10 +stFirst) = r6
	*(u64 *)(r10 +stLast) = r7
	r1 = map[fd:ctlFD][0]+0
	r2 = 1
	lock *(u64 *)(r1 +ctlEvents) += r2
	// r6 the first word, r9 how many words.
	r6 >>= 6
	r9 = r7
	r9 >>= 6
	r9 -= r6
	r9 += 1
	if r9 > maxLoopWords goto overflow
	r7 = 0 // the loop's counter: word r6+r7
	// The loop sets the covered bits of each word with an atomic OR
	// (the copier swaps words to zero as it collects). The verifier
	// walks every turn: the counter is a constant in each.
loop:
	if r7 >= r9 goto out
	r8 = r6
	r8 += r7
	*(u32 *)(r10 +stKey) = r8
	r1 = map[fd:bitmapFD]
	r2 = r10
	r2 += stKey
	call bpf_map_lookup_elem
	if r0 == 0 goto lost
	// mask = ~0 << lo: lo is first&63 in the first word, else 0
	r1 = 0
	if r7 != 0 goto lo
	r1 = *(u64 *)(r10 +stFirst)
	r1 &= 63
lo:
	r3 = -1
	r3 <<= r1
	// ... & ~0 >> (63-hi): hi is last&63 in the last word, else 63
	r2 = 0
	r4 = r9
	r4 += -1
	if r7 != r4 goto hi
	r4 = *(u64 *)(r10 +stLast)
	r4 &= 63
	r2 = 63
	r2 -= r4
hi:
	r4 = -1
	r4 >>= r2
	r3 &= r4
	lock *(u64 *)(r0 +0) |= r3
	r7 += 1
	goto loop
	// A write longer than the loop: its chunk range in a slot.
overflow:
	r1 = map[fd:ctlFD][0]+0
	r2 = 1
	r2 = atomic64_fetch_add((u64 *)(r1 +ctlOverflow), r2)
	if r2 >= overflowSlots goto lost
	r2 <<= 4
	r1 += r2
	r3 = *(u64 *)(r10 +stFirst)
	r3 += 1
	*(u64 *)(r1 +ctlSlots) = r3
	r3 = *(u64 *)(r10 +stLast)
	r3 += 1
	*(u64 *)(r1 +ctlSlots+8) = r3
	goto out
lost:
	r1 = map[fd:ctlFD][0]+0
	r2 = 1
	*(u64 *)(r1 +ctlLost) = r2
	goto out
	// A read: its sector, for the self-test that proves the program
	// sees this device's requests at the sectors it expects.
read:
	r1 = map[fd:ctlFD][0]+0
	r6 += 1
	*(u64 *)(r1 +ctlCalib) = r6
out:
	r0 = 0
	exit
`

// writesRawProgram is the raw tracepoint program: ctx holds
// block_rq_complete's arguments (struct request *rq, blk_status_t
// error, unsigned int nr_bytes) as u64s. Every field is read with
// bpf_probe_read_kernel: a fault reads zeros, which match no disk, and
// the self-test then fails.
func writesRawProgram(s kernelBTF, g writesGeom) ([]byte, error) {
	b := newBuilder(s, writesSyms(g))
	b.text(writesRaw)
	b.text(writesTail)
	return b.assemble()
}

const writesRaw = `
	r6 = r1
	r1 = *(u64 *)(r6 +16) // nr_bytes
	*(u64 *)(r10 +stBytes) = r1
	r7 = *(u64 *)(r6 +0) // rq
	if r7 == 0 goto out
	*(u64 *)(r10 +stPtr) = probe_chain(r7, request.q)
	r9 = *(u64 *)(r10 +stPtr)
	*(u64 *)(r10 +stPtr) = probe_chain(r9, request_queue.disk)
	r9 = *(u64 *)(r10 +stPtr)
	if r9 == 0 goto out
	*(u32 *)(r10 +stMajor) = probe_chain(r9, gendisk.major)
	*(u32 *)(r10 +stMinor) = probe_chain(r9, gendisk.first_minor)
	r1 = *(u32 *)(r10 +stMajor)
	if r1 != major goto out
	r1 = *(u32 *)(r10 +stMinor)
	if r1 != minor goto out
	*(u32 *)(r10 +stTmp) = probe_chain(r7, request.cmd_flags)
	*(u64 *)(r10 +stSector) = probe_chain(r7, request.__sector)
	r8 = *(u32 *)(r10 +stTmp)
	r8 &= 1 // op_is_write: REQ_OP_* of a write are odd
	r6 = *(u64 *)(r10 +stSector)
	r7 = *(u64 *)(r10 +stBytes)
	r7 >>= 9
`

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
	if t.Dev <= 0 || t.Sector <= 0 || t.NrSector <= 0 || t.RWBS <= 0 {
		return nil, fmt.Errorf("block_rq_complete format lacks a field the program reads")
	}
	b := newBuilder(nil, writesSyms(g))
	b.def("dev", int64(t.Dev))
	b.def("sector", int64(t.Sector))
	b.def("nrSector", int64(t.NrSector))
	b.def("rwbs", int64(t.RWBS))
	b.text(writesTP)
	b.text(writesTail)
	return b.assemble()
}

const writesTP = `
	r9 = r1
	r1 = *(u32 *)(r9 +dev)
	if w1 != kdev goto out
	r6 = *(u64 *)(r9 +sector)
	r7 = *(u32 *)(r9 +nrSector)
	r8 = 1
	r1 = *(u8 *)(r9 +rwbs)
	if r1 != 'F' goto op
	r1 = *(u8 *)(r9 +rwbs+1)
op:
	if r1 != 'R' goto tail
	r8 = 0
tail: // writesTail follows
`
