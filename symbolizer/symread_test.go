package symbolizer

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// realELFs lists ELF files of this machine for the differential tests: a
// C program built here, libc and its separate debug file, python and a Go
// binary, each when present.
func realELFs(t *testing.T) []string {
	t.Helper()
	var paths []string
	if _, err := exec.LookPath("gcc"); err == nil {
		paths = append(paths, buildC(t, t.TempDir(), "gcc", "p", "-O1", srcPath(t, "prog.c")))
	}
	libc := "/usr/lib/x86_64-linux-gnu/libc.so.6"
	paths = append(paths, libc)
	if _, err := os.Stat(libc); err == nil {
		paths = append(paths, buildIDPath("/usr/lib/debug", openImage(t, libc).buildID))
	}
	paths = append(paths, "/usr/bin/python3.11")
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		paths = append(paths, filepath.Join(strings.TrimSpace(string(out)), "bin", "go"))
	}
	var have []string
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			have = append(have, p)
		}
	}
	return have
}

// debugELFSymbols is what readFuncSymbols should read from the table of
// type typ, by debug/elf, in the table's order.
func debugELFSymbols(t *testing.T, img *elfImage, typ elf.SectionType, skip goRange) []symbol {
	t.Helper()
	read := img.f.Symbols
	if typ == elf.SHT_DYNSYM {
		read = img.f.DynamicSymbols
	}
	all, err := read()
	if err != nil {
		t.Fatal(err)
	}
	var out []symbol
	for _, s := range all {
		k := elf.ST_TYPE(s.Info)
		if (k == elf.STT_FUNC || k == elf.STT_GNU_IFUNC) && s.Value != 0 && s.Section != elf.SHN_UNDEF && s.Name != "" && !skip.has(s.Value) {
			n := unversioned(s.Name)
			out = append(out, symbol{addr: s.Value, size: s.Size, name: n, rank: aliasRank(n, elf.ST_BIND(s.Info))})
		}
	}
	return out
}

// goSkip is the range a Go binary's table names, as parse leaves it out.
func goSkip(img *elfImage) goRange {
	if !img.isGo() {
		return goRange{}
	}
	if tab, err := img.goTable(); err == nil {
		if pt, ok := tab.(*pclntab); ok {
			return goRange{lo: pt.entry(0), hi: pt.entry(pt.nfunc)}
		}
	}
	return goRange{}
}

// TestReadFuncSymbolsMatchesDebugELF compares the symbol reader with the
// standard library's, entry for entry and in order, on the real files of
// this machine, for both tables, read whole and in chunks.
func TestReadFuncSymbolsMatchesDebugELF(t *testing.T) {
	paths := realELFs(t)
	if len(paths) == 0 {
		t.Skip("skipped: no ELF files found")
	}
	defer func(old uint64) { symWhole = old }(symWhole)
	for _, whole := range []uint64{symWhole, 1000} {
		symWhole = whole
		for _, p := range paths {
			img := openImage(t, p)
			for _, skip := range []goRange{{}, goSkip(img)} {
				for _, typ := range []elf.SectionType{elf.SHT_SYMTAB, elf.SHT_DYNSYM} {
					s := img.f.SectionByType(typ)
					if s == nil || s.Type == elf.SHT_NOBITS {
						continue
					}
					got, err := img.readFuncSymbols(s, img.f.Sections[s.Link], skip)
					if err != nil {
						t.Fatal(err)
					}
					want := debugELFSymbols(t, img, typ, skip)
					if len(got) != len(want) {
						t.Errorf("%s %v (whole up to %d): %d symbols, debug/elf %d", p, typ, whole, len(got), len(want))
						continue
					}
					for i := range got {
						if got[i] != want[i] {
							t.Errorf("%s %v: symbol %d is %+v, debug/elf %+v", p, typ, i, got[i], want[i])
							break
						}
					}
					if len(got) == 0 && typ == elf.SHT_SYMTAB && skip == (goRange{}) {
						t.Errorf("%s: no function symbols read", p)
					}
				}
			}
		}
	}
}

