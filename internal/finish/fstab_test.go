package finish

import (
	"os"
	"strings"
	"testing"
)

func TestParseFstab(t *testing.T) {
	data := "# comment\n\nLABEL=my\\040root\t/ ext4 defaults 0 1\n  /dev/sda1 /boot\n/dev/sr0 /media/cd\\134x auto noauto\nlonely\n"
	f := ParseFstab([]byte(data))
	if got := string(f.Bytes()); got != data {
		t.Fatalf("Bytes() = %q, want the input", got)
	}
	type ent struct {
		Line                                  int
		Spec, File, VfsType, Opts, Freq, Pass string
	}
	var got []ent
	for _, e := range f.Entries {
		got = append(got, ent{e.Line, e.Spec, e.File, e.VfsType, e.Opts, e.Freq, e.Pass})
	}
	want := []ent{
		{2, "LABEL=my root", "/", "ext4", "defaults", "0", "1"},
		{3, "/dev/sda1", "/boot", "", "", "", ""},
		{4, "/dev/sr0", `/media/cd\x`, "auto", "noauto", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSetField(t *testing.T) {
	tests := []struct{ in, value, want string }{
		// Spaces grow or shrink to keep the next column.
		{"LABEL=root      /  ext3 defaults 0 1\n", "UUID=0d3b1c8e", "UUID=0d3b1c8e   /  ext3 defaults 0 1\n"},
		{"LABEL=root /  ext3\n", "UUID=0d3b1c8e-4f5a", "UUID=0d3b1c8e-4f5a /  ext3\n"},
		// Tabs stay tabs.
		{"/dev/sda2\t/\text3\n", "UUID=x", "UUID=x\t/\text3\n"},
		// Blanks in the value are escaped; a file without a final newline keeps none.
		{"/dev/sda2 / ext3", "LABEL=my root", `LABEL=my\040root / ext3`},
		{"  /dev/sda2 / ext3\n", `a\b`, `  a\134b / ext3` + "\n"},
	}
	for _, tc := range tests {
		f := ParseFstab([]byte(tc.in))
		f.SetField(f.Entries[0], FieldSpec, tc.value)
		if got := string(f.Bytes()); got != tc.want {
			t.Errorf("SetField(%q, %q) = %q, want %q", tc.in, tc.value, got, tc.want)
		}
		if got := f.Entries[0].Spec; got != tc.value {
			t.Errorf("after SetField the entry reads %q, want %q", got, tc.value)
		}
	}
}

func TestSplitTag(t *testing.T) {
	tests := []struct{ in, tag, value string }{
		{"LABEL=root", "LABEL", "root"},
		{`LABEL="my root"`, "LABEL", "my root"},
		{"uuid=ABC", "UUID", "ABC"},
		{"/dev/disk/by-label/a=b", "", "/dev/disk/by-label/a=b"},
		{"tmpfs", "", "tmpfs"},
	}
	for _, tc := range tests {
		if tag, v := splitTag(tc.in); tag != tc.tag || v != tc.value {
			t.Errorf("splitTag(%q) = %q, %q; want %q, %q", tc.in, tag, v, tc.tag, tc.value)
		}
	}
}

// FuzzFstab: parsing keeps every byte; rewriting the / entry's spec and
// type changes that entry only, and reads back as written.
func FuzzFstab(f *testing.F) {
	for _, name := range []string{"debian-label", "uuid-differs", "devpath-tabs", "label-escaped", "no-root"} {
		f.Add([]byte(readTestdataF(name)), "UUID=0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b", "ext4")
	}
	f.Add([]byte("a / b\r\n#x\n\t\n/ / / / / / / /"), "LABEL=a b\\c", "")
	f.Fuzz(func(t *testing.T, data []byte, spec, vfs string) {
		fst := ParseFstab(data)
		if got := fst.Bytes(); string(got) != string(data) {
			t.Fatalf("Bytes() = %q, want the input %q", got, data)
		}
		roots := fst.Root()
		if len(roots) == 0 || spec == "" || vfs == "" || strings.ContainsAny(spec+vfs, "\x00") {
			return
		}
		before := strings.SplitAfter(string(data), "\n")
		e := roots[0]
		fst.SetField(e, FieldSpec, spec)
		fst.SetField(fst.Entries[indexOfLine(fst, e.Line)], FieldVfsType, vfs)
		after := strings.SplitAfter(string(fst.Bytes()), "\n")
		if len(after) != len(before) {
			t.Fatalf("line count %d -> %d:\n%q\n%q", len(before), len(after), data, fst.Bytes())
		}
		for i := range before {
			if i != e.Line && before[i] != after[i] {
				t.Fatalf("line %d changed: %q -> %q", i, before[i], after[i])
			}
		}
		re := ParseFstab(fst.Bytes())
		i := indexOfLine(re, e.Line)
		if i < 0 {
			t.Fatalf("the rewritten line is no entry: %q", after[e.Line])
		}
		got := re.Entries[i]
		if got.Spec != spec || got.File != "/" || (len(e.span) > 2 && got.VfsType != vfs) {
			t.Fatalf("rewritten entry reads %q %q %q, want %q / %q", got.Spec, got.File, got.VfsType, spec, vfs)
		}
		if got.Opts != e.Opts || got.Freq != e.Freq || got.Pass != e.Pass {
			t.Fatalf("other fields changed: %+v -> %+v", e, got)
		}
	})
}

func readTestdataF(name string) string {
	b, _ := os.ReadFile("testdata/fstab/" + name + ".fstab")
	return string(b)
}
