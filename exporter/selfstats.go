package exporter

import (
	"context"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// Names of vigil's own metrics.
const (
	MetricRunDuration    = "vigil.bpf.run.duration"
	MetricRunCount       = "vigil.bpf.run.count"
	MetricEventsLost     = "vigil.bpf.events.lost"
	MetricExportFailures = "vigil.export.failures"
)

// Attribute keys of vigil's own metrics, besides hist.AttrHook and
// hist.AttrReason.
const (
	AttrProgram  = "vigil.bpf.program"
	AttrExporter = "vigil.exporter"
)

// selfMetrics reports the kernel's run accounting of every source's BPF
// programs and the export failures seen so far.
func (p *Producer) selfMetrics(now time.Time) []metricdata.Metrics {
	runTime := metricdata.Sum[float64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
	runs := metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
	lost := metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
	for _, src := range p.sources {
		ss, ok := src.(StatsSource)
		if !ok {
			continue
		}
		start := src.StartTime()
		for _, st := range ss.Stats() {
			attrs := attribute.NewSet(attribute.String(hist.AttrHook, st.Hook), attribute.String(AttrProgram, st.Program))
			runTime.DataPoints = append(runTime.DataPoints, metricdata.DataPoint[float64]{
				Attributes: attrs, StartTime: start, Time: now, Value: seconds(st.RunTimeNs)})
			runs.DataPoints = append(runs.DataPoints, metricdata.DataPoint[int64]{
				Attributes: attrs, StartTime: start, Time: now, Value: clampInt64(st.RunCount)})
			lost.DataPoints = append(lost.DataPoints, lostPoint(st, start, now))
		}
	}
	var out []metricdata.Metrics
	if len(runs.DataPoints) > 0 {
		out = append(out,
			metricdata.Metrics{Name: MetricRunDuration, Unit: "s", Data: runTime,
				Description: "Time the kernel spent running vigil's BPF programs (counted while BPF run statistics are enabled: kernel.bpf_stats_enabled=1 or vigil's --bpf-stats)."},
			metricdata.Metrics{Name: MetricRunCount, Unit: "{run}", Data: runs,
				Description: "Runs of vigil's BPF programs (counted while BPF run statistics are enabled: kernel.bpf_stats_enabled=1 or vigil's --bpf-stats)."},
			metricdata.Metrics{Name: MetricEventsLost, Unit: "{event}", Data: lost,
				Description: "Events vigil's BPF programs never saw, by reason."},
		)
	}
	if f := p.exports.points(p.start, now); len(f.DataPoints) > 0 {
		out = append(out, metricdata.Metrics{Name: MetricExportFailures, Unit: "{export}", Data: f,
			Description: "Exports that failed after retries, by exporter."})
	}
	return out
}

// lostPoint counts the runs the kernel skipped because another BPF program
// was running on that CPU: those events were never measured.
func lostPoint(st attach.RunStat, start, now time.Time) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{
		Attributes: attribute.NewSet(attribute.String(hist.AttrHook, st.Hook),
			attribute.String(AttrProgram, st.Program), attribute.String(hist.AttrReason, "recursion_miss")),
		StartTime: start, Time: now, Value: clampInt64(st.RecursionMisses),
	}
}

// exportCounts counts failed exports per exporter name. Exporters register
// when they are created so a healthy exporter reports an explicit zero.
type exportCounts struct {
	mu       sync.Mutex
	failures map[string]uint64
}

func newExportCounts() *exportCounts { return &exportCounts{failures: map[string]uint64{}} }

func (c *exportCounts) register(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.failures[name]; !ok {
		c.failures[name] = 0
	}
}

func (c *exportCounts) fail(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures[name]++
}

func (c *exportCounts) points(start, now time.Time) metricdata.Sum[int64] {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
	names := make([]string, 0, len(c.failures))
	for n := range c.failures {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out.DataPoints = append(out.DataPoints, metricdata.DataPoint[int64]{
			Attributes: attribute.NewSet(attribute.String(AttrExporter, n)),
			StartTime:  start, Time: now, Value: clampInt64(c.failures[n]),
		})
	}
	return out
}

// countingExporter counts the exports that failed (after the exporter's own
// retries) so the failures show up in vigil's metrics once the backend is back.
type countingExporter struct {
	sdkmetric.Exporter
	name   string
	counts *exportCounts
}

func (p *Producer) countFailures(name string, e sdkmetric.Exporter) sdkmetric.Exporter {
	p.exports.register(name)
	return countingExporter{Exporter: e, name: name, counts: p.exports}
}

func (c countingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := c.Exporter.Export(ctx, rm)
	if err != nil {
		c.counts.fail(c.name)
	}
	return err
}
