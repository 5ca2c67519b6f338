package web

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// find walks a path of names from n.
func find(n *FlameNode, path ...string) *FlameNode {
	for _, name := range path {
		var next *FlameNode
		for _, c := range n.Children {
			if c.Name == name {
				next = c
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// checkSums asserts that no node holds less than its children together,
// and returns how many nodes the tree has.
func checkSums(t *testing.T, n *FlameNode) int {
	t.Helper()
	var sum int64
	count := 1
	for _, c := range n.Children {
		sum += c.Value
		count += checkSums(t, c)
	}
	if sum > n.Value {
		t.Errorf("%s: children hold %d, more than its %d", n.Name, sum, n.Value)
	}
	return count
}

func sendAll(t *testing.T, s *Store, ps ...profilesink.Profile) {
	t.Helper()
	if err := s.Send(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
}

func TestFlameMergesProfilesAndFiltersByService(t *testing.T) {
	s, clock := newTestStore(Options{}, t0.Add(time.Minute))
	sendAll(t, s,
		sinkProfile("api", t0, stackProfile(t, t0, map[string]int64{"main;serve;hot_alpha": 7, "main;serve;parse": 2})),
		sinkProfile("db", t0, stackProfile(t, t0, map[string]int64{"main;query;hot_beta": 5})),
		sinkProfile("api", t0.Add(15*time.Second), stackProfile(t, t0, map[string]int64{"main;serve;hot_alpha": 3, "main;gc": 1})),
	)
	clock.t = t0.Add(time.Minute)

	root := buildFlame(s.window("", time.Time{}))
	checkSums(t, root)
	for _, c := range []struct {
		path []string
		want int64
	}{
		{nil, 18}, {[]string{"api"}, 13}, {[]string{"db"}, 5},
		{[]string{"api", "main", "serve", "hot_alpha"}, 10}, // merged across both api profiles
		{[]string{"api", "main", "serve"}, 12},
		{[]string{"api", "main", "gc"}, 1},
		{[]string{"db", "main", "query", "hot_beta"}, 5},
	} {
		n := find(root, c.path...)
		if n == nil || n.Value != c.want {
			t.Errorf("%v: got %+v, want value %d", c.path, n, c.want)
		}
	}

	api := buildFlame(s.window("api", time.Time{}))
	if api.Value != 13 || len(api.Children) != 1 || api.Children[0].Name != "api" || find(api, "db") != nil {
		t.Errorf("service=api: root %d with %d children, want only api's 13 samples", api.Value, len(api.Children))
	}
	// since leaves out the first api profile (ended at t0).
	recent := buildFlame(s.window("api", t0.Add(time.Second)))
	if n := find(recent, "api", "main", "serve", "hot_alpha"); recent.Value != 4 || n == nil || n.Value != 3 {
		t.Errorf("since t0+1s: root %d, hot_alpha %+v; want 4 and 3", recent.Value, n)
	}
}

func TestFlameNamesInlinedAndUnsymbolizedFrames(t *testing.T) {
	p := stackProfile(t, t0, map[string]int64{"main": 1})
	m := p.Mapping[0]
	callee := &profile.Function{ID: 10, Name: "inlined_callee"}
	caller := &profile.Function{ID: 11, Name: "outer_caller"}
	p.Function = append(p.Function, callee, caller)
	inl := &profile.Location{ID: 10, Mapping: m, Address: 0x401000,
		Line: []profile.Line{{Function: callee, Line: 3}, {Function: caller, Line: 9}}} // callee first, as pprof stores it
	raw := &profile.Location{ID: 11, Mapping: m, Address: 0x402345}
	p.Location = append(p.Location, inl, raw)
	p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{raw, inl}, Value: []int64{4, 4}})
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	root := buildFlame([]entry{mustEntry(t, sinkProfile("svc", t0, p))})
	if n := find(root, "svc", "outer_caller", "inlined_callee", "app+0x2345"); n == nil || n.Value != 4 {
		t.Fatalf("want svc > outer_caller > inlined_callee > app+0x2345 with 4, tree %+v", root.Children[0])
	}
}

func TestFlameLeavesOutFramesBelowTheFraction(t *testing.T) {
	stacks := map[string]int64{"main;hot_alpha": 20000, "main;tiny": 1}
	root := buildFlame([]entry{mustEntry(t, sinkProfile("svc", t0, stackProfile(t, t0, stacks)))})
	if find(root, "svc", "main", "tiny") != nil {
		t.Error("a frame with 1 of 20001 samples was sent")
	}
	if n := find(root, "svc", "main"); n == nil || n.Value != 20001 {
		t.Errorf("main %+v: its value must still count the left-out frame", n)
	}
}

// An hour of profiles from many processes stays a tree the page can draw.
func TestFlameTreeSizeBounded(t *testing.T) {
	var entries []entry
	for i := range 240 {
		stacks := map[string]int64{}
		for j := range 200 {
			stacks["main;f"+strconv.Itoa((i*7+j)%5000)+";leaf"+strconv.Itoa(j)] = 1
		}
		entries = append(entries, mustEntry(t, sinkProfile("svc"+strconv.Itoa(i%20), t0, stackProfile(t, t0, stacks))))
	}
	root := buildFlame(entries)
	if n := checkSums(t, root); n > 20000 {
		t.Errorf("%d nodes for %d samples", n, root.Value)
	}
}

func TestFlameCacheAnswersOnlyUnchangedSelections(t *testing.T) {
	s, clock := newTestStore(Options{}, t0)
	sendAll(t, s, sinkProfile("api", t0, stackProfile(t, t0, map[string]int64{"main;hot_alpha": 2})))
	var c flameCache
	tree := func(since time.Time) *FlameNode {
		entries, gen := s.windowGen("", since)
		return c.get(keyOf("cpu", "", gen, entries), entries)
	}
	first := tree(time.Time{})
	if again := tree(time.Time{}); again != first {
		t.Error("an unchanged store rebuilt the tree")
	}
	clock.t = t0.Add(15 * time.Second)
	sendAll(t, s, sinkProfile("api", clock.t, stackProfile(t, t0, map[string]int64{"main;hot_alpha": 3})))
	if both := tree(time.Time{}); both == first || both.Value != 5 {
		t.Errorf("after a new profile: value %d, same tree %v", both.Value, both == first)
	}
	// The window slides past the first profile: same store, new answer.
	if recent := tree(t0.Add(time.Second)); recent.Value != 3 {
		t.Errorf("since after the first profile: value %d, want 3", recent.Value)
	}
}

// mustEntry is newEntry for profiles a test made.
func mustEntry(tb testing.TB, p profilesink.Profile) entry {
	tb.Helper()
	e, err := newEntry(p)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
