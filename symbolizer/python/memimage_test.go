package python

import (
	"encoding/binary"
	"errors"
	"sort"
	"sync/atomic"
	"unicode/utf8"
)

var errUnmapped = errors.New("input/output error") // what /proc/<pid>/mem says

// memImage is a synthetic process memory: segments at addresses, read like
// /proc/<pid>/mem (a read running off a segment returns what it got and an
// error).
type memImage struct {
	segs  []segment // sorted by addr, never adjacent
	next  uint64    // where alloc places the next segment
	reads atomic.Int64
}

type segment struct {
	addr uint64
	data []byte
}

func newMemImage() *memImage { return &memImage{next: 0x7f0000001000} }

func (m *memImage) ReadAt(p []byte, off int64) (int, error) {
	m.reads.Add(1)
	addr := uint64(off)
	i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].addr+uint64(len(m.segs[i].data)) > addr })
	if off < 0 || i == len(m.segs) || m.segs[i].addr > addr {
		return 0, errUnmapped
	}
	n := copy(p, m.segs[i].data[addr-m.segs[i].addr:])
	if n < len(p) {
		return n, errUnmapped
	}
	return n, nil
}

// alloc maps a segment holding b, a page past the last one, and returns its
// address.
func (m *memImage) alloc(b []byte) uint64 {
	addr := m.next
	m.segs = append(m.segs, segment{addr: addr, data: b})
	m.next = (addr + uint64(len(b)) + 0x1fff) &^ 0xfff
	return addr
}

// str lays out a compact str object of s and returns its address.
func (m *memImage) str(l *Layout, s string) uint64 {
	kind, ascii := strKind(s)
	return m.alloc(strObject(l, s, kind, ascii))
}

// strKind is the smallest kind that holds s, which CPython uses, and
// whether s is ASCII.
func strKind(s string) (kind int, ascii bool) {
	kind, ascii = 1, true
	for _, r := range s {
		switch {
		case r > 0xffff:
			kind = 4
		case r > 0xff:
			kind = max(kind, 2)
		}
		ascii = ascii && r < 0x80
	}
	return kind, ascii
}

// strObject is the bytes of a compact str object (header, characters and
// the terminating NUL).
func strObject(l *Layout, s string, kind int, ascii bool) []byte {
	n := utf8.RuneCountInString(s)
	hdr := int(l.CompactSize)
	state := uint32(stateCompact | kind<<stateKindShift)
	if ascii {
		hdr, state = int(l.ASCIISize), state|stateASCII
	}
	b := make([]byte, hdr+(n+1)*kind)
	binary.LittleEndian.PutUint64(b[l.UnicodeLength:], uint64(n))
	binary.LittleEndian.PutUint32(b[l.UnicodeState:], state)
	i := 0
	for _, r := range s {
		switch kind {
		case 1:
			b[hdr+i] = byte(r)
		case 2:
			binary.LittleEndian.PutUint16(b[hdr+2*i:], uint16(r))
		default:
			binary.LittleEndian.PutUint32(b[hdr+4*i:], uint32(r))
		}
		i++
	}
	return b
}

// fakeCode is a code object to lay out.
type fakeCode struct {
	name, qualname, file string
	firstLine            uint32
	table                []byte
}

// codeObject lays out c's strings, line table and header and returns the
// code object's address and its checksum.
func (m *memImage) codeObject(l *Layout, c fakeCode) (addr uint64, check uint32) {
	return layoutCode(l, c, m.alloc)
}

// layoutCode lays out c with place, which stores bytes and returns their
// address.
func layoutCode(l *Layout, c fakeCode, place func([]byte) uint64) (addr uint64, check uint32) {
	str := func(s string) uint64 {
		kind, ascii := strKind(s)
		return place(strObject(l, s, kind, ascii))
	}
	name, file := str(c.name), str(c.file)
	tb := make([]byte, int(l.BytesData)+len(c.table)+1)
	binary.LittleEndian.PutUint64(tb[l.BytesSize:], uint64(len(c.table)))
	copy(tb[l.BytesData:], c.table)
	table := place(tb)
	hdr := make([]byte, l.codeHeaderSize()+64)
	put := func(off uint16, v uint64) { binary.LittleEndian.PutUint64(hdr[off:], v) }
	put(l.CodeName, name)
	put(l.CodeFilename, file)
	put(l.CodeLineTable, table)
	if l.CodeQualname != NoOffset {
		put(l.CodeQualname, str(c.qualname))
	}
	binary.LittleEndian.PutUint32(hdr[l.CodeFirstLineNo:], c.firstLine)
	return place(hdr), Check(name, file, table, c.firstLine)
}

// sampleTable returns a line table in l's format giving line first+1 to
// bytes [0, 4), first+3 to [4, 10) and (3.10+) none to [10, 12).
func sampleTable(l *Layout) []byte {
	switch l.Kind {
	case FrameObject39:
		return []byte{0, 1, 4, 2}
	case FrameObject310:
		return []byte{4, 1, 6, 2, 2, 0x80}
	default:
		return []byte{0x80 | 13<<3 | 1, 2, 0x80 | 13<<3 | 2, 4, 0x80 | 15<<3}
	}
}
