package testenv

import (
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vigil-ebpf/vigil/bpf/attach"
)

// StatsOverheadNs is what kernel.bpf_stats_enabled itself adds to each
// program run (measured on the development machine); benchmarks take it
// off the kernel's run_time_ns so the figure is the program's own cost.
const StatsOverheadNs = 45

// EnableStats turns on the kernel's run-time accounting for a benchmark.
// Holding the stats fd is the same switch as sysctl
// kernel.bpf_stats_enabled=1, and closing it restores the previous state.
func EnableStats(b *testing.B) {
	b.Helper()
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enabling bpf_stats: %v", err)
	}
	b.Cleanup(func() { c.Close() })
}

// ReportRunCost reports, for every program that ran between before and
// after, its in-kernel ns per run and its runs per benchmark operation.
func ReportRunCost(b *testing.B, before, after []attach.RunStat) {
	b.Helper()
	prev := map[string]attach.RunStat{}
	for _, s := range before {
		prev[s.Program] = s
	}
	for _, s := range after {
		runs := s.RunCount - prev[s.Program].RunCount
		if runs == 0 {
			continue
		}
		ns := float64(s.RunTimeNs-prev[s.Program].RunTimeNs)/float64(runs) - StatsOverheadNs
		b.ReportMetric(ns, "ns/run:"+s.Program)
		b.ReportMetric(float64(runs)/float64(b.N), "runs/op:"+s.Program)
	}
}
