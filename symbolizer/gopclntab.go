package symbolizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Magic numbers of the pclntab layouts read in place (little endian).
const (
	pclnGo116 = 0xfffffffa
	pclnGo118 = 0xfffffff0
	pclnGo120 = 0xfffffff1
)

// errOldPclntab marks a table older than Go 1.16 (or not a table at all),
// left to the standard library's reader.
var errOldPclntab = errors.New("layout older than go1.16")

// Bounds on decoding one lookup: names and paths longer than this are
// cut, and no pc-value table is walked past its table's end.
const maxGoNameLen = 4 << 10

// pclntab answers function, file and line questions straight from the
// bytes of a Go 1.16+ .gopclntab: a binary search of the function table
// and a walk of one function's pc-value tables per lookup. Nothing is
// built per function, so a binary with 100,000 functions costs its table
// bytes and no more.
type pclntab struct {
	data    []byte
	magic   uint32
	ptr     int    // pointer size, 4 or 8
	quantum uint64 // instruction size unit of pc deltas
	nfunc   int
	text    uint64 // address function offsets count from (1.18+)

	funcnames, cutab, filetab, pctab, pcln []byte
	field                                  int // size of one function table field

	inl *inlineTrees // nil when inlined calls cannot be expanded
}

// newPclntab checks the header of a Go 1.16+ table and slices its
// sub-tables; every offset and count is checked against the data.
func newPclntab(data []byte, text uint64) (*pclntab, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("%w: go pclntab of %d bytes", ErrMalformed, len(data))
	}
	t := &pclntab{data: data, magic: binary.LittleEndian.Uint32(data), ptr: int(data[7]), quantum: uint64(data[6]), text: text}
	if t.magic != pclnGo116 && t.magic != pclnGo118 && t.magic != pclnGo120 {
		return nil, fmt.Errorf("go pclntab magic %#x: %w", t.magic, errOldPclntab)
	}
	if (t.ptr != 4 && t.ptr != 8) || (t.quantum != 1 && t.quantum != 2 && t.quantum != 4) {
		return nil, fmt.Errorf("%w: go pclntab pointer size %d, quantum %d", ErrMalformed, t.ptr, t.quantum)
	}
	words := []int{0, 1, 3, 4, 5, 6, 7} // nfunc, nfiles, then the five offsets after textStart
	if t.magic == pclnGo116 {
		words = []int{0, 1, 2, 3, 4, 5, 6} // no textStart word
	}
	var w [7]uint64
	for i, k := range words {
		v, ok := t.word(data, 8+k*t.ptr)
		if !ok {
			return nil, fmt.Errorf("%w: go pclntab header truncated", ErrMalformed)
		}
		w[i] = v
	}
	subs := []*[]byte{&t.funcnames, &t.cutab, &t.filetab, &t.pctab, &t.pcln}
	for i, p := range subs {
		if w[2+i] > uint64(len(data)) {
			return nil, fmt.Errorf("%w: go pclntab offset %d past its %d bytes", ErrMalformed, w[2+i], len(data))
		}
		*p = data[w[2+i]:]
	}
	t.field = 4
	if t.magic == pclnGo116 {
		t.field = t.ptr
	}
	if w[0] > uint64(len(t.pcln)/(2*t.field)) || (w[0]*2+1)*uint64(t.field) > uint64(len(t.pcln)) {
		return nil, fmt.Errorf("%w: go pclntab claims %d functions in %d bytes", ErrMalformed, w[0], len(data))
	}
	t.nfunc = int(w[0])
	if t.nfunc == 0 {
		return nil, fmt.Errorf("%w: go pclntab without functions", ErrMalformed)
	}
	return t, nil
}

// word reads a pointer-sized little-endian word at off of b.
func (t *pclntab) word(b []byte, off int) (uint64, bool) {
	if off < 0 || off > len(b)-t.ptr {
		return 0, false
	}
	if t.ptr == 4 {
		return uint64(binary.LittleEndian.Uint32(b[off:])), true
	}
	return binary.LittleEndian.Uint64(b[off:]), true
}

// u32 reads a little-endian uint32 at off of b.
func u32(b []byte, off uint64) (uint32, bool) {
	if off > uint64(len(b)) || uint64(len(b))-off < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[off:]), true
}

// ftField is field i of the function table: even fields are entry pcs
// (offsets from text since 1.18), odd fields offsets of the _func records.
func (t *pclntab) ftField(i int) uint64 {
	if t.field == 4 {
		v, _ := u32(t.pcln, uint64(i)*4)
		return uint64(v)
	}
	v, _ := t.word(t.pcln, i*t.ptr)
	return v
}

// entry is the start pc of function i (i == nfunc gives the end of the last).
func (t *pclntab) entry(i int) uint64 {
	if t.magic == pclnGo116 {
		return t.ftField(2 * i)
	}
	return t.text + t.ftField(2*i)
}

