package symbolizer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Bounds on /proc/<pid>/maps input. Real processes have a few thousand
// mappings at most; the bounds keep a hostile or corrupt input from growing
// memory without limit.
const (
	maxMapsLines    = 1 << 16
	maxMapsLineSize = 8 << 10
)

// ErrTooManyMappings is returned when a maps file exceeds maxMapsLines.
var ErrTooManyMappings = errors.New("too many mappings")

// ParseMaps parses the text of /proc/<pid>/maps. Lines it cannot parse are
// reported as an error naming the line; the mappings are returned in input
// order (the kernel lists them sorted by address).
func ParseMaps(r io.Reader) ([]Mapping, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxMapsLineSize)
	var out []Mapping
	for n := 1; sc.Scan(); n++ {
		if len(out) >= maxMapsLines {
			return out, fmt.Errorf("parsing maps: %w (over %d)", ErrTooManyMappings, maxMapsLines)
		}
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMapsLine(line)
		if err != nil {
			return out, fmt.Errorf("parsing maps line %d %q: %w", n, truncate(line, 80), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading maps: %w", err)
	}
	return out, nil
}

// parseMapsLine parses "start-limit perms offset dev inode [path]".
func parseMapsLine(line string) (Mapping, error) {
	var m Mapping
	fields, path := splitMapsFields(line)
	if len(fields) < 5 {
		return m, errors.New("fewer than 5 fields")
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return m, fmt.Errorf("address range %q has no '-'", fields[0])
	}
	var err error
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, fmt.Errorf("start address: %w", err)
	}
	if m.Limit, err = strconv.ParseUint(hi, 16, 64); err != nil {
		return m, fmt.Errorf("end address: %w", err)
	}
	if m.Limit < m.Start {
		return m, fmt.Errorf("end %#x below start %#x", m.Limit, m.Start)
	}
	if len(fields[1]) != 4 {
		return m, fmt.Errorf("permissions %q are not 4 characters", fields[1])
	}
	m.Perms = fields[1]
	if m.Offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
		return m, fmt.Errorf("offset: %w", err)
	}
	m.Dev = fields[3]
	if m.Inode, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return m, fmt.Errorf("inode: %w", err)
	}
	m.Path = path
	return m, nil
}

// splitMapsFields returns the five fixed fields and the path, which may
// contain spaces (and ends in " (deleted)" for unlinked files).
func splitMapsFields(line string) ([]string, string) {
	fields := make([]string, 0, 5)
	rest := line
	for len(fields) < 5 {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			fields = append(fields, rest)
			rest = ""
			break
		}
		fields = append(fields, rest[:i])
		rest = rest[i:]
	}
	return fields, strings.TrimLeft(rest, " \t")
}

// isFileMapping reports whether the mapping is backed by a regular file
// (as opposed to "[heap]", "[vdso]", anonymous memory or memfd-like names).
func isFileMapping(m *Mapping) bool {
	return m.Inode != 0 && strings.HasPrefix(m.Path, "/")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
