package python

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame is a named Python frame.
type Frame struct {
	Function string // co_qualname (3.11+) or co_name
	File     string // co_filename
	Line     int    // the function's first line where the table has none; 0 when unknown
}

// UnknownOffset is the instruction offset the BPF side records when it could
// not tell it (before the first instruction, say); the frame's line is then
// co_firstlineno.
const UnknownOffset = 0x7fffffff

// codeObject is what vigil keeps of one code object: its names and
// decoded line table.
type codeObject struct {
	function, file string
	firstLine      int32
	lines          lineTable
}

// line returns the line at byte offset off into the instructions. Where
// the table has none (the set-up bytes a closure starts with, an offset
// past its end) or the offset is unknown, it is the function's first
// line: a frame is always in its function. 0 only when that is unknown.
func (c *codeObject) line(off uint32) int {
	l := c.firstLine
	if off != UnknownOffset {
		if at := c.lines.line(off); at > 0 {
			l = at
		}
	}
	return int(max(l, 0))
}

// size estimates the memory c holds, for the cache budget.
func (c *codeObject) size() int {
	const overhead = 160 // the structs, map and queue slots
	return overhead + len(c.function) + len(c.file) + c.lines.size()
}

// readCode reads the code object at addr: one read of the fields Check
// covers (and the qualified name), refused unless they give check, then the
// strings and line table they point to.
func readCode(l *Layout, mem io.ReaderAt, addr uint64, check uint32) (*codeObject, error) {
	if err := l.valid(); err != nil {
		return nil, err
	}
	hdr := make([]byte, l.codeHeaderSize())
	if _, err := readAtLeast(mem, addr, hdr, len(hdr)); err != nil {
		return nil, readFailed("code object", addr, err)
	}
	name, file, table := word(hdr, l.CodeName), word(hdr, l.CodeFilename), word(hdr, l.CodeLineTable)
	first := binary.LittleEndian.Uint32(hdr[l.CodeFirstLineNo:])
	if got := Check(name, file, table, first); got != check {
		return nil, &UnreadableError{Reason: ReasonChecksumMismatch,
			Err: fmt.Errorf("code object at %#x: checksum %#x, sampled %#x", addr, got, check)}
	}
	qualname := name
	if l.CodeQualname != NoOffset {
		qualname = word(hdr, l.CodeQualname)
	}
	return readCodeParts(l, mem, qualname, file, table, int32(first))
}

// readCodeParts reads the strings and line table a code object points to.
func readCodeParts(l *Layout, mem io.ReaderAt, name, file, table uint64, first int32) (*codeObject, error) {
	c := &codeObject{firstLine: first}
	var err error
	if c.function, err = readString(mem, l, name); err != nil {
		return nil, fmt.Errorf("function name: %w", err)
	}
	if c.file, err = readString(mem, l, file); err != nil {
		return nil, fmt.Errorf("file name: %w", err)
	}
	raw, err := readBytes(mem, l, table, maxLineTable)
	if err != nil {
		return nil, fmt.Errorf("line table: %w", err)
	}
	c.lines = decodeLines(l.Kind, raw, first)
	return c, nil
}

var errBadLayout = errors.New("python: inconsistent layout")

// valid checks the fields readCode relies on, so that a hand-made Layout
// gives an error rather than an out-of-range slice.
func (l *Layout) valid() error {
	switch {
	case l == nil:
		return fmt.Errorf("%w: nil", errBadLayout)
	case l.CodeName == NoOffset || l.CodeFilename == NoOffset ||
		l.CodeLineTable == NoOffset || l.CodeFirstLineNo == NoOffset:
		return fmt.Errorf("%w: code object fields missing", errBadLayout)
	case int(l.UnicodeState)+4 > int(l.ASCIISize) || int(l.UnicodeLength)+8 > int(l.ASCIISize) ||
		l.ASCIISize > l.CompactSize:
		return fmt.Errorf("%w: str fields past the header", errBadLayout)
	case int(l.BytesSize)+8 > int(l.BytesData):
		return fmt.Errorf("%w: bytes size past the header", errBadLayout)
	}
	return nil
}
