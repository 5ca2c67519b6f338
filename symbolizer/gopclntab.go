package symbolizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"unsafe"
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

// pclntab answers function, file and line questions from a Go 1.16+
// .gopclntab read in place: only the function table (8 bytes a function)
// is held in memory; a lookup binary-searches it, then reads one
// function's record, pc-value tables and strings from the file. A binary
// with 100,000 functions costs under a megabyte however large its table.
type pclntab struct {
	magic   uint32
	ptr     int    // pointer size, 4 or 8
	quantum uint64 // instruction size unit of pc deltas
	nfunc   int
	text    uint64 // address function offsets count from (1.18+)
	field   int    // size of one function table field

	functab                                []byte // (2*nfunc+1) fields
	funcnames, cutab, filetab, pctab, pcln span

	inl *inlineTrees // nil when inlined calls cannot be expanded

	strs     map[uint64]string // names and paths read, by offset in the file
	strBytes int64
}

// pclnHeaderSize is the most a header takes: eight words after the magic.
const pclnHeaderSize = 8 + 8*8

// newPclntab checks the header of a Go 1.16+ table of size bytes at
// offset base of ra, reads its function table and locates the other
// sub-tables; every offset and count is checked against the size.
func newPclntab(ra *pagedReader, base, size, text uint64) (*pclntab, error) {
	whole := span{ra: ra, base: base, size: size}
	var hb [pclnHeaderSize]byte
	h := whole.read(0, hb[:])
	if len(h) < 8 {
		return nil, fmt.Errorf("%w: go pclntab of %d bytes", ErrMalformed, size)
	}
	t := &pclntab{magic: binary.LittleEndian.Uint32(h), ptr: int(h[7]), quantum: uint64(h[6]), text: text}
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
		v, ok := t.word(h, 8+k*t.ptr)
		if !ok {
			return nil, fmt.Errorf("%w: go pclntab header truncated", ErrMalformed)
		}
		w[i] = v
	}
	for i, p := range []*span{&t.funcnames, &t.cutab, &t.filetab, &t.pctab, &t.pcln} {
		if w[2+i] > size {
			return nil, fmt.Errorf("%w: go pclntab offset %d past its %d bytes", ErrMalformed, w[2+i], size)
		}
		*p = whole.sub(w[2+i])
	}
	return t, t.readFunctab(w[0])
}

// readFunctab reads the nfunc entries and the end of the function table.
func (t *pclntab) readFunctab(nfunc uint64) error {
	t.field = 4
	if t.magic == pclnGo116 {
		t.field = t.ptr
	}
	if nfunc == 0 || nfunc > t.pcln.size/uint64(2*t.field) || (nfunc*2+1)*uint64(t.field) > t.pcln.size {
		return fmt.Errorf("%w: go pclntab claims %d functions in %d bytes", ErrMalformed, nfunc, t.pcln.size)
	}
	t.nfunc = int(nfunc)
	t.functab = make([]byte, (nfunc*2+1)*uint64(t.field))
	if len(t.pcln.read(0, t.functab)) != len(t.functab) {
		return fmt.Errorf("%w: go pclntab function table unreadable", ErrMalformed)
	}
	return nil
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

// ftField is field i of the function table: even fields are entry pcs
// (offsets from text since 1.18), odd fields offsets of the _func records.
func (t *pclntab) ftField(i int) uint64 {
	if t.field == 4 {
		return uint64(binary.LittleEndian.Uint32(t.functab[i*4:]))
	}
	v, _ := t.word(t.functab, i*t.ptr)
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
	base := 4 // after entryOff
	if t.magic == pclnGo116 {
		base = t.ptr
	}
	tail := base + 32 // funcID, flag, pad, nfuncdata
	if t.magic == pclnGo120 {
		tail += 4 // startLine
	}
	var buf [48]byte
	rec := t.pcln.read(off, buf[:tail+4])
	if len(rec) < tail+4 {
		return goFunc{}, false
	}
	var v [8]uint32 // nameOff, args, deferreturn, pcsp, pcfile, pcln, npcdata, cuOffset
	for k := range v {
		v[k] = binary.LittleEndian.Uint32(rec[base+4*k:])
	}
	f := goFunc{entry: t.entry(i), nameOff: v[0], pcfile: v[4], pcln: v[5], npcdata: v[6], cuOff: v[7],
		nfuncdata: uint32(rec[tail+3]), pcdataAt: off + uint64(tail) + 4}
	f.funcdataAt = f.pcdataAt + 4*uint64(f.npcdata)
	return f, true
}

// pcvalue decodes the pc-value table at off of pctab (pairs of a zig-zag
// value delta and a pc delta in quantum units, starting from -1 at the
// entry) and returns the value in effect at pc, -1 when none. Every step
// consumes input, so the walk ends with the table.
func (t *pclntab) pcvalue(off uint32, entry, pc uint64) int32 {
	if off == 0 || uint64(off) >= t.pctab.size {
		return -1
	}
	r := spanReader{s: t.pctab, off: uint64(off)}
	val, cur := int32(-1), entry
	for {
		uv, ok := r.uvarint()
		if !ok || (uv == 0 && cur != entry) {
			return -1
		}
		val += int32(-(uv & 1) ^ (uv >> 1))
		pd, ok := r.uvarint()
		if !ok {
			return -1
		}
		cur += uint64(pd) * t.quantum
		if pc < cur {
			return val
		}
	}
}

// funcName is the name of the function at nameOff of the name table.
func (t *pclntab) funcName(nameOff uint32) string {
	return t.str(t.funcnames, uint64(nameOff))
}

// fileLine returns the source position of pc in f.
func (t *pclntab) fileLine(f goFunc, pc uint64) (string, int) {
	line := t.pcvalue(f.pcln, f.entry, pc)
	fileno := t.pcvalue(f.pcfile, f.entry, pc)
	if fileno < 0 {
		return "", int(max(line, 0))
	}
	fnoff, ok := t.cutab.u32((uint64(f.cuOff) + uint64(fileno)) * 4)
	if !ok || fnoff == ^uint32(0) {
		return "", int(max(line, 0))
	}
	return t.str(t.filetab, uint64(fnoff)), int(max(line, 0))
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
	return int64(len(t.functab)) + int64(unsafe.Sizeof(*t)) + pagedBytes + t.strBytes
}

// maxInterned bounds the names and paths kept per table; the set is
// dropped wholesale when full.
const maxInterned = 1 << 16

// internedBytes is a kept string's map slot beyond its bytes.
const internedBytes = 64

// str returns the string at off of s, read once: answers then share one
// copy of each function name and file path, and repeated lookups skip
// the read.
func (t *pclntab) str(s span, off uint64) string {
	k := s.base + off
	if v, ok := t.strs[k]; ok {
		return v
	}
	v := s.cstring(off)
	if t.strs == nil || len(t.strs) >= maxInterned {
		t.strs, t.strBytes = map[uint64]string{}, 0
	}
	t.strs[k] = v
	t.strBytes += internedBytes + int64(len(v))
	return v
}
