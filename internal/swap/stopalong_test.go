package swap

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
)

// stopInit is a systemd that records stops and, stopping a service,
// stops what needs it too (its dependents), as systemd does.
type stopInit struct {
	initsys.System
	active  []string
	needs   map[string]string // unit -> the unit it requires
	stopped []string
}

func (f *stopInit) Kind() initsys.Kind { return initsys.KindSystemd }
func (f *stopInit) Stop(ctx context.Context, svc initsys.Service) error {
	f.stopped = append(f.stopped, svc.Name)
	var keep []string
	for _, u := range f.active {
		if u != svc.Name && f.needs[u] != svc.Name {
			keep = append(keep, u)
		}
	}
	f.active = keep
	return nil
}

// A unit systemd stops along with one the swap stops (wait-online with
// networkd) is recorded as stopped, so start-services starts it again.
func TestStopServicesRecordsWhatStopsAlong(t *testing.T) {
	in := &stopInit{
		active: []string{"cron.service", "systemd-networkd.service", "systemd-networkd-wait-online.service", "ssh.service"},
		needs:  map[string]string{"systemd-networkd-wait-online.service": "systemd-networkd.service"},
	}
	rt := &Runtime{Init: in, Report: &Report{Stop: []string{"systemd-networkd.service"}},
		Command: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			if name == "systemctl" && len(args) > 0 && args[0] == "list-units" {
				return []byte(strings.Join(in.active, " loaded active running x\n") + " loaded active running x\n"), nil
			}
			return nil, nil
		}}
	s := &State{}
	if err := (&stopServices{rt}).Do(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	want := []string{"systemd-networkd.service", "systemd-networkd-wait-online.service"}
	if !reflect.DeepEqual(s.Stopped, want) {
		t.Errorf("Stopped = %q, want %q", s.Stopped, want)
	}
}

// An overlay its service unmounted when it stopped (dockerd's container
// overlays) is not unmounted again, nor mounted again by remount-extra.
func TestUnmountExtraSkipsWhatIsGone(t *testing.T) {
	proc := filepath.Join(t.TempDir(), "proc")
	os.MkdirAll(filepath.Join(proc, "self"), 0o755)
	const table = "15 1 8:2 / / rw - ext4 /dev/sda2 rw\n40 15 0:50 / /mnt/nfs rw - nfs srv:/x rw\n"
	if err := os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &mountops.Fake{}
	rt := &Runtime{ProcRoot: proc, Mounter: m, Report: &Report{Unmount: mountinfo.Table{
		{ID: 40, Parent: 15, Point: "/mnt/nfs", FSType: "nfs", Source: "srv:/x"},
		{ID: 41, Parent: 15, Point: "/var/lib/docker/overlay2/x/merged", FSType: "overlay", Source: "overlay"},
	}}}
	rt.Out = &strings.Builder{}
	s := &State{}
	if err := (&unmountExtra{rt}).Do(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Strings(), []string{`umount2("/mnt/nfs", 0)`}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if len(s.Unmounted) != 1 || s.Unmounted[0].Point != "/mnt/nfs" {
		t.Errorf("Unmounted = %v, want /mnt/nfs alone", s.Unmounted)
	}
}
