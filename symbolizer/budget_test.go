package symbolizer

import (
	"runtime"
	"testing"
)

// TestByteBudget names every function of the Go toolchain's binaries with
// a budget smaller than their tables: what is held stays within it (plus
// the one file in use), files are evicted and parsed again when needed,
// every pc is still named, and the estimate is close to the heap measured.
func TestByteBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: reads every toolchain binary")
	}
	paths := goToolchainBinaries(t)
	pcs := make([][]uint64, len(paths))
	total := 0
	for i, p := range paths {
		pcs[i] = goFuncPCs(t, p)
		total += len(pcs[i])
	}
	const budget = 12 << 20
	base := heapInUse()
	s := newTest(t, Options{MaxBytes: budget})
	// Twice, so files evicted in the first round are parsed again.
	named := symbolizeFiles(t, s, paths, pcs) + symbolizeFiles(t, s, paths, pcs)
	kept := int64(heapInUse() - base)
	st := s.Stats()
	runtime.KeepAlive(s)
	t.Logf("named %d of %d; held %d bytes (heap %d), %d evictions", named, 2*total, st.BytesHeld, kept, st.ByteEvictions)
	if named < 2*total*99/100 {
		t.Errorf("named %d of %d pcs", named, 2*total)
	}
	if st.ByteEvictions == 0 || st.FileEvictions == 0 {
		t.Errorf("no evictions under a %d byte budget: %+v", budget, st)
	}
	if st.BytesHeld <= 0 || st.BytesHeld > 2*budget {
		t.Errorf("%d bytes held, budget %d", st.BytesHeld, budget)
	}
	if kept > 2*budget || kept < st.BytesHeld/2 {
		t.Errorf("heap kept %d bytes for %d estimated (budget %d)", kept, st.BytesHeld, budget)
	}
	s.Close()
	if st := s.Stats(); st.BytesHeld != 0 {
		t.Errorf("%d bytes still charged after Close", st.BytesHeld)
	}
}

// TestBudgetReparsesFilesInUse alternates between two live processes with
// a budget that fits one file: the other's parsed data is dropped while
// its process is remembered, and parsed again from the kept handle.
func TestBudgetReparsesFilesInUse(t *testing.T) {
	a := start(t, buildGo(t))
	b := start(t, buildGoSrc(t, "goinline.go"))
	s := newTest(t, Options{MaxBytes: 1})
	want := map[*liveProg]string{a: "main.hotGoFunction", b: "main.leaf"}
	for round := 0; round < 3; round++ {
		for _, p := range []*liveProg{a, b} {
			if got := s.User(p.pid(), p.addrs[:1])[0].String(); got != want[p] {
				t.Fatalf("round %d: %q, want %q", round, got, want[p])
			}
		}
	}
	st := s.Stats()
	if st.ByteEvictions < 4 || st.FilesParsed < 6 || st.Processes != 2 {
		t.Errorf("files in use not dropped and parsed again: %+v", st)
	}
	if st.FileEvictions != 0 {
		t.Errorf("a file in use left the cache: %+v", st)
	}
}
