package symbolizer

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// openImage opens path as the symbolizer does.
func openImage(t *testing.T, path string) *elfImage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	img, err := openELF(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// sameAnswers checks that reading img's DWARF one unit at a time names
// every address of its function symbols (every step-th byte) exactly as
// reading it whole does, and returns how many addresses had a DWARF answer.
func sameAnswers(t *testing.T, img, symImg *elfImage, step uint64) int {
	t.Helper()
	lazy, err := newLazyDWARFInfo(img)
	if err != nil {
		t.Fatalf("unit-at-a-time reader: %v", err)
	}
	d, err := img.loadDWARF()
	if err != nil {
		t.Fatal(err)
	}
	whole, err := newDWARFInfo(d)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := symImg.f.Symbols()
	if err != nil {
		syms, err = symImg.f.DynamicSymbols()
	}
	if err != nil {
		t.Fatal(err)
	}
	named, mismatches := 0, 0
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Size == 0 {
			continue
		}
		for pc := s.Value; pc < s.Value+s.Size; pc += step {
			sym := symName{name: s.Name, addr: s.Value}
			want, err1 := whole.frames(pc, sym)
			got, err2 := lazy.frames(pc, sym)
			if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(got, want) {
				if mismatches++; mismatches <= 5 {
					t.Errorf("%s+%#x: unit at a time %v (%v), whole %v (%v)", s.Name, pc-s.Value, got, err2, want, err1)
				}
			}
			if len(want) > 0 {
				named++
			}
		}
	}
	if mismatches > 5 {
		t.Errorf("%d addresses differ in all", mismatches)
	}
	return named
}

// TestLazyDWARFLibc compares both readers on libc's debug file
// (libc6-dbg: DWARF 5, compressed sections).
func TestLazyDWARFLibc(t *testing.T) {
	if testing.Short() {
		t.Skip("reads all of libc's DWARF twice")
	}
	fx := newLibcFixture(t)
	img := openImage(t, fx.path)
	dbg, f := openDebugFile(buildIDPath("/usr/lib/debug", img.buildID), img.buildID, 0, false)
	if dbg == nil {
		t.Skip("skipped: no debug file for libc (apt-get install libc6-dbg)")
	}
	defer f.Close()
	if n := sameAnswers(t, dbg, img, 7); n < 1000 {
		t.Errorf("only %d addresses named from DWARF", n)
	}
}

// TestLazyDWARFCompilers compares both readers on a C program with inlined
// calls built in several DWARF versions, with compressed sections, and with
// link-time optimisation, whose units refer to each other
// (DW_FORM_ref_addr).
func TestLazyDWARFCompilers(t *testing.T) {
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"dwarf2":  {"-O2", "-gdwarf-2"},
		"dwarf4":  {"-O2", "-gdwarf-4"},
		"dwarf5z": {"-O2", "-gdwarf-5", "-gz=zlib"},
		"lto":     {"-O2", "-g", "-flto", "-ffat-lto-objects"},
	} {
		t.Run(name, func(t *testing.T) {
			bin := buildC(t, dir, "gcc", name, append(args, "-gno-as-locview-support", srcPath(t, "inline.c"), srcPath(t, "lib.c"))...)
			img := openImage(t, bin)
			if _, _, err := newLazyDWARF(img); errors.Is(err, errUnsupportedUnit) {
				t.Skipf("skipped: %s has no .debug_aranges", filepath.Base(bin))
			}
			if n := sameAnswers(t, img, img, 1); n == 0 {
				t.Error("no address named from DWARF")
			}
		})
	}
}

func TestRewriteAbbrevs(t *testing.T) {
	// code 1, DW_TAG_subprogram, children: DW_AT_abstract_origin ref_addr,
	// DW_AT_const_value implicit_const -1, DW_AT_name strp; 0 0; then the
	// table's end and bytes of the next table.
	in := []byte{1, 0x2e, 1, 0x31, 0x10, 0x1c, 0x21, 0x7f, 0x03, 0x0e, 0, 0, 0, 9, 9}
	want := []byte{1, 0x2e, 1, 0x31, 0x06, 0x1c, 0x21, 0x7f, 0x03, 0x0e, 0, 0, 0}
	got, done, err := rewriteAbbrevs(in, formData4)
	if err != nil || !done || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %x done=%v err=%v, want %x", got, done, err, want)
	}
	for n := range len(want) {
		if _, done, err := rewriteAbbrevs(in[:n], formData4); done || err != nil {
			t.Errorf("cut at %d: done=%v err=%v, want not done", n, done, err)
		}
	}
	if _, _, err := rewriteAbbrevs([]byte{1, 0x2e, 0, 0x31, 0x16, 0, 0, 0}, formData4); !errors.Is(err, errUnsupportedUnit) {
		t.Errorf("DW_FORM_indirect: err %v, want errUnsupportedUnit", err)
	}
}
