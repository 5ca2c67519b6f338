package web

import (
	"maps"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// The JSON shapes of the API. Times are RFC 3339; latencies are seconds.

type processesView struct {
	From      time.Time     `json:"from"`
	To        time.Time     `json:"to"`
	Kind      string        `json:"kind"` // cpu or off_cpu
	Unit      string        `json:"unit"` // of each process's value: samples or nanoseconds
	Processes []processView `json:"processes"`
}

type processView struct {
	Service string `json:"service"`
	// Samples is what the kind weighs: CPU samples, or nanoseconds blocked
	// of an off-CPU view (then also in Value, as in every view).
	Samples  int64             `json:"samples"`
	Value    int64             `json:"value"`
	Profiles int               `json:"profiles"`
	LastSeen time.Time         `json:"last_seen"`
	Attrs    map[string]string `json:"attrs,omitempty"` // of the newest profile
}

type flameView struct {
	Kind     string     `json:"kind"` // cpu or off_cpu
	Service  string     `json:"service,omitempty"`
	From     time.Time  `json:"from"`
	To       time.Time  `json:"to"`
	Profiles int        `json:"profiles"`
	Unit     string     `json:"unit"` // of the values: samples (CPU) or nanoseconds (off-CPU)
	Root     *FlameNode `json:"root"`
}

type histogramsView struct {
	Metrics  []metricView  `json:"metrics"`
	Counters []counterView `json:"counters"`
}

type metricView struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Unit        string       `json:"unit"`
	Series      []seriesView `json:"series"`
}

type seriesView struct {
	Attrs      map[string]string `json:"attrs"`
	Time       time.Time         `json:"time"`
	LastMinute distView          `json:"last_minute"`
	Cumulative distView          `json:"cumulative"`
	History    []pointView       `json:"history"`
}

// distView is a distribution over a window: buckets span the occupied
// range contiguously (empty ones included, so a chart's axis is even).
type distView struct {
	WindowSeconds float64      `json:"window_seconds"`
	Count         uint64       `json:"count"`
	SumSeconds    float64      `json:"sum_seconds"`
	ZeroCount     uint64       `json:"zero_count"`
	Overflow      uint64       `json:"overflow"`
	Buckets       []bucketView `json:"buckets"`
	P50           *float64     `json:"p50"`
	P90           *float64     `json:"p90"`
	P99           *float64     `json:"p99"`
}

type bucketView struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	Count uint64  `json:"count"`
}

type pointView struct {
	Time time.Time `json:"t"`
	Rate float64   `json:"rate"`
	P50  *float64  `json:"p50"`
	P90  *float64  `json:"p90"`
	P99  *float64  `json:"p99"`
}

type counterView struct {
	Name  string            `json:"name"`
	Unit  string            `json:"unit,omitempty"`
	Attrs map[string]string `json:"attrs"`
	Value uint64            `json:"value"`
	Rate  *float64          `json:"rate,omitempty"`
}

type selfView struct {
	Time     time.Time     `json:"time"`
	Counters []selfCounter `json:"counters"`
	Web      webStats      `json:"web"`
}

// webStats is the store's own accounting.
type webStats struct {
	Profiles        int    `json:"profiles"`
	EstimatedBytes  int64  `json:"estimated_bytes"`
	MaxBytes        int64  `json:"max_bytes"`
	RetentionSecs   int64  `json:"retention_seconds"`
	EvictedByAge    uint64 `json:"evicted_by_age"`
	EvictedByBytes  uint64 `json:"evicted_by_bytes"`
	InvalidProfiles uint64 `json:"invalid_profiles"`
	Series          int    `json:"series"`
	SeriesDropped   uint64 `json:"series_dropped"`
	HistogramBytes  int64  `json:"histogram_bytes"` // estimated, bounded by the series cap
}

// processes lists the services in the window, most samples first.
func processesOf(entries []entry) []processView {
	by := map[string]*processView{}
	for _, e := range entries {
		pv := by[e.p.Service]
		if pv == nil {
			pv = &processView{Service: e.p.Service}
			by[e.p.Service] = pv
		}
		pv.Samples += e.value
		pv.Value += e.value
		pv.Profiles++
		if !e.p.End.Before(pv.LastSeen) {
			pv.LastSeen, pv.Attrs = e.p.End, e.p.Attrs
		}
	}
	out := make([]processView, 0, len(by))
	for _, pv := range by {
		out = append(out, *pv)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Samples != out[j].Samples {
			return out[i].Samples > out[j].Samples
		}
		return out[i].Service < out[j].Service
	})
	return out
}

