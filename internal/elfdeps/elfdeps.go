// Package elfdeps reads the two things rootswap needs from an ELF file:
// the program interpreter (PT_INTERP) and the DT_NEEDED sonames. It reads
// them the way the kernel and ld.so do, through the program headers only
// (no section headers), and replaces debug/elf, which brought debug/dwarf,
// compress/zlib and compress/flate into the binary (issue 10).
//
// Every size and count read from the file is checked against the file's
// size before anything is allocated, so a corrupt or hostile file costs at
// most its own size in memory and yields an error, never a panic.
package elfdeps

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
)

// Info is what Read finds in an ELF file.
type Info struct {
	// Interp is the program interpreter's path without its NUL; empty for
	// a file without PT_INTERP (a static binary or a shared library).
	Interp string
	// Needed lists the DT_NEEDED sonames in the dynamic section's order.
	Needed []string
}

// ELF constants (the ELF gABI; same values in every class and byte order).
const (
	ptLoad    = 1
	ptDynamic = 2
	ptInterp  = 3

	dtNull   = 0
	dtNeeded = 1
	dtStrtab = 5
	dtStrsz  = 10

	// maxPhdrs is the kernel's limit on the program header table
	// (ELF_MIN_ALIGN, 64 KiB, in binfmt_elf's load_elf_phdrs).
	maxPhdrs = 64 << 10
	// maxInterp is PATH_MAX: the kernel refuses a longer PT_INTERP.
	maxInterp = 4096
)

// Error is a malformed file. Read's other errors are the os package's
// (opening, reading), which name the path themselves.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string { return e.Path + ": " + e.Reason }

// Read reads the interpreter and DT_NEEDED sonames of the ELF file path.
func Read(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Parse(f, st.Size(), path)
}

// prog is one program header, in the fields Parse uses.
type prog struct {
	typ                uint32
	off, vaddr, filesz uint64
}

type parser struct {
	r     io.ReaderAt
	size  int64
	name  string
	bo    binary.ByteOrder
	is64  bool
	progs []prog
}

// Parse is Read on r, which holds size bytes; name is the path its
// errors give.
func Parse(r io.ReaderAt, size int64, name string) (*Info, error) {
	p := &parser{r: r, size: size, name: name}
	if err := p.header(); err != nil {
		return nil, err
	}
	info := &Info{}
	var err error
	if info.Interp, err = p.interp(); err != nil {
		return nil, err
	}
	if info.Needed, err = p.needed(); err != nil {
		return nil, err
	}
	return info, nil
}

func (p *parser) errorf(format string, args ...any) error {
	return &Error{Path: p.name, Reason: fmt.Sprintf(format, args...)}
}

// read returns the n bytes at off, after checking that they lie inside
// the file: n is bounded by the file size before it is allocated.
func (p *parser) read(off, n uint64, what string) ([]byte, error) {
	if off > uint64(p.size) || n > uint64(p.size)-off {
		return nil, p.errorf("%s (%d bytes at offset %d) beyond the end of the file (%d bytes)", what, n, off, p.size)
	}
	b := make([]byte, n)
	if n == 0 {
		return b, nil // a ReaderAt may say EOF even for nothing at the end
	}
	// A full read may come with io.EOF at the end of the input.
	if k, err := p.r.ReadAt(b, int64(off)); k < len(b) {
		return nil, fmt.Errorf("%s: reading %s: %w", p.name, what, err)
	}
	return b, nil
}

// header reads the ELF header and the program header table.
func (p *parser) header() error {
	ident, err := p.read(0, 16, "ELF identification")
	if err != nil {
		return err
	}
	if !bytes.Equal(ident[:4], []byte("\x7fELF")) {
		return p.errorf("not an ELF file (magic %q)", ident[:4])
	}
	switch ident[4] { // EI_CLASS
	case 1:
	case 2:
		p.is64 = true
	default:
		return p.errorf("unknown ELF class %d", ident[4])
	}
	switch ident[5] { // EI_DATA
	case 1:
		p.bo = binary.LittleEndian
	case 2:
		p.bo = binary.BigEndian
	default:
		return p.errorf("unknown ELF data encoding %d", ident[5])
	}
	if ident[6] != 1 { // EI_VERSION
		return p.errorf("unknown ELF version %d", ident[6])
	}
	var phoff uint64
	var phentsize, phnum, want uint64
	if p.is64 {
		h, err := p.read(0, 64, "ELF header")
		if err != nil {
			return err
		}
		phoff = p.bo.Uint64(h[32:])
		phentsize = uint64(p.bo.Uint16(h[54:]))
		phnum = uint64(p.bo.Uint16(h[56:]))
		want = 56
	} else {
		h, err := p.read(0, 52, "ELF header")
		if err != nil {
			return err
		}
		phoff = uint64(p.bo.Uint32(h[28:]))
		phentsize = uint64(p.bo.Uint16(h[42:]))
		phnum = uint64(p.bo.Uint16(h[44:]))
		want = 32
	}
	if phnum == 0 {
		return nil
	}
	if phentsize < want {
		return p.errorf("program header size %d, want at least %d", phentsize, want)
	}
	if phnum*phentsize > maxPhdrs {
		return p.errorf("program header table of %d × %d bytes exceeds %d bytes", phnum, phentsize, maxPhdrs)
	}
	tab, err := p.read(phoff, phnum*phentsize, "program header table")
	if err != nil {
		return err
	}
	p.progs = make([]prog, phnum)
	for i := range p.progs {
		h := tab[uint64(i)*phentsize:]
		if p.is64 {
			p.progs[i] = prog{typ: p.bo.Uint32(h), off: p.bo.Uint64(h[8:]), vaddr: p.bo.Uint64(h[16:]), filesz: p.bo.Uint64(h[32:])}
		} else {
			p.progs[i] = prog{typ: p.bo.Uint32(h), off: uint64(p.bo.Uint32(h[4:])), vaddr: uint64(p.bo.Uint32(h[8:])), filesz: uint64(p.bo.Uint32(h[16:]))}
		}
	}
	return nil
}

