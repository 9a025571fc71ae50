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

// vmasProgram builds the task program that reports every file mapping
// of each process, narrowed to devs, without names.
func vmasProgram(s kernelBTF, devs []uint64) ([]byte, error) {
	b := newBuilder(s, mapSyms())
	b.def("rTask", r7)
	b.def("rVMA", r8)
	b.def("enoent", enoent)
	b.def("vmaIter", vmaIter)
	b.text(vmasHead)
	b.mapping(devs, "next")
	b.text(writeNameless)
	b.text(vmasTail)
	return b.assemble()
}

const vmasHead = `
	r6 = r1
	r7 = *(u64 *)(r6 +ctxTask)
	if r7 == 0 goto out
` + leaderOnly + ` // threads share the leader's mm
	*(u32 *)(r10 +mapBuf+mapPID) = r1
	*(u32 *)(r10 +mapBuf+mapMagic) = mapMagicValue
	*(u32 *)(r10 +mapBuf+mapHeader) = -1 // the segment: no path
	r1 = r10
	r1 += vmaIter
	r2 = r7
	r3 = 0
	call kfunc bpf_iter_task_vma_new
	if r0 == 0 goto next
	// An int: its upper 32 bits are zero, so compare the lower.
	if w0 == enoent goto done
	*(u32 *)(r10 +mapBuf+mapMagic) = mapBusyMagicValue
` + writeNameless + `
	goto done
next:
	r1 = r10
	r1 += vmaIter
	call kfunc bpf_iter_task_vma_next
	if r0 == 0 goto done
	r8 = r0
	r9 = *(u64 *)(r8 +vm_area_struct.vm_file)
	if r9 == 0 goto next // anonymous memory
`

const vmasTail = `
	goto next
done:
	r1 = r10
	r1 += vmaIter
	call kfunc bpf_iter_task_vma_destroy
out:
	r0 = 0
	exit
`
