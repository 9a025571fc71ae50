package blockdev

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/testutil"
)

// fixtureSys builds the sysfs tree described by testdata/sysfs.txt in a
// temporary directory and returns its root.
func fixtureSys(t *testing.T) string { return testutil.TreeFromText(t, "testdata/sysfs.txt") }

func TestLookup(t *testing.T) {
	sys := fixtureSys(t)
	tests := []struct {
		dev  uint64
		want Device
	}{
		{unix.Mkdev(7, 0), Device{Major: 7, Minor: 0, Name: "loop0", Size: 2097152 * 512, LogicalSector: 512, PhysicalSector: 512}},
		{unix.Mkdev(7, 1), Device{Major: 7, Minor: 1, Name: "loop1", Size: 8 * 512, LogicalSector: 4096, PhysicalSector: 4096, ReadOnly: true}},
		{unix.Mkdev(8, 0), Device{Major: 8, Minor: 0, Name: "sda", Size: 41943040 * 512, LogicalSector: 512, PhysicalSector: 4096}},
		{unix.Mkdev(8, 2), Device{Major: 8, Minor: 2, Name: "sda2", Size: 40892416 * 512, LogicalSector: 512, PhysicalSector: 4096,
			IsPartition: true, Parent: "sda", Holders: []string{"dm-0"}}},
		{unix.Mkdev(253, 0), Device{Major: 253, Minor: 0, Name: "dm-0", Size: 40886272 * 512, LogicalSector: 512, PhysicalSector: 4096,
			Slaves: []string{"sda2"}}},
		{unix.Mkdev(9, 0), Device{Major: 9, Minor: 0, Name: "md0", Size: 41938944 * 512, LogicalSector: 512, PhysicalSector: 512,
			Holders: []string{"dm-1"}, Slaves: []string{"sdb1", "sdc1"}}},
	}
	for _, tt := range tests {
		got, err := Lookup(sys, tt.dev)
		if err != nil {
			t.Errorf("Lookup(%d:%d): %v", unix.Major(tt.dev), unix.Minor(tt.dev), err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("Lookup(%d:%d)\n got %+v\nwant %+v", unix.Major(tt.dev), unix.Minor(tt.dev), *got, tt.want)
		}
		byName, err := LookupName(sys, tt.want.Name)
		if err != nil {
			t.Errorf("LookupName(%s): %v", tt.want.Name, err)
			continue
		}
		if !reflect.DeepEqual(byName, got) {
			t.Errorf("LookupName(%s) = %+v, Lookup gave %+v", tt.want.Name, *byName, *got)
		}
		if byName.Dev() != tt.dev {
			t.Errorf("%s: Dev() = %#x, want %#x", tt.want.Name, byName.Dev(), tt.dev)
		}
	}
}

func TestLookupMissing(t *testing.T) {
	sys := fixtureSys(t)
	_, err := Lookup(sys, unix.Mkdev(8, 99))
	if err == nil || !strings.Contains(err.Error(), "8:99 not in sysfs") {
		t.Errorf("Lookup(8:99) error = %v, want one saying 8:99 is not in sysfs", err)
	}
	if _, err := LookupName(sys, "../sda"); err == nil {
		t.Errorf("LookupName(../sda) succeeded, want an error")
	}
}

func TestRelated(t *testing.T) {
	sys := fixtureSys(t)
	dev := func(s string) uint64 {
		maj, min, err := parseMajMin(s)
		if err != nil {
			t.Fatal(err)
		}
		return unix.Mkdev(maj, min)
	}
	tests := []struct {
		a, b    string
		want    bool
		wantWhy string
	}{
		{"8:0", "8:0", true, "8:0 is the same device"},
		{"8:0", "8:2", true, "sda2 is a partition of sda"},
		{"8:2", "8:0", true, "sda2 is a partition of sda"},
		{"8:1", "8:2", false, ""}, // sibling partitions
		{"253:0", "8:2", true, "dm-0 is built on sda2"},
		{"8:0", "253:0", true, "dm-0 is built on sda2, sda2 is a partition of sda"},
		{"8:1", "253:0", false, ""},
		{"253:1", "8:32", true, "dm-1 is built on md0, md0 is built on sdc1, sdc1 is a partition of sdc"},
		{"8:17", "8:33", false, ""}, // two legs of one RAID1 do not overwrite each other directly
		{"7:0", "7:1", false, ""},
		{"7:0", "8:99", false, ""}, // not in sysfs
	}
	for _, tt := range tests {
		got, why := Related(sys, dev(tt.a), dev(tt.b))
		if got != tt.want || why != tt.wantWhy {
			t.Errorf("Related(%s, %s) = %v, %q; want %v, %q", tt.a, tt.b, got, why, tt.want, tt.wantWhy)
		}
	}
}

// TestRelatedOneSided checks that a link recorded only on the holder side
// (slaves/) or only on the lower side (holders/) is still followed.
func TestRelatedOneSided(t *testing.T) {
	sys := fixtureSys(t)
	sda2, err := sysDirOfName(sys, "sda2")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(sda2, "holders", "dm-0")); err != nil {
		t.Fatal(err)
	}
	if ok, why := Related(sys, unix.Mkdev(8, 0), unix.Mkdev(253, 0)); !ok {
		t.Errorf("with only dm-0/slaves/sda2: Related(sda, dm-0) = false, want true")
	} else if why != "dm-0 is built on sda2, sda2 is a partition of sda" {
		t.Errorf("why = %q", why)
	}
	dm0, _ := sysDirOfName(sys, "dm-0")
	os.Remove(filepath.Join(dm0, "slaves", "sda2"))
	if ok, _ := Related(sys, unix.Mkdev(8, 0), unix.Mkdev(253, 0)); ok {
		t.Errorf("with both links removed: Related(sda, dm-0) = true, want false")
	}
}

