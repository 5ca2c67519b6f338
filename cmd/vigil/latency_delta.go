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
			d.Histograms[i] = hist.Series{Attrs: series.Attrs, Hist: hist.Sub(series.Hist, s.hists[k])}
			s.hists[k] = series.Hist
		}
		d.Counters = make([]hist.CounterSeries, len(r.Counters))
		for i, c := range r.Counters {
			k := hist.SeriesKey(r.Name, c.Attrs)
			d.Counters[i] = hist.CounterSeries{Attrs: c.Attrs, Value: hist.SubCount(c.Value, s.counters[k])}
			s.counters[k] = c.Value
		}
		out = append(out, d)
	}
	return out
}
