package bpfiter

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden listings in testdata")

// synthBTF is a synthetic kernel BTF: every field the programs read, at
// an offset no real kernel has, so that a listing shows which field each
// load reads.
type synthBTF map[string]int

func (s synthBTF) Offset(typ string, field ...string) (int, error) {
	k := typ + "." + strings.Join(field, ".")
	o, ok := s[k]
	if !ok {
		return 0, fmt.Errorf("synthetic BTF: no %s", k)
	}
	return o, nil
}

// FuncID gives the kernel functions made-up ids (their names' length).
func (s synthBTF) FuncID(name string) (uint32, error) { return uint32(90000 + len(name)), nil }

func synthetic() synthBTF {
	return synthBTF{
		"task_struct.tgid": 1000, "task_struct.pid": 1004, "task_struct.comm": 1008,
		"task_struct.start_time": 1032, "task_struct.cred": 1040, "task_struct.nsproxy": 1048,
		"task_struct.fs": 1056, "task_struct.mm": 1064,
		"cred.euid":      20,
		"nsproxy.mnt_ns": 24, "nsproxy.net_ns": 32,
		"mnt_namespace.ns.inum": 8, "net.ns.inum": 120,
		"fs_struct.pwd": 40, "fs_struct.root": 24, "path.dentry": 8, "path.mnt": 0,
		"dentry.d_sb": 104, "mm_struct.exe_file": 880,
		"file.f_inode": 32, "file.f_path": 64, "file.f_flags": 40, "file.f_pos": 80,
		"inode.i_ino": 64, "inode.i_sb": 40, "inode.i_mode": 0, "inode.i_size": 80,
		"inode.__i_nlink": 72, "inode.i_rdev": 76,
		"super_block.s_dev": 16,
		"mount.mnt":         32, "mount.mnt_id": 280,
		"vm_area_struct.vm_start": 0, "vm_area_struct.vm_end": 8, "vm_area_struct.vm_pgoff": 136,
		"vm_area_struct.vm_flags": 32, "vm_area_struct.vm_file": 160,
		"task_struct.files": 1072, "files_struct.fdt": 32, "fdtable.fd": 8,
		"super_block.s_inodes": 1352, "inode.i_sb_list": 280, "inode.i_mapping": 48,
		"address_space.i_mmap.rb_root.rb_node": 72, "list_head.next": 0,
	}
}

// TestGoldenPrograms compares each whole program, built against the
// synthetic BTF, with its listing in testdata (go test -update rewrites
// them): a change to a program shows in review as a change of its
// listing, in the verifier's own notation.
func TestGoldenPrograms(t *testing.T) {
	devs := []uint64{unix.Mkdev(8, 1), unix.Mkdev(254, 3)}
	for _, tc := range []struct {
		name  string
		build func(kernelBTF) ([]byte, error)
	}{
		{"files", func(s kernelBTF) ([]byte, error) { return filesProgram(s, nil) }},
		{"files-devs", func(s kernelBTF) ([]byte, error) { return filesProgram(s, devs) }},
		{"maps", func(s kernelBTF) ([]byte, error) { return mapsProgram(s, nil, true) }},
		{"maps_nameless-devs", func(s kernelBTF) ([]byte, error) { return mapsProgram(s, devs, false) }},
		{"vmas-devs", func(s kernelBTF) ([]byte, error) { return vmasProgram(s, devs) }},
		{"tasks", tasksProgram},
		{"mapped-devs", func(s kernelBTF) ([]byte, error) { return mappedProgram(s, devs, []int32{3, 7}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := tc.build(synthetic())
			if err != nil {
				t.Fatal(err)
			}
			got := Disasm(prog)
			checkGolden(t, tc.name, got)
		})
	}
}

// TestProgramsNeedEveryField checks that a BTF lacking any field a program
// reads makes building it fail, rather than load with offset 0.
func TestProgramsNeedEveryField(t *testing.T) {
	for field := range synthetic() {
		s := synthetic()
		delete(s, field)
		_, e1 := filesProgram(s, nil)
		_, e2 := mapsProgram(s, nil, true)
		_, e3 := tasksProgram(s)
		_, e4 := vmasProgram(s, nil)
		_, e5 := mappedProgram(s, []uint64{1}, []int32{3})
		if e1 == nil && e2 == nil && e3 == nil && e4 == nil && e5 == nil {
			t.Errorf("without %s every program built: the field is unused", field)
		}
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "-%s\n+%s\n", wl, gl)
		}
	}
	return b.String()
}

func TestInsnString(t *testing.T) {
	for _, tc := range []struct {
		i    insn
		want string
	}{
		{ldx(sizeDW, r7, r6, 16), "(79) r7 = *(u64 *)(r6 +16)"},
		{insn{code: clsST | modeMEM | sizeW, dst: fp, off: -452}, "(62) *(u32 *)(r10 -452) = 0"},
		{insn{code: clsSTX | modeMEM | sizeDW, dst: fp, src: r1, off: -8}, "(7b) *(u64 *)(r10 -8) = r1"},
		{movReg(r2, fp), "(bf) r2 = r10"},
		{addImm(r2, -448), "(07) r2 += -448"},
		{movImm(r3, 448), "(b7) r3 = 448"},
		{call(fnDPath), "(85) call bpf_d_path#147"},
		{insn{code: clsJMP | jmpJEQ | srcK, dst: r1, off: 12}, "(15) if r1 == 0x0 goto pc+12"},
		{insn{code: clsJMP32 | jmpJEQ | srcK, dst: r4, imm: 0x800001, off: 3}, "(16) if w4 == 0x800001 goto pc+3"},
		{insn{code: clsJMP | jmpJNE | srcX, dst: r1, src: r2, off: 40}, "(5d) if r1 != r2 goto pc+40"},
		{insn{code: clsJMP | jmpEXIT}, "(95) exit"},
		{insn{code: clsJMP | jmpCALL, src: pseudoKfuncCall, imm: 63717}, "(85) call kfunc#63717"},
		{insn{code: clsJMP | jmpJA, target: "out"}, "(05) goto out"},
	} {
		if got := tc.i.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// checkGolden compares a program's listing with testdata/NAME.golden,
// rewriting it first under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, path, diffLines(string(want), got))
	}
}
