package main

import (
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// snapshot remembers the cumulative values last printed, so each interval
// shows only what happened in it, as BCC's tools do when they clear maps.
type snapshot struct {
	hists    map[string]hist.Histogram
	counters map[string]uint64
}

func newSnapshot() *snapshot {
	return &snapshot{hists: map[string]hist.Histogram{}, counters: map[string]uint64{}}
}

// since returns readings holding the change from the previous call and
// remembers the current values.
func (s *snapshot) since(readings []hist.Reading) []hist.Reading {
	out := make([]hist.Reading, 0, len(readings))
	for _, r := range readings {
		d := r
		d.Histograms = make([]hist.Series, len(r.Histograms))
		for i, series := range r.Histograms {
			k := hist.SeriesKey(r.Name, series.Attrs)
			d.Histograms[i] = hist.Series{Attrs: series.Attrs, Hist: histDelta(series.Hist, s.hists[k])}
			s.hists[k] = series.Hist
		}
		d.Counters = make([]hist.CounterSeries, len(r.Counters))
		for i, c := range r.Counters {
			k := hist.SeriesKey(r.Name, c.Attrs)
			d.Counters[i] = hist.CounterSeries{Attrs: c.Attrs, Value: sub(c.Value, s.counters[k])}
			s.counters[k] = c.Value
		}
		out = append(out, d)
	}
	return out
}

// histDelta subtracts prev from cur bucket by bucket (buckets are matched by
// their OTel index, so differing offsets are fine).
func histDelta(cur, prev hist.Histogram) hist.Histogram {
	d := cur
	d.Counts = make([]uint64, len(cur.Counts))
	for i, c := range cur.Counts {
		j := int(cur.Offset) + i - int(prev.Offset)
		var p uint64
		if prev.Scale == cur.Scale && j >= 0 && j < len(prev.Counts) {
			p = prev.Counts[j]
		}
		d.Counts[i] = sub(c, p)
	}
	d.ZeroCount = sub(cur.ZeroCount, prev.ZeroCount)
	d.Count = sub(cur.Count, prev.Count)
	d.SumNs = sub(cur.SumNs, prev.SumNs)
	d.Overflow = sub(cur.Overflow, prev.Overflow)
	return d
}

// sub is a-b for cumulative values; a value that went down was reset, so
// the whole current value is new.
func sub(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return a - b
}
