package bpfiter

import (
	"strings"
	"testing"
)

// TestAssembleText assembles each form of the text notation and spells
// the result back as the listings do.
func TestAssembleText(t *testing.T) {
	s := synthetic()
	for _, tc := range []struct{ text, want string }{
		{"r6 = r1", "(bf) r6 = r1"},
		{"r3 = -1", "(b7) r3 = -1"},
		{"r2 += buf+8", "(07) r2 += -504"},
		{"r1 += file.f_path", "(07) r1 += 64"},
		{"r3 += mount.mnt_id-mount.mnt", "(07) r3 += 248"},
		{"r0 &= 0xf000", "(57) r0 &= 61440"},
		{"r7 += r6", "(0f) r7 += r6"},
		{"r9 -= r6", "(1f) r9 -= r6"},
		{"r3 <<= r1", "(6f) r3 <<= r1"},
		{"r6 >>= 5", "(77) r6 >>= 5"},
		{"r7 = *(u64 *)(r6 +ctxFile)", "(79) r7 = *(u64 *)(r6 +24)"},
		{"r5 = *(u16 *)(rFile +inode.i_mode)", "(69) r5 = *(u16 *)(r7 +0)"},
		{"r1 = *(u8 *)(r9 +34+1)", "(71) r1 = *(u8 *)(r9 +35)"},
		{"*(u32 *)(r10 +buf) = r1", "(63) *(u32 *)(r10 -512) = r1"},
		{"*(u64 *)(r10 -8) = r1", "(7b) *(u64 *)(r10 -8) = r1"},
		{"*(u32 *)(r10 +buf+60) = 0x46575352", "(62) *(u32 *)(r10 -452) = 1180128082"},
		{"if r7 == 0 goto x", "(15) if r7 == 0x0 goto pc+0"},
		{"if w4 == 0x800001 goto x", "(16) if w4 == 0x800001 goto pc+0"},
		{"if r1 != r2 goto x", "(5d) if r1 != r2 goto pc+0"},
		{"if r1 != 'F' goto x", "(55) if r1 != 0x46 goto pc+0"},
		{"if r0 s> 0 goto x", "(65) if r0 s> 0x0 goto pc+0"},
		{"if r6 < r1 goto x", "(ad) if r6 < r1 goto pc+0"},
		{"if r2 >= 1024 goto x", "(35) if r2 >= 0x400 goto pc+0"},
		{"goto x", "(05) goto pc+0"},
		{"call bpf_d_path", "(85) call bpf_d_path#147"},
		{"call bpf_map_lookup_elem", "(85) call bpf_map_lookup_elem#1"},
		{"call kfunc bpf_iter_num_new", "(85) call kfunc#90016"},
		{"exit", "(95) exit"},
		{"r1 = 0x200000800 ll", "(18) r1 = 0x200000800"},
		{"r1 = map[fd:7]", "(18) r1 = map[fd:7]"},
		{"r1 = map[fd:8][0]+24", "(18) r1 = map[fd:8][0]+24"},
		{"lock *(u64 *)(r1 +0) += r2", "(db) lock *(u64 *)(r1 +0) += r2"},
		{"lock *(u64 *)(r0 +0) |= r3", "(db) lock *(u64 *)(r0 +0) |= r3"},
		{"r2 = atomic64_fetch_add((u64 *)(r1 +24), r2)", "(db) r2 = atomic64_fetch_add((u64 *)(r1 +24), r2)"},
		{"*(u32 *)(r10 -100) = probe_chain(r7, task_struct.cred, cred.euid)", strings.Join([]string{
			"(bf) r3 = r7", "(07) r3 += 1040", "(bf) r1 = r10", "(07) r1 += -8", "(b7) r2 = 8", "(85) call bpf_probe_read_kernel#113",
			"(79) r3 = *(u64 *)(r10 -8)", "(07) r3 += 20", "(bf) r1 = r10", "(07) r1 += -100", "(b7) r2 = 4", "(85) call bpf_probe_read_kernel#113",
		}, "\n")},
	} {
		b := newBuilder(s, []sym{{"buf", -512}, {"rFile", r7}})
		b.text(tc.text + " // a comment\nx: exit")
		prog, err := b.assemble()
		if err != nil {
			t.Errorf("%s: %v", tc.text, err)
			continue
		}
		var got []string
		lines := strings.Split(strings.TrimSpace(DisasmWrites(prog)), "\n")
		for _, l := range lines[:len(lines)-1] { // without the exit
			_, l, _ = strings.Cut(l, ": ")
			got = append(got, l)
		}
		if g := strings.Join(got, "\n"); g != tc.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.text, g, tc.want)
		}
	}
}

// TestAssembleLabels: local labels take the scope, so a fragment can be
// emitted twice; a label alone on a line marks the next instruction.
func TestAssembleLabels(t *testing.T) {
	b := newBuilder(synthetic(), nil)
	for _, scope := range []string{"a", "b"} {
		b.scope = scope
		b.text("if r1 == 0 goto .skip\nr0 = 1\n.skip:\n")
	}
	b.text("exit")
	prog, err := b.assemble()
	if err != nil {
		t.Fatal(err)
	}
	want := "0: (15) if r1 == 0x0 goto pc+1\n1: (b7) r0 = 1\n2: (15) if r1 == 0x0 goto pc+1\n3: (b7) r0 = 1\n4: (95) exit\n"
	if got := Disasm(prog); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

// TestAssembleErrors: a line the assembler cannot read, a name it does
// not know and a field the BTF lacks fail the build.
func TestAssembleErrors(t *testing.T) {
	for _, text := range []string{
		"r1 = *(u64 *)(r6 +nosuch)",
		"r1 = *(u64 *)(r6 +inode.nosuch)",
		"r1 = *(u128 *)(r6 +0)",
		"r11 = 1",
		"w1 = 1",
		"r1 ^= 1",
		"if r1 ~ 0 goto x",
		"call bpf_nosuch",
		"r1 = 1 2",
		"goto nowhere",
		"x:\ny: exit",
		"r2 = atomic64_fetch_add((u64 *)(r1 +24), r3)",
		"*(u32 *)(r6 -4) = probe_chain(r7, 8)",
	} {
		b := newBuilder(synthetic(), nil)
		b.text(text + "\nx: exit")
		if _, err := b.assemble(); err == nil {
			t.Errorf("%q: no error", text)
		}
	}
}
