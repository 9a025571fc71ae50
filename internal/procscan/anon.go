package procscan

// MaxTFDs is how many of an eventpoll's watched descriptors AnonInfo
// keeps: lsof reads no more (and marks the rest "...").
const MaxTFDs = 32

// AnonInfo is what an anonymous inode's fdinfo says about the object
// behind it: eventfd's id, a pidfd's process, the descriptors an
// eventpoll watches.
type AnonInfo struct {
	EventfdID    int
	HasEventfdID bool
	Pid          int // the pidfd's process in the reader's PID namespace; none for a reaped one (-1)
	HasPid       bool
	TFDs         []int // eventpoll: the first MaxTFDs watched descriptors, in fdinfo order
}

// anonDetailed reports whether an anonymous inode's link text names an
// object whose fdinfo adds to its name: the others ([timerfd],
// [signalfd], inotify, bpf-map) are named by the link alone.
func anonDetailed(link string) bool {
	switch link {
	case "anon_inode:[eventfd]", "anon_inode:[eventpoll]", "anon_inode:[pidfd]":
		return true
	}
	return false
}

// ParseAnonInfo parses the lines of an fdinfo file that describe an
// anonymous inode's object ("eventfd-id:", "Pid:", "tfd:"); the others
// are ParseFDInfo's. Values are decimal ints; a negative or malformed
// one is left unset, as lsof does.
func ParseAnonInfo(b []byte) AnonInfo {
	var ai AnonInfo
	eachKeyValue(b, func(key, val []byte) {
		switch string(key) {
		case "eventfd-id":
			ai.EventfdID, ai.HasEventfdID = parseInt32(val)
		case "Pid":
			ai.Pid, ai.HasPid = parseInt32(val)
		case "tfd":
			// "tfd:       18 events:       19 data: ...": the first word.
			if i := indexByte(val, ' '); i >= 0 {
				val = val[:i]
			}
			if v, ok := parseInt32(val); ok && len(ai.TFDs) < MaxTFDs {
				ai.TFDs = append(ai.TFDs, v)
			}
		}
	})
	return ai
}

func parseInt32(b []byte) (int, bool) {
	v, ok := parseUint(b, 10)
	if !ok || v > 1<<31-1 {
		return 0, false
	}
	return int(v), true
}

// anonInfo reads the fdinfo of an anonymous inode whose name it details,
// for descriptors the BPF iterator reported (the /proc walk has read
// fdinfo already). nil when the scan does not describe them, or the
// descriptor was closed meanwhile.
func (s *scan) anonInfo(r *reader, d *procDir, f *FD) *AnonInfo {
	if !s.describe || f.Kind != KindAnon || !anonDetailed(f.Name) {
		return nil
	}
	dirfd, err := d.open()
	if err != nil {
		return nil
	}
	r.name = append(r.name[:0], "fdinfo/"...)
	r.name = append(r.name, r.number(f.Num)...)
	b, err := r.readOnceAt(dirfd, string(r.name))
	if err != nil {
		return nil
	}
	ai := ParseAnonInfo(b)
	return &ai
}

// anonInfoOf parses the anonymous inode's details from fdinfo already
// read (the /proc walk).
func (s *scan) anonInfoOf(f *FD, info []byte) *AnonInfo {
	if !s.describe || f.Kind != KindAnon || info == nil || !anonDetailed(f.Name) {
		return nil
	}
	ai := ParseAnonInfo(info)
	return &ai
}
