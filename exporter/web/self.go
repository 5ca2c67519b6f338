package web

import (
	"sort"
	"time"
)

// selfState holds the two latest readings of vigil's own counters, so the
// view can show a rate next to each cumulative value.
type selfState struct {
	at, prevAt time.Time
	cur, prev  map[string]float64
}

// SetSelf records vigil's own metrics (samples, lost samples by reason,
// export failures and drops, BPF run time...) as read at at. Values are
// cumulative; names are shown as given.
func (s *Store) SetSelf(at time.Time, counters map[string]float64) {
	cp := make(map[string]float64, len(counters))
	for k, v := range counters {
		cp[k] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.self.cur != nil && at.After(s.self.at) {
		s.self.prev, s.self.prevAt = s.self.cur, s.self.at
	}
	s.self.cur, s.self.at = cp, at
}

// selfCounter is one row of the health table.
type selfCounter struct {
	Name  string   `json:"name"`
	Value float64  `json:"value"`
	Rate  *float64 `json:"rate,omitempty"` // per second since the previous reading
}

// rows returns the counters sorted by name, with rates where a
// previous reading exists and the value did not go down. Called with s.mu
// held.
func (st *selfState) rows() []selfCounter {
	out := make([]selfCounter, 0, len(st.cur))
	dt := st.at.Sub(st.prevAt).Seconds()
	for name, v := range st.cur {
		row := selfCounter{Name: name, Value: v}
		if p, ok := st.prev[name]; ok && dt > 0 && v >= p {
			r := (v - p) / dt
			row.Rate = &r
		}
		out = append(out, row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
