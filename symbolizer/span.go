package symbolizer

import (
	"bytes"
	"encoding/binary"
	"io"
)

// span is a stretch of a file read on demand through a page cache:
// offsets are relative to its start and no read goes past its size. (A
// concrete reader, so the small buffers lookups read into stay on the
// stack.)
type span struct {
	ra         *pagedReader
	base, size uint64
}

// sub is the part of s from off on.
func (s span) sub(off uint64) span {
	off = min(off, s.size)
	return span{ra: s.ra, base: s.base + off, size: s.size - off}
}

// read fills as much of b as lies inside s from off, returning that part
// (empty when off is past the end or the read fails).
func (s span) read(off uint64, b []byte) []byte {
	if off >= s.size {
		return nil
	}
	b = b[:min(uint64(len(b)), s.size-off)]
	n, err := s.ra.ReadAt(b, int64(s.base+off))
	if err != nil && n < len(b) {
		return b[:n]
	}
	return b
}

// u32 reads a little-endian uint32 at off.
func (s span) u32(off uint64) (uint32, bool) {
	var b [4]byte
	if len(s.read(off, b[:])) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[:]), true
}

// cstring returns the NUL-terminated string at off, cut at maxGoNameLen.
func (s span) cstring(off uint64) string {
	var buf [128]byte
	var out []byte
	for len(out) < maxGoNameLen {
		b := s.read(off+uint64(len(out)), buf[:])
		if len(b) == 0 {
			break
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return string(append(out, b[:i]...))
		}
		out = append(out, b...)
	}
	return string(out[:min(len(out), maxGoNameLen)])
}

// spanReader reads a span byte by byte through a small buffer, for
// decoding varints without reading a whole table.
type spanReader struct {
	s     span
	off   uint64 // of the byte after those buffered
	buf   [128]byte
	at, n int // the unread bytes are buf[at:n]
}

func (r *spanReader) readByte() (byte, bool) {
	if r.at == r.n {
		r.n, r.at = len(r.s.read(r.off, r.buf[:])), 0
		r.off += uint64(r.n)
		if r.n == 0 {
			return 0, false
		}
	}
	c := r.buf[r.at]
	r.at++
	return c, true
}

// uvarint decodes an unsigned LEB128 value of at most 32 bits, as
// pc-value tables hold.
func (r *spanReader) uvarint() (uint32, bool) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, ok := r.readByte()
		if !ok {
			return 0, false
		}
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, shift < 28 || c < 0x10
		}
	}
	return 0, false
}

// pageSize and cachedPages size the page cache in front of a table read
// in place (256 KiB): consecutive lookups mostly touch the same few pages
// (a function's record, its pc-value tables, its name and file's name,
// its inline tree).
const (
	pageSize    = 4 << 10
	cachedPages = 64
)

// pagedReader caches recently read pages of a file, direct-mapped. It is
// not safe for concurrent use: the file's lock serializes lookups.
type pagedReader struct {
	ra    io.ReaderAt
	pages [cachedPages]struct {
		off int64 // -1 when empty
		n   int
		buf []byte
	}
}

func newPagedReader(ra io.ReaderAt) *pagedReader {
	p := &pagedReader{ra: ra}
	for i := range p.pages {
		p.pages[i].off = -1
	}
	return p
}

// ReadAt copies from cached pages, reading each missing page whole.
func (p *pagedReader) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		at := off + int64(n)
		start := at &^ (pageSize - 1)
		pg := &p.pages[(start/pageSize)%cachedPages]
		if pg.off != start {
			if pg.buf == nil {
				pg.buf = make([]byte, pageSize)
			}
			k, err := p.ra.ReadAt(pg.buf, start)
			if k == 0 && err != nil {
				pg.off = -1
				return n, err
			}
			pg.off, pg.n = start, k
		}
		in := int(at - start)
		if in >= pg.n {
			return n, io.EOF
		}
		n += copy(b[n:], pg.buf[in:pg.n])
	}
	return n, nil
}

// pagedBytes is what a pagedReader holds at most.
const pagedBytes = cachedPages*pageSize + 512
