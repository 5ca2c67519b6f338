package web

import (
	"math"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// histOf builds a cumulative histogram at scale holding each ns value once,
// the way the BPF side files them (hist.Layout), so the tests check the
// view's bounds against the kernel's own bucketing.
var layouts = map[int32]*hist.Layout{}

func histOf(t *testing.T, scale int32, values ...uint64) hist.Histogram {
	t.Helper()
	l := layouts[scale]
	if l == nil {
		var err error
		if l, err = hist.NewLayout(scale, 1000, 1<<40); err != nil {
			t.Fatal(err)
		}
		layouts[scale] = l
	}
	h := hist.Histogram{Scale: scale, Offset: l.MinIndex, Counts: make([]uint64, len(l.Bounds))}
	for _, v := range values {
		h.Count++
		h.SumNs += v
		if v == 0 {
			h.ZeroCount++
			continue
		}
		slot, over := l.Bucket(v)
		h.Counts[slot]++
		if over {
			h.Overflow++
		}
	}
	return h
}

func TestBucketBoundsContainTheirValues(t *testing.T) {
	// 1 s, 2 s and 1.5 ms exactly; a power of two in seconds is the upper
	// edge of its bucket (OTel buckets are lower-exclusive).
	for _, scale := range []int32{0, 3, 4} {
		for _, ns := range []uint64{1_000_000_000, 2_000_000_000, 1_500_000, 1001, 999_999_999_999} {
			d := distOf(histOf(t, scale, ns).Trimmed(), 0)
			if len(d.Buckets) != 1 {
				t.Fatalf("scale %d, %d ns: %d buckets", scale, ns, len(d.Buckets))
			}
			b, v := d.Buckets[0], float64(ns)/1e9
			if !(b.Lower < v && v <= b.Upper*(1+1e-12)) || b.Count != 1 {
				t.Errorf("scale %d, %d ns: bucket (%g, %g] count %d does not hold %g s", scale, ns, b.Lower, b.Upper, b.Count, v)
			}
		}
	}
	d := distOf(histOf(t, 0, 1_000_000_000).Trimmed(), 0)
	if d.Buckets[0].Lower != 0.5 || d.Buckets[0].Upper != 1 {
		t.Errorf("1 s at scale 0: (%v, %v], want exactly (0.5, 1]", d.Buckets[0].Lower, d.Buckets[0].Upper)
	}
}

func TestQuantileEdges(t *testing.T) {
	if _, ok := quantile(hist.Histogram{Scale: 3}, 0.5); ok {
		t.Error("empty histogram has a median")
	}
	d := distOf(histOf(t, 3).Trimmed(), 0)
	if d.P50 != nil || d.P99 != nil || len(d.Buckets) != 0 {
		t.Errorf("empty: %+v", d)
	}
	if v, ok := quantile(histOf(t, 3, 0, 0, 0), 0.99); !ok || v != 0 {
		t.Errorf("only zeros: p99 %v %v, want 0", v, ok)
	}
	// 90 zeros and 10 values of 1 ms: p50 and p90 are 0, p99 in 1 ms's bucket.
	vals := make([]uint64, 0, 100)
	for range 90 {
		vals = append(vals, 0)
	}
	for range 10 {
		vals = append(vals, 1_000_000)
	}
	h := histOf(t, 3, vals...)
	p50, _ := quantile(h, 0.5)
	p90, _ := quantile(h, 0.9)
	p99, _ := quantile(h, 0.99)
	idx := hist.IndexOf(3, 1_000_000)
	if p50 != 0 || p90 != 0 || p99 <= bucketLower(3, idx) || p99 > bucketLower(3, idx+1) {
		t.Errorf("zeros and 1 ms: p50 %g p90 %g p99 %g", p50, p90, p99)
	}
	// The top quantile of one bucket is its upper edge, never beyond.
	if v, _ := quantile(histOf(t, 3, 1_000_000), 1); math.Abs(v-bucketLower(3, idx+1)) > 1e-15 {
		t.Errorf("p100 of one value %g, want the bucket's upper edge %g", v, bucketLower(3, idx+1))
	}
	// Overflow: values past the last bound sit in the last bucket.
	h = histOf(t, 0, 1<<50)
	d = distOf(h.Trimmed(), 0)
	if d.Overflow != 1 || d.P99 == nil || *d.P99 > d.Buckets[len(d.Buckets)-1].Upper {
		t.Errorf("overflow: %+v", d)
	}
	// Uniform over ten buckets: percentiles fall in order in their buckets.
	var spread []uint64
	for i := range 1000 {
		spread = append(spread, uint64(1_000_000*math.Pow(2, float64(i)/100)))
	}
	d = distOf(histOf(t, 3, spread...).Trimmed(), 0)
	if !(*d.P50 < *d.P90 && *d.P90 < *d.P99) || math.Abs(*d.P50-0.032) > 0.032*0.09 {
		t.Errorf("spread: p50 %g p90 %g p99 %g, want increasing, p50 ≈ 32 ms", *d.P50, *d.P90, *d.P99)
	}
}

func TestDeltaAlignsOffsetsAndRestarts(t *testing.T) {
	prev := histOf(t, 3, 2_000, 1_000_000).Trimmed()
	cur := histOf(t, 3, 2_000, 1_000_000, 1_000_000, 5_000_000_000, 0).Trimmed()
	d := hist.Sub(cur, prev)
	if d.Count != 3 || d.ZeroCount != 1 || d.SumNs != 5_001_000_000 {
		t.Fatalf("delta %+v", d)
	}
	var n uint64
	for _, c := range d.Counts {
		n += c
	}
	if n != 2 || d.Offset != hist.IndexOf(3, 1_000_000) {
		t.Errorf("delta buckets %v from %d, want 2 values from 1 ms's bucket", d.Counts, d.Offset)
	}
	// A lower count means a restart: the new reading is all there is.
	if r := hist.Sub(prev, cur); r.Count != prev.Count {
		t.Errorf("restart delta count %d, want %d", r.Count, prev.Count)
	}
}

func reading(h hist.Histogram) []hist.Reading {
	return []hist.Reading{{Name: "vigil.read.duration", Unit: "s", Description: "read() latency.",
		Histograms: []hist.Series{{Attrs: map[string]string{"vigil.hook": "read"}, Hist: h}},
		Counters:   []hist.CounterSeries{{Attrs: map[string]string{"reason": "overflow"}, Value: h.Overflow}}}}
}

func TestLastMinuteAndHistory(t *testing.T) {
	s, clock := newTestStore(Options{}, t0)
	var vals []uint64
	// Every 10 s, ten more reads of 1 ms; from t0+60s on, each batch is 1 s.
	for i := range 10 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		v := uint64(1_000_000)
		if i >= 6 {
			v = 1_000_000_000
		}
		for range 10 {
			vals = append(vals, v)
		}
		clock.t = at
		s.AddReadings(at, reading(histOf(t, 3, vals...)))
	}
	v := s.hists.view()
	if len(v.Metrics) != 1 || len(v.Metrics[0].Series) != 1 {
		t.Fatalf("view %+v", v)
	}
	sr := v.Metrics[0].Series[0]
	// Latest at t0+90s, base at t0+30s: the batches of t0+40s..t0+90s.
	lm := sr.LastMinute
	if lm.WindowSeconds != 60 || lm.Count != 60 || *lm.P50 < 0.9 || *lm.P50 > 1.1 {
		t.Errorf("last minute: window %v, count %d, p50 %v; want 60 s, 60, ≈1 s", lm.WindowSeconds, lm.Count, *lm.P50)
	}
	if sr.Cumulative.Count != 100 || *sr.Cumulative.P50 > 0.0011 {
		t.Errorf("cumulative count %d p50 %v, want 100 and ≈1 ms", sr.Cumulative.Count, *sr.Cumulative.P50)
	}
	if len(sr.History) != 9 || sr.History[0].Rate != 1 || *sr.History[8].P99 < 0.9 {
		t.Errorf("history %d points, first rate %v", len(sr.History), sr.History[0].Rate)
	}
	if len(v.Counters) != 1 || v.Counters[0].Rate == nil || *v.Counters[0].Rate != 0 {
		t.Errorf("counters %+v", v.Counters)
	}
	s.hists.series[hist.SeriesKey("vigil.read.duration", map[string]string{"vigil.hook": "read"})].checkBounds(t)
}

