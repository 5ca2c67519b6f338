package python

import (
	"encoding/binary"
	"io"
	"strings"
	"unicode/utf8"
)

// Bounds on what is read for one code object. Lengths come from another
// process's memory, so none is trusted: a name or file name longer than
// maxString is refused, and so is a line table over maxLineTable (real
// ones are a few bytes per line of source).
const (
	maxString    = 4 << 10
	maxLineTable = 1 << 20
	// readAhead is read past an object's header in the same read, so that
	// the usual short name needs a single read.
	readAhead = 192
)

// PyASCIIObject.state bits, from bit 0: interned:2, kind:3, compact:1,
// ascii:1 (then ready in 3.9 to 3.11, statically_allocated in 3.12+).
const (
	stateKindShift = 2
	stateKindMask  = 7
	stateCompact   = 1 << 5
	stateASCII     = 1 << 6
)

// readString reads the str object at addr. Only compact strings (all that
// code objects hold: names and file names are created by the compiler or
// unmarshal as compact strings) are read; others are bad objects.
func readString(mem io.ReaderAt, l *Layout, addr uint64) (string, error) {
	buf := make([]byte, int(l.CompactSize)+readAhead)
	n, err := readAtLeast(mem, addr, buf, int(l.ASCIISize))
	if err != nil {
		return "", readFailed("str", addr, err)
	}
	buf = buf[:n]
	state := binary.LittleEndian.Uint32(buf[l.UnicodeState:])
	length := int64(word(buf, l.UnicodeLength))
	kind := int64(state>>stateKindShift) & stateKindMask
	if state&stateCompact == 0 {
		return "", badObject("str at %#x is not compact (state %#x)", addr, state)
	}
	data := int(l.CompactSize)
	if state&stateASCII != 0 {
		data = int(l.ASCIISize)
		if kind != 1 {
			return "", badObject("ASCII str at %#x of kind %d", addr, kind)
		}
	}
	if kind != 1 && kind != 2 && kind != 4 {
		return "", badObject("str at %#x of kind %d", addr, kind)
	}
	if length < 0 || length > maxString/kind {
		return "", badObject("str at %#x of length %d", addr, length)
	}
	chars, err := stringData(mem, addr, buf, data, int(length*kind))
	if err != nil {
		return "", err
	}
	return decodeChars(chars, int(kind), state&stateASCII != 0), nil
}

// stringData returns the size bytes at data in the object at addr: from buf
// when the first read got them, else read again.
func stringData(mem io.ReaderAt, addr uint64, buf []byte, data, size int) ([]byte, error) {
	if data+size <= len(buf) {
		return buf[data : data+size], nil
	}
	out := make([]byte, size)
	if _, err := readAtLeast(mem, addr+uint64(data), out, size); err != nil {
		return nil, readFailed("str data", addr, err)
	}
	return out, nil
}

// decodeChars turns a string's characters, kind bytes each, into UTF-8.
// Characters that are not valid Unicode (lone surrogates, which Python
// strings may hold) become U+FFFD.
func decodeChars(b []byte, kind int, ascii bool) string {
	if ascii {
		return string(b)
	}
	var s strings.Builder
	s.Grow(len(b))
	for i := 0; i+kind <= len(b); i += kind {
		var r rune
		switch kind {
		case 1:
			r = rune(b[i]) // Latin-1
		case 2:
			r = rune(binary.LittleEndian.Uint16(b[i:]))
		default:
			r = rune(binary.LittleEndian.Uint32(b[i:]))
		}
		if !utf8.ValidRune(r) {
			r = utf8.RuneError
		}
		s.WriteRune(r)
	}
	return s.String()
}

// readBytes reads the contents of the bytes object at addr, refusing one
// longer than limit.
func readBytes(mem io.ReaderAt, l *Layout, addr uint64, limit int) ([]byte, error) {
	buf := make([]byte, int(l.BytesData)+readAhead)
	n, err := readAtLeast(mem, addr, buf, int(l.BytesData))
	if err != nil {
		return nil, readFailed("bytes", addr, err)
	}
	size := int64(word(buf, l.BytesSize))
	if size < 0 || size > int64(limit) {
		return nil, badObject("bytes at %#x of size %d", addr, size)
	}
	data := int(l.BytesData)
	if data+int(size) <= n {
		return buf[data : data+int(size) : data+int(size)], nil
	}
	out := make([]byte, size)
	if _, err := readAtLeast(mem, addr+uint64(data), out, int(size)); err != nil {
		return nil, readFailed("bytes data", addr, err)
	}
	return out, nil
}
