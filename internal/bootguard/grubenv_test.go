package bootguard

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// emptyEnv is a grubenv as grub-editenv creates it.
var emptyEnv = envHeader + strings.Repeat("#", envSize-len(envHeader))

func TestEditEnv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "grubenv")
	if err := os.WriteFile(p, []byte(envHeader+"saved_entry=0\nrecordfail=1\n"+strings.Repeat("#", envSize-len(envHeader)-27)), 0o644); err != nil {
		t.Fatal(err)
	}
	ino := func() uint64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	before := ino()
	// As grub-set-default rootswap-old and grub-reboot rootswap-new.
	if err := EditEnv(p, "saved_entry", "rootswap-old", "next_entry", "rootswap-new"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	want := envHeader + "next_entry=rootswap-new\nrecordfail=1\nsaved_entry=rootswap-old\n"
	if len(data) != envSize || !strings.HasPrefix(string(data), want) || strings.Trim(string(data[len(want):]), "#") != "" {
		t.Errorf("grubenv (%d bytes):\n%q\nwant %q and # padding to 1024", len(data), data, want)
	}
	if ino() != before {
		t.Errorf("grubenv replaced, not rewritten in place: GRUB's save_env writes the blocks it found")
	}
	// The confirmation: saved_entry the new root's, next_entry gone.
	if err := EditEnv(p, "saved_entry", "gnulinux-simple-x", "next_entry", ""); err != nil {
		t.Fatal(err)
	}
	env, err := ReadEnv(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != 2 || env["saved_entry"] != "gnulinux-simple-x" || env["recordfail"] != "1" {
		t.Errorf("env %v", env)
	}
}

func TestEditEnvNew(t *testing.T) {
	p := filepath.Join(t.TempDir(), "grubenv")
	if err := EditEnv(p, "saved_entry", "rootswap-old"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if got, want := string(data), envHeader+"saved_entry=rootswap-old\n"+emptyEnv[len(envHeader)+25:]; got != want {
		t.Errorf("new grubenv %q, want %q", got, want)
	}
}

func TestEditEnvRefuses(t *testing.T) {
	p := filepath.Join(t.TempDir(), "grubenv")
	os.WriteFile(p, []byte(emptyEnv), 0o644)
	for name, set := range map[string][]string{
		"newline":  {"saved_entry", "a\nnext_entry=evil"},
		"too long": {"saved_entry", strings.Repeat("x", envSize)},
		"bad name": {"a=b", "c"},
	} {
		if err := EditEnv(p, set...); err == nil {
			t.Errorf("%s: no error", name)
		}
		if data, _ := os.ReadFile(p); string(data) != emptyEnv {
			t.Errorf("%s: grubenv changed to %q", name, data)
		}
	}
	os.WriteFile(p, []byte("not an env block"), 0o644)
	if err := EditEnv(p, "saved_entry", "0"); err == nil || !strings.Contains(err.Error(), "not a GRUB environment block") {
		t.Errorf("a foreign file: %v", err)
	}
}