func (sr *histSeries) checkBounds(t *testing.T) {
	t.Helper()
	if len(sr.snaps) > maxSnaps {
		t.Errorf("%d snapshots, more than %d", len(sr.snaps), maxSnaps)
	}
	if len(sr.points) > maxPoints {
		t.Errorf("%d points, more than %d", len(sr.points), maxPoints)
	}
}

func TestReadingsStayBounded(t *testing.T) {
	s, clock := newTestStore(Options{Retention: time.Hour}, t0)
	var last time.Time
	for i := range 2 * 3600 { // two hours, one reading a second
		last = t0.Add(time.Duration(i) * time.Second)
		clock.t = last
		s.AddReadings(last, reading(histOf(t, 3, uint64(i+1)*1000)))
	}
	sr := s.hists.series[hist.SeriesKey("vigil.read.duration", map[string]string{"vigil.hook": "read"})]
	sr.checkBounds(t)
	if len(sr.points) != maxPoints || sr.points[len(sr.points)-1].at != last {
		t.Errorf("%d points ending %v", len(sr.points), sr.points[len(sr.points)-1].at)
	}
	// Only the last minute's base and the spaced snapshots after it remain.
	if first := sr.snaps[0].at; last.Sub(first) < lastWindow || last.Sub(first) > lastWindow+snapSpacing {
		t.Errorf("oldest snapshot %v before the newest, want just over a minute", last.Sub(first))
	}
	// A series nobody reports any more is forgotten after the retention.
	clock.t = last.Add(2 * time.Hour)
	s.AddReadings(clock.t, nil)
	if len(s.hists.series) != 0 || len(s.hists.counters) != 0 {
		t.Errorf("stale series kept: %d, %d", len(s.hists.series), len(s.hists.counters))
	}
}

