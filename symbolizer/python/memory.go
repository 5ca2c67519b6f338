package python

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
)

var (
	errNullPointer = errors.New("null pointer")
	errBadAddress  = errors.New("address out of range")
)

// readAtLeast reads buf from mem at addr and returns how much it got, which
// is at least need. Reading more than needed saves a second read, but the
// extra may lie past the end of a mapping: /proc/<pid>/mem then returns the
// readable part with an error, which is fine as long as need bytes came.
func readAtLeast(mem io.ReaderAt, addr uint64, buf []byte, need int) (int, error) {
	if addr == 0 {
		return 0, errNullPointer
	}
	if addr > math.MaxInt64-uint64(len(buf)) {
		return 0, errBadAddress
	}
	n, err := mem.ReadAt(buf, int64(addr))
	n = max(0, min(n, len(buf)))
	if n >= need {
		return n, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// word returns the little-endian 64-bit value at off in b.
func word(b []byte, off uint16) uint64 {
	return binary.LittleEndian.Uint64(b[off:])
}
