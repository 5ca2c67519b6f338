package python

import (
	"bytes"
	"debug/elf"
	"errors"
	"math"
	"strconv"
	"testing"
	"unicode/utf8"
)

// FuzzLineTable decodes arbitrary tables in every format and compares the
// decoded lookup with a plain scan of the table, as the interpreter does it.
func FuzzLineTable(f *testing.F) {
	for _, l := range layouts {
		f.Add(byte(l.Kind), sampleTable(l), int32(10), uint32(4))
	}
	f.Add(byte(Interp311), []byte{0x80 | 14<<3, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 1}, int32(math.MaxInt32), uint32(0))
	f.Fuzz(func(t *testing.T, kind byte, table []byte, first int32, off uint32) {
		k := FrameKind(kind%5 + 1)
		lt := decodeLines(k, table, first)
		if len(lt.starts) != len(lt.lines) {
			t.Fatal("starts and lines differ in length")
		}
		for i := 1; i < len(lt.starts); i++ {
			if lt.starts[i] <= lt.starts[i-1] {
				t.Fatalf("starts not increasing: %v", lt.starts)
			}
		}
		for _, o := range []uint32{off, off &^ 1, 0, UnknownOffset} {
			if got, want := lt.line(o), clampLine(scanLine(k, table, first, o)); got != want {
				t.Fatalf("kind %d, offset %d: line %d, scan says %d", k, o, got, want)
			}
		}
	})
}

func clampLine(l int64) int32 {
	return int32(max(math.MinInt32, min(math.MaxInt32, l)))
}

// scanLine finds the line at offset q by walking the table from its start
// each time, the way the interpreter's own lookups do.
func scanLine(k FrameKind, t []byte, first int32, q uint32) int64 {
	line, addr := int64(first), uint64(0)
	switch k {
	case FrameObject39:
		for i := 0; i+1 < len(t); i += 2 {
			if addr += uint64(t[i]); addr > uint64(q) {
				break
			}
			line += int64(int8(t[i+1]))
		}
		return line
	case FrameObject310:
		for i := 0; i+1 < len(t); i += 2 {
			start := addr
			addr += uint64(t[i])
			cur := int64(noLine)
			if d := int8(t[i+1]); d != -128 {
				line += int64(d)
				cur = line
			}
			if start <= uint64(q) && uint64(q) < addr {
				return cur
			}
		}
		return noLine
	}
	for i := 0; i < len(t); {
		code := t[i] >> 3 & 15
		j := i + 1
		for j < len(t) && t[j]&0x80 == 0 {
			j++
		}
		switch {
		case code == 13 || code == 14:
			line += svarint(t[i+1 : j])
		case code >= 10 && code <= 12:
			line += int64(code - 10)
		}
		start := addr
		addr += 2 * (uint64(t[i]&7) + 1)
		if start <= uint64(q) && uint64(q) < addr {
			if code == 15 {
				return noLine
			}
			return line
		}
		i = j
	}
	return noLine
}

const fuzzBase = 0x10000

// packedImage lays a code object out in one piece of memory at fuzzBase and
// returns it and the code object's offset in it.
func packedImage(l *Layout, c fakeCode) ([]byte, uint16) {
	var img []byte
	addr, _ := layoutCode(l, c, func(b []byte) uint64 {
		for len(img)%16 != 0 {
			img = append(img, 0)
		}
		a := fuzzBase + uint64(len(img))
		img = append(img, b...)
		return a
	})
	return img, uint16(addr - fuzzBase)
}

// FuzzResolver names a code object in arbitrary memory. The checksum is
// taken from the memory itself (so the fuzzer gets past it) unless flip
// says otherwise.
func FuzzResolver(f *testing.F) {
	for i, l := range layouts {
		c := testCode
		c.table = sampleTable(l)
		img, at := packedImage(l, c)
		f.Add(img, at, byte(i), uint32(4), false)
	}
	f.Fuzz(func(t *testing.T, img []byte, at uint16, which byte, off uint32, flip bool) {
		l := layouts[int(which)%len(layouts)]
		m := newMemImage()
		m.segs = []segment{{addr: fuzzBase, data: img}}
		code := fuzzBase + uint64(at)
		check := uint32(0)
		if int(at)+l.codeHeaderSize() <= len(img) {
			h := img[at:]
			check = Check(word(h, l.CodeName), word(h, l.CodeFilename), word(h, l.CodeLineTable),
				uint32(word(h, l.CodeFirstLineNo)))
		}
		if flip {
			check ^= 1
		}
		r := NewResolver(2)
		fr, err := r.Frame(1, l, m, code, check, off)
		if err != nil {
			var ue *UnreadableError
			if !errors.As(err, &ue) || ue.Reason != ReasonReadFailed && ue.Reason != ReasonBadObject && ue.Reason != ReasonChecksumMismatch {
				t.Fatalf("error %v of type %T", err, err)
			}
			return
		}
		if flip {
			t.Fatal("named despite a wrong checksum")
		}
		if fr.Line < 0 || !utf8.ValidString(fr.Function) || !utf8.ValidString(fr.File) ||
			len(fr.Function) > 2*maxString || len(fr.File) > 2*maxString {
			t.Fatalf("bad frame %+v", fr)
		}
		again, err := r.Frame(1, l, m, code, check, off)
		if err != nil || again != fr || r.Len() != 1 {
			t.Fatalf("cached lookup gave %+v, %v; first %+v", again, err, fr)
		}
	})
}

// FuzzInspect inspects arbitrary ELF files.
func FuzzInspect(f *testing.F) {
	for _, l := range layouts {
		f.Add(fakePython(l.Minor, 3).bytes(), byte(l.Minor))
	}
	f.Fuzz(func(t *testing.T, data []byte, minor byte) {
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return
		}
		path := "/usr/lib/libpython3." + strconv.Itoa(int(minor%20)) + ".so.1.0"
		b, err := Inspect(ef, path)
		if err != nil {
			if b != nil {
				t.Fatal("a Binary with an error")
			}
			return
		}
		if b.Layout == nil || b.Layout.Minor != b.Version.Minor || b.Version.Major != 3 ||
			b.VersionSource != "Py_Version" && b.VersionSource != "file name" || b.Eval[1] < b.Eval[0] {
			t.Fatalf("inconsistent %+v", b)
		}
	})
}
