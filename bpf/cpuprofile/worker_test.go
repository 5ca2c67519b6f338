package cpuprofile

import (
	"slices"
	"sync"
	"testing"
)

func TestWorkerRunsEveryJobOnceInOrder(t *testing.T) {
	var (
		mu  sync.Mutex
		ran []int
		w   worker[int]
	)
	w.start(func(j int) { mu.Lock(); ran = append(ran, j); mu.Unlock() }, func(int) {})
	defer w.stop()
	dup := func(j int) func([]int) bool { return func(q []int) bool { return slices.Contains(q, j) } }
	for j := range 100 {
		w.push(j, dup(j))
	}
	w.wait()
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 100 || !slices.IsSorted(ran) {
		t.Fatalf("ran %d jobs, in order %v", len(ran), slices.IsSorted(ran))
	}
}

func TestWorkerDropsWhatIsLeftAtStop(t *testing.T) {
	var w worker[int]
	block, dropped := make(chan struct{}), make(chan int, 10)
	w.start(func(int) { <-block }, func(j int) { dropped <- j })
	for j := range 5 {
		w.push(j, nil)
	}
	w.stop()
	close(block)
	w.wait() // returns only when every job ran or was dropped
	if len(dropped) == 0 {
		t.Fatal("no queued job was dropped at stop")
	}
}

// A process whose mappings can't be read is tried again at most once a
// second, however often BPF announces it, unless it execs.
func TestRegistryRetriesAFailedProcessOncePerSecond(t *testing.T) {
	r := newRegistry(nil, nil, nil, t.TempDir()) // an empty /proc: every read fails
	defer r.close()
	failures := func() uint64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.stats.registerFailed
	}
	for range 5 {
		r.request(42, false)
		r.wait()
	}
	if n := failures(); n != 1 {
		t.Fatalf("%d registrations tried within a second, want 1", n)
	}
	r.request(42, true)
	r.wait()
	if n := failures(); n != 2 {
		t.Fatalf("an exec did not retry at once: %d tries", n)
	}
}
