package web

import (
	"encoding/json"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hourOfProfiles is an hour at the default 15 s interval for ten
// services: 2,400 profiles of up to 300 stacks each. Each service runs a
// call tree of about 3,000 functions; samples walk down it with a skew so
// some paths are hot, as real programs do. 240 distinct profiles are
// built and each stands for ten intervals (building is the slow part).
func hourOfProfiles(b testing.TB) []entry {
	r := rand.New(rand.NewPCG(1, 2))
	var distinct []entry
	for i := range 240 {
		svc := i % 10
		stacks := map[string]int64{}
		for range 300 {
			frames := []string{"main"}
			node := 0
			for len(frames) < 40 && r.IntN(12) > 0 {
				node = node*3 + 1 + int(r.ExpFloat64())%3 // child of node in a ternary tree
				frames = append(frames, "s"+strconv.Itoa(svc)+"_function_"+strconv.Itoa(node%3000))
			}
			stacks[strings.Join(frames, ";")] += int64(1 + r.IntN(5))
		}
		p := stackProfile(b, t0, stacks)
		distinct = append(distinct, mustEntry(b, sinkProfile("service"+strconv.Itoa(svc), t0, p)))
	}
	var entries []entry
	for range 10 {
		entries = append(entries, distinct...)
	}
	return entries
}

func BenchmarkFlameHour(b *testing.B) {
	entries := hourOfProfiles(b)
	var size int64
	for _, e := range entries {
		size += e.size
	}
	b.ReportMetric(float64(size)/(1<<20)/10, "distinct-MiB")
	var nodes int
	cpu := cpuTime()
	for b.Loop() {
		root := buildFlame(entries)
		out, err := json.Marshal(root)
		if err != nil {
			b.Fatal(err)
		}
		nodes = strings.Count(string(out), `"name"`)
		b.ReportMetric(float64(len(out))/1024, "json-KiB")
	}
	b.ReportMetric(float64(nodes), "nodes")
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime is the process's CPU time: on a shared machine wall time per op
// says more about the neighbours than about the code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkMergeHour(b *testing.B) {
	entries := hourOfProfiles(b)
	cpu := cpuTime()
	for b.Loop() {
		if _, _, err := mergeProfiles(entries); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func BenchmarkAddReadings(b *testing.B) {
	s := NewStore(Options{})
	t := &testing.T{}
	h := histOf(t, 3, 1000, 20_000, 1_000_000, 5_000_000)
	rs := []hist.Reading{}
	for i := range 8 {
		rs = append(rs, reading(h)[0])
		rs[i].Name += strconv.Itoa(i)
	}
	at := time.Now()
	for b.Loop() {
		at = at.Add(15 * time.Second)
		s.AddReadings(at, rs)
	}
}
