package symbolizer

import (
	"debug/elf"
	"debug/gosym"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openGoLines opens path and returns the symbolizer's Go table for it.
func openGoLines(t *testing.T, path string) (*elfImage, goLines) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	img, err := openELF(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	tab, err := img.goTable()
	if err != nil || tab == nil {
		t.Fatalf("%s: no Go table: %v", path, err)
	}
	return img, tab
}

// comparePclntab checks the in-place reader against the standard
// library's table at every function's entry, its last byte and up to
// samples pcs in between: same function (outermost), file and line
// (innermost position, as the table records).
func comparePclntab(t *testing.T, path string, samples int) int {
	t.Helper()
	_, tab := openGoLines(t, path)
	pt, ok := tab.(*pclntab)
	if !ok {
		t.Fatalf("%s: table read by the fallback, not in place", path)
	}
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	if pt.inl == nil && pt.magic == pclnGo120 {
		t.Errorf("%s: inline trees not found", path)
	}
	ref := refGoTable(t, ef)
	if pt.nfunc != len(ref.Funcs) {
		t.Errorf("%s: %d functions, reference %d", filepath.Base(path), pt.nfunc, len(ref.Funcs))
	}
	checked, bad := 0, 0
	for i := range ref.Funcs {
		fn := &ref.Funcs[i]
		step := max((fn.End-fn.Entry)/uint64(samples+1), 1)
		for pc := fn.Entry; pc < fn.End; pc += step {
			checked++
			if !sameAsGosym(t, pt, ref, pc) {
				bad++
			}
		}
		checked++
		if !sameAsGosym(t, pt, ref, fn.End-1) {
			bad++
		}
		if bad > 10 {
			t.Fatalf("%s: too many differences", path)
		}
	}
	return checked
}

func sameAsGosym(t *testing.T, pt *pclntab, ref *gosym.Table, pc uint64) bool {
	t.Helper()
	file, line, fn := ref.PCToLine(pc)
	got := pt.frames(pc)
	if fn == nil {
		if len(got) != 0 {
			t.Errorf("%#x: named %+v, reference has no function", pc, got)
			return false
		}
		return true
	}
	if len(got) == 0 {
		t.Errorf("%#x: unnamed, reference %s %s:%d", pc, fn.Name, file, line)
		return false
	}
	in, out := got[0], got[len(got)-1]
	line = max(line, 0) // the reference reports -1 where no line is recorded
	if f, _ := pt.findFunc(pc); f.pcfile == 0 || f.pcln == 0 {
		// No table (markers such as go:textfipsstart): the runtime reports
		// no position, the reference decodes whatever starts the pc table.
		file, line = in.File, in.Line
	}
	if out.Function != fn.Name || in.File != file || in.Line != line {
		t.Errorf("%#x: %s (innermost %s:%d), reference %s %s:%d", pc, out.Function, in.File, in.Line, fn.Name, file, line)
		return false
	}
	return true
}

// TestPclntabMatchesGosym compares the in-place reader with the standard
// library on the test program, stripped and not, and on the Go
// toolchain's own binaries.
func TestPclntabMatchesGosym(t *testing.T) {
	for _, p := range []string{buildGo(t), buildGoFlags(t), buildGoFlags(t, "-buildmode=pie", "-ldflags=-s -w")} {
		t.Logf("%s: %d pcs agree", p, comparePclntab(t, p, 8))
	}
	if testing.Short() {
		return
	}
	for _, p := range goToolchainBinaries(t) {
		t.Logf("%s: %d pcs agree", p, comparePclntab(t, p, 2))
	}
}

// TestPclntabOtherToolchains compares the reader with the standard
// library on Go binaries built by other Go releases, listed in
// VIGIL_GO_TEST_BINARIES (colon-separated), e.g. go1.15, go1.16 and go1.18
// builds of testdata/src/goprog.go: the 1.16 and 1.18 layouts are read in
// place, older ones through the fallback.
func TestPclntabOtherToolchains(t *testing.T) {
	list := os.Getenv("VIGIL_GO_TEST_BINARIES")
	if list == "" {
		t.Skip("skipped: VIGIL_GO_TEST_BINARIES lists no binaries of other Go releases")
	}
	for _, p := range strings.Split(list, ":") {
		_, tab := openGoLines(t, p)
		if _, ok := tab.(*pclntab); ok {
			t.Logf("%s: %d pcs agree (read in place)", p, comparePclntab(t, p, 8))
			continue
		}
		ef, err := elf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		ref := refGoTable(t, ef)
		for _, fn := range ref.Funcs {
			if got := tab.frames(fn.Entry); len(got) != 1 || got[0].Function != fn.Name {
				t.Errorf("%s: %#x named %+v, reference %s", p, fn.Entry, got, fn.Name)
			}
		}
		ef.Close()
		t.Logf("%s: %d functions agree (fallback)", p, len(ref.Funcs))
	}
}

// TestGoInlinedFramesMatchDWARF checks the frames expanded from the
// pclntab's inline trees against DWARF's on an unstripped binary with
// known inlining, then on every function of it.
func TestGoInlinedFramesMatchDWARF(t *testing.T) {
	t.Run("exe", func(t *testing.T) { testGoInlined(t, buildGoSrc(t, "goinline.go")) })
	t.Run("pie", func(t *testing.T) { testGoInlined(t, buildGoSrc(t, "goinline.go", "-buildmode=pie")) })
}

func testGoInlined(t *testing.T, bin string) {
	p := start(t, bin)
	img, tab := openGoLines(t, bin)
	pt := tab.(*pclntab)
	if pt.inl == nil {
		t.Fatal("inline trees not found")
	}
	dw := img.dwarfInfo(maxDWARFSize)
	if dw == nil {
		t.Fatal("no DWARF")
	}
	vaddr := goVaddr(t, img, p)
	got := pt.frames(vaddr)
	want := []string{"main.leaf", "main.middle", "main.outer"}
	if len(got) != len(want) {
		t.Fatalf("frames %+v, want %v", got, want)
	}
	for i, w := range want {
		wantFrame(t, "inline "+itoa(i), got[i], w, "goinline.go", lineOf(t, "goinline.go", "MARK"+itoa(i)))
	}
	agree, total := compareWithDWARF(t, pt, dw, bin)
	t.Logf("%d of %d pcs agree with DWARF (frames, names, lines)", agree, total)
	if agree < total*99/100 {
		t.Errorf("%d of %d pcs agree with DWARF, want 99%%", agree, total)
	}
}

// goVaddr turns the program's reported address into its ELF address.
func goVaddr(t *testing.T, img *elfImage, p *liveProg) uint64 {
	t.Helper()
	s := newTest(t, Options{})
	proc, err := s.prepare(p.pid())
	if err != nil {
		t.Fatal(err)
	}
	pm := proc.find(p.addrs[0])
	if pm == nil {
		t.Fatal("address not mapped")
	}
	v, ok := img.toVaddr(pm.m.FileOffset(p.addrs[0]))
	if !ok {
		t.Fatal("address not in a segment")
	}
	return v
}

// compareWithDWARF names a few pcs of every function with both and counts
// those whose chains agree in length, names and lines.
func compareWithDWARF(t *testing.T, pt *pclntab, dw *dwarfInfo, bin string) (agree, total int) {
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, fn := range refGoTable(t, ef).Funcs {
		for pc := fn.Entry; pc < fn.End; pc += max((fn.End-fn.Entry)/5, 1) {
			want, err := dw.frames(pc, symName{})
			if err != nil || len(want) == 0 || want[0].Line == 0 {
				// no position in DWARF (autogenerated code): nothing to compare
				continue
			}
			total++
			if sameFrames(pt.frames(pc), want) {
				agree++
			} else if total-agree < 15 {
				t.Logf("%#x: pclntab %+v, DWARF %+v", pc, pt.frames(pc), want)
			}
		}
	}
	return agree, total
}

func sameFrames(a, b []Frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Function != b[i].Function || a[i].Line != b[i].Line || !strings.HasSuffix(a[i].File, filepath.Base(b[i].File)) {
			return false
		}
	}
	return true
}

// BenchmarkPclntabLookup is one uncached lookup in the compiler's table:
// a binary search and one function's pc-value tables (with inlining).
func BenchmarkPclntabLookup(b *testing.B) {
	paths := goToolchainBinaries(b)
	var path string
	for _, p := range paths {
		if filepath.Base(p) == "compile" {
			path = p
		}
	}
	if path == "" {
		b.Skip("skipped: no compile binary")
	}
	pcs := goFuncPCs(b, path)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	img, err := openELF(f, st.Size())
	if err != nil {
		b.Fatal(err)
	}
	tab, err := img.goTable()
	if err != nil || tab == nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.frames(pcs[i%len(pcs)])
		i += 7919
	}
}
