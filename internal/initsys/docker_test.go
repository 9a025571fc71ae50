package initsys

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	webID   = "4f1c9a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"
	redisID = "77aa00bb11cc22dd33ee44ff5566778899aabbccddeeff001122334455667788"
)

// The socket the docker CLI is pointed at is dockerd's own: -H on its
// command line, else "hosts" in daemon.json, else the default (also for
// fd://, which docker.socket serves on the default path).
func TestDockerdHost(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		json string
		want string
	}{
		{[]string{"/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"}, "", DefaultDockerHost},
		{[]string{"/usr/bin/dockerd"}, "", DefaultDockerHost},
		{[]string{"/usr/bin/dockerd", "-H", "tcp://0.0.0.0:2375", "-H", "unix:///run/dock.sock"}, "", "unix:///run/dock.sock"},
		{[]string{"/usr/bin/dockerd", "--host=unix:///srv/d.sock"}, "", "unix:///srv/d.sock"},
		{[]string{"/usr/bin/dockerd", "-Hunix:///srv/e.sock"}, "", "unix:///srv/e.sock"},
		{[]string{"/usr/bin/dockerd"}, `{"hosts": ["tcp://127.0.0.1:2375", "unix:///run/j.sock"]}`, "unix:///run/j.sock"},
		{[]string{"/usr/bin/dockerd"}, `{"hosts": ["tcp://127.0.0.1:2375"]}`, DefaultDockerHost},
		{[]string{"/usr/bin/dockerd", "-H", "unix://"}, "", DefaultDockerHost},
	} {
		tr := newTree(t)
		tr.process(1, 0, "systemd", "/usr/lib/systemd/systemd", "/sbin/init")
		tr.process(400, 1, "dockerd", tc.argv[0], tc.argv...)
		if tc.json != "" {
			tr.file("etc/docker/daemon.json", tc.json)
		}
		ds := tr.config(nil).Dockerds()
		if len(ds) != 1 || ds[0].Host != tc.want {
			t.Errorf("dockerd %q, daemon.json %q: Dockerds() = %+v; want Host %q", tc.argv, tc.json, ds, tc.want)
		}
	}
}

func TestDockerCLI(t *testing.T) {
	f := &fakeRunner{answers: map[string]answer{
		"docker -H unix:///run/d.sock ps --no-trunc --format {{.ID}} {{.Names}}": {out: webID + " app/web,web\n" + redisID + " redis\n"},
	}}
	d := DockerCLI{Host: "unix:///run/d.sock", Run: f.run}
	ctx := context.Background()
	got, err := d.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Container{{webID, "web"}, {redisID, "redis"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Running = %+v, want %+v", got, want)
	}
	if err := d.Stop(ctx, webID, redisID); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx); err != nil { // nothing to stop: no command
		t.Fatal(err)
	}
	if err := d.Start(ctx, redisID); err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{
		"docker -H unix:///run/d.sock ps --no-trunc --format {{.ID}} {{.Names}}",
		"docker -H unix:///run/d.sock stop " + webID + " " + redisID,
		"docker -H unix:///run/d.sock start " + redisID,
	}
	if calls := f.got(); !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("commands = %q\nwant %q", calls, wantCalls)
	}
	if s := got[0].String(); s != "4f1c9a2b3c4d (web)" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseDockerPS(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Container
		wantErr string
	}{
		{"", nil, ""},
		{"\n", nil, ""},
		{webID + " web\n", []Container{{webID, "web"}}, ""},
		{"4f1c9a2b3c4d web\r\n", []Container{{"4f1c9a2b3c4d", "web"}}, ""},
		{webID + "\n", []Container{{webID, ""}}, ""},
		{webID + " app/db,db,alias\n", []Container{{webID, "db"}}, ""},
		{webID + " app/db\n", []Container{{webID, "app/db"}}, ""},
		{"Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n", nil, "unexpected line"},
		{"WARNING: Error loading config file\n" + webID + " web\n", nil, "unexpected line"},
		{webID + " web extra\n", nil, "unexpected line"},
		{strings.ToUpper(webID) + " web\n", nil, "unexpected line"},
	} {
		got, err := ParseDockerPS([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDockerPS(%q) = %+v, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseDockerPS(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseDockerPS(f *testing.F) {
	f.Add([]byte(webID + " web,app/web\n" + redisID + " redis\n"))
	f.Add([]byte("4f1c9a2b3c4d \n\n"))
	f.Add([]byte("Error response from daemon: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseDockerPS(data)
		if err != nil {
			return
		}
		for _, c := range cs {
			if !isHexID(c.ID) {
				t.Fatalf("id %q is not a container id", c.ID)
			}
			if strings.ContainsAny(c.Name, " ,\n") {
				t.Fatalf("name %q holds a separator", c.Name)
			}
			// What is read can be written back and read the same.
			again, err := ParseDockerPS([]byte(c.ID + " " + c.Name + "\n"))
			if err != nil || len(again) != 1 || again[0] != c {
				t.Fatalf("%+v read back as %+v, %v", c, again, err)
			}
		}
	})
}

// A runner that returns the output apart from a bare error (the engine's
// RealCommand): the error still names the command and says what docker said.
func TestDockerCLIError(t *testing.T) {
	run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return []byte("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"), errors.New("exit status 1")
	}
	_, err := DockerCLI{Host: DefaultDockerHost, Run: run}.Running(context.Background())
	want := "docker -H unix:///var/run/docker.sock ps --no-trunc --format {{.ID}} {{.Names}}: exit status 1: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
	if err == nil || err.Error() != want {
		t.Errorf("Running() error = %v\nwant %s", err, want)
	}
}
