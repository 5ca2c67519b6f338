package biolat

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"golang.org/x/sys/unix"
)

// statsOverheadNs is what kernel.bpf_stats_enabled itself adds to each
// program run (measured on the development machine), taken off the
// kernel's run_time_ns so the figure is the program's own cost.
const statsOverheadNs = 45

// enableStats turns on the kernel's run-time accounting for the benchmark.
// Holding the stats fd is the same switch as sysctl
// kernel.bpf_stats_enabled=1, and closing it restores the previous state.
func enableStats(b *testing.B) {
	b.Helper()
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enabling bpf_stats: %v", err)
	}
	b.Cleanup(func() { c.Close() })
}

// reportRunCost reports, for every program that ran between before and
// after, its in-kernel ns per run and its runs per benchmark operation.
func reportRunCost(b *testing.B, before, after []attach.RunStat) {
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
		ns := float64(s.RunTimeNs-prev[s.Program].RunTimeNs)/float64(runs) - statsOverheadNs
		b.ReportMetric(ns, "ns/run:"+s.Program)
		b.ReportMetric(float64(runs)/float64(b.N), "runs/op:"+s.Program)
	}
}

// BenchmarkDirectRead drives each strategy with single-block O_DIRECT reads
// of a loop device.
func BenchmarkDirectRead(b *testing.B) {
	for _, tc := range []struct {
		name string
		skip map[string]bool
	}{
		{StrategyTPBTF, nil},
		{StrategyTracepoint, map[string]bool{StrategyTPBTF: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			path, _ := loopDevice(b)
			p := openProgram(b, Options{Skip: tc.skip})
			if p.Report().Chosen != tc.name {
				b.Fatalf("chose %q: %v", p.Report().Chosen, p.Report())
			}
			d := openDirect(b, path)
			enableStats(b)
			before := p.Stats()
			b.ResetTimer()
			d.run(b, false, b.N)
			b.StopTimer()
			reportRunCost(b, before, p.Stats())
		})
	}
}

// BenchmarkRead is the cost of one collection: both directions' histograms,
// summed over CPUs.
func BenchmarkRead(b *testing.B) {
	p := openProgram(b, Options{})
	for range b.N {
		if _, err := p.Read(); err != nil {
			b.Fatal(err)
		}
	}
}
