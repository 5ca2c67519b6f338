package symbolizer

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseMaps(f *testing.F) {
	f.Add(mapsFixture)
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := ParseMaps(strings.NewReader(in))
		for _, m := range ms {
			if m.Limit < m.Start {
				t.Fatalf("mapping %+v ends before it starts", m)
			}
		}
		if err == nil && len(ms) > maxMapsLines {
			t.Fatalf("%d mappings past the bound", len(ms))
		}
	})
}

func FuzzParseKallsyms(f *testing.F) {
	f.Add(kallsymsFixture)
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParseKallsyms(strings.NewReader(in))
		if err != nil {
			return
		}
		for i := 1; i < len(k.addrs); i++ {
			if k.addrs[i] < k.addrs[i-1] {
				t.Fatal("symbols not sorted")
			}
		}
		for _, a := range []uint64{0, k.addrs[0], k.addrs[len(k.addrs)-1] + 1, ^uint64(0)} {
			if loc := k.Lookup(a); loc.Named() && loc.Mapping == nil {
				t.Fatalf("%#x named without a mapping", a)
			}
		}
	})
}

func FuzzParsePerfMap(f *testing.F) {
	f.Add("7f0000001000 40 foo\n0x10 0x20 bar baz\n")
	f.Fuzz(func(t *testing.T, in string) {
		syms, _ := ParsePerfMap(strings.NewReader(in))
		tab := symtabFromSymbols(syms)
		for _, s := range syms {
			if s.Name == "" || s.Addr+s.Size < s.Addr {
				t.Fatalf("bad entry %+v", s)
			}
			if f := tab.lookup(s.Addr); len(f) != 1 {
				t.Fatalf("entry %+v not found", s)
			}
		}
	})
}

// FuzzELF opens arbitrary bytes as a mapped file and symbolizes a few
// addresses through every parser (symbols, notes, DWARF, Go table,
// debuglink): malformed input must give errors or no names, never a panic
// or an unbounded allocation.
func FuzzELF(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := openELF(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		o := &objFile{img: img, path: "/nonexistent/fuzz"}
		var st counters
		addrs := []uint64{0, 0x1000, 0x401000, 0x401100}
		for _, p := range img.loads {
			addrs = append(addrs, p.Vaddr, p.Vaddr+p.Memsz/2)
		}
		for _, a := range addrs {
			o.lookup(a, nil, &st)
		}
		_, _ = img.toVaddr(0x1000)
	})
}
