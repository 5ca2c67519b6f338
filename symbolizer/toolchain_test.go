package symbolizer

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// goToolchainBinaries returns the Go toolchain's own binaries: large Go
// programs without DWARF, like the short-lived ones a dev machine runs.
func goToolchainBinaries(tb testing.TB) []string {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOROOT", "GOHOSTOS", "GOHOSTARCH").Output()
	if err != nil {
		tb.Skipf("skipped: go env failed: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		tb.Skipf("skipped: go env printed %q", out)
	}
	bins, _ := filepath.Glob(filepath.Join(f[0], "pkg", "tool", f[1]+"_"+f[2], "*"))
	bins = append(bins, filepath.Join(f[0], "bin", "go"))
	if len(bins) < 2 {
		tb.Skip("skipped: no Go toolchain binaries found")
	}
	return bins
}

// goFuncPCs lists, for one Go binary, every function's entry and a pc in
// its middle, from the standard library's table.
func goFuncPCs(tb testing.TB, path string) []uint64 {
	tb.Helper()
	f, err := elf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	tab := refGoTable(tb, f)
	pcs := make([]uint64, 0, 2*len(tab.Funcs))
	for _, fn := range tab.Funcs {
		pcs = append(pcs, fn.Entry, fn.Entry+(fn.End-fn.Entry)/2)
	}
	return pcs
}

// refGoTable is the standard library's reading of a Go binary's pclntab,
// the reference the symbolizer's own reader is compared with.
func refGoTable(tb testing.TB, f *elf.File) *gosym.Table {
	tb.Helper()
	s := f.Section(".gopclntab")
	if s == nil {
		tb.Fatal("no .gopclntab")
	}
	data, err := s.Data()
	if err != nil {
		tb.Fatal(err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, f.Section(".text").Addr))
	if err != nil {
		tb.Fatal(err)
	}
	return tab
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// symbolizeFiles names every pc of every file once through one
// Symbolizer's file cache, as Prepare and User would, and returns the
// frames found.
func symbolizeFiles(tb testing.TB, s *Symbolizer, paths []string, pcs [][]uint64) int {
	tb.Helper()
	named := 0
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		o := s.adoptFile(f, p, "")
		if o == nil {
			tb.Fatalf("%s: not opened", p)
		}
		for _, pc := range pcs[i] {
			if fr := s.lookupFile(o, pc); len(fr) > 0 && fr[0].Function != "" {
				named++
			}
		}
		s.mu.Lock()
		s.releaseFile(o)
		s.mu.Unlock()
	}
	return named
}

// BenchmarkGoToolchain symbolizes every function of every Go toolchain
// binary once (two pcs each) with one Symbolizer and reports the heap it
// keeps afterwards (after GC, Symbolizer alive), what it allocated, its
// own estimate of what it holds, and the time taken: with the default
// byte budget and with a small one.
func BenchmarkGoToolchain(b *testing.B) {
	paths := goToolchainBinaries(b)
	pcs := make([][]uint64, len(paths))
	total := 0
	for i, p := range paths {
		pcs[i] = goFuncPCs(b, p)
		total += len(pcs[i])
	}
	for _, budget := range []int64{defaultMaxBytes, 8 << 20} {
		b.Run(fmt.Sprintf("budget=%dMiB", budget>>20), func(b *testing.B) {
			benchToolchain(b, Options{MaxBytes: budget}, paths, pcs, total)
		})
	}
}

func benchToolchain(b *testing.B, opts Options, paths []string, pcs [][]uint64, total int) {
	base := heapInUse()
	var kept, allocated uint64
	var st Stats
	for b.Loop() {
		s := New(opts)
		before := totalAlloc()
		start := time.Now()
		named := symbolizeFiles(b, s, paths, pcs)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/all")
		if named < total*99/100 {
			b.Fatalf("named %d of %d pcs", named, total)
		}
		allocated = totalAlloc() - before
		kept = heapInUse() - base
		st = s.Stats()
		runtime.KeepAlive(s)
		s.Close()
	}
	b.ReportMetric(float64(kept)/(1<<20), "MiB-heap-kept")
	b.ReportMetric(float64(allocated)/(1<<20), "MiB-allocated")
	b.ReportMetric(float64(total), "pcs")
	b.ReportMetric(float64(st.BytesHeld)/(1<<20), "MiB-estimated")
	b.ReportMetric(float64(st.ByteEvictions), "evictions")
}
