package exporter

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ScopeName is the instrumentation scope of every metric vigil exports.
const ScopeName = "github.com/vigil-ebpf/vigil/exporter"

// Producer reads the sources at each collection. It implements
// go.opentelemetry.io/otel/sdk/metric.Producer and is safe for concurrent
// use, so one Producer can serve several readers.
type Producer struct {
	sources []Source
	kind    HistogramKind
	scope   instrumentation.Scope
	start   time.Time // start of vigil's own cumulative counters
	exports *exportCounts
	now     func() time.Time
	log     *slog.Logger

	mu      sync.Mutex
	failing map[int]bool // sources whose last Read failed, to log state changes only
}

// NewProducer returns a Producer over sources that exports histograms as kind.
// version is the instrumentation scope version (vigil's version).
func NewProducer(sources []Source, kind HistogramKind, version string) *Producer {
	return &Producer{
		sources: sources,
		kind:    kind,
		scope:   instrumentation.Scope{Name: ScopeName, Version: version},
		start:   time.Now(),
		exports: newExportCounts(),
		now:     time.Now,
		log:     slog.Default().With("component", "exporter"),
		failing: map[int]bool{},
	}
}

// Produce reads every source. A source that fails to read is left out of
// this collection (and logged when it starts and stops failing) rather than
// failing the whole collection: a reader that gets an error exports nothing.
func (p *Producer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	now := p.now()
	sm := metricdata.ScopeMetrics{Scope: p.scope}
	for i, src := range p.sources {
		sm.Metrics = append(sm.Metrics, p.readSource(i, src, now)...)
	}
	sm.Metrics = append(sm.Metrics, p.selfMetrics(now)...)
	return []metricdata.ScopeMetrics{sm}, nil
}

func (p *Producer) readSource(i int, src Source, now time.Time) []metricdata.Metrics {
	readings, err := src.Read()
	p.noteReadResult(i, err)
	if err != nil {
		return nil
	}
	w := window{start: src.StartTime(), now: now}
	out := make([]metricdata.Metrics, 0, len(readings))
	for _, r := range readings {
		m, err := convertReading(r, p.kind, w)
		if err != nil {
			p.log.Warn("metric left out", "metric", r.Name, "error", err)
			continue
		}
		out = append(out, m)
	}
	return out
}

func (p *Producer) noteReadResult(i int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.failing[i]
	p.failing[i] = err != nil
	switch {
	case err != nil && !was:
		p.log.Warn("reading histograms failed; left out until it recovers", "source", i, "error", err)
	case err == nil && was:
		p.log.Info("reading histograms works again", "source", i)
	}
}
