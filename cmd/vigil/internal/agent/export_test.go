package agent

import (
	"maps"
	"slices"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/profiler"
)

// The health table rates a counter against its previous reading by key, so
// a series with several attributes must get the same key on every read.
func TestFlattenCountersKeysAreStable(t *testing.T) {
	rs := []hist.Reading{{Name: "vigil.profile.drops", Counters: []hist.CounterSeries{
		{Attrs: map[string]string{"vigil.sink": "directory /tmp", "reason": "full", "z": "1", "a": "2"}, Value: 3},
	}}}
	want := []string{"vigil.profile.drops{a=2}{reason=full}{vigil.sink=directory /tmp}{z=1}"}
	// Go randomises map iteration per range; enough reads show it.
	for range 50 {
		if got := slices.Collect(maps.Keys(flattenCounters(rs))); !slices.Equal(got, want) {
			t.Fatalf("keys = %q, want %q", got, want)
		}
	}
}

// The Python walker's self-metrics: processes by version (only when there
// are any), frames, and unreadable frames by reason ("none" at zero so the
// series exists from the start).
func TestPythonReadings(t *testing.T) {
	byName := func(rs []hist.Reading) map[string]hist.Reading {
		m := map[string]hist.Reading{}
		for _, r := range rs {
			m[r.Name] = r
		}
		return m
	}
	got := byName(pythonReadings(cpuprofile.PythonStats{Versions: map[string]int{"3.12": 1, "3.11": 2}, Frames: 40},
		map[string]uint64{"checksum_mismatch": 3}))
	procs := got[profiler.MetricPythonProcesses].Gauges
	if len(procs) != 2 || procs[0].Attrs["version"] != "3.11" || procs[0].Value != 2 || procs[1].Value != 1 {
		t.Errorf("processes by version: %+v", procs)
	}
	if c := got[profiler.MetricPythonFrames].Counters; len(c) != 1 || c[0].Value != 40 {
		t.Errorf("frames: %+v", c)
	}
	if c := got[profiler.MetricPythonUnreadable].Counters; len(c) != 1 || c[0].Attrs[hist.AttrReason] != "checksum_mismatch" || c[0].Value != 3 {
		t.Errorf("unreadable: %+v", c)
	}
	got = byName(pythonReadings(cpuprofile.PythonStats{}, nil))
	if _, ok := got[profiler.MetricPythonProcesses]; ok {
		t.Error("a processes gauge with no process")
	}
	if c := got[profiler.MetricPythonUnreadable].Counters; len(c) != 1 || c[0].Attrs[hist.AttrReason] != "none" {
		t.Errorf("unreadable with none: %+v", c)
	}
}
