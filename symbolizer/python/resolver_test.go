package python

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// testCode has a name in each string kind: Latin-1, 2-byte and 4-byte
// characters, and plain ASCII.
var testCode = fakeCode{
	name:      "café",
	qualname:  "Ωmega.café.<locals>.😀",
	file:      "/srv/app/модуль.py",
	firstLine: 20,
}

func TestFrameEveryLayout(t *testing.T) {
	for _, l := range layouts {
		t.Run(fmt.Sprintf("3.%d", l.Minor), func(t *testing.T) {
			m := newMemImage()
			c := testCode
			c.table = sampleTable(l)
			addr, check := m.codeObject(l, c)
			r := NewResolver(0)
			wantFunc := c.name
			if l.Minor >= 11 {
				wantFunc = c.qualname
			}
			noLine := 20 // where the table has none: the first line
			if l.Kind == FrameObject39 {
				noLine = 23 // 3.9 tables always have a line
			}
			for _, p := range []struct {
				off  uint32
				line int
			}{{UnknownOffset, 20}, {0, 21}, {2, 21}, {4, 23}, {8, 23}, {10, noLine}, {4000, noLine}, {0, 21}} {
				f, err := r.Frame(7, l, m, addr, check, p.off)
				if err != nil {
					t.Fatal(err)
				}
				want := Frame{Function: wantFunc, File: c.file, Line: p.line}
				if f != want {
					t.Fatalf("offset %d: %+v, want %+v", p.off, f, want)
				}
			}
			if r.Len() != 1 {
				t.Fatalf("%d entries cached, want 1", r.Len())
			}
		})
	}
}

func TestFrameChecksumMismatch(t *testing.T) {
	l := layouts[len(layouts)-1]
	m := newMemImage()
	c := testCode
	c.table = sampleTable(l)
	addr, check := m.codeObject(l, c)
	r := NewResolver(0)
	_, err := r.Frame(1, l, m, addr, check^1, 0)
	wantReason(t, err, ReasonChecksumMismatch)
	if r.Len() != 0 {
		t.Fatal("a mismatched code object was cached")
	}
	// The same address with the right checksum is named: the mismatch was
	// not remembered against it.
	if _, err := r.Frame(1, l, m, addr, check, 0); err != nil {
		t.Fatal(err)
	}
}

// TestFrameCorrupt damages one thing at a time in a good code object.
func TestFrameCorrupt(t *testing.T) {
	for _, l := range layouts {
		for _, tc := range corruptions(l) {
			t.Run(fmt.Sprintf("3.%d/%s", l.Minor, tc.name), func(t *testing.T) {
				m := newMemImage()
				c := testCode
				c.name, c.qualname = "ascii_name", "ascii_name"
				c.table = sampleTable(l)
				addr, check := m.codeObject(l, c)
				addr, check = tc.damage(m, addr, check)
				_, err := NewResolver(0).Frame(1, l, m, addr, check, 0)
				wantReason(t, err, tc.reason)
			})
		}
	}
}

type corruption struct {
	name   string
	reason string
	damage func(m *memImage, addr uint64, check uint32) (uint64, uint32)
}

