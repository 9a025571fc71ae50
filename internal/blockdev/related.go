package blockdev

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Related reports whether writing to one of the devices a and b would
// overwrite data of the other: they are the same device, one is a
// partition of the other, or one is built on the other through any chain
// of partitions, holders and slaves (dm-0 on sda2 on sda: dm-0 and sda are
// related; sda1 and dm-0 are not). Sibling partitions are not related.
// why says how, in words ("dm-0 is built on sda2, sda2 is a partition of
// sda"). Devices missing from sysfs are related only to themselves.
func Related(sysRoot string, a, b uint64) (bool, string) {
	if a == b {
		return true, fmt.Sprintf("%d:%d is the same device", unix.Major(a), unix.Minor(a))
	}
	an, aok := nameOf(sysRoot, a)
	bn, bok := nameOf(sysRoot, b)
	if !aok || !bok {
		return false, ""
	}
	if path := below(sysRoot, an, bn); path != nil {
		return true, describe(path)
	}
	if path := below(sysRoot, bn, an); path != nil {
		return true, describe(path)
	}
	return false, ""
}

// SameDisk is Related under the name callers asking "same disk?" look for.
func SameDisk(sysRoot string, a, b uint64) (bool, string) { return Related(sysRoot, a, b) }

func nameOf(sysRoot string, dev uint64) (string, bool) {
	dir, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "dev", "block",
		fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))))
	if err != nil {
		return "", false
	}
	return filepath.Base(dir), true
}

// edge is one step down the stack: Upper is built on Lower.
type edge struct {
	upper, lower string
	partition    bool
}

// below walks down from top (to its slaves and, for a partition, to its
// disk) and, separately, up from bottom (to its holders and partitions),
// and returns the chain of edges from top to bottom, or nil. Walking
// both ways tolerates a sysfs where only one side of a link is recorded.
func below(sysRoot, top, bottom string) []edge {
	if p := search(top, bottom, func(n string) []edge { return downEdges(sysRoot, n) }, func(e edge) string { return e.lower }); p != nil {
		return p
	}
	p := search(bottom, top, func(n string) []edge { return upEdges(sysRoot, n) }, func(e edge) string { return e.upper })
	// Reverse so that the chain reads from top to bottom.
	for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// search is a breadth-first search from start to goal; next gives the
// edges out of a node and far the node an edge leads to.
func search(start, goal string, next func(string) []edge, far func(edge) string) []edge {
	prev := map[string]edge{}
	seen := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range next(n) {
			m := far(e)
			if seen[m] {
				continue
			}
			seen[m] = true
			prev[m] = e
			if m == goal {
				var path []edge
				for cur := goal; cur != start; {
					e := prev[cur]
					path = append([]edge{e}, path...)
					if cur == e.lower {
						cur = e.upper
					} else {
						cur = e.lower
					}
				}
				return path
			}
			queue = append(queue, m)
		}
	}
	return nil
}

func downEdges(sysRoot, name string) []edge {
	dir, err := sysDirOfName(sysRoot, name)
	if err != nil {
		return nil
	}
	d, err := fromSysDir(dir)
	if err != nil {
		return nil
	}
	var es []edge
	if d.IsPartition {
		es = append(es, edge{upper: name, lower: d.Parent, partition: true})
	}
	for _, s := range d.Slaves {
		es = append(es, edge{upper: name, lower: s})
	}
	return es
}

func upEdges(sysRoot, name string) []edge {
	dir, err := sysDirOfName(sysRoot, name)
	if err != nil {
		return nil
	}
	var es []edge
	for _, p := range partitionsOf(dir) {
		es = append(es, edge{upper: p, lower: name, partition: true})
	}
	for _, h := range readNames(filepath.Join(dir, "holders")) {
		es = append(es, edge{upper: h, lower: name})
	}
	return es
}

func describe(path []edge) string {
	parts := make([]string, len(path))
	for i, e := range path {
		if e.partition {
			parts[i] = e.upper + " is a partition of " + e.lower
		} else {
			parts[i] = e.upper + " is built on " + e.lower
		}
	}
	return strings.Join(parts, ", ")
}
