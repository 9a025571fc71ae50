package bootguard

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// grubenv is GRUB's environment block (/boot/grub/grubenv): a header line,
// name=value lines, '#' padding to exactly 1024 bytes. GRUB's save_env
// rewrites the file's blocks in place, so it must keep that size.
const (
	envHeader = "# GRUB Environment Block\n"
	envSize   = 1024
)

// ReadEnv reads a grubenv file; a missing file is an empty block.
func ReadEnv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseEnv(path, data)
}

func parseEnv(path string, data []byte) (map[string]string, error) {
	if !bytes.HasPrefix(data, []byte(envHeader)) {
		return nil, fmt.Errorf("%s: not a GRUB environment block (no %q header)", path, strings.TrimSpace(envHeader))
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data[len(envHeader):]), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	return env, nil
}

// EditEnv sets (a value) and unsets (an empty value) variables of the
// grubenv at path, given as name, value pairs, as grub-set-default and
// grub-reboot do. An existing file is rewritten in place (same 1024
// bytes, same blocks) and synced.
func EditEnv(path string, kv ...string) error {
	env, err := ReadEnv(path)
	if err != nil {
		return err
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		if strings.ContainsAny(v, "\n\\") || k == "" || strings.ContainsAny(k, "=\n#") {
			return fmt.Errorf("%s: %s=%q cannot be written to a GRUB environment block", path, k, v)
		}
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString(envHeader)
	for _, k := range keys {
		b.WriteString(k + "=" + env[k] + "\n")
	}
	if b.Len() > envSize {
		return fmt.Errorf("%s: the variables need %d bytes, more than GRUB's %d", path, b.Len(), envSize)
	}
	b.Write(bytes.Repeat([]byte{'#'}, envSize-b.Len()))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b.Bytes(), 0); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Truncate(envSize); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return f.Close()
}
