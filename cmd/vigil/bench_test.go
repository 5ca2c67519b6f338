package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// BenchmarkProfilerOverhead runs vigil and bpftrace side by side for the
// same 20 s on a machine kept busy, both sampling every CPU at 99 Hz with
// kernel and user stacks, and reports for each the in-kernel nanoseconds
// per sample (kernel.bpf_stats_enabled) and the CPU its process used in the
// steady state (user+sys, as a percentage of one core), plus vigil's
// start-up CPU.
//
//	sudo go test -run '^$' -bench ProfilerOverhead -benchtime 1x ./cmd/vigil
func BenchmarkProfilerOverhead(b *testing.B) {
	requireRoot(b)
	if _, err := exec.LookPath("bpftrace"); err != nil {
		b.Skip("skipped: bpftrace is the reference (apt-get install bpftrace)")
	}
	const d = 20 * time.Second
	bin := buildVigil(b)
	restore := enableBPFStats(b)
	defer restore()
	stop := busyCPUs(runtime.NumCPU())
	defer close(stop)

	for i := 0; i < b.N; i++ {
		bt := exec.Command("bpftrace", "-e", "profile:hz:99 { @[kstack, ustack] = count(); }")
		bt.Stdout, bt.Stderr = nil, nil
		if err := bt.Start(); err != nil {
			b.Fatal(err)
		}
		vg := exec.Command(bin, "profile", "-d", d.String(), "-F", "99", "-o", filepath.Join(b.TempDir(), "cpu.pb.gz"), "--top", "0")
		if err := vg.Start(); err != nil {
			b.Fatal(err)
		}
		// Start-up (reading kallsyms, parsing binaries) is a one-time cost;
		// the steady state is measured from 5 s on.
		time.Sleep(5 * time.Second)
		btCPU0, vgCPU0 := cpuSeconds(b, bt.Process.Pid), cpuSeconds(b, vg.Process.Pid)
		time.Sleep(d - 7*time.Second)
		vigilProg, btProg := findProgram(b, "profile_cpu", false), findProgram(b, "", true)
		vigilNs, vigilRuns := progStats(b, vigilProg)
		btNs, btRuns := progStats(b, btProg)
		btCPU := cpuSeconds(b, bt.Process.Pid) - btCPU0
		vgCPU := cpuSeconds(b, vg.Process.Pid) - vgCPU0
		bt.Process.Signal(os.Interrupt)
		bt.Wait()
		if err := vg.Wait(); err != nil {
			b.Fatalf("vigil: %v", err)
		}
		elapsed := (d - 7*time.Second).Seconds()
		// bpf_stats itself adds about 45 ns to each run; leave it in both
		// figures so they compare like with like.
		b.ReportMetric(vigilNs/float64(vigilRuns), "vigil-kernel-ns/sample")
		b.ReportMetric(btNs/float64(btRuns), "bpftrace-kernel-ns/sample")
		b.ReportMetric(100*vgCPU/elapsed, "vigil-user+sys-%core")
		b.ReportMetric(100*btCPU/elapsed, "bpftrace-user+sys-%core")
		b.ReportMetric(vgCPU0, "vigil-startup-cpu-s")
		b.ReportMetric(float64(vigilRuns)/(d-2*time.Second).Seconds(), "vigil-samples/s")
	}
}

// enableBPFStats turns on kernel.bpf_stats_enabled and returns a function
// that puts back the previous value.
func enableBPFStats(tb testing.TB) func() {
	tb.Helper()
	const path = "/proc/sys/kernel/bpf_stats_enabled"
	old, err := os.ReadFile(path)
	if err != nil {
		tb.Skipf("skipped: %v", err)
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return func() { os.WriteFile(path, old, 0o644) }
}

func busyCPUs(n int) chan struct{} {
	stop := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				for j := 0; j < 1e6; j++ {
					x += j
				}
			}
		}()
	}
	return stop
}

// findProgram returns the newest perf_event program named name, or with
// any name other than vigil's when other is set.
func findProgram(tb testing.TB, name string, other bool) *ebpf.Program {
	tb.Helper()
	var best *ebpf.Program
	var bestID ebpf.ProgramID
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		match := err == nil && info.Type == ebpf.PerfEvent &&
			((!other && info.Name == name) || (other && info.Name != "profile_cpu"))
		if match && id > bestID {
			if best != nil {
				best.Close()
			}
			best, bestID = p, id
			continue
		}
		p.Close()
	}
	if best == nil {
		tb.Fatalf("no perf_event program %q loaded", name)
	}
	return best
}

func progStats(tb testing.TB, p *ebpf.Program) (ns float64, runs uint64) {
	tb.Helper()
	defer p.Close()
	st, err := p.Stats()
	if err != nil || st.RunCount == 0 {
		tb.Fatalf("program stats: %v (runs %d)", err, st.RunCount)
	}
	return float64(st.Runtime.Nanoseconds()), st.RunCount
}

// cpuSeconds is utime+stime of pid from /proc/<pid>/stat.
func cpuSeconds(tb testing.TB, pid int) float64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the parenthesised comm, which may contain spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}
