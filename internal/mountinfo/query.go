package mountinfo

import "path/filepath"

// ByID finds a mount by its mount id (fdinfo's mnt_id).
func (t Table) ByID(id int) (Mount, bool) {
	for _, m := range t {
		if m.ID == id {
			return m, true
		}
	}
	return Mount{}, false
}

// ByDev returns every mount of the filesystem with st_dev dev, in order.
func (t Table) ByDev(dev uint64) Table {
	var out Table
	for _, m := range t {
		if m.Dev() == dev {
			out = append(out, m)
		}
	}
	return out
}

// Containing returns the mount visible at path, judged lexically: the
// deepest mount point that is path or one of its parents; of several
// mounts stacked on that point, the top one (the one no other stacked
// mount sits on). path is cleaned; a relative path never matches.
func (t Table) Containing(path string) (Mount, bool) {
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) {
		return Mount{}, false
	}
	best := -1
	for i, m := range t {
		if !under(path, m.Point) {
			continue
		}
		switch {
		case best < 0 || len(m.Point) > len(t[best].Point):
			best = i
		case m.Point == t[best].Point && m.Parent == t[best].ID:
			best = i // stacked on top of the current best
		}
	}
	if best < 0 {
		return Mount{}, false
	}
	return t[best], true
}

// Below returns the mounts whose mount point lies strictly below path,
// parents before children (a depth-first walk of the mount tree, siblings
// in the kernel's order), so that moving or unmounting them in this order
// (or its reverse) never trips over a parent.
func (t Table) Below(path string) Table {
	path = filepath.Clean(path)
	var set Table
	in := map[int]bool{}
	for _, m := range t {
		if m.Point != path && under(m.Point, path) {
			set = append(set, m)
			in[m.ID] = true
		}
	}
	children := map[int][]int{}
	var roots []int
	for i, m := range set {
		if in[m.Parent] && m.Parent != m.ID {
			children[m.Parent] = append(children[m.Parent], i)
		} else {
			roots = append(roots, i)
		}
	}
	out := make(Table, 0, len(set))
	done := make([]bool, len(set))
	var walk func(i int)
	walk = func(i int) {
		if done[i] {
			return
		}
		done[i] = true
		out = append(out, set[i])
		for _, c := range children[set[i].ID] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	// Members of a parent cycle (impossible from a kernel, possible from
	// garbage) are never reached from a root; keep them, in order.
	for i := range set {
		walk(i)
	}
	return out
}

// under reports whether p is dir or lies below it.
func under(p, dir string) bool {
	if dir == "/" {
		return len(p) > 0 && p[0] == '/'
	}
	return p == dir || len(p) > len(dir) && p[:len(dir)] == dir && p[len(dir)] == '/'
}
