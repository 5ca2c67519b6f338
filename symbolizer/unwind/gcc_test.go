package unwind

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testProgram = `
#include <stdlib.h>
__attribute__((noinline)) int leaf(int *v, int n) {
	int s = 0;
	for (int i = 0; i < n; i++) s += v[i] * v[i];
	return s;
}
__attribute__((noinline)) int middle(int n) {
	int *v = malloc(n * sizeof *v);
	for (int i = 0; i < n; i++) v[i] = rand();
	int s = leaf(v, n);
	free(v);
	return s;
}
int main(int argc, char **argv) { return middle(argc * 1000) & 1; }
`

// buildC compiles testProgram with extra flags and returns the binary.
func buildC(t *testing.T, flags ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "prog.c")
	if err := os.WriteFile(src, []byte(testProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	args := append(append([]string{}, flags...), "-o", bin, src)
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
	return bin
}

// funcRange returns the address range of a symbol.
func funcRange(t *testing.T, f *elf.File, name string) (uint64, uint64) {
	t.Helper()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name && s.Size > 0 {
			return s.Value, s.Value + s.Size
		}
	}
	t.Fatalf("symbol %s not found", name)
	return 0, 0
}

// checkCovered asserts every address of the named functions has a usable
// rule, and that the function entry is CFA = rsp+8.
func checkCovered(t *testing.T, f *elf.File, tab *Table, names ...string) {
	t.Helper()
	for _, name := range names {
		lo, hi := funcRange(t, f, name)
		if got := tab.Lookup(lo); got.CFA != CFARSP || got.CFAOffset != 8 {
			t.Errorf("%s entry %#x: %+v, want rsp+8", name, lo, got)
		}
		for pc := lo; pc < hi; pc++ {
			if got := tab.Lookup(pc); got.CFA != CFARSP && got.CFA != CFARBP {
				t.Errorf("%s+%#x: %+v", name, pc-lo, got)
				break
			}
		}
	}
}

func TestGCCDebugFrameOnly(t *testing.T) {
	bin := buildC(t, "-O2", "-fno-asynchronous-unwind-tables", "-g")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lo, _ := funcRange(t, f, "middle")
	ehOnly := ehFrameTable(t, f)
	if ehOnly != nil && ehOnly.Lookup(lo).CFA != CFANone {
		t.Fatalf("middle is covered by .eh_frame; the test needs it in .debug_frame only")
	}
	if out, err := exec.Command("readelf", "-W", "-S", bin).Output(); err == nil && !strings.Contains(string(out), ".debug_frame") {
		t.Fatalf("readelf finds no .debug_frame in %s", bin)
	}
	tab, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, tab)
	if !contains(tab.Sources, sourceDebugFrame) {
		t.Errorf("sources %v lack debug_frame", tab.Sources)
	}
	checkCovered(t, f, tab, "leaf", "middle", "main")
}

func TestGCCEHFrame(t *testing.T) {
	bin := buildC(t, "-O2")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, tab)
	if !contains(tab.Sources, sourceEHFrame) || contains(tab.Sources, sourceDebugFrame) {
		t.Errorf("sources = %v, want eh_frame only", tab.Sources)
	}
	checkCovered(t, f, tab, "leaf", "middle", "main")
	// The crt's _start marks the outermost frame with an undefined RA.
	if lo, _ := funcRange(t, f, "_start"); tab.Lookup(lo).CFA != CFAStop {
		t.Errorf("_start: %+v, want CFAStop", tab.Lookup(lo))
	}
}

// TestGCCStrippedWithDebugFile splits the debug info off a binary built
// without .eh_frame for its functions and finds them through the debug file.
func TestGCCStrippedWithDebugFile(t *testing.T) {
	bin := buildC(t, "-O2", "-fno-asynchronous-unwind-tables", "-g")
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skip("objcopy not installed")
	}
	dbg := bin + ".debug"
	for _, args := range [][]string{{"--only-keep-debug", bin, dbg}, {"--strip-debug", bin}} {
		if out, err := exec.Command(objcopy, args...).CombinedOutput(); err != nil {
			t.Fatalf("objcopy %v: %v\n%s", args, err, out)
		}
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df, err := elf.Open(dbg)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	lo, _ := funcRange(t, df, "middle")
	if tab, err := Build(f); err == nil && tab.Lookup(lo).CFA != CFANone {
		t.Fatalf("stripped binary still covers middle")
	}
	tab, err := BuildWithDebug(f, df)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(tab.Sources, sourceDebugFrameDF) {
		t.Errorf("sources = %v", tab.Sources)
	}
	checkCovered(t, df, tab, "leaf", "middle", "main")
}

func TestNoCFI(t *testing.T) {
	bin := buildC(t, "-O2", "-fno-asynchronous-unwind-tables", "-g")
	out := bin + ".nocfi"
	if b, err := exec.Command("objcopy", "--remove-section=.eh_frame", "--remove-section=.eh_frame_hdr",
		"--remove-section=.debug_frame", bin, out).CombinedOutput(); err != nil {
		t.Skipf("objcopy: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Build(f); !errors.Is(err, ErrNoCFI) {
		t.Errorf("Build = %v, want ErrNoCFI", err)
	}
}

// ehFrameTable builds a table from .eh_frame alone, or nil without one.
func ehFrameTable(t *testing.T, f *elf.File) *Table {
	sec, err := ehFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if sec == nil {
		return nil
	}
	return parseFrames(sec.data, sec.addr, kindEHFrame)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestCompressedDebugFrame checks SHF_COMPRESSED .debug_frame (zlib, and
// zstd where the toolchain can write it).
func TestCompressedDebugFrame(t *testing.T) {
	for _, z := range []string{"zlib", "zstd"} {
		t.Run(z, func(t *testing.T) {
			gcc, err := exec.LookPath("gcc")
			if err != nil {
				t.Skip("gcc not installed")
			}
			probe := exec.Command(gcc, "-gz="+z, "-g", "-x", "c", "-o", filepath.Join(t.TempDir(), "p"), "-")
			probe.Stdin = strings.NewReader("int main(void){return 0;}")
			if out, err := probe.CombinedOutput(); err != nil {
				t.Skipf("toolchain can't write %s sections: %v\n%s", z, err, out)
			}
			bin := buildC(t, "-O2", "-fno-asynchronous-unwind-tables", "-g", "-gz="+z)
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if s := f.Section(".debug_frame"); s == nil || s.Flags&elf.SHF_COMPRESSED == 0 {
				t.Skipf(".debug_frame not compressed with -gz=%s", z)
			}
			tab, err := Build(f)
			if err != nil {
				t.Fatal(err)
			}
			checkCovered(t, f, tab, "leaf", "middle", "main")
		})
	}
}