// goFunc is the part of one _func record a lookup reads.
type goFunc struct {
	entry                uint64
	nameOff              uint32
	pcfile, pcln, cuOff  uint32
	npcdata, nfuncdata   uint32
	pcdataAt, funcdataAt uint64 // offsets in pcln of the two arrays
}

// findFunc returns the function whose range holds pc.
func (t *pclntab) findFunc(pc uint64) (goFunc, bool) {
	if pc < t.entry(0) || pc >= t.entry(t.nfunc) {
		return goFunc{}, false
	}
	i := sort.Search(t.nfunc, func(i int) bool { return t.entry(i) > pc }) - 1
	if i < 0 {
		return goFunc{}, false
	}
	return t.funcAt(i)
}

// funcAt decodes the fixed part of function i's record. The record layout
// is the same from 1.16 on except for the entry (a pointer before 1.18)
// and startLine (added in 1.20).
func (t *pclntab) funcAt(i int) (goFunc, bool) {
	off := t.ftField(2*i + 1)
	base := uint64(4) // after entryOff
	if t.magic == pclnGo116 {
		base = uint64(t.ptr)
	}
	var v [8]uint32 // nameOff, args, deferreturn, pcsp, pcfile, pcln, npcdata, cuOffset
	for k := range v {
		x, ok := u32(t.pcln, off+base+uint64(4*k))
		if !ok {
			return goFunc{}, false
		}
		v[k] = x
	}
	tail := off + base + 32 // funcID, flag, pad, nfuncdata
	if t.magic == pclnGo120 {
		tail += 4 // startLine
	}
	if tail > uint64(len(t.pcln)) || uint64(len(t.pcln))-tail < 4 {
		return goFunc{}, false
	}
	f := goFunc{entry: t.entry(i), nameOff: v[0], pcfile: v[4], pcln: v[5], npcdata: v[6], cuOff: v[7],
		nfuncdata: uint32(t.pcln[tail+3]), pcdataAt: tail + 4}
	f.funcdataAt = f.pcdataAt + 4*uint64(f.npcdata)
	return f, true
}

// cstring returns the NUL-terminated string at off of b, cut at maxGoNameLen.
func cstring(b []byte, off uint64) string {
	if off >= uint64(len(b)) {
		return ""
	}
	b = b[off:]
	n := min(len(b), maxGoNameLen)
	for i := 0; i < n; i++ {
		if b[i] == 0 {
			return string(b[:i])
		}
	}
	return string(b[:n])
}

// pcvalue decodes the pc-value table at off of pctab (pairs of a zig-zag
// value delta and a pc delta in quantum units, starting from -1 at the
// entry) and returns the value in effect at pc, -1 when none. Every step
// consumes input, so the walk ends with the table.
func (t *pclntab) pcvalue(off uint32, entry, pc uint64) int32 {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return -1
	}
	p := t.pctab[off:]
	val, cur := int32(-1), entry
	for len(p) > 0 {
		uv, n := binary.Uvarint(p)
		if n <= 0 || uv > 1<<32-1 || (uv == 0 && cur != entry) {
			return -1
		}
		p = p[n:]
		val += int32(-(uint32(uv) & 1) ^ (uint32(uv) >> 1))
		pd, n := binary.Uvarint(p)
		if n <= 0 || pd > 1<<32-1 {
			return -1
		}
		p = p[n:]
		cur += pd * t.quantum
		if pc < cur {
			return val
		}
	}
	return -1
}

// funcName is the name of the function at nameOff of the name table.
func (t *pclntab) funcName(nameOff uint32) string {
	return cstring(t.funcnames, uint64(nameOff))
}

// fileLine returns the source position of pc in f.
func (t *pclntab) fileLine(f goFunc, pc uint64) (string, int) {
	line := t.pcvalue(f.pcln, f.entry, pc)
	fileno := t.pcvalue(f.pcfile, f.entry, pc)
	if fileno < 0 {
		return "", int(max(line, 0))
	}
	fnoff, ok := u32(t.cutab, (uint64(f.cuOff)+uint64(fileno))*4)
	if !ok || fnoff == ^uint32(0) {
		return "", int(max(line, 0))
	}
	return cstring(t.filetab, uint64(fnoff)), int(max(line, 0))
}

// frames names pc: the inlined calls at it, innermost first, when the
// inline tree is reachable, then the function itself.
func (t *pclntab) frames(pc uint64) []Frame {
	f, ok := t.findFunc(pc)
	if !ok {
		return nil
	}
	var out []Frame
	if t.inl != nil {
		out, pc = t.inlinedFrames(f, pc)
	}
	file, line := t.fileLine(f, pc)
	return append(out, Frame{Function: t.funcName(f.nameOff), File: file, Line: line})
}

// bytes is the memory the table holds.
func (t *pclntab) bytes() int64 {
	return int64(len(t.data)) + 256
}
