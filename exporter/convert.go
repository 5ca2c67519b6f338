package exporter

import (
	"fmt"
	"math"
	"sort"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// HistogramKind selects how histograms are exported.
type HistogramKind int

const (
	// Exponential exports the kernel's buckets as they are (the default).
	Exponential HistogramKind = iota
	// Explicit re-buckets them exactly into ExplicitBounds.
	Explicit
)

func (k HistogramKind) String() string {
	if k == Explicit {
		return "explicit_bucket_histogram"
	}
	return "base2_exponential_bucket_histogram"
}

// window is the time range of cumulative data points.
type window struct{ start, now time.Time }

// convertReading turns one program reading into an OTel metric.
func convertReading(r hist.Reading, kind HistogramKind, w window) (metricdata.Metrics, error) {
	m := metricdata.Metrics{Name: r.Name, Description: r.Description, Unit: r.Unit}
	switch {
	case len(r.Counters) > 0:
		m.Data = counterSum(r.Counters, w)
	case len(r.Gauges) > 0:
		m.Data = gauge(r.Gauges, w)
	case kind == Explicit:
		h, err := explicitHistogram(r.Histograms, w)
		if err != nil {
			return m, fmt.Errorf("%s: %w", r.Name, err)
		}
		m.Data = h
	default:
		m.Data = exponentialHistogram(r.Histograms, w)
	}
	return m, nil
}

func exponentialHistogram(series []hist.Series, w window) metricdata.ExponentialHistogram[float64] {
	out := metricdata.ExponentialHistogram[float64]{Temporality: metricdata.CumulativeTemporality}
	for _, s := range series {
		out.DataPoints = append(out.DataPoints, exponentialPoint(s, w))
	}
	return out
}

// exponentialPoint carries the kernel buckets unchanged, only trimming empty
// buckets at both ends (the offset moves with them).
func exponentialPoint(s hist.Series, w window) metricdata.ExponentialHistogramDataPoint[float64] {
	h := s.Hist
	lo, hi := hist.NonEmpty(h.Counts)
	return metricdata.ExponentialHistogramDataPoint[float64]{
		Attributes: attrSet(s.Attrs),
		StartTime:  w.start,
		Time:       w.now,
		Count:      h.Count,
		Sum:        seconds(h.SumNs),
		Scale:      h.Scale,
		ZeroCount:  h.ZeroCount,
		PositiveBucket: metricdata.ExponentialBucket{
			Offset: h.Offset + int32(lo),
			Counts: append([]uint64(nil), h.Counts[lo:hi]...),
		},
	}
}

func explicitHistogram(series []hist.Series, w window) (metricdata.Histogram[float64], error) {
	out := metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality}
	bounds := ExplicitBounds()
	for _, s := range series {
		counts, err := rebucket(s.Hist)
		if err != nil {
			return out, err
		}
		out.DataPoints = append(out.DataPoints, metricdata.HistogramDataPoint[float64]{
			Attributes:   attrSet(s.Attrs),
			StartTime:    w.start,
			Time:         w.now,
			Count:        s.Hist.Count,
			Sum:          seconds(s.Hist.SumNs),
			Bounds:       bounds,
			BucketCounts: counts,
		})
	}
	return out, nil
}

func counterSum(series []hist.CounterSeries, w window) metricdata.Sum[int64] {
	out := metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
	for _, c := range series {
		out.DataPoints = append(out.DataPoints, metricdata.DataPoint[int64]{
			Attributes: attrSet(c.Attrs), StartTime: w.start, Time: w.now, Value: clampInt64(c.Value),
		})
	}
	return out
}

func gauge(series []hist.CounterSeries, w window) metricdata.Gauge[int64] {
	var out metricdata.Gauge[int64]
	for _, c := range series {
		out.DataPoints = append(out.DataPoints, metricdata.DataPoint[int64]{
			Attributes: attrSet(c.Attrs), Time: w.now, Value: clampInt64(c.Value),
		})
	}
	return out
}

func attrSet(m map[string]string) attribute.Set {
	if len(m) == 0 {
		return *attribute.EmptySet()
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]attribute.KeyValue, 0, len(m))
	for _, k := range keys {
		kv = append(kv, attribute.String(k, m[k]))
	}
	return attribute.NewSet(kv...)
}

func seconds(ns uint64) float64 { return float64(ns) / 1e9 }

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
