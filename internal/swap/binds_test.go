package swap

import (
	"os"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// plan lists every bind of a directory of / and refuses one whose
// directory was deleted; remake-binds describes each.
func TestCheckBinds(t *testing.T) {
	f, err := os.Open("../mountops/testdata/binds-host.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := mountinfo.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := tab.Containing("/")
	r := &Report{}
	r.checkBinds(tab, root, DefaultOptions("/dev/sdb1"))
	var got []string
	for _, b := range r.Binds {
		got = append(got, b.Point)
	}
	if want := "/data/shared /srv/rootbind /var/spool/postfix/etc/resolv.conf /mnt/shared-own"; strings.Join(got, " ") != want {
		t.Errorf("binds = %q, want %q", got, want)
	}
	if len(r.Blockers) != 1 || !strings.Contains(r.Blockers[0].Problem, "/mnt/gone shows /home/gone of / deleted") {
		t.Errorf("blockers = %+v, want the deleted /home/gone", r.Blockers)
	}
	d := (&remakeBinds{&Runtime{Report: r}}).Describe(&State{})
	if !strings.Contains(d, "/opt/shared on /data/shared (rw,nosuid,nodev,relatime; shared), / on /srv/rootbind (ro,relatime; private)") {
		t.Errorf("remake-binds: %s", d)
	}
}
