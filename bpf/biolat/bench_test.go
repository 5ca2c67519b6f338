package biolat

import (
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

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
			testenv.EnableStats(b)
			before := p.Stats()
			b.ResetTimer()
			d.run(b, false, b.N)
			b.StopTimer()
			testenv.ReportRunCost(b, before, p.Stats())
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
