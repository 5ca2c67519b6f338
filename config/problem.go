package config

import (
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration: the key path
// (profiler.frequency), the line in the file when there is one, and what is
// wrong.
type Problem struct {
	Path string
	Line int // 1-based; 0 when the problem has no place in a file
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is the error returned by Load, Parse, Set and Validate: every
// problem found, in the order found, one per line in Error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// err returns ps as an error, or nil when there are none, so callers never
// hold a non-nil error interface wrapping an empty list.
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}