// oldSymtab is the table as built before keys were sorted and names
// packed: the symbols themselves sorted by sort.Slice.
func oldSymtab(syms []symbol) []symbol {
	sort.Slice(syms, func(i, j int) bool {
		if syms[i].addr != syms[j].addr {
			return syms[i].addr < syms[j].addr
		}
		if syms[i].size != syms[j].size {
			return syms[i].size > syms[j].size
		}
		return syms[i].rank > syms[j].rank
	})
	out := syms[:0]
	for _, s := range syms {
		if n := len(out); n > 0 && out[n-1].addr == s.addr {
			continue
		}
		out = append(out, s)
	}
	return out
}

// TestSymtabMatchesOld builds each real file's table (libc with its debug
// file's symbols, as parse does) and compares it with the table built the
// old way from debug/elf's symbols: the same symbols, and among aliases at
// one address the same name.
func TestSymtabMatchesOld(t *testing.T) {
	paths := realELFs(t)
	if len(paths) == 0 {
		t.Skip("skipped: no ELF files found")
	}
	for _, p := range paths {
		img := openImage(t, p)
		skips := []goRange{goSkip(img)}
		if skips[0] != (goRange{}) {
			skips = append(skips, goRange{})
		}
		for _, skip := range skips {
			compareWithOld(t, p, img, skip)
		}
	}
}

// compareWithOld is TestSymtabMatchesOld for the file img at p.
func compareWithOld(t *testing.T, p string, img *elfImage, skip goRange) {
	t.Helper()
	imgs := []*elfImage{img}
	if !img.isGo() && !img.hasDWARF() && img.buildID != "" {
		if dbg, df := openDebugFile(buildIDPath("/usr/lib/debug", img.buildID), img.buildID, 0, false); dbg != nil {
			defer df.Close()
			imgs = append(imgs, dbg)
		}
	}
	var syms, want []symbol
	for i, im := range imgs {
		sk := skip
		if i > 0 {
			sk = goRange{}
		}
		more, err := im.elfSymbols(sk)
		if err != nil {
			t.Fatal(err)
		}
		syms = append(syms, more...)
		for _, typ := range []elf.SectionType{elf.SHT_SYMTAB, elf.SHT_DYNSYM} {
			if s := im.f.SectionByType(typ); s != nil && s.Type != elf.SHT_NOBITS {
				want = append(want, debugELFSymbols(t, im, typ, sk)...)
			}
		}
	}
	tab := newSymtab(syms)
	want = oldSymtab(want)
	if len(tab.syms) != len(want) {
		t.Errorf("%s: %d symbols, the old way %d", p, len(tab.syms), len(want))
		return
	}
	var names int64
	for i, s := range tab.syms {
		if s != want[i] {
			t.Errorf("%s: symbol %d is %+v, the old way %+v", p, i, s, want[i])
			break
		}
		names += int64(len(s.name))
	}
	if names != tab.names {
		t.Errorf("%s: names counted as %d bytes, hold %d", p, tab.names, names)
	}
	t.Logf("%s (%d files, Go code left out: %v): %d symbols", p, len(imgs), skip != goRange{}, len(tab.syms))
}

