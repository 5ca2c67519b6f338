package exporter

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

var testWindow = window{start: time.Unix(1000, 0), now: time.Unix(1010, 0)}

func TestExponentialPointKeepsKernelBucketsAndTrimsEmptyEnds(t *testing.T) {
	s := hist.Series{
		Attrs: map[string]string{"disk.io.direction": "read"},
		Hist: hist.Histogram{Scale: 3, Offset: -80, Counts: []uint64{0, 0, 4, 0, 7, 0},
			ZeroCount: 2, Count: 13, SumNs: 1_500_000_000},
	}
	dp := exponentialPoint(s, testWindow)
	if dp.Scale != 3 || dp.ZeroCount != 2 || dp.Count != 13 {
		t.Errorf("scale/zero/count = %d/%d/%d, want 3/2/13", dp.Scale, dp.ZeroCount, dp.Count)
	}
	if dp.Sum != 1.5 {
		t.Errorf("sum = %g s, want 1.5 (the kernel's ns divided by 1e9)", dp.Sum)
	}
	if dp.PositiveBucket.Offset != -78 || !equal(dp.PositiveBucket.Counts, []uint64{4, 0, 7}) {
		t.Errorf("buckets = offset %d %v, want offset -78 [4 0 7]", dp.PositiveBucket.Offset, dp.PositiveBucket.Counts)
	}
	if !dp.StartTime.Equal(testWindow.start) || !dp.Time.Equal(testWindow.now) {
		t.Errorf("times %v..%v, want the attach time and the collection time", dp.StartTime, dp.Time)
	}
	if v, ok := dp.Attributes.Value(attribute.Key("disk.io.direction")); !ok || v.AsString() != "read" {
		t.Errorf("attributes %v, want disk.io.direction=read", dp.Attributes.ToSlice())
	}
}

func TestEmptyHistogramExportsNoBuckets(t *testing.T) {
	dp := exponentialPoint(hist.Series{Hist: hist.Histogram{Scale: 3, Offset: -80, Counts: make([]uint64, 5)}}, testWindow)
	if len(dp.PositiveBucket.Counts) != 0 || dp.Count != 0 {
		t.Errorf("empty histogram exported %d buckets, count %d", len(dp.PositiveBucket.Counts), dp.Count)
	}
}

func TestConvertReadingKinds(t *testing.T) {
	r := readReading(0, 20_000_000, 20_000_000, 3_000)
	m, err := convertReading(r, Exponential, testWindow)
	if err != nil {
		t.Fatal(err)
	}
	eh, ok := m.Data.(metricdata.ExponentialHistogram[float64])
	if !ok || eh.Temporality != metricdata.CumulativeTemporality || len(eh.DataPoints) != 1 {
		t.Fatalf("default kind gave %T %+v, want one cumulative exponential histogram point", m.Data, m.Data)
	}
	m, err = convertReading(r, Explicit, testWindow)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok || h.Temporality != metricdata.CumulativeTemporality || len(h.DataPoints) != 1 {
		t.Fatalf("explicit kind gave %T, want one cumulative explicit histogram point", m.Data)
	}
	dp := h.DataPoints[0]
	// 20 ms is in (2^-6, 2^-5] s; 3 µs in (2^-19, 2^-18] s; 0 in the first bucket.
	want := map[int]uint64{0: 1, -18 - MinBoundExp: 1, -5 - MinBoundExp: 2}
	for k, c := range dp.BucketCounts {
		if c != want[k] {
			t.Errorf("explicit bucket %d (le %g s) = %d, want %d", k, boundOrInf(k), c, want[k])
		}
	}
	if len(dp.BucketCounts) != len(dp.Bounds)+1 || dp.Count != 4 || dp.Sum != 0.040003 {
		t.Errorf("%d counts for %d bounds, count %d, sum %g; want len(bounds)+1, 4, 0.040003", len(dp.BucketCounts), len(dp.Bounds), dp.Count, dp.Sum)
	}
	if m.Name != "vigil.read.duration" || m.Unit != "s" || m.Description == "" {
		t.Errorf("metric %q unit %q description %q", m.Name, m.Unit, m.Description)
	}
}

func TestCountersAreCumulativeMonotonicSums(t *testing.T) {
	m, err := convertReading(retransmitReading(42), Exponential, testWindow)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok || !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
		t.Fatalf("counter became %T %+v, want a cumulative monotonic Sum", m.Data, m.Data)
	}
	if s.DataPoints[0].Value != 42 || m.Unit != "{segment}" {
		t.Errorf("value %d unit %q, want 42 {segment}", s.DataPoints[0].Value, m.Unit)
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