// histogramsView renders every series. Called with s.mu held.
func (hs *histStore) view() histogramsView {
	byMetric := map[string]*metricView{}
	for _, k := range slices.Sorted(maps.Keys(hs.series)) {
		sr := hs.series[k]
		mv := byMetric[sr.metric.name]
		if mv == nil {
			mv = &metricView{Name: sr.metric.name, Description: sr.metric.description, Unit: sr.metric.unit}
			byMetric[sr.metric.name] = mv
		}
		mv.Series = append(mv.Series, sr.view())
	}
	out := histogramsView{Metrics: []metricView{}, Counters: []counterView{}}
	for _, name := range slices.Sorted(maps.Keys(byMetric)) {
		out.Metrics = append(out.Metrics, *byMetric[name])
	}
	for _, k := range slices.Sorted(maps.Keys(hs.counters)) {
		out.Counters = append(out.Counters, hs.counters[k].view())
	}
	return out
}

func (sr *histSeries) view() seriesView {
	latest := sr.snaps[len(sr.snaps)-1]
	v := seriesView{Attrs: sr.attrs, Time: latest.at, Cumulative: distOf(latest.h, 0)}
	v.LastMinute = sr.lastMinute()
	v.History = make([]pointView, 0, len(sr.points))
	for _, p := range sr.points {
		v.History = append(v.History, pointView{Time: p.at, Rate: p.rate, P50: finite(p.p50), P90: finite(p.p90), P99: finite(p.p99)})
	}
	return v
}

// lastMinute is the distribution since the newest snapshot at least a
// minute older than the latest. A series seen for less than a minute has
// no such base: its window is then everything since the program attached,
// with the time since the first reading as the (shorter) known span.
func (sr *histSeries) lastMinute() distView {
	latest, base := sr.snaps[len(sr.snaps)-1], sr.snaps[0]
	if len(sr.snaps) > 1 && !base.at.After(latest.at.Add(-lastWindow)) {
		return distOf(hist.Sub(latest.h, base.h), latest.at.Sub(base.at).Seconds())
	}
	return distOf(latest.h, latest.at.Sub(base.at).Seconds())
}

func distOf(h hist.Histogram, window float64) distView {
	d := distView{
		WindowSeconds: window, Count: h.Count, SumSeconds: float64(h.SumNs) / 1e9,
		ZeroCount: h.ZeroCount, Overflow: h.Overflow, Buckets: make([]bucketView, 0, len(h.Counts)),
	}
	for i, c := range h.Counts {
		idx := h.Offset + int32(i)
		d.Buckets = append(d.Buckets, bucketView{Lower: bucketLower(h.Scale, idx), Upper: bucketLower(h.Scale, idx+1), Count: c})
	}
	d.P50, d.P90, d.P99 = finite(quantileOrNaN(h, 0.5)), finite(quantileOrNaN(h, 0.9)), finite(quantileOrNaN(h, 0.99))
	return d
}

func (c *counterSeries) view() counterView {
	v := counterView{Name: c.metric.name, Unit: c.metric.unit, Attrs: c.attrs, Value: c.value}
	if dt := c.at.Sub(c.prevAt).Seconds(); c.hasPrev && dt > 0 {
		r := float64(c.value-c.prev) / dt
		v.Rate = &r
	}
	return v
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// stats is the store's own accounting. Called with s.mu held.
func (s *Store) stats() webStats {
	return webStats{
		Profiles: len(s.profiles), EstimatedBytes: s.bytes, MaxBytes: s.opts.MaxBytes,
		RetentionSecs: int64(s.opts.Retention / time.Second),
		EvictedByAge:  s.evicted.age, EvictedByBytes: s.evicted.bytes, InvalidProfiles: s.evicted.invalid,
		Series: len(s.hists.series) + len(s.hists.counters), SeriesDropped: s.hists.dropped,
		HistogramBytes: s.hists.bytes(),
	}
}
