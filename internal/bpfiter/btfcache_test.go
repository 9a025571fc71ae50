package bpfiter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/btf"
)

// countingBTF is the synthetic BTF that counts the questions it answers,
// and says ErrNotFound of what it does not have, as a real Spec does.
type countingBTF struct {
	synthBTF
	asked *int
}

func (c countingBTF) Offset(typ string, field ...string) (int, error) {
	*c.asked++
	o, err := c.synthBTF.Offset(typ, field...)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", btf.ErrNotFound, err)
	}
	return o, nil
}

func (c countingBTF) FuncID(name string) (uint32, error) {
	*c.asked++
	return c.synthBTF.FuncID(name)
}

// newCacheFixture returns a cache path, a blob to key it by and a loader
// that counts its loads and questions.
func newCacheFixture(t *testing.T) (path, blob string, load func() (kernelBTF, error), loads, asked *int) {
	t.Helper()
	dir := t.TempDir()
	blob = filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(blob, []byte("blob"), 0o444); err != nil {
		t.Fatal(err)
	}
	loads, asked = new(int), new(int)
	load = func() (kernelBTF, error) {
		*loads++
		return countingBTF{synthetic(), asked}, nil
	}
	return filepath.Join(dir, "btf.cache"), blob, load, loads, asked
}

// The programs built from cached answers are the programs built from the
// BTF itself, and a second run of the same boot parses nothing.
func TestBTFCacheAnswersWithoutParsing(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the cache is trusted only when root owns it")
	}
	path, blob, load, loads, asked := newCacheFixture(t)
	build := func(s kernelBTF) []byte {
		p, err := filesProgram(s, []uint64{0x800001})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	want := build(synthetic())

	first, err := openBTF(path, blob, load)
	if err != nil {
		t.Fatal(err)
	}
	if got := build(first); string(got) != string(want) {
		t.Fatalf("program from the parsed BTF differs from the synthetic one's")
	}
	if _, err := first.Offset("task_struct", "no_such_field"); !errors.Is(err, btf.ErrNotFound) {
		t.Fatalf("missing field: got %v, want ErrNotFound", err)
	}
	first.save()
	if *loads != 1 {
		t.Fatalf("first run: %d loads, want 1", *loads)
	}

	*loads, *asked = 0, 0
	second, err := openBTF(path, blob, load)
	if err != nil {
		t.Fatal(err)
	}
	if got := build(second); string(got) != string(want) {
		t.Fatalf("program from the cache differs from the one from the BTF")
	}
	_, err = second.Offset("task_struct", "no_such_field")
	if !errors.Is(err, btf.ErrNotFound) || !strings.Contains(err.Error(), "no_such_field") {
		t.Fatalf("cached miss: got %v, want ErrNotFound naming the field", err)
	}
	if *loads != 0 || *asked != 0 {
		t.Fatalf("second run: %d loads, %d questions, want none", *loads, *asked)
	}

	// A question the cache has not seen parses the BTF then.
	if _, err := second.Offset("task_struct", "mm"); err != nil {
		t.Fatal(err)
	}
	if _, err := second.FuncID("bpf_new_kfunc"); err != nil {
		t.Fatal(err)
	}
	if *loads != 1 || *asked != 2 {
		t.Fatalf("new questions: %d loads, %d questions, want 1 and 2", *loads, *asked)
	}
}

// A cache of another boot or blob, or one others could have written, is
// not used.
func TestBTFCacheRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the cache is trusted only when root owns it: nothing to refuse")
	}
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path, blob string)
	}{
		{"other blob", func(t *testing.T, path, blob string) {
			if err := os.WriteFile(blob, []byte("another blob"), 0o444); err != nil {
				t.Fatal(err)
			}
		}},
		{"other boot", func(t *testing.T, path, blob string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b = []byte(strings.Replace(string(b), "boot=", "boot=0", 1))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"writable by others", func(t *testing.T, path, blob string) {
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
		}},
		{"malformed", func(t *testing.T, path, blob string) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("a line without a tab\n")
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, blob, load, loads, _ := newCacheFixture(t)
			a, err := openBTF(path, blob, load)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Offset("task_struct", "pid"); err != nil {
				t.Fatal(err)
			}
			a.save()
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("no cache written: %v", err)
			}
			tc.spoil(t, path, blob)
			*loads = 0
			if _, err := openBTF(path, blob, load); err != nil {
				t.Fatal(err)
			}
			if *loads != 1 {
				t.Fatalf("%d loads, want 1: the spoilt cache was used", *loads)
			}
		})
	}
}

// With no cache path nothing is written and the BTF is parsed each time.
func TestBTFCacheOff(t *testing.T) {
	path, blob, load, loads, _ := newCacheFixture(t)
	a, err := openBTF("", blob, load)
	if err != nil {
		t.Fatal(err)
	}
	a.Offset("task_struct", "pid")
	a.save()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cache written with caching off: %v", err)
	}
	if *loads != 1 {
		t.Fatalf("%d loads, want 1", *loads)
	}
}
