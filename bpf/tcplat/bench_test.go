package tcplat

import (
	"io"
	"net"
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

// BenchmarkLoopbackConnect drives the connect and RTT programs with
// loopback connects that exchange one message each.
func BenchmarkLoopbackConnect(b *testing.B) {
	ln := listen(b, "tcp4")
	p := open(b, Options{})
	enableStats(b)
	addr := ln.Addr().String()
	buf := make([]byte, 4)
	before := p.Stats()
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write([]byte("ping"))
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.StopTimer()
	reportRunCost(b, before, p.Stats())
}

// BenchmarkRead is the cost of one collection: both histograms and the
// counters, summed over CPUs.
func BenchmarkRead(b *testing.B) {
	p := open(b, Options{})
	for range b.N {
		if _, err := p.Read(); err != nil {
			b.Fatal(err)
		}
	}
}
