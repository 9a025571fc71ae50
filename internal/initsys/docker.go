package initsys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// A dockerd with live-restore keeps its containers running while it is
// stopped, so a swap stops them itself, through the docker CLI, before
// the daemon, and starts them again after it. The CLI is the operation's
// one interface: it is what the admin would type, it runs from whichever
// root is / at the time, and tests drive it with the fake runner.

// Container is a docker container: its full id and its first name.
type Container struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Short is the id as docker ps shows it (12 hex digits).
func (c Container) Short() string {
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}

func (c Container) String() string {
	if c.Name == "" {
		return c.Short()
	}
	return c.Short() + " (" + c.Name + ")"
}

// DockerCLI runs the docker client against one daemon.
type DockerCLI struct {
	Host string // -H: the daemon's socket (Dockerd.Host)
	Run  Runner // ExecRunner when nil
}

// dockerPSFormat prints one container a line: full id, a space, its
// names (container names never hold a space).
const dockerPSFormat = "{{.ID}} {{.Names}}"

// Argv is the command line of a docker subcommand against d's daemon.
func (d DockerCLI) Argv(args ...string) []string {
	return append([]string{"docker", "-H", d.Host}, args...)
}

// run runs a docker subcommand; its error names the command and carries
// what docker said ("Cannot connect to the Docker daemon at ..."), also
// from a runner that returns the output apart.
func (d DockerCLI) run(ctx context.Context, args ...string) ([]byte, error) {
	argv := d.Argv(args...)
	out, err := Config{Run: d.Run}.run(ctx, argv[0], argv[1:]...)
	var ce *CommandError
	if err != nil && !errors.As(err, &ce) {
		err = &CommandError{Argv: argv, Output: out, Err: err}
	}
	return out, err
}

// Running lists the running containers (docker ps), newest first as
// docker lists them.
func (d DockerCLI) Running(ctx context.Context) ([]Container, error) {
	out, err := d.run(ctx, "ps", "--no-trunc", "--format", dockerPSFormat)
	if err != nil {
		return nil, err
	}
	cs, err := ParseDockerPS(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(d.Argv("ps"), " "), err)
	}
	return cs, nil
}

// Stop stops the containers (docker stop, which gives each its own stop
// signal and timeout, then kills it).
func (d DockerCLI) Stop(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := d.run(ctx, append([]string{"stop"}, ids...)...)
	return err
}

// Start starts one container (docker start), so that each has its own
// outcome.
func (d DockerCLI) Start(ctx context.Context, id string) error {
	_, err := d.run(ctx, "start", id)
	return err
}

// ParseDockerPS reads the output of docker ps --format dockerPSFormat.
// A container with several names (legacy links: "app/web,web") is known
// by its own, the first without a slash.
func ParseDockerPS(out []byte) ([]Container, error) {
	var cs []Container
	for _, line := range bytes.Split(out, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if len(f) > 2 || !isHexID(f[0]) {
			return nil, fmt.Errorf("unexpected line from docker ps: %q", bytes.TrimSpace(line))
		}
		c := Container{ID: f[0]}
		if len(f) == 2 {
			c.Name = ownName(f[1])
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// isHexID: a container id, full (64) or short (12 hex digits).
func isHexID(s string) bool {
	if len(s) != 64 && len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// ownName picks a container's own name from docker ps's list of names,
// where a link adds "other/alias".
func ownName(names string) string {
	all := strings.Split(names, ",")
	for _, n := range all {
		if n != "" && !strings.Contains(n, "/") {
			return n
		}
	}
	return all[0]
}