// interp returns the first PT_INTERP's path. Like the kernel it takes the
// first such header, wants the text NUL-terminated and uses it up to its
// first NUL.
func (p *parser) interp() (string, error) {
	for i, ph := range p.progs {
		if ph.typ != ptInterp {
			continue
		}
		what := fmt.Sprintf("PT_INTERP (program header %d)", i)
		if ph.filesz < 2 || ph.filesz > maxInterp {
			return "", p.errorf("%s of %d bytes, want 2 to %d", what, ph.filesz, maxInterp)
		}
		b, err := p.read(ph.off, ph.filesz, what)
		if err != nil {
			return "", err
		}
		if b[len(b)-1] != 0 {
			return "", p.errorf("%s not NUL-terminated", what)
		}
		s := b[:bytes.IndexByte(b, 0)]
		if len(s) == 0 {
			return "", p.errorf("%s is empty", what)
		}
		return string(s), nil
	}
	return "", nil
}

// needed returns the DT_NEEDED sonames of the first PT_DYNAMIC segment.
func (p *parser) needed() ([]string, error) {
	di := -1
	for i, ph := range p.progs {
		if ph.typ == ptDynamic {
			di = i
			break
		}
	}
	if di < 0 {
		return nil, nil
	}
	entsize := uint64(8)
	if p.is64 {
		entsize = 16
	}
	ph := p.progs[di]
	what := fmt.Sprintf("PT_DYNAMIC (program header %d)", di)
	// A partial trailing entry is ignored, as the loaders do: they stop
	// at DT_NULL.
	dyn, err := p.read(ph.off, ph.filesz-ph.filesz%entsize, what)
	if err != nil {
		return nil, err
	}
	var strtab, strsz uint64
	var haveStrtab, haveStrsz bool
	var names []uint64 // DT_NEEDED string offsets, in order
	for len(dyn) > 0 {
		var tag, val uint64
		if p.is64 {
			tag, val = p.bo.Uint64(dyn), p.bo.Uint64(dyn[8:])
		} else {
			tag, val = uint64(p.bo.Uint32(dyn)), uint64(p.bo.Uint32(dyn[4:]))
		}
		dyn = dyn[entsize:]
		if tag == dtNull {
			break
		}
		switch tag {
		case dtNeeded:
			names = append(names, val)
		case dtStrtab:
			strtab, haveStrtab = val, true
		case dtStrsz:
			strsz, haveStrsz = val, true
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	if !haveStrtab {
		return nil, p.errorf("%s has DT_NEEDED entries but no DT_STRTAB", what)
	}
	// DT_STRTAB is a virtual address: find the PT_LOAD whose file image
	// holds it.
	var seg prog
	ok := false
	for _, l := range p.progs {
		if l.typ == ptLoad && strtab >= l.vaddr && strtab-l.vaddr < l.filesz {
			seg, ok = l, true
			break
		}
	}
	if !ok {
		return nil, p.errorf("DT_STRTAB address %#x is in no PT_LOAD segment's file image", strtab)
	}
	rel, size := strtab-seg.vaddr, uint64(p.size)
	if seg.off > size || rel > size-seg.off {
		return nil, p.errorf("DT_STRTAB address %#x maps to offset %d+%d, beyond the end of the file (%d bytes)", strtab, seg.off, rel, size)
	}
	off, avail := seg.off+rel, seg.filesz-rel
	// Without DT_STRSZ the segment bounds the table; the file bounds both
	// (read checks).
	if haveStrsz {
		if strsz > avail {
			return nil, p.errorf("DT_STRSZ %d runs past the end of the PT_LOAD segment holding DT_STRTAB (%d bytes left)", strsz, avail)
		}
		avail = strsz
	}
	for _, n := range names {
		if n >= avail {
			return nil, p.errorf("DT_NEEDED name at %d beyond the string table (%d bytes)", n, avail)
		}
	}
	b, err := p.read(off, avail, "string table")
	if err != nil {
		return nil, err
	}
	// One string for the table: the names are substrings of it, so many
	// entries pointing at one long name cost no more memory.
	str := string(b)
	out := make([]string, 0, len(names))
	for _, n := range names {
		i := strings.IndexByte(str[n:], 0)
		switch {
		case i < 0:
			return nil, p.errorf("DT_NEEDED name at %d not NUL-terminated within the string table", n)
		case i == 0:
			return nil, p.errorf("DT_NEEDED name at %d is empty", n)
		}
		out = append(out, str[n:n+uint64(i)])
	}
	return out, nil
}
