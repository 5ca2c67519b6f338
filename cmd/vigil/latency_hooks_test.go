package main

import (
	"maps"
	"slices"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/hooks"
)

// Every latency hook of bpf/hooks can be opened, and nothing else.
func TestEveryLatencyHookHasAnOpener(t *testing.T) {
	want := hooks.LatencyNames()
	if got := slices.Sorted(maps.Keys(latencyOpeners)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("openers for %q, bpf/hooks lists %q", got, want)
	}
	var order []string
	for _, h := range latencyHooks() {
		order = append(order, h.name)
	}
	if !slices.Equal(order, want) {
		t.Errorf("hooks open in order %q, want bpf/hooks' %q", order, want)
	}
}
