package symbolizer

import (
	"debug/elf"
	"os"
	"testing"
)

// TestReadFuncSymbolsMatchesDebugELF compares the chunked symbol reader
// with the standard library's on a C program and on libc, for both tables.
func TestReadFuncSymbolsMatchesDebugELF(t *testing.T) {
	bin := buildC(t, t.TempDir(), "gcc", "p", "-O1", srcPath(t, "prog.c"))
	paths := []string{bin}
	if fx := newLibcFixture(t); fx.path != "" {
		paths = append(paths, fx.path)
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		img, err := openELF(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []elf.SectionType{elf.SHT_SYMTAB, elf.SHT_DYNSYM} {
			s := img.f.SectionByType(typ)
			if s == nil {
				continue
			}
			got, err := img.readFuncSymbols(s, img.f.Sections[s.Link], goRange{})
			if err != nil {
				t.Fatal(err)
			}
			read := img.f.Symbols
			if typ == elf.SHT_DYNSYM {
				read = img.f.DynamicSymbols
			}
			all, err := read()
			if err != nil {
				t.Fatal(err)
			}
			want := map[symbol]int{}
			for _, s := range all {
				k := elf.ST_TYPE(s.Info)
				if (k == elf.STT_FUNC || k == elf.STT_GNU_IFUNC) && s.Value != 0 && s.Section != elf.SHN_UNDEF && s.Name != "" {
					n := unversioned(s.Name)
					want[symbol{addr: s.Value, size: s.Size, name: n, rank: aliasRank(n, elf.ST_BIND(s.Info))}]++
				}
			}
			for _, g := range got {
				want[g]--
			}
			for k, n := range want {
				if n != 0 {
					t.Errorf("%s %v: %+v counted %d more times by debug/elf", p, typ, k, n)
					break
				}
			}
			if len(got) == 0 && typ == elf.SHT_SYMTAB {
				t.Errorf("%s: no function symbols read", p)
			}
		}
	}
}
