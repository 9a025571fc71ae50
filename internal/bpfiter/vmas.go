package bpfiter

// The open-coded VMA walk: a task iterator program that walks each
// process's mappings itself with the bpf_iter_task_vma_{new,next,destroy}
// kernel functions (Linux 6.7+). The task_vma iterator (maps.go) pays the
// seq_file machinery and a program run per mapping, about 0.4 µs each
// even when the program returns at once; here one run per process walks
// the maple tree directly. Its records are the maps program's without
// names, so readMaps decodes both.

// Stack slot of struct bpf_iter_task_vma (one u64, 8-aligned).
const vmaIter = -8

// A record with this magic says the process's address space was busy
// (mmap_read_trylock failed): its mappings must be read from /proc.
const mapBusyMagicValue = 0x42535752 // "RWSB"

// enoent is bpf_iter_task_vma_new's answer for a task without an mm: a
// kernel thread or a process past exit_mm, which maps nothing.
const enoent = -2

// pseudoKfuncCall in a call's src register: imm is a kernel function's
// BTF id, not a helper number.
const pseudoKfuncCall = 2

func kcall(id int32) insn { return insn{code: clsJMP | jmpCALL, src: pseudoKfuncCall, imm: id} }

// vmasProgram builds the task program that reports every file mapping
// of each process, narrowed to devs, without names.
func vmasProgram(s kernelBTF, devs []uint64) ([]byte, error) {
	f := &fields{spec: s}
	at := func(o int) int16 { return mapBuf + int16(o) }
	var (
		iterNew = f.kfunc("bpf_iter_task_vma_new")
		next    = f.kfunc("bpf_iter_task_vma_next")
		destroy = f.kfunc("bpf_iter_task_vma_destroy")
	)
	write := []insn{
		ldx(sizeDW, r1, r6, ctxMeta),
		ldx(sizeDW, r1, r1, 0),
		movReg(r2, fp), addImm(r2, mapBuf),
		movImm(r3, mapHeader+4),
		call(fnSeqWrite),
	}
	prog := []insn{
		movReg(r6, r1),
		ldx(sizeDW, r7, r6, ctxTask),
		jmpImm(jmpJEQ, r7, 0, "out"),
	}
	prog = append(prog, leaderOnly(f, r7, "out")...) // threads share the leader's mm
	prog = append(prog,
		stx(sizeW, fp, at(mapPID), r1),
		st(sizeW, fp, at(mapMagic), mapMagicValue),
		st(sizeW, fp, at(mapHeader), -1), // the segment: no path
		movReg(r1, fp), addImm(r1, vmaIter),
		movReg(r2, r7),
		movImm(r3, 0),
		kcall(iterNew),
		jmpImm(jmpJEQ, r0, 0, "next"),
		// An int: its upper 32 bits are zero, so compare the lower.
		insn{code: clsJMP32 | jmpJEQ | srcK, dst: r0, imm: enoent, target: "done"},
		st(sizeW, fp, at(mapMagic), mapBusyMagicValue),
	)
	prog = append(prog, write...)
	prog = append(prog,
		jmp("done"),
		movReg(r1, fp).at("next"), addImm(r1, vmaIter),
		kcall(next),
		jmpImm(jmpJEQ, r0, 0, "done"),
		movReg(r8, r0),
		ldx(sizeDW, r9, r8, f.off("vm_area_struct", "vm_file")),
		jmpImm(jmpJEQ, r9, 0, "next"), // anonymous memory
	)
	prog = append(prog, mapping(f, r8, r9, devs, "next")...)
	prog = append(prog, write...)
	prog = append(prog,
		jmp("next"),
		movReg(r1, fp).at("done"), addImm(r1, vmaIter),
		kcall(destroy),
		movImm(r0, 0).at("out"),
		exit(),
	)
	if f.err != nil {
		return nil, f.err
	}
	return asm(prog)
}