const mountinfoText = `22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
23 22 8:1 / /boot rw,relatime shared:2 - ext4 /dev/sda1 rw
24 22 0:21 / /proc rw,nosuid shared:3 - proc proc rw
25 22 8:2 /srv /var/srv rw,relatime shared:1 - ext4 /dev/sda2 rw
`

func TestMountedAt(t *testing.T) {
	tab, err := mountinfo.Parse(strings.NewReader(mountinfoText))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range MountedAt(tab, unix.Mkdev(8, 2)) {
		got = append(got, m.Point)
	}
	if want := []string{"/", "/var/srv"}; !reflect.DeepEqual(got, want) {
		t.Errorf("MountedAt(8:2) points = %q, want %q", got, want)
	}
	if n := len(MountedAt(tab, unix.Mkdev(8, 16))); n != 0 {
		t.Errorf("MountedAt(8:16) found %d mounts, want 0", n)
	}
}

func TestStatRegularFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Stat("/sys", p)
	if err == nil || !strings.Contains(err.Error(), "not a block device: regular file") {
		t.Errorf("Stat(regular file) error = %v, want \"not a block device: regular file\"", err)
	}
	if _, err := OpenExclusive(p, os.O_RDONLY); err == nil || !strings.Contains(err.Error(), "not a block device") {
		t.Errorf("OpenExclusive(regular file) error = %v, want not a block device", err)
	}
	size, err := FileSize(p)
	if err != nil || size != 4096 {
		t.Errorf("FileSize(regular file) = %d, %v; want 4096", size, err)
	}
	if _, err := FileSize(filepath.Dir(p)); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("FileSize(directory) error = %v, want one naming a directory", err)
	}
}

func FuzzParseMajMin(f *testing.F) {
	for _, s := range []string{"8:2", "253:0", "0:21", ":", "8:", "4294967295:1", "-1:2", "8:2:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		maj, min, err := parseMajMin(s)
		if err != nil {
			return
		}
		// Accepted text prints back the same, but for leading zeros on
		// either side ("1:00" is 1:0).
		noZeros := func(p string) string {
			if p = strings.TrimLeft(p, "0"); p == "" {
				return "0"
			}
			return p
		}
		a, b, _ := strings.Cut(s, ":")
		if back := strconv.FormatUint(uint64(maj), 10) + ":" + strconv.FormatUint(uint64(min), 10); back != noZeros(a)+":"+noZeros(b) {
			t.Errorf("parseMajMin(%q) = %d:%d, which prints as %q", s, maj, min, back)
		}
	})
}
