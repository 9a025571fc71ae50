package finish

import (
	"strings"
)

// KernelLine is one kernel command line of a boot loader configuration
// (a grub.cfg "linux" line) and the root= it passes.
type KernelLine struct {
	Line   int    // 1-based line number
	Kernel string // the kernel image, "/vmlinuz-6.1.0-18-amd64"
	Root   string // the value of the last root= (the one the kernel uses); empty when none
}

// kernelCommands are the grub.cfg commands that load a Linux kernel with
// its command line (linux16 on BIOS with old configs, linuxefi on some
// EFI distributions, kernel in GRUB legacy's menu.lst).
const kernelCommands = " linux linux16 linuxefi kernel "

// isKernelCommand says whether a grub.cfg command word loads a kernel.
func isKernelCommand(w string) bool { return strings.Contains(kernelCommands, " "+w+" ") }

// KernelLines finds the kernel command lines in a grub.cfg.
func KernelLines(cfg []byte) []KernelLine {
	var out []KernelLine
	for n, line := range strings.Split(string(cfg), "\n") {
		words := grubWords(line)
		if len(words) < 2 || !isKernelCommand(words[0]) {
			continue
		}
		kl := KernelLine{Line: n + 1, Kernel: words[1]}
		for _, w := range words[2:] {
			if v, ok := strings.CutPrefix(w, "root="); ok {
				kl.Root = v
			}
		}
		out = append(out, kl)
	}
	return out
}

// grubWords splits a grub.cfg line into words the way GRUB's shell-like
// syntax does for the cases grub-mkconfig writes: blanks separate,
// quotes group and are removed, a backslash escapes the next character, a
// # at the start of a word begins a comment.
func grubWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return words
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
