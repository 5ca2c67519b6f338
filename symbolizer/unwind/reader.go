package unwind

import "encoding/binary"

// reader walks a byte slice from an untrusted file. Every read is
// bounds-checked; the first failure makes the reader sticky-bad so callers
// can read a whole record and check ok once, instead of after each field.
type reader struct {
	buf []byte
	off int
	bad bool
}

func (r *reader) ok() bool { return !r.bad }

func (r *reader) remaining() int {
	if r.bad {
		return 0
	}
	return len(r.buf) - r.off
}

func (r *reader) atEnd() bool { return r.bad || r.off >= len(r.buf) }

// take returns the next n bytes, or nil and marks the reader bad when fewer
// remain. n comes from the file, so it is compared before any arithmetic.
func (r *reader) take(n uint64) []byte {
	if r.bad || n > uint64(len(r.buf)-r.off) {
		r.bad = true
		return nil
	}
	b := r.buf[r.off : r.off+int(n)]
	r.off += int(n)
	return b
}

func (r *reader) skip(n uint64) { r.take(n) }

func (r *reader) u8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *reader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// uleb reads an unsigned LEB128. Bits beyond 64 are dropped rather than
// rejected: producers pad with 0x80 bytes, and every consumer range-checks
// the value anyway.
func (r *reader) uleb() uint64 {
	var v uint64
	var shift uint
	for {
		c := r.u8()
		if r.bad {
			return 0
		}
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) sleb() int64 {
	var v int64
	var shift uint
	for {
		c := r.u8()
		if r.bad {
			return 0
		}
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

// cstring reads a NUL-terminated string without allocating.
func (r *reader) cstring() []byte {
	if r.bad {
		return nil
	}
	for i := r.off; i < len(r.buf); i++ {
		if r.buf[i] == 0 {
			s := r.buf[r.off:i]
			r.off = i + 1
			return s
		}
	}
	r.bad = true
	return nil
}