// corruptions lists ways to damage a code object laid out by codeObject.
func corruptions(l *Layout) []corruption {
	// field returns the bytes of the object a code object field points to.
	field := func(m *memImage, addr uint64, off uint16) []byte {
		hdr := segmentAt(m, addr)
		return segmentAt(m, binary.LittleEndian.Uint64(hdr[off:]))
	}
	str := func(name, reason string, edit func(b []byte)) corruption {
		return corruption{name, reason, func(m *memImage, addr uint64, check uint32) (uint64, uint32) {
			edit(field(m, addr, l.CodeFilename))
			return addr, check
		}}
	}
	setState := func(v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[l.UnicodeState:], v) }
	}
	setLen := func(v int64) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint64(b[l.UnicodeLength:], uint64(v)) }
	}
	repoint := func(name, reason string, off uint16, to uint64) corruption {
		return corruption{name, reason, func(m *memImage, addr uint64, _ uint32) (uint64, uint32) {
			hdr := segmentAt(m, addr)
			binary.LittleEndian.PutUint64(hdr[off:], to)
			return addr, Check(word(hdr, l.CodeName), word(hdr, l.CodeFilename), word(hdr, l.CodeLineTable),
				binary.LittleEndian.Uint32(hdr[l.CodeFirstLineNo:]))
		}}
	}
	return []corruption{
		{"unmapped code", ReasonReadFailed, func(m *memImage, addr uint64, c uint32) (uint64, uint32) { return 0x1000, c }},
		{"null code", ReasonReadFailed, func(m *memImage, addr uint64, c uint32) (uint64, uint32) { return 0, c }},
		{"huge address", ReasonReadFailed, func(m *memImage, addr uint64, c uint32) (uint64, uint32) { return 1 << 63, c }},
		{"code cut short", ReasonReadFailed, func(m *memImage, addr uint64, c uint32) (uint64, uint32) {
			s := &m.segs[len(m.segs)-1]
			s.data = s.data[:l.codeHeaderSize()-1]
			return addr, c
		}},
		str("negative length", ReasonBadObject, setLen(-1)),
		str("long length", ReasonBadObject, setLen(maxString+1)),
		str("length past memory", ReasonReadFailed, setLen(maxString/2)), // the file name has 2-byte characters
		str("not compact", ReasonBadObject, setState(1<<stateKindShift|stateASCII)),
		str("kind 3", ReasonBadObject, setState(stateCompact|3<<stateKindShift)),
		str("kind 0", ReasonBadObject, setState(stateCompact)),
		str("ASCII of kind 2", ReasonBadObject, setState(stateCompact|stateASCII|2<<stateKindShift)),
		{"negative bytes size", ReasonBadObject, func(m *memImage, addr uint64, c uint32) (uint64, uint32) {
			binary.LittleEndian.PutUint64(field(m, addr, l.CodeLineTable)[l.BytesSize:], 1<<63)
			return addr, c
		}},
		{"bytes too long", ReasonBadObject, func(m *memImage, addr uint64, c uint32) (uint64, uint32) {
			binary.LittleEndian.PutUint64(field(m, addr, l.CodeLineTable)[l.BytesSize:], maxLineTable+1)
			return addr, c
		}},
		{"bytes past memory", ReasonReadFailed, func(m *memImage, addr uint64, c uint32) (uint64, uint32) {
			binary.LittleEndian.PutUint64(field(m, addr, l.CodeLineTable)[l.BytesSize:], maxLineTable)
			return addr, c
		}},
		repoint("null function name", ReasonReadFailed, functionField(l), 0),
		repoint("unmapped file name", ReasonReadFailed, l.CodeFilename, 0x2000),
		repoint("table into nowhere", ReasonReadFailed, l.CodeLineTable, 0xffff_ffff_ffff_f000),
	}
}

// functionField is the field Frame takes the function's name from.
func functionField(l *Layout) uint16 {
	if l.CodeQualname != NoOffset {
		return l.CodeQualname
	}
	return l.CodeName
}

// segmentAt returns the segment starting at addr, which tests edit in place.
func segmentAt(m *memImage, addr uint64) []byte {
	for _, s := range m.segs {
		if s.addr == addr {
			return s.data
		}
	}
	panic(fmt.Sprintf("no segment at %#x", addr))
}

