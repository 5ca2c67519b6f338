package web

import (
	"time"
	"unsafe"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// Bounds of the histogram history. Each series keeps at most maxPoints
// interval points (an hour at one collection every 10 s) and, for the
// "last minute" view, cumulative snapshots at least snapSpacing apart
// covering lastWindow, plus the newest one. maxSeries caps how many series
// are kept at all; the latency programs cap their own cardinality, this is
// the store's own guard.
const (
	maxPoints   = 360
	snapSpacing = 5 * time.Second
	lastWindow  = time.Minute
	maxSnaps    = int(lastWindow/snapSpacing) + 3
	maxSeries   = 512
)

// histStore holds every histogram and counter series seen.
type histStore struct {
	series   map[string]*histSeries
	counters map[string]*counterSeries
	dropped  uint64 // new series refused because maxSeries were already kept
}

func newHistStore() histStore {
	return histStore{series: map[string]*histSeries{}, counters: map[string]*counterSeries{}}
}

// histSeries is one histogram series of one metric.
type histSeries struct {
	metric metricInfo
	attrs  map[string]string
	snaps  []snapshot // cumulative, oldest first, the newest always last
	points []point    // one per collection interval, oldest first
}

type metricInfo struct{ name, description, unit string }

// snapshot is a cumulative histogram as read at a collection.
type snapshot struct {
	at time.Time
	h  hist.Histogram
}

// point summarises one collection interval for the history charts.
type point struct {
	at            time.Time
	rate          float64 // values per second over the interval
	p50, p90, p99 float64 // seconds, NaN when the interval saw no value
}

// counterSeries is one monotonic counter carried in a reading.
type counterSeries struct {
	metric      metricInfo
	attrs       map[string]string
	at, prevAt  time.Time
	value, prev uint64
	hasPrev     bool
}

// AddReadings records the latency programs' readings taken at at. Values
// are cumulative since each program attached; the store derives the
// per-interval rates and the last minute's distribution from consecutive
// readings, treats a count that goes down as a restart, and ignores a
// reading not newer than the previous one of its series.
func (s *Store) AddReadings(at time.Time, r []hist.Reading) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	cut := s.cutoff()
	for _, rd := range r {
		info := metricInfo{rd.Name, rd.Description, rd.Unit}
		for _, sr := range rd.Histograms {
			if hs := s.hists.histSeriesFor(info, sr.Attrs); hs != nil {
				hs.add(at, sr.Hist, cut)
			}
		}
		for _, c := range rd.Counters {
			if cs := s.hists.counterFor(info, c.Attrs); cs != nil {
				cs.add(at, c.Value)
			}
		}
	}
	s.hists.forget(cut)
}

// bytes estimates the memory the series hold: bucket counts of the
// snapshots, the history points, and a fixed share per series.
func (hs *histStore) bytes() int64 {
	const perSeries, perSnap, perPoint = 256, 96, int64(unsafe.Sizeof(point{}))
	n := int64(len(hs.series)+len(hs.counters)) * perSeries
	for _, sr := range hs.series {
		for _, sn := range sr.snaps {
			n += perSnap + 8*int64(cap(sn.h.Counts))
		}
		n += perPoint * int64(cap(sr.points))
	}
	return n
}

// forget drops series not read since cut, such as the per-process series
// of processes that are gone, so their slots can be reused.
func (hs *histStore) forget(cut time.Time) {
	for k, sr := range hs.series {
		if sr.snaps[len(sr.snaps)-1].at.Before(cut) {
			delete(hs.series, k)
		}
	}
	for k, c := range hs.counters {
		if c.at.Before(cut) {
			delete(hs.counters, k)
		}
	}
}

func (hs *histStore) histSeriesFor(info metricInfo, attrs map[string]string) *histSeries {
	k := hist.SeriesKey(info.name, attrs)
	if sr, ok := hs.series[k]; ok {
		sr.metric = info
		return sr
	}
	if len(hs.series)+len(hs.counters) >= maxSeries {
		hs.dropped++
		return nil
	}
	sr := &histSeries{metric: info, attrs: copyAttrs(attrs)}
	hs.series[k] = sr
	return sr
}

func (hs *histStore) counterFor(info metricInfo, attrs map[string]string) *counterSeries {
	k := hist.SeriesKey(info.name, attrs)
	if c, ok := hs.counters[k]; ok {
		c.metric = info
		return c
	}
	if len(hs.series)+len(hs.counters) >= maxSeries {
		hs.dropped++
		return nil
	}
	c := &counterSeries{metric: info, attrs: copyAttrs(attrs)}
	hs.counters[k] = c
	return c
}

// add appends one cumulative reading: an interval point against the
// previous snapshot, then the snapshot itself.
func (sr *histSeries) add(at time.Time, h hist.Histogram, cut time.Time) {
	h = h.Trimmed()
	if n := len(sr.snaps); n > 0 {
		last := sr.snaps[n-1]
		switch {
		case !at.After(last.at):
			return // not newer than what we have: no interval to show
		case h.Count < last.h.Count:
			sr.snaps = sr.snaps[:0] // the program restarted: start over
		default:
			sr.points = append(sr.points, intervalPoint(last, snapshot{at, h}))
		}
	}
	sr.addSnap(snapshot{at, h})
	sr.prunePoints(cut)
}

// addSnap keeps snapshots at least snapSpacing apart (the newest may be
// closer: it replaces the previous newest) and drops those no longer needed
// to reach back lastWindow.
func (sr *histSeries) addSnap(sn snapshot) {
	n := len(sr.snaps)
	if n >= 2 && sr.snaps[n-1].at.Sub(sr.snaps[n-2].at) < snapSpacing {
		sr.snaps[n-1] = sn
	} else {
		sr.snaps = append(sr.snaps, sn)
	}
	start := sn.at.Add(-lastWindow)
	drop := 0
	for drop+1 < len(sr.snaps) && !sr.snaps[drop+1].at.After(start) {
		drop++
	}
	if over := len(sr.snaps) - drop - maxSnaps; over > 0 {
		drop += over
	}
	sr.snaps = append(sr.snaps[:0], sr.snaps[drop:]...)
}

func (sr *histSeries) prunePoints(cut time.Time) {
	drop := 0
	for drop < len(sr.points) && (sr.points[drop].at.Before(cut) || len(sr.points)-drop > maxPoints) {
		drop++
	}
	sr.points = append(sr.points[:0], sr.points[drop:]...)
}

func intervalPoint(prev, cur snapshot) point {
	d := hist.Sub(cur.h, prev.h)
	dt := cur.at.Sub(prev.at).Seconds()
	return point{
		at: cur.at, rate: float64(d.Count) / dt,
		p50: quantileOrNaN(d, 0.50), p90: quantileOrNaN(d, 0.90), p99: quantileOrNaN(d, 0.99),
	}
}

func (c *counterSeries) add(at time.Time, v uint64) {
	if !c.at.IsZero() && !at.After(c.at) {
		return
	}
	if !c.at.IsZero() && v >= c.value {
		c.prev, c.prevAt, c.hasPrev = c.value, c.at, true
	} else {
		c.hasPrev = false // first reading or a restart
	}
	c.value, c.at = v, at
}

func copyAttrs(a map[string]string) map[string]string {
	out := make(map[string]string, len(a))
	for k, v := range a {
		out[k] = v
	}
	return out
}
