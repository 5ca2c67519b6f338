package exporter_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/exporter"
	"github.com/vigil-ebpf/vigil/exporter/backendtest"
)

// memSource is an in-process latency program with fixed cumulative data.
type memSource struct {
	start    time.Time
	readings []hist.Reading
}

func (m memSource) Read() ([]hist.Reading, error) { return m.readings, nil }
func (m memSource) StartTime() time.Time          { return m.start }

// readDurations buckets ns values exactly as the kernel does at scale 3.
func readDurations(t *testing.T, vals ...uint64) hist.Reading {
	t.Helper()
	l, err := hist.NewLayout(3, 1000, 100e9)
	if err != nil {
		t.Fatal(err)
	}
	h := hist.Histogram{Scale: 3, Offset: l.MinIndex, Counts: make([]uint64, len(l.Bounds))}
	for _, v := range vals {
		slot, _ := l.Bucket(v)
		h.Counts[slot]++
		h.Count++
		h.SumNs += v
	}
	return hist.Reading{Name: "vigil.read.duration", Unit: "s", Description: "Read latency.",
		Histograms: []hist.Series{{Attrs: map[string]string{"vigil.hook": "syscall"}, Hist: h}}}
}

// export pushes one final export of src with the given environment.
func export(t *testing.T, env map[string]string, src exporter.Source) {
	t.Helper()
	cfg, err := exporter.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	p, err := exporter.New(context.Background(), cfg, []exporter.Source{src}, exporter.Options{Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(context.Background()); err != nil { // the final export
		t.Fatal(err)
	}
}

// findHistogram returns the first vigil.read.duration point of each kind.
func findMetric(mds []pmetric.Metrics, name string) (pmetric.Metric, pcommon.Resource, bool) {
	for _, md := range mds {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if ms.At(k).Name() == name {
						return ms.At(k), rm.Resource(), true
					}
				}
			}
		}
	}
	return pmetric.Metric{}, pcommon.Resource{}, false
}

func hasMetric(name string) func([]pmetric.Metrics) bool {
	return func(mds []pmetric.Metrics) bool { _, _, ok := findMetric(mds, name); return ok }
}

func TestCollectorReceivesExactExponentialHistogram(t *testing.T) {
	for _, proto := range []string{"grpc", "http/protobuf"} {
		t.Run(proto, func(t *testing.T) {
			col := backendtest.StartCollector(t)
			endpoint := col.HTTPEndpoint()
			if proto == "grpc" {
				endpoint = col.GRPCEndpoint()
			}
			reading := readDurations(t, 20_000_000, 20_000_000, 20_000_001, 5_000)
			src := memSource{start: time.Now().Add(-time.Minute), readings: []hist.Reading{reading}}
			export(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": proto}, src)

			mds := col.WaitMetrics(t, 10*time.Second, hasMetric("vigil.read.duration"))
			m, res, _ := findMetric(mds, "vigil.read.duration")
			if m.Type() != pmetric.MetricTypeExponentialHistogram {
				t.Fatalf("type %v, want ExponentialHistogram", m.Type())
			}
			eh := m.ExponentialHistogram()
			if eh.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
				t.Errorf("temporality %v, want cumulative", eh.AggregationTemporality())
			}
			dp := eh.DataPoints().At(0)
			checkExponentialMatches(t, dp, reading.Histograms[0].Hist)
			if got := dp.StartTimestamp().AsTime(); !got.Equal(src.start) {
				t.Errorf("start time %v, want the attach time %v", got, src.start)
			}
			for k, want := range map[string]string{"service.name": "vigil", "service.version": "e2e", "os.type": "linux"} {
				if v, ok := res.Attributes().Get(k); !ok || v.Str() != want {
					t.Errorf("resource %s = %q, want %q", k, v.Str(), want)
				}
			}
		})
	}
}

// checkExponentialMatches compares what the Collector wrote with the
// kernel-side histogram, bucket by bucket.
func checkExponentialMatches(t *testing.T, dp pmetric.ExponentialHistogramDataPoint, h hist.Histogram) {
	t.Helper()
	if dp.Scale() != h.Scale || dp.Count() != h.Count || math.Abs(dp.Sum()-float64(h.SumNs)/1e9) > 1e-12 {
		t.Errorf("scale/count/sum %d/%d/%g, want %d/%d/%g", dp.Scale(), dp.Count(), dp.Sum(), h.Scale, h.Count, float64(h.SumNs)/1e9)
	}
	got := map[int32]uint64{}
	b := dp.Positive()
	for i := 0; i < b.BucketCounts().Len(); i++ {
		if c := b.BucketCounts().At(i); c > 0 {
			got[b.Offset()+int32(i)] = c
		}
	}
	for i, c := range h.Counts {
		idx := h.Offset + int32(i)
		if got[idx] != c {
			t.Errorf("bucket %d: collector has %d, kernel had %d", idx, got[idx], c)
		}
		delete(got, idx)
	}
	if len(got) > 0 {
		t.Errorf("collector has buckets the kernel did not: %v", got)
	}
}

func TestCollectorReceivesExplicitHistogram(t *testing.T) {
	col := backendtest.StartCollector(t)
	reading := readDurations(t, 20_000_000, 20_000_000, 5_000)
	export(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":                              col.HTTPEndpoint(),
		"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "explicit_bucket_histogram",
	}, memSource{start: time.Now(), readings: []hist.Reading{reading}})
	mds := col.WaitMetrics(t, 10*time.Second, hasMetric("vigil.read.duration"))
	m, _, _ := findMetric(mds, "vigil.read.duration")
	if m.Type() != pmetric.MetricTypeHistogram {
		t.Fatalf("type %v, want Histogram", m.Type())
	}
	dp := m.Histogram().DataPoints().At(0)
	bounds, counts := dp.ExplicitBounds().AsRaw(), dp.BucketCounts().AsRaw()
	want := map[float64]uint64{0.03125: 2, math.Ldexp(1, -17): 1} // 20 ms ≤ 2^-5 s; 5 µs ≤ 2^-17 s
	for i, c := range counts[:len(bounds)] {
		if c != want[bounds[i]] {
			t.Errorf("bucket le %g = %d, want %d", bounds[i], c, want[bounds[i]])
		}
	}
	if dp.Count() != 3 || len(counts) != len(bounds)+1 {
		t.Errorf("count %d, %d buckets for %d bounds", dp.Count(), len(counts), len(bounds))
	}
}

func TestVictoriaMetricsAnswersHistogramQuantile(t *testing.T) {
	vm := backendtest.StartVictoriaMetrics(t)
	vals := make([]uint64, 50)
	for i := range vals {
		vals[i] = 20_000_000
	}
	export(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": vm.OTLPEndpoint()},
		memSource{start: time.Now().Add(-time.Minute), readings: []hist.Reading{readDurations(t, vals...)}})
	ctx := context.Background()
	q := `histogram_quantile(0.5, sum(vigil_read_duration_seconds_bucket) by (vmrange, le))`
	res, err := vm.QueryEventually(ctx, q, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		names, _ := vm.Series(ctx)
		t.Fatalf("%s: %d results, want 1; series names: %v", q, len(res), names)
	}
	v, err := strconv.ParseFloat(res[0].Value, 64)
	if err != nil || v < 0.018 || v > 0.022 {
		t.Errorf("median %s s, want about 0.020 (%v)", res[0].Value, err)
	}
	t.Logf("VictoriaMetrics median: %s s", res[0].Value)
}
