package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
)

// fakeAptGet stands in for apt-get download: it logs its arguments to
// $FAKE_APT_LOG, then fails as apt does for a package it does not know
// when $FAKE_APT_FAIL is set, else copies $FAKE_DEB into the working
// directory under the name apt would give it.
const fakeAptGet = `#!/bin/sh
echo "$*" >>"$FAKE_APT_LOG"
for pkg; do :; done
if [ -n "$FAKE_APT_FAIL" ]; then
	echo "E: Unable to locate package $pkg" >&2
	exit 100
fi
exec /bin/cp "$FAKE_DEB" "./${pkg}_1%3a1.0-1_all.deb"
`

// binDir makes a directory for PATH holding the fake apt-get and links
// to the named host programs (nothing else: no busybox).
func binDir(t *testing.T, hostTools ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "apt-get"), []byte(fakeAptGet), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range hostTools {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s not found in PATH", name)
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeDeb builds a .deb of package pkg holding the one file rel.
func fakeDeb(t *testing.T, pkg, rel, content string) string {
	t.Helper()
	testutil.RequireTool(t, "dpkg-deb")
	tree := t.TempDir()
	control := "Package: " + pkg + "\nVersion: 1:1.0-1\nArchitecture: all\nMaintainer: test <test@example.org>\nDescription: test package\n"
	for name, data := range map[string]string{"DEBIAN/control": control, rel: content} {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(t.TempDir(), pkg+".deb")
	testutil.Run(t, "dpkg-deb", "--root-owner-group", "-b", tree, deb)
	return deb
}

// aptCalls reads the fake apt-get's log: one line per run.
func aptCalls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// noTemporaries fails when a download or unpack left its temporary
// directory in the cache.
func noTemporaries(t *testing.T, cache string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(cache, ".*"))
	if len(left) > 0 {
		t.Errorf("temporary directories left in the cache: %v", left)
	}
}

func TestPackageFile(t *testing.T) {
	const pkg, rel, content = "hello-static", "bin/hello", "#!/bin/sh\necho hello\n"
	deb := fakeDeb(t, pkg, rel, content)
	bin := binDir(t)
	log := filepath.Join(t.TempDir(), "apt.log")
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("FAKE_APT_LOG", log)
	t.Setenv("FAKE_DEB", deb)
	ctx := context.Background()
	cache := filepath.Join(t.TempDir(), "cache") // made by the first download

	// Downloaded: nothing cached, apt-get download runs once in the cache.
	p, err := packageFile(ctx, cache, pkg, rel, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, pkg+"_1%3a1.0-1_all", rel); p != want {
		t.Errorf("path = %s, want %s", p, want)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != content {
		t.Errorf("%s = %q, %v; want %q", p, b, err, content)
	}
	if calls := aptCalls(t, log); len(calls) != 1 || calls[0] != "download -q "+pkg {
		t.Errorf("apt-get calls = %q, want one download -q %s", calls, pkg)
	}
	noTemporaries(t, cache)

	// Cached: apt-get is not run again (it would fail now).
	t.Setenv("FAKE_APT_FAIL", "1")
	p2, err := packageFile(ctx, cache, pkg, rel, t.Logf)
	if err != nil || p2 != p {
		t.Errorf("cached: %s, %v; want %s", p2, err, p)
	}
	// A .deb cached without its tree (an older cache) is unpacked.
	if err := os.RemoveAll(filepath.Dir(filepath.Dir(p))); err != nil {
		t.Fatal(err)
	}
	if p3, err := packageFile(ctx, cache, pkg, rel, t.Logf); err != nil || p3 != p {
		t.Errorf("cached .deb only: %s, %v; want %s", p3, err, p)
	}
	if calls := aptCalls(t, log); len(calls) != 1 {
		t.Errorf("apt-get ran again with the package cached: %q", calls)
	}

	// A file the package does not have.
	if _, err := packageFile(ctx, cache, pkg, "bin/other", t.Logf); err == nil || !strings.Contains(err.Error(), "bin/other") {
		t.Errorf("missing file: err = %v, want one naming bin/other", err)
	}

	// apt-get fails: the error names the package and says what apt said.
	empty := t.TempDir()
	_, err = packageFile(ctx, empty, pkg, rel, t.Logf)
	if err == nil {
		t.Fatal("apt-get failed, packageFile did not")
	}
	for _, want := range []string{"apt-get download " + pkg, "Unable to locate package " + pkg, "apt-get update"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	noTemporaries(t, empty)
	if debs, _ := filepath.Glob(filepath.Join(empty, "*")); len(debs) > 0 {
		t.Errorf("failed download left %v", debs)
	}
}

func TestFindBusyboxFetches(t *testing.T) {
	deb := fakeDeb(t, busyboxPackage, "bin/busybox", "not really busybox\n")
	// No busybox in PATH: only the fake apt-get and what dpkg-deb -x runs.
	t.Setenv("PATH", binDir(t, "dpkg-deb", "tar"))
	log := filepath.Join(t.TempDir(), "apt.log")
	t.Setenv("FAKE_APT_LOG", log)
	t.Setenv("FAKE_DEB", deb)
	cache := t.TempDir()
	bb, err := findBusybox(context.Background(), cache, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bb, cache+"/"+busyboxPackage+"_") || !strings.HasSuffix(bb, "/bin/busybox") {
		t.Errorf("busybox = %s, want busybox-static's bin/busybox under %s", bb, cache)
	}

	t.Setenv("FAKE_APT_FAIL", "1")
	_, err = findBusybox(context.Background(), t.TempDir(), t.Logf)
	if err == nil || !strings.Contains(err.Error(), "apt-get install "+busyboxPackage) {
		t.Errorf("apt-get failing: err = %v, want one saying apt-get install %s", err, busyboxPackage)
	}
}

func TestCheckHost(t *testing.T) {
	cache := t.TempDir()
	o := Options{CacheDir: cache, HostTools: DefaultHostTools(), Init: InitAuto}

	// Nothing at all in PATH.
	t.Setenv("PATH", t.TempDir())
	err := o.checkHost()
	if err == nil {
		t.Fatal("checkHost passed with an empty PATH")
	}
	t.Logf("%v", err)
	for _, want := range []string{
		"losetup: not found in PATH (Debian package mount)",
		"nsenter: not found in PATH (Debian package util-linux)",
		"mkfs.ext3: not found in PATH (Debian package e2fsprogs)",
		"busybox: not in PATH, and busybox-static cannot be fetched: no apt-get, no dpkg-deb in PATH (Debian package busybox-static)",
		"\ninstall with: apt-get install mount e2fsprogs util-linux busybox-static",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(err.Error(), "sysvinit") {
		t.Errorf("init auto falls back to busybox init, yet sysvinit is named: %v", err)
	}
	o.Init = InitSysvinit
	if err := o.checkHost(); err == nil || !strings.Contains(err.Error(), "do not install it") || strings.Contains(err.Error(), "install sysvinit-core") {
		t.Errorf("init sysvinit: err = %v, want sysvinit-core named, not to be installed", err)
	}

	// Every tool there, busybox to be fetched.
	all := t.TempDir()
	for _, name := range []string{"losetup", "mkfs.ext3", "nsenter", "e2fsck", "resize2fs", "tune2fs", "dumpe2fs", "apt-get", "dpkg-deb"} {
		if err := os.Symlink("/bin/true", filepath.Join(all, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", all)
	if err := o.checkHost(); err != nil {
		t.Errorf("all tools there: %v", err)
	}

	// Without apt-get, unpacked packages in the cache are enough.
	for _, pkg := range []string{busyboxPackage, sysvinitPackage} {
		if err := os.WriteFile(filepath.Join(cache, pkg+"_1.0_amd64.deb"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(cache, pkg+"_1.0_amd64"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(all, "apt-get")); err != nil {
		t.Fatal(err)
	}
	if err := o.checkHost(); err != nil {
		t.Errorf("no apt-get, packages cached: %v", err)
	}
}

func TestAptErrors(t *testing.T) {
	out := "Ign:1 http://deb.debian.org/debian bookworm/main amd64 busybox-static\n" +
		"Err:1 http://deb.debian.org/debian bookworm/main amd64 busybox-static\n" +
		"  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n" +
		"W: Download is performed unsandboxed as root\n" +
		"E: Failed to fetch http://deb.debian.org/x.deb  Could not connect to 127.0.0.1:9\n"
	if got, want := aptErrors([]byte(out)), "E: Failed to fetch http://deb.debian.org/x.deb  Could not connect to 127.0.0.1:9"; got != want {
		t.Errorf("aptErrors = %q, want %q", got, want)
	}
	if got := aptErrors([]byte("killed\n")); got != "killed" {
		t.Errorf("aptErrors without E: lines = %q, want all of it", got)
	}
}
