package python

import (
	"math"
	"slices"
)

// noLine marks instructions that have no line (3.10+ tables can say so).
const noLine = -1

// lineTable maps byte offsets into a code object's instructions to lines:
// the line at offset o is lines[i] for the last i with starts[i] <= o. It is
// decoded once per code object from the interpreter's own table, whatever
// the version's format, so a lookup is one binary search.
type lineTable struct {
	starts []uint32 // strictly increasing
	lines  []int32  // noLine (or any value below 1) where there is none
}

// line returns the line at byte offset off, or noLine.
func (t *lineTable) line(off uint32) int32 {
	i, found := slices.BinarySearch(t.starts, off)
	if !found {
		i--
	}
	if i < 0 {
		return noLine
	}
	return t.lines[i]
}

// add records that line starts at byte offset start (not below the last
// start). A later entry at the same start replaces the earlier one: that
// one covered no instructions.
func (t *lineTable) add(start uint32, line int64) {
	l := int32(max(math.MinInt32, min(math.MaxInt32, line)))
	n := len(t.starts)
	switch {
	case n > 0 && t.starts[n-1] == start:
		t.lines[n-1] = l
	case n > 0 && t.lines[n-1] == l:
		// The same line carries on.
	default:
		t.starts = append(t.starts, start)
		t.lines = append(t.lines, l)
	}
}

// size estimates the table's memory in bytes, for the cache budget.
func (t *lineTable) size() int {
	return 4*cap(t.starts) + 4*cap(t.lines)
}

// decodeLines decodes a code object's line table in its version's format.
// Malformed tables give wrong lines, never a panic.
func decodeLines(kind FrameKind, table []byte, first int32) lineTable {
	if len(table) > maxLineTable {
		// Keeps every offset within a uint32, whatever the caller passes.
		table = table[:maxLineTable]
	}
	var t lineTable
	switch kind {
	case FrameObject39:
		t = decodeLnotab(table, first)
	case FrameObject310:
		t = decodeLinetable310(table, first)
	case Interp311, Interp312, Interp313:
		t = decodeLocations(table, first)
	}
	// Exact-size copies: the cache keeps them, and charges their size.
	t.starts = slices.Clone(t.starts)
	t.lines = slices.Clone(t.lines)
	return t
}

// decodeLnotab decodes 3.9's co_lnotab: pairs (address increment, unsigned;
// line increment, signed). As in 3.9's PyCode_Addr2Line, the line at an
// offset is co_firstlineno plus the line increments of every pair whose
// address, summed up to it, is not past the offset; there is no "no line".
func decodeLnotab(table []byte, first int32) lineTable {
	var t lineTable
	t.add(0, int64(first))
	addr, line := uint32(0), int64(first)
	for i := 0; i+1 < len(table); i += 2 {
		addr += uint32(table[i])
		line += int64(int8(table[i+1]))
		t.add(addr, line)
	}
	return t
}

// decodeLinetable310 decodes 3.10's co_linetable: pairs (byte length of a
// range, unsigned; line delta, signed, -128 for "no line"). The line is
// accumulated over real deltas only; offsets past the last range have no
// line.
func decodeLinetable310(table []byte, first int32) lineTable {
	var t lineTable
	end, line := uint32(0), int64(first)
	for i := 0; i+1 < len(table); i += 2 {
		start := end
		end += uint32(table[i])
		cur := int64(noLine)
		if d := int8(table[i+1]); d != -128 {
			line += int64(d)
			cur = line
		}
		if end > start {
			t.add(start, cur)
		}
	}
	t.add(end, noLine)
	return t
}

// Location table entry codes (3.11+, the high nibble of an entry's first
// byte after bit 7, which marks the start of an entry).
const (
	locNone      = 15 // no location: no line
	locLong      = 14 // svarint line delta, varint end line delta, varint column, varint end column
	locNoColumns = 13 // svarint line delta
	locOneLine0  = 10 // 10, 11, 12: line delta 0, 1, 2, then two column bytes
)

// decodeLocations decodes the 3.11+ location table: entries covering
// (first byte & 7) + 1 code units (2 bytes each), whose line is the running
// line plus the entry's delta; entries 0 to 9 are "short" forms on the same
// line as the last.
func decodeLocations(table []byte, first int32) lineTable {
	var t lineTable
	addr, line := uint32(0), int64(first)
	for i := 0; i < len(table); {
		b := table[i]
		code := (b >> 3) & 15
		length := uint32(b&7) + 1
		// An entry ends where the next one starts: the next byte with bit 7 set.
		next := i + 1
		for next < len(table) && table[next]&0x80 == 0 {
			next++
		}
		cur := lineDelta(code, table[i+1:next], &line)
		t.add(addr, cur)
		addr += 2 * length
		i = next
	}
	t.add(addr, noLine)
	return t
}

// lineDelta applies an entry's line delta to line and returns the entry's
// line, or noLine.
func lineDelta(code byte, rest []byte, line *int64) int64 {
	switch {
	case code == locNone:
		return noLine
	case code == locLong || code == locNoColumns:
		*line += svarint(rest)
	case code >= locOneLine0 && code <= locOneLine0+2:
		*line += int64(code - locOneLine0)
	}
	return *line
}

// varint reads an unsigned varint: 6-bit chunks, least significant first,
// 0x40 set on every chunk but the last.
func varint(b []byte) uint64 {
	var v uint64
	for shift, i := 0, 0; i < len(b); i, shift = i+1, shift+6 {
		if shift < 64 {
			v |= uint64(b[i]&63) << shift
		}
		if b[i]&64 == 0 {
			break
		}
	}
	return v
}

// svarint reads a signed varint: a varint whose bit 0 is the sign.
func svarint(b []byte) int64 {
	u := varint(b)
	if u&1 != 0 {
		return -int64(u >> 1)
	}
	return int64(u >> 1)
}
