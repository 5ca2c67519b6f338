package python

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// BenchmarkResolverHit names a cached code object: at the offset of the
// last lookup (a thread sampled in the same place), and at a new offset
// each time (a binary search of the decoded table).
func BenchmarkResolverHit(b *testing.B) {
	l, err := LayoutFor(Version{Major: 3, Minor: 12})
	if err != nil {
		b.Fatal(err)
	}
	code := largestCode(b, l.Minor)
	raw, err := hex.DecodeString(code.Table)
	if err != nil {
		b.Fatal(err)
	}
	m := newMemImage()
	c := testCode
	c.table = raw
	addr, check := m.codeObject(l, c)
	r := NewResolver(0)
	if _, err := r.Frame(1, l, m, addr, check, 0); err != nil {
		b.Fatal(err)
	}
	b.Run("same offset", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Frame(1, l, m, addr, check, 8); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new offset", func(b *testing.B) {
		n := uint32(code.CodeBytes / 2)
		i := uint32(0)
		for b.Loop() {
			i++
			if _, err := r.Frame(1, l, m, addr, check, 2*(i*7919%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResolverMiss reads and decodes a code object each time.
func BenchmarkResolverMiss(b *testing.B) {
	l := layouts[len(layouts)-1]
	code := largestCode(b, l.Minor)
	raw, _ := hex.DecodeString(code.Table)
	m := newMemImage()
	c := testCode
	c.table = raw
	addr, check := m.codeObject(l, c)
	for b.Loop() {
		if _, err := NewResolver(1).Frame(1, l, m, addr, check, 8); err != nil {
			b.Fatal(err)
		}
	}
}

// largestCode is the code object with the longest table in minor's golden
// file.
func largestCode(b *testing.B, minor int) lineCode {
	data, err := os.ReadFile(goldenPath(minor))
	if err != nil {
		b.Fatal(err)
	}
	var d lineDump
	if err := json.Unmarshal(data, &d); err != nil {
		b.Fatal(err)
	}
	best := d.Codes[0]
	for _, c := range d.Codes {
		if len(c.Table) > len(best.Table) {
			best = c
		}
	}
	return best
}
