package cpuprofile

import (
	"debug/elf"
	"math/rand/v2"
	"testing"

	"github.com/vigil-ebpf/vigil/symbolizer"
	"github.com/vigil-ebpf/vigil/symbolizer/unwind"
)

// lookupLayout is the BPF walker's search (find_rule in unwind.bpf.h) in
// Go: the page of addr, then the last row at or before it in that page.
func lookupLayout(lay tableLayout, rules []unwind.Rule, addr uint64) unwind.Rule {
	page := addr>>pageBits - lay.firstPage
	if addr>>pageBits < lay.firstPage || page >= uint64(len(lay.pages)) {
		return unwind.Rule{}
	}
	first, n := uint32(lay.pages[page]), uint32(lay.pages[page]>>32)
	lo, hi := uint32(0), n
	for lo < hi {
		mid := (lo + hi) / 2
		if uint64(lay.rows[first+mid]>>16) <= addr&0xffff {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return unwind.Rule{}
	}
	return rules[lay.rows[first+lo-1]&0xffff]
}

func layoutOf(t *testing.T, rows []unwind.Row) (tableLayout, []unwind.Rule) {
	t.Helper()
	rules := []unwind.Rule{{}}
	ids := map[unwind.Rule]uint16{}
	lay, err := buildLayout(rows, func(r unwind.Rule) (uint16, error) {
		if r.CFA == unwind.CFANone {
			return 0, nil
		}
		if id, ok := ids[r]; ok {
			return id, nil
		}
		ids[r] = uint16(len(rules))
		rules = append(rules, r)
		return ids[r], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lay, rules
}

// The paged layout the walker searches must answer exactly as the table
// does, at every row start, just before it, and at random addresses, on
// libc's real table.
func TestLayoutAnswersAsTheTable(t *testing.T) {
	f, err := elf.Open("/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil {
		t.Skipf("skipped: no libc to read: %v", err)
	}
	defer f.Close()
	tab, err := unwind.Build(f)
	if err != nil {
		t.Fatal(err)
	}
	lay, rules := layoutOf(t, tab.Rows)
	lo, hi := tab.Rows[0].PC, tab.Rows[len(tab.Rows)-1].PC
	addrs := []uint64{lo - 1, lo, hi, hi + 1, hi + 1<<20}
	for _, r := range tab.Rows {
		addrs = append(addrs, r.PC, r.PC-1, r.PC+1)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		addrs = append(addrs, lo+rng.Uint64N(hi-lo))
	}
	bad := 0
	for _, a := range addrs {
		if got, want := lookupLayout(lay, rules, a), tab.Lookup(a); got != want {
			if bad++; bad < 10 {
				t.Errorf("address %#x: layout gives %+v, table %+v", a, got, want)
			}
		}
	}
	t.Logf("%d rows in %d pages (%d rows with page starts), %d rules; %d addresses checked", len(tab.Rows), len(lay.pages), len(lay.rows), len(rules), len(addrs))
}

// A page with no row of its own carries the rule in effect at its start.
func TestLayoutCarriesRulesAcrossPages(t *testing.T) {
	rsp8 := unwind.Rule{CFA: unwind.CFARSP, CFAOffset: 8}
	rsp16 := unwind.Rule{CFA: unwind.CFARSP, CFAOffset: 16}
	rows := []unwind.Row{{PC: 0x1fff0, Rule: rsp8}, {PC: 0x1fff4, Rule: rsp16}, {PC: 0x40010}}
	lay, rules := layoutOf(t, rows)
	if lay.firstPage != 1 || len(lay.pages) != 4 {
		t.Fatalf("first page %d, %d pages; want 1 and 4", lay.firstPage, len(lay.pages))
	}
	for _, c := range []struct {
		addr uint64
		want unwind.Rule
	}{{0x1ffef, unwind.Rule{}}, {0x1fff0, rsp8}, {0x1fff3, rsp8}, {0x1fff4, rsp16}, {0x20000, rsp16}, {0x3ffff, rsp16}, {0x40000, rsp16}, {0x40010, unwind.Rule{}}, {0x50000, unwind.Rule{}}} {
		if got := lookupLayout(lay, rules, c.addr); got != c.want {
			t.Errorf("%#x: %+v, want %+v", c.addr, got, c.want)
		}
	}
}

func TestLayoutRejectsHugeSpans(t *testing.T) {
	rows := []unwind.Row{{PC: 0x1000, Rule: unwind.Rule{CFA: unwind.CFARSP, CFAOffset: 8}}, {PC: 1 << 40}}
	if _, err := buildLayout(rows, func(unwind.Rule) (uint16, error) { return 1, nil }); err == nil {
		t.Fatal("a table spanning 1 TiB of addresses was accepted")
	}
}

func TestRangeAllocReusesAndMergesHoles(t *testing.T) {
	a := rangeAlloc{size: 100}
	x, _ := a.alloc(30)
	y, _ := a.alloc(30)
	z, _ := a.alloc(30)
	if x != 0 || y != 30 || z != 60 {
		t.Fatalf("allocations at %d %d %d", x, y, z)
	}
	if _, ok := a.alloc(20); ok {
		t.Fatal("20 more fit in 10 free")
	}
	a.free(y, 30)
	if s, ok := a.alloc(20); !ok || s != 30 {
		t.Fatalf("hole not reused: %d %v", s, ok)
	}
	a.free(30, 20)
	a.free(x, 30)
	if s, ok := a.alloc(60); !ok || s != 0 {
		t.Fatalf("neighbouring holes not merged: %d %v (holes %v)", s, ok, a.holes)
	}
	a.free(0, 60)
	a.free(z, 30)
	if a.used != 0 || a.end != 0 || len(a.holes) != 0 {
		t.Fatalf("everything freed but used=%d end=%d holes=%v", a.used, a.end, a.holes)
	}
}

func TestLoadBias(t *testing.T) {
	text := elf.ProgHeader{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0x1000, Vaddr: 0x1000, Filesz: 0x5000}
	data := elf.ProgHeader{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Off: 0x6000, Vaddr: 0x7000, Filesz: 0x1000}
	nonPIE := elf.ProgHeader{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0x1000, Vaddr: 0x401000, Filesz: 0x5000}
	for _, c := range []struct {
		name  string
		loads []elf.ProgHeader
		m     symbolizer.Mapping
		bias  uint64
		ok    bool
	}{
		{"pie", []elf.ProgHeader{text, data}, symbolizer.Mapping{Start: 0x7f0000001000, Limit: 0x7f0000006000, Offset: 0x1000}, 0x7f0000000000, true},
		{"non-pie", []elf.ProgHeader{nonPIE}, symbolizer.Mapping{Start: 0x401000, Limit: 0x406000, Offset: 0x1000}, 0, true},
		{"data only", []elf.ProgHeader{data}, symbolizer.Mapping{Start: 0x7f0000006000, Limit: 0x7f0000007000, Offset: 0x6000}, 0, false},
	} {
		bias, ok := loadBias(c.loads, &c.m)
		if bias != c.bias || ok != c.ok {
			t.Errorf("%s: bias %#x %v, want %#x %v", c.name, bias, ok, c.bias, c.ok)
		}
	}
}