func TestSeriesCap(t *testing.T) {
	s := NewStore(Options{})
	now := time.Now()
	for i := range maxSeries + 10 {
		s.AddReadings(now, []hist.Reading{{Name: "m", Histograms: []hist.Series{{
			Attrs: map[string]string{"i": string(rune('a' + i%26)), "n": time.Duration(i).String()}, Hist: hist.Histogram{Scale: 3}}}}})
	}
	if len(s.hists.series) != maxSeries || s.hists.dropped != 10 {
		t.Errorf("%d series, %d dropped; want %d and 10", len(s.hists.series), s.hists.dropped, maxSeries)
	}
}

func TestReadingsRestartAndRepeat(t *testing.T) {
	s, _ := newTestStore(Options{}, t0)
	s.AddReadings(t0, reading(histOf(t, 3, 1000, 2000, 3000)))
	s.AddReadings(t0, reading(histOf(t, 3, 1000, 2000, 3000, 4000)))        // same instant: ignored
	s.AddReadings(t0.Add(10*time.Second), reading(histOf(t, 3, 5_000_000))) // fewer values: restarted
	s.AddReadings(t0.Add(20*time.Second), reading(histOf(t, 3, 5_000_000, 5_000_000)))
	sr := s.hists.view().Metrics[0].Series[0]
	if sr.Cumulative.Count != 2 || len(sr.History) != 1 || sr.History[0].Rate != 0.1 {
		t.Errorf("after a restart: cumulative %d, history %+v; want 2 values and one point at 0.1/s", sr.Cumulative.Count, sr.History)
	}
	// The last minute starts at the restart: both values of 5 ms.
	if lm := sr.LastMinute; lm.Count != 2 || *lm.P50 < 0.004 || *lm.P50 > 0.006 {
		t.Errorf("last minute after a restart: %d values, p50 %v", lm.Count, *lm.P50)
	}
}