// TestStringEdges reads strings around the bounds and the read-ahead.
func TestStringEdges(t *testing.T) {
	l := layouts[len(layouts)-1]
	for _, tc := range []struct {
		name string
		s    string
		err  bool
	}{
		{"empty", "", false},
		{"past read-ahead", strings.Repeat("x", readAhead+1), false},
		{"at the bound", strings.Repeat("y", maxString), false},
		{"over the bound", strings.Repeat("y", maxString+1), true},
		{"2-byte at the bound", strings.Repeat("ж", maxString/2), false},
		{"2-byte over the bound", strings.Repeat("ж", maxString/2+1), true},
		{"4-byte", strings.Repeat("😀", 300), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemImage()
			got, err := readString(m, l, m.str(l, tc.s))
			if tc.err {
				wantReason(t, err, ReasonBadObject)
				return
			}
			if err != nil || got != tc.s {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

// TestStringAtMappingEnd: the read-ahead runs off the mapping, as real
// objects at the end of a heap arena make it do; the string still reads.
func TestStringAtMappingEnd(t *testing.T) {
	for _, l := range layouts {
		m := newMemImage()
		b := strObject(l, "end", 1, true)
		addr := m.alloc(b[:len(b)-1]) // not even the NUL is mapped
		if got, err := readString(m, l, addr); err != nil || got != "end" {
			t.Fatalf("3.%d: got %q, %v", l.Minor, got, err)
		}
	}
}

func TestLoneSurrogate(t *testing.T) {
	l := layouts[0]
	m := newMemImage()
	b := strObject(l, "ab", 2, false)
	binary.LittleEndian.PutUint16(b[int(l.CompactSize)+2:], 0xd800)
	got, err := readString(m, l, m.alloc(b))
	if err != nil || got != "a\uFFFD" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestResolverCache(t *testing.T) {
	l := layouts[2]
	m := newMemImage()
	var addrs []uint64
	var checks []uint32
	for i := range 5 {
		c := testCode
		c.name = fmt.Sprintf("f%d", i)
		c.qualname = c.name
		c.table = sampleTable(l)
		a, ch := m.codeObject(l, c)
		addrs, checks = append(addrs, a), append(checks, ch)
	}
	r := NewResolver(3)
	for i := range addrs {
		if _, err := r.Frame(1, l, m, addrs[i], checks[i], 0); err != nil {
			t.Fatal(err)
		}
	}
	if r.Len() != 3 {
		t.Fatalf("%d cached, want the bound 3", r.Len())
	}
	// The newest are cached: naming them reads no memory.
	m.reads.Store(0)
	for i := 2; i < 5; i++ {
		f, err := r.Frame(1, l, m, addrs[i], checks[i], 4)
		if err != nil || f.Function != fmt.Sprintf("f%d", i) || f.Line != 23 {
			t.Fatalf("f%d: %+v, %v", i, f, err)
		}
	}
	if n := m.reads.Load(); n != 0 {
		t.Fatalf("cache hits read memory %d times", n)
	}
	// The oldest were evicted and are read again.
	if _, err := r.Frame(1, l, m, addrs[0], checks[0], 0); err != nil || m.reads.Load() == 0 {
		t.Fatalf("evicted entry: err %v, %d reads", err, m.reads.Load())
	}
	// Another process's entries are separate, and Forget drops only its own.
	if _, err := r.Frame(2, l, m, addrs[1], checks[1], 0); err != nil {
		t.Fatal(err)
	}
	r.Forget(1)
	if r.Len() != 1 {
		t.Fatalf("%d cached after Forget(1), want 1", r.Len())
	}
	r.Forget(2)
	r.Forget(3) // never seen
	if r.Len() != 0 || len(r.procs) != 0 {
		t.Fatalf("%d cached, %d processes after forgetting all", r.Len(), len(r.procs))
	}
	// The queue's husks of forgotten entries make room, not trouble.
	for i := range addrs {
		if _, err := r.Frame(9, l, m, addrs[i], checks[i], 0); err != nil {
			t.Fatal(err)
		}
	}
	if r.Len() != 3 || len(r.queue)-r.head > 3 {
		t.Fatalf("%d cached, %d queued, want 3 and at most 3", r.Len(), len(r.queue)-r.head)
	}
}

func TestResolverByteBound(t *testing.T) {
	l := layouts[0]
	m := newMemImage()
	c := testCode
	c.table = make([]byte, maxLineTable)
	for i := 0; i < len(c.table); i += 2 {
		c.table[i], c.table[i+1] = 2, 1 // a new line every instruction: nothing merges
	}
	r := NewResolver(1000)
	for i := range 20 {
		c.firstLine = uint32(i)
		addr, check := m.codeObject(l, c)
		if _, err := r.Frame(1, l, m, addr, check, 0); err != nil {
			t.Fatal(err)
		}
	}
	if r.bytes > maxCacheBytes || r.Len() >= 20 {
		t.Fatalf("%d entries, %d bytes: over the %d byte bound", r.Len(), r.bytes, maxCacheBytes)
	}
}

func TestResolverConcurrent(t *testing.T) {
	l := layouts[3]
	m := newMemImage()
	c := testCode
	c.table = sampleTable(l)
	addr, check := m.codeObject(l, c)
	r := NewResolver(2)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				pid := uint32(g*1000 + i%3)
				if f, err := r.Frame(pid, l, m, addr, check, uint32(i%12)); err != nil || f.File != c.file {
					t.Errorf("%+v, %v", f, err)
					return
				}
				if i%50 == 0 {
					r.Forget(pid)
				}
			}
		})
	}
	wg.Wait()
	if r.Len() > 2 {
		t.Fatalf("%d cached, bound 2", r.Len())
	}
}

func TestFrameBadLayout(t *testing.T) {
	m := newMemImage()
	bad := *layouts[0]
	bad.CodeName = NoOffset
	for _, l := range []*Layout{nil, &bad} {
		_, err := NewResolver(0).Frame(1, l, m, 0x1000, 0, 0)
		if !errors.Is(err, errBadLayout) {
			t.Fatalf("layout %v: got %v", l, err)
		}
	}
}

func TestCheck(t *testing.T) {
	// A test vector for the BPF side too: it must compute exactly this
	// (worked out independently of this package, in Python).
	if got := Check(0x7f0000001000, 0x7f0000002000, 0x7f0000003000, 42); got != 0xc1b6af81 {
		t.Fatalf("Check = %#x, want 0xc1b6af81", got)
	}
	if Check(1, 2, 3, 4) == Check(2, 1, 3, 4) {
		t.Fatal("Check ignores the order of its inputs")
	}
	if Check(0, 0, 0, 0xffffffff) == Check(0, 0, 0, 0x7fffffff) {
		t.Fatal("Check ignores the first line's top bit")
	}
}
