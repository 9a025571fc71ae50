package procscan

// parseStatus picks the command name and the effective uid out of
// /proc/PID/status. uid is -1 when the line is missing or malformed.
func parseStatus(b []byte) (comm string, uid int) {
	uid = -1
	for len(b) > 0 {
		line := b
		if i := indexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		switch {
		case hasPrefix(line, "Name:"):
			comm = unescapeComm(trimSpace(line[5:]))
		case hasPrefix(line, "Uid:"):
			// Real, effective, saved, filesystem: /proc/PID's owner (what
			// lsof shows) is the effective one.
			f := trimSpace(line[4:])
			if i := indexByte(f, '\t'); i >= 0 {
				f = trimSpace(f[i+1:])
				if j := indexByte(f, '\t'); j >= 0 {
					f = f[:j]
				}
				if v, ok := parseUint(f, 10); ok && v < 1<<32 {
					uid = int(v)
				}
			}
			return comm, uid // Name comes first; nothing else is needed
		}
	}
	return comm, uid
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// unescapeComm undoes the escapes status applies to the name (\n, \\ and
// the other C escapes of control characters).
func unescapeComm(b []byte) string {
	if indexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		i++
		switch b[i] {
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'f':
			out = append(out, '\f')
		case 'v':
			out = append(out, '\v')
		case '\\':
			out = append(out, '\\')
		default:
			out = append(out, '\\', b[i])
		}
	}
	return string(out)
}