// refFuncSymbols decodes a symbol table plainly, entry by entry, for
// FuzzSymbolDecode to compare with.
func refFuncSymbols(ents, strs []byte, is64 bool, entsize int, bo binary.ByteOrder, skip goRange) []symbol {
	var out []symbol
	for off := 0; off+entsize <= len(ents); off += entsize {
		e := ents[off:]
		var (
			name        uint32
			info        byte
			shndx       uint16
			value, size uint64
		)
		if is64 {
			name, info, shndx = bo.Uint32(e), e[4], bo.Uint16(e[6:])
			value, size = bo.Uint64(e[8:]), bo.Uint64(e[16:])
		} else {
			name, value, size = bo.Uint32(e), uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[8:]))
			info, shndx = e[12], bo.Uint16(e[14:])
		}
		typ := elf.ST_TYPE(info)
		if typ != elf.STT_FUNC && typ != elf.STT_GNU_IFUNC || value == 0 || name == 0 || shndx == 0 || skip.has(value) {
			continue
		}
		if int64(name) >= int64(len(strs)) {
			continue
		}
		rest := strs[name:]
		end := bytes.IndexByte(rest, 0)
		if end <= 0 || end >= maxSymNameLen {
			continue
		}
		n := unversioned(string(rest[:end]))
		out = append(out, symbol{addr: value, size: size, name: n, rank: aliasRank(n, elf.ST_BIND(info))})
	}
	return out
}

// FuzzSymbolDecode decodes arbitrary bytes as a symbol table with an
// arbitrary string table: the decoder must agree with a plain reading
// entry by entry, never read out of bounds, and the table built from what
// it reads must be sorted, free of aliases and find every symbol.
func FuzzSymbolDecode(f *testing.F) {
	ent := make([]byte, 24)
	binary.LittleEndian.PutUint32(ent, 1)
	ent[4] = byte(elf.STB_GLOBAL)<<4 | byte(elf.STT_FUNC)
	binary.LittleEndian.PutUint16(ent[6:], 12)
	binary.LittleEndian.PutUint64(ent[8:], 0x1000)
	binary.LittleEndian.PutUint64(ent[16:], 0x40)
	two := append(append([]byte{}, ent...), ent...)
	binary.LittleEndian.PutUint32(two[24:], 9)
	f.Add(two, []byte("\x00getpid\x00x@GLIBC_2.2.5\x00"), true, false, uint8(0), uint64(0), uint64(0))
	f.Add(two, []byte("\x00getpid"), false, true, uint8(8), uint64(0x1000), uint64(0x1001))
	f.Fuzz(func(t *testing.T, ents, strs []byte, is64, big bool, pad uint8, lo, hi uint64) {
		var bo binary.ByteOrder = binary.LittleEndian
		if big {
			bo = binary.BigEndian
		}
		entsize := symEntSize(is64) + uint64(pad%32)
		skip := goRange{lo: lo, hi: hi}
		loads := 0
		d := symDecoder{bo: bo, is64: is64, entsize: entsize, skip: skip, load: func() (string, error) {
			loads++
			return string(strs), nil
		}}
		kept := d.count(ents)
		got, err := d.decode(nil, ents)
		if err != nil {
			t.Fatal(err)
		}
		if loads > 1 || (loads == 1) != (kept > 0) {
			t.Fatalf("string table read %d times for %d symbols", loads, kept)
		}
		if len(got) > kept {
			t.Fatalf("%d symbols decoded, %d counted", len(got), kept)
		}
		want := refFuncSymbols(ents, strs, is64, int(entsize), bo, skip)
		if len(got) != len(want) {
			t.Fatalf("%d symbols decoded, %d by the plain reading", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("symbol %d is %+v, plainly %+v", i, got[i], want[i])
			}
		}
		tab := newSymtab(got)
		old := oldSymtab(append([]symbol(nil), want...))
		if len(tab.syms) != len(old) {
			t.Fatalf("%d symbols in the table, %d the old way", len(tab.syms), len(old))
		}
		for i, s := range tab.syms {
			if i > 0 && s.addr <= tab.syms[i-1].addr {
				t.Fatalf("table not sorted or with aliases at %d", i)
			}
			if s != old[i] {
				t.Fatalf("symbol %d is %+v, the old way %+v", i, s, old[i])
			}
			if tab.find(s.addr) < 0 {
				t.Fatalf("%+v not found", s)
			}
		}
	})
}
