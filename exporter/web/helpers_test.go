package web

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// stackProfile builds a valid CPU profile shaped like the profiler's
// (samples/count and cpu/nanoseconds, 19 Hz): one sample per folded stack
// ("main;work;hot_alpha", root first) with the given sample count.
func stackProfile(t testing.TB, start time.Time, stacks map[string]int64) *profile.Profile {
	t.Helper()
	const period = int64(time.Second) / 19
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x800000, File: "/usr/bin/app", HasFunctions: true}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        period,
		TimeNanos:     start.UnixNano(),
		DurationNanos: int64(15 * time.Second),
		Mapping:       []*profile.Mapping{m},
	}
	funcs := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	for folded, n := range stacks {
		frames := strings.Split(folded, ";")
		s := &profile.Sample{Value: []int64{n, n * period}, Label: map[string][]string{"comm": {"app"}}}
		for i := len(frames) - 1; i >= 0; i-- { // leaf first
			s.Location = append(s.Location, location(p, m, funcs, locs, frames[i]))
		}
		p.Sample = append(p.Sample, s)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("test profile invalid: %v", err)
	}
	return p
}

func location(p *profile.Profile, m *profile.Mapping, funcs map[string]*profile.Function, locs map[string]*profile.Location, name string) *profile.Location {
	if l, ok := locs[name]; ok {
		return l
	}
	f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name, Filename: "app.c"}
	p.Function = append(p.Function, f)
	funcs[name] = f
	l := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: m, Address: m.Start + 0x10*uint64(len(p.Location)+1),
		Line: []profile.Line{{Function: f, Line: 1}}}
	p.Location = append(p.Location, l)
	locs[name] = l
	return l
}

// fakeClock is a settable clock for the store.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestStore(o Options, start time.Time) (*Store, *fakeClock) {
	s := NewStore(o)
	c := &fakeClock{t: start}
	s.now = c.now
	return s, c
}

// sinkProfile wraps a pprof for Send.
func sinkProfile(service string, end time.Time, p *profile.Profile) profilesink.Profile {
	return profilesink.Profile{Service: service, Start: end.Add(-15 * time.Second), End: end, Pprof: p,
		Attrs: map[string]string{"process.executable.name": service}}
}

func encode(t testing.TB, p *profile.Profile) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteUncompressed(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
