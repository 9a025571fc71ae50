package initsys

import (
	"bufio"
	"bytes"
	"strings"
)

// SystemdCgroup returns the path of the systemd hierarchy in a
// /proc/PID/cgroup file: the "name=systemd" line on cgroup v1 and hybrid
// hosts ("1:name=systemd:/system.slice/ssh.service"), else the unified
// line ("0::/system.slice/ssh.service"). ok is false when neither is there.
func SystemdCgroup(data []byte) (path string, ok bool) {
	var unified string
	haveUnified := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path; the path may hold ':'.
		id, rest, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		controllers, p, found := strings.Cut(rest, ":")
		if !found || !strings.HasPrefix(p, "/") {
			continue
		}
		switch {
		case controllers == "name=systemd":
			return p, true
		case id == "0" && controllers == "" && !haveUnified:
			unified, haveUnified = p, true
		}
	}
	return unified, haveUnified
}

// unitSuffixes are the unit types that own processes in the cgroup tree.
var unitSuffixes = []string{".service", ".scope", ".socket", ".mount", ".swap"}

func unitType(name string) string {
	for _, s := range unitSuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return s[1:]
		}
	}
	return ""
}

// unescapeCgroup undoes systemd's cg_escape: a cgroup directory for a unit
// whose name could clash with a cgroupfs file ("cpu.foo.service", "tasks",
// names starting with "_" or ".") gets a leading "_".
func unescapeCgroup(s string) string {
	if strings.HasPrefix(s, "_") {
		return s[1:]
	}
	return s
}

// UnitOfCgroup maps a systemd cgroup path to the unit that owns it:
//
//	/system.slice/ssh.service                 ssh.service (restartable)
//	/system.slice/systemd-udevd.service/udev  systemd-udevd.service (a unit's sub-cgroup)
//	/user.slice/user-0.slice/session-3.scope  a login session scope, not restartable
//	/init.scope                               PID 1 itself, not restartable
//	/user.slice/user-0.slice/user@0.service/app.slice/foo.service
//	                                          a user manager's unit, not restartable here
//
// The unit is the first component, walking down from the root, that is a
// service or scope: below it are the unit's own sub-cgroups (delegation),
// which belong to it. ok is false for "/" and bare slices.
func UnitOfCgroup(cgpath string) (Service, bool) {
	var parts []string
	for _, p := range strings.Split(cgpath, "/") {
		if p != "" {
			parts = append(parts, unescapeCgroup(p))
		}
	}
	for i, name := range parts {
		typ := unitType(name)
		if typ == "" {
			continue
		}
		svc := Service{Name: name, Kind: typ, Restartable: true}
		switch {
		case name == "init.scope":
			svc.Restartable = false
			svc.Why = "PID 1's own scope: re-executed by telinit-u, never restarted"
		case strings.HasPrefix(name, "user@") && typ == "service" && i+1 < len(parts):
			// A unit of a per-user manager: find the user unit below.
			if sub, ok := UnitOfCgroup(strings.Join(parts[i+1:], "/")); ok && sub.Name != "init.scope" {
				sub.Restartable = false
				sub.Why = "unit of the user manager " + name + " (systemctl --user), not of PID 1"
				return sub, true
			}
			svc.Why = "per-user service manager; restarting it ends that user's units"
			svc.Restartable = false
		case typ == "scope" && strings.HasPrefix(name, "session-"):
			svc.Restartable = false
			svc.Why = "login session scope, not a restartable service: it ends when the session logs out"
		case typ == "scope":
			svc.Restartable = false
			svc.Why = "transient scope (started by systemd-run --scope, a container manager or a login), not a restartable service"
		case typ != "service":
			svc.Restartable = false
			svc.Why = "a ." + typ + " unit's helper process, not a service"
		}
		if i+1 < len(parts) && svc.Why == "" {
			svc.Why = "sub-cgroup " + strings.Join(parts[i+1:], "/") + " of the unit"
		}
		return svc, true
	}
	return Service{}, false
}
