package exporter

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// collect runs one collection through a real SDK reader, as an exporter would.
func collect(t *testing.T, p *Producer) metricdata.ResourceMetrics {
	t.Helper()
	r := sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return rm
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func TestProducerReadsSourcesAtEachCollection(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	src := &fakeSource{start: start}
	src.set([]hist.Reading{readReading(20_000_000)}, nil)
	p := NewProducer([]Source{src}, Exponential, "1.2.3")

	first := collect(t, p)
	src.set([]hist.Reading{readReading(20_000_000, 20_000_000, 20_000_000)}, nil)
	second := collect(t, p)

	for i, want := range []uint64{1, 3} {
		rm := []metricdata.ResourceMetrics{first, second}[i]
		m, ok := findMetric(rm, "vigil.read.duration")
		if !ok {
			t.Fatalf("collection %d: no vigil.read.duration", i)
		}
		dp := m.Data.(metricdata.ExponentialHistogram[float64]).DataPoints[0]
		if dp.Count != want || !dp.StartTime.Equal(start) {
			t.Errorf("collection %d: count %d start %v, want %d since %v (cumulative from attach)", i, dp.Count, dp.StartTime, want, start)
		}
	}
	if sc := second.ScopeMetrics[0].Scope; sc.Name != ScopeName || sc.Version != "1.2.3" {
		t.Errorf("scope %+v, want %s 1.2.3", sc, ScopeName)
	}
}

func TestFailingSourceIsLeftOutAndOthersExported(t *testing.T) {
	bad := &fakeSource{start: time.Now()}
	bad.set(nil, errRead)
	good := &fakeSource{start: time.Now()}
	good.set([]hist.Reading{retransmitReading(5)}, nil)
	rm := collect(t, NewProducer([]Source{bad, good}, Exponential, "dev"))
	if _, ok := findMetric(rm, "vigil.tcp.retransmits"); !ok {
		t.Fatal("a failing source took the healthy one's metric with it")
	}
	if _, ok := findMetric(rm, "vigil.read.duration"); ok {
		t.Fatal("the failing source's metric was exported")
	}
}

func TestSelfMetricsFromRunStats(t *testing.T) {
	src := statsSource{&fakeSource{start: time.Now(), stats: []attach.RunStat{
		{Hook: "read", Program: "sys_exit_read", RunCount: 1000, RunTimeNs: 250_000, RecursionMisses: 3},
	}}}
	rm := collect(t, NewProducer([]Source{src}, Exponential, "dev"))
	dur, ok := findMetric(rm, MetricRunDuration)
	if !ok {
		t.Fatal("no " + MetricRunDuration)
	}
	d := dur.Data.(metricdata.Sum[float64]).DataPoints[0]
	if d.Value != 0.00025 || dur.Unit != "s" {
		t.Errorf("run duration %g %s, want 0.00025 s", d.Value, dur.Unit)
	}
	if v, _ := d.Attributes.Value(AttrProgram); v.AsString() != "sys_exit_read" {
		t.Errorf("attributes %v, want %s=sys_exit_read", d.Attributes.ToSlice(), AttrProgram)
	}
	checkSum(t, rm, MetricRunCount, attribute.NewSet(attribute.String(hist.AttrHook, "read"), attribute.String(AttrProgram, "sys_exit_read")), 1000)
	checkSum(t, rm, MetricEventsLost, attribute.NewSet(attribute.String(hist.AttrHook, "read"),
		attribute.String(AttrProgram, "sys_exit_read"), attribute.String(hist.AttrReason, "recursion_miss")), 3)
}

func checkSum(t *testing.T, rm metricdata.ResourceMetrics, name string, attrs attribute.Set, want int64) {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	s := m.Data.(metricdata.Sum[int64])
	if !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
		t.Errorf("%s is not a cumulative monotonic sum", name)
	}
	for _, dp := range s.DataPoints {
		if dp.Attributes.Equals(&attrs) {
			if dp.Value != want {
				t.Errorf("%s%v = %d, want %d", name, attrs.ToSlice(), dp.Value, want)
			}
			return
		}
	}
	t.Errorf("%s has no point with %v", name, attrs.ToSlice())
}

// failingExporter refuses every export, like an unreachable backend.
type failingExporter struct{ sdkmetric.Exporter }

func (failingExporter) Export(context.Context, *metricdata.ResourceMetrics) error {
	return errors.New("connection refused")
}

func TestExportFailuresAreCounted(t *testing.T) {
	p := NewProducer(nil, Exponential, "dev")
	e := p.countFailures("otlp_grpc", failingExporter{})
	rm := collect(t, p)
	checkSum(t, rm, MetricExportFailures, attribute.NewSet(attribute.String(AttrExporter, "otlp_grpc")), 0)
	for range 2 {
		if err := e.Export(context.Background(), &metricdata.ResourceMetrics{}); err == nil {
			t.Fatal("wrapped exporter hid the failure")
		}
	}
	checkSum(t, collect(t, p), MetricExportFailures, attribute.NewSet(attribute.String(AttrExporter, "otlp_grpc")), 2)
}
