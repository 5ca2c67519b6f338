package symbolizer

import (
	"debug/elf"
	"testing"
)

func TestSymtabLookup(t *testing.T) {
	mk := func(addr, size uint64, name string, bind elf.SymBind) symbol {
		return symbol{addr: addr, size: size, name: name, rank: aliasRank(name, bind)}
	}
	tab := newSymtab([]symbol{
		mk(0x1000, 0x100, "__GI_getpid", elf.STB_LOCAL),
		mk(0x1000, 0x100, "__getpid", elf.STB_GLOBAL),
		mk(0x1000, 0x100, "getpid", elf.STB_WEAK),
		mk(0x2000, 0x400, "big", elf.STB_GLOBAL),
		mk(0x2100, 0x10, "inner_label", elf.STB_LOCAL),
		mk(0x3000, 0, "asm_entry", elf.STB_GLOBAL),
		mk(0x3400, 0, "asm_last", elf.STB_GLOBAL),
		mk(0x2800, 0x10, "_ZN2ns5Klass6methodEi", elf.STB_GLOBAL),
	})
	for _, c := range []struct {
		addr uint64
		want string
	}{
		{0x1000, "getpid"},
		{0x10ff, "getpid"},
		{0x1100, ""}, // past a sized symbol's end
		{0x2105, "inner_label"},
		{0x2200, "big"},       // after a nested label: the enclosing function
		{0x33ff, "asm_entry"}, // unsized: up to the next symbol
		{0x3400 + 4095, "asm_last"},
		{0x3400 + 4096, ""}, // unsized last symbol: a bounded stretch
		{0x2808, "ns::Klass::method(int)"},
		{0xfff, ""},
	} {
		got := ""
		if f := tab.lookup(c.addr); f != nil {
			got = f[0].Function
		}
		if got != c.want {
			t.Errorf("%#x: %q, want %q", c.addr, got, c.want)
		}
	}
	if a, b := tab.lookup(0x1010), tab.lookup(0x1020); &a[0] != &b[0] {
		t.Error("warm lookups of one symbol do not share their frames")
	}
}

func TestUnversioned(t *testing.T) {
	for in, want := range map[string]string{"xdr_enum@GLIBC_2.2.5": "xdr_enum", "aio_fsync@@GLIBC_2.34": "aio_fsync", "plain": "plain", "@odd": "@odd"} {
		if got := unversioned(in); got != want {
			t.Errorf("unversioned(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSymtabHolds checks what a table holds: the names kept, copied into
// one block (not the strings it was given), and per-symbol frames only
// once a lookup needs them.
func TestSymtabHolds(t *testing.T) {
	strtab := []byte("\x00__GI_getpid\x00getpid\x00big\x00")
	view := bytesString(strtab)
	tab := newSymtab([]symbol{
		{addr: 0x1000, size: 0x10, name: view[1:12], rank: aliasRank(view[1:12], elf.STB_LOCAL)},
		{addr: 0x1000, size: 0x10, name: view[13:19], rank: aliasRank(view[13:19], elf.STB_GLOBAL)},
		{addr: 0x2000, size: 0x10, name: view[20:23], rank: aliasRank(view[20:23], elf.STB_GLOBAL)},
	})
	if len(tab.syms) != 2 || tab.syms[0].name != "getpid" || tab.syms[1].name != "big" {
		t.Fatalf("table %+v", tab.syms)
	}
	if tab.names != int64(len("getpid")+len("big")) {
		t.Errorf("names counted as %d bytes", tab.names)
	}
	copy(strtab, make([]byte, len(strtab))) // the string table is dropped
	if tab.syms[0].name != "getpid" || tab.syms[1].name != "big" {
		t.Errorf("names still point into the string table: %+v", tab.syms)
	}
	before := tab.bytes()
	if tab.frames != nil {
		t.Error("frames made before any lookup")
	}
	if tab.nameAt(0x1008).name != "getpid" || tab.frames != nil {
		t.Error("nameAt made frames")
	}
	if f := tab.lookup(0x2004); len(f) != 1 || f[0].Function != "big" {
		t.Fatalf("lookup: %+v", f)
	}
	if tab.bytes() <= before {
		t.Errorf("bytes %d after a lookup, %d before", tab.bytes(), before)
	}
	if empty := newSymtab(nil); empty.lookup(0x1000) != nil || empty.bytes() != 0 {
		t.Error("an empty table names something or holds bytes")
	}
}
