package exporter

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// benchSources is what a full `vigil latency` exports: read, run queue, two
// TCP histograms and a counter, two block directions, every histogram with
// mass spread over 1 µs..1 s at scale 3 (the kernel side's full layout).
func benchSources() []Source {
	l, err := hist.NewLayout(3, 1000, 100e9)
	if err != nil {
		panic(err)
	}
	var vals []uint64
	for v := uint64(1000); v < 1e9; v = v * 11 / 10 {
		vals = append(vals, v)
	}
	h := kernelHistogram(l, vals)
	series := func(attrs map[string]string) []hist.Series { return []hist.Series{{Attrs: attrs, Hist: h}} }
	mk := func(rs ...hist.Reading) Source { s := &fakeSource{start: time.Now()}; s.set(rs, nil); return s }
	return []Source{
		mk(hist.Reading{Name: "vigil.read.duration", Unit: "s", Histograms: series(map[string]string{"vigil.hook": "syscall"})}),
		mk(hist.Reading{Name: "vigil.sched.runqueue.delay", Unit: "s", Histograms: series(nil)}),
		mk(hist.Reading{Name: "vigil.tcp.connect.duration", Unit: "s", Histograms: series(nil)},
			hist.Reading{Name: "vigil.tcp.rtt", Unit: "s", Histograms: series(nil)},
			retransmitReading(3)),
		mk(hist.Reading{Name: "vigil.block.io.duration", Unit: "s", Histograms: append(
			series(map[string]string{"disk.io.direction": "read"}), series(map[string]string{"disk.io.direction": "write"})...)}),
	}
}

// BenchmarkCollect is the user-space cost of one collection (sources already
// read): conversion of every histogram into OTel data points.
func BenchmarkCollect(b *testing.B) {
	for _, kind := range []HistogramKind{Exponential, Explicit} {
		b.Run(kind.String(), func(b *testing.B) {
			p := NewProducer(benchSources(), kind, "bench")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Produce(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
