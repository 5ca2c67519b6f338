package cpuprofile

import (
	"slices"
	"sync"
	"testing"
	"time"
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

// stop waits for the running job (its caller closes what jobs use next)
// and drops what is still queued.
func TestWorkerStopWaitsForTheRunningJobAndDropsTheRest(t *testing.T) {
	var w worker[int]
	started, block, dropped := make(chan struct{}, 1), make(chan struct{}), make(chan int, 10)
	w.start(func(int) { started <- struct{}{}; <-block }, func(j int) { dropped <- j })
	for j := range 5 {
		w.push(j, nil)
	}
	<-started
	stopped := make(chan struct{})
	go func() { w.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while a job was still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(block)
	<-stopped
	w.wait() // returns only when every job ran or was dropped
	if len(dropped) != 4 {
		t.Fatalf("%d queued jobs dropped at stop, want 4", len(dropped))
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
