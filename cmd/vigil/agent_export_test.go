package main

import (
	"maps"
	"slices"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/hist"
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
