package main

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/exporter"
)

// BenchmarkLatencyCollection is the cost of one collection with every hook
// attached: reading each program's per-CPU maps and building the OTel data
// points, what an exporter pays at each interval.
//
//	sudo go test -run '^$' -bench LatencyCollection -benchtime 200x ./cmd/vigil
func BenchmarkLatencyCollection(b *testing.B) {
	requireRoot(b)
	hooks, err := selectHooks("read,runqueue,tcp,block")
	if err != nil {
		b.Fatal(err)
	}
	progs, err := openHooks(hooks, hookOptions{scale: hist.DefaultScale}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll(progs)
	sources := make([]exporter.Source, len(progs))
	for i, p := range progs {
		sources[i] = p
	}
	p := exporter.NewProducer(sources, exporter.Exponential, "bench")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Produce(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(progs)), "programs")
}
