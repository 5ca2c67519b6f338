package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	vhooks "github.com/vigil-ebpf/vigil/bpf/hooks"
)

type nopCloser struct{ closed *int }

func (c nopCloser) Close() error { *c.closed++; return nil }

// fakeHook attaches with the first of order not skipped, like attach.First.
func fakeHook(order []string, closed *int) opener {
	return func(skip map[string]bool) (attach.Report, io.Closer, error) {
		var strategies []attach.Strategy
		for _, n := range order {
			strategies = append(strategies, attach.Strategy{Name: n, Try: func() error { return nil }})
		}
		r, err := attach.First("fake", strategies, skip)
		if err != nil {
			return r, nil, err
		}
		return r, nopCloser{closed}, nil
	}
}

func TestWalkForcesEachStrategyOffInTurn(t *testing.T) {
	var b strings.Builder
	closed := 0
	if !walk(&b, "fake", fakeHook([]string{"fentry", "kprobe", "tracepoint"}, &closed)) {
		t.Fatal("walk reported failure")
	}
	want := []string{
		"vigil-strategy: hook=fake skip=- chosen=fentry",
		"vigil-strategy: hook=fake skip=fentry chosen=kprobe",
		"vigil-strategy: hook=fake skip=fentry,kprobe chosen=tracepoint",
		"vigil-strategy: hook=fake skip=fentry,kprobe,tracepoint chosen=none",
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got lines:\n%s", b.String())
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
	if closed != 3 {
		t.Errorf("closed %d handles, want 3", closed)
	}
}

func TestWalkFailsWhenNothingAttachesUnforced(t *testing.T) {
	open := func(map[string]bool) (attach.Report, io.Closer, error) {
		return attach.Report{}, nil, errors.New("no BTF")
	}
	var b strings.Builder
	if walk(&b, "dead", open) {
		t.Fatal("walk reported success for a hook that never attached")
	}
	if !strings.Contains(b.String(), "hook=dead skip=- chosen=none") {
		t.Errorf("output %q", b.String())
	}
}

func TestWalkStopsWhenASkippedStrategyIsChosen(t *testing.T) {
	closed := 0
	stubborn := func(map[string]bool) (attach.Report, io.Closer, error) {
		return attach.Report{Hook: "s", Chosen: "fentry"}, nopCloser{&closed}, nil
	}
	if walk(io.Discard, "s", stubborn) {
		t.Fatal("a hook ignoring its skip set passed")
	}
}

// Every attach point of bpf/hooks is probed, in its order, and nothing else.
func TestEveryHookIsProbed(t *testing.T) {
	var want, got []string
	for _, p := range vhooks.Points() {
		want = append(want, p.Name)
	}
	for _, h := range hooks() {
		got = append(got, h.name)
	}
	if !slices.Equal(got, want) || len(openers) != len(want) {
		t.Errorf("probed %q (%d openers), bpf/hooks lists %q", got, len(openers), want)
	}
}

// bpf/cpuprofile can't read bpf/hooks (it is edited elsewhere); its exported
// names must still be the list's.
func TestProfilerNamesAreTheRegistrys(t *testing.T) {
	p, ok := vhooks.PointOf(cpuprofile.UnwindHook)
	if !ok {
		t.Fatalf("hook %s is not in bpf/hooks", cpuprofile.UnwindHook)
	}
	if got, want := p.StrategyNames(), []string{cpuprofile.StrategyTables, cpuprofile.StrategyFramePointer}; !slices.Equal(got, want) {
		t.Errorf("bpf/hooks lists %q for %s, bpf/cpuprofile has %q", got, p.Name, want)
	}
}
