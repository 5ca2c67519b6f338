package symbolizer

import (
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
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

// startStopped starts path stopped at its first instruction (traced), so
// its mappings can be read as an agent sees a process that is about to
// run. The caller must have locked its OS thread: the tracer is the thread
// that started it.
func startStopped(tb testing.TB, path string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); errors.Is(err, syscall.EPERM) {
		tb.Skipf("skipped: tracing a child is not permitted here (kernel.yama.ptrace_scope): %v", err)
	} else if err != nil {
		tb.Fatalf("starting %s: %v", path, err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(cmd.Process.Pid, &ws, 0, nil); err != nil || !ws.Stopped() {
		tb.Fatalf("%s did not stop at exec: %v %v", path, err, ws)
	}
	return cmd
}

// BenchmarkShortLivedGoProcesses is the dev machine of the agent: 200
// short-lived processes of the Go toolchain's binaries, each prepared,
// sampled at 200 pcs of its own binary and forgotten when it exits. It
// reports the heap in use at its highest (checked after each process)
// and at the end, after GC.
func BenchmarkShortLivedGoProcesses(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	paths := goToolchainBinaries(b)
	pcs := make([][]uint64, len(paths))
	for i, p := range paths {
		pcs[i] = goFuncPCs(b, p)
	}
	base := heapInUse()
	var peak, end uint64
	var st Stats
	for b.Loop() {
		s := New(Options{})
		peak = 0
		for n := 0; n < 200; n++ {
			i := n % len(paths)
			cmd := startStopped(b, paths[i])
			addrs := samplePCs(pcs[i], n, 200)
			if err := s.Prepare(cmd.Process.Pid); err != nil {
				b.Fatal(err)
			}
			if locs := s.User(cmd.Process.Pid, addrs); !locs[0].Named() {
				b.Fatalf("%s: %#x unnamed", paths[i], addrs[0])
			}
			cmd.Process.Kill()
			cmd.Wait()
			s.Forget(cmd.Process.Pid)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		end = heapInUse()
		st = s.Stats()
		runtime.KeepAlive(s)
		s.Close()
	}
	b.ReportMetric(float64(peak-base)/(1<<20), "MiB-heap-peak")
	b.ReportMetric(float64(end-base)/(1<<20), "MiB-heap-end")
	b.ReportMetric(float64(st.BytesHeld)/(1<<20), "MiB-estimated")
}

// samplePCs picks n pcs of pcs, a different stretch for each seed. The
// binaries are not PIE, so their ELF addresses are their run-time ones.
func samplePCs(pcs []uint64, seed, n int) []uint64 {
	out := make([]uint64, n)
	for k := range out {
		out[k] = pcs[(seed*7919+k*104729)%len(pcs)]
	}
	return out
}
