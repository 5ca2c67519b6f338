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
