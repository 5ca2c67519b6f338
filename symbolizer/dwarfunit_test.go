package symbolizer

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// openImage opens path as the symbolizer does; the file is closed when the
// test ends.
func openImage(t testing.TB, path string) *elfImage {
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

// unitsSection lays out units of the given body lengths, each a 32-bit
// length and then its body, and returns the section and the units' starts.
func unitsSection(lens []int) ([]byte, []uint64) {
	var sec []byte
	var offs []uint64
	for i, n := range lens {
		offs = append(offs, uint64(len(sec)))
		sec = binary.LittleEndian.AppendUint32(sec, uint32(n))
		sec = append(sec, bytes.Repeat([]byte{byte(i + 1)}, n)...)
	}
	return sec, offs
}

// TestLazySectionUnits reads units in any order out of chunks of several
// sizes, so units span chunk boundaries, and stops at the section's end or
// a stream that ends early.
func TestLazySectionUnits(t *testing.T) {
	lens := []int{0, 5, 40, 3, 100, 7, 64, 1}
	sec, offs := unitsSection(lens)
	for _, chunk := range []uint64{1, 7, 16, 1000, lazyChunk} {
		l := &lazySection{r: bytes.NewReader(sec), size: uint64(len(sec)), chunk: chunk}
		for _, i := range []int{4, 0, 7, 2, 6, 1, 5, 3} {
			got, err := l.unit(offs[i], binary.LittleEndian)
			if want := sec[offs[i] : offs[i]+4+uint64(lens[i])]; err != nil || !bytes.Equal(got, want) {
				t.Errorf("chunk %d, unit %d: %x (%v), want %x", chunk, i, got, err, want)
			}
		}
		for _, off := range []uint64{uint64(len(sec)), uint64(len(sec)) - 2, 1 << 40, ^uint64(0)} {
			if _, err := l.unit(off, binary.LittleEndian); err == nil {
				t.Errorf("chunk %d: a unit at %#x, past the section", chunk, off)
			}
		}
	}
	// The stream ends before the size the section claims.
	l := &lazySection{r: bytes.NewReader(sec[:offs[5]]), size: uint64(len(sec)), chunk: 16}
	if _, err := l.unit(offs[4], binary.LittleEndian); err != nil {
		t.Errorf("unit 4, read whole: %v", err)
	}
	if _, err := l.unit(offs[6], binary.LittleEndian); !errors.Is(err, ErrMalformed) {
		t.Errorf("unit 6, past the stream: err %v, want ErrMalformed", err)
	}
	// A length running past the section.
	bad := binary.LittleEndian.AppendUint32(nil, 1000)
	l = &lazySection{r: bytes.NewReader(bad), size: uint64(len(bad)), chunk: lazyChunk}
	if _, err := l.unit(0, binary.LittleEndian); !errors.Is(err, ErrMalformed) {
		t.Errorf("a unit longer than its section: err %v, want ErrMalformed", err)
	}
}

// FuzzLazySectionUnit reads a unit at any offset of any bytes, the stream
// maybe cut short, out of chunks of any size: it returns the unit's bytes
// as they are in the section, or an error.
func FuzzLazySectionUnit(f *testing.F) {
	sec, offs := unitsSection([]int{0, 5, 40, 3})
	for _, off := range offs {
		f.Add(sec, uint32(off), uint8(7), uint8(0))
	}
	f.Add(sec, uint32(offs[3]), uint8(16), uint8(2))
	f.Add([]byte{0xf0, 0xff, 0xff, 0xff, 1}, uint32(0), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, sec []byte, off uint32, chunk, cut uint8) {
		stream := sec[:len(sec)-min(len(sec), int(cut))]
		l := &lazySection{r: bytes.NewReader(stream), size: uint64(len(sec)), chunk: uint64(chunk) + 1}
		for _, o := range []uint64{uint64(off), uint64(off) / 2, 0} {
			got, err := l.unit(o, binary.LittleEndian)
			if err != nil {
				continue
			}
			if o+4 > uint64(len(stream)) {
				t.Fatalf("unit at %d past the %d bytes read", o, len(stream))
			}
			end := o + 4 + uint64(binary.LittleEndian.Uint32(stream[o:]))
			if end > uint64(len(stream)) || !bytes.Equal(got, stream[o:end]) {
				t.Fatalf("unit at %d: %x, want the section's bytes up to %d", o, got, end)
			}
		}
	})
}

// TestSectionReader checks that compressed sections read through the
// symbolizer's inflater hold what debug/elf reads, and that a section whose
// zlib header is not plain is left to debug/elf.
func TestSectionReader(t *testing.T) {
	bin := buildC(t, t.TempDir(), "gcc", "z", "-O2", "-gdwarf-5", "-gz=zlib", srcPath(t, "inline.c"), srcPath(t, "lib.c"))
	// libc's debug file is read both ways in TestLazyDWARFLibc.
	for _, path := range []string{bin} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := openELF(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range img.f.Sections {
			if s.Flags&elf.SHF_COMPRESSED == 0 {
				continue
			}
			n++
			want, err := s.Data()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(img.sectionReader(s))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s %s: %d bytes (%v), want %d", filepath.Base(path), s.Name, len(got), err, len(want))
			}
		}
		if n == 0 {
			t.Errorf("%s: no compressed section", filepath.Base(path))
		}
		// A preset dictionary (FDICT) in the zlib header of .debug_info.
		s := img.f.Section(".debug_info")
		bad := bytes.Clone(raw)
		bad[s.Offset+24+1] |= 0x20
		img, err = openELF(bytes.NewReader(bad), int64(len(bad)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(img.sectionReader(img.f.Section(".debug_info"))); err == nil {
			t.Errorf("%s: a zlib stream with a preset dictionary read without error", filepath.Base(path))
		}
	}
}
