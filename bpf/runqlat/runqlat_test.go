package runqlat

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

func TestSpecMatchesGoTypes(t *testing.T) {
	spec, err := loadRunqlat()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := unsafe.Sizeof(runqlatHistValue{}), unsafe.Sizeof(histmap.Value{}); got != want {
		t.Fatalf("struct hist_value is %d bytes, histmap.Value %d", got, want)
	}
	if n := len(runqlatHistValue{}.Buckets); n != hist.MaxBuckets {
		t.Fatalf("HIST_MAX_BUCKETS = %d, hist.MaxBuckets = %d", n, hist.MaxBuckets)
	}
	h := spec.Maps["rq_hist"]
	if h.Type != ebpf.PerCPUArray || h.KeySize != 4 || h.ValueSize != uint32(unsafe.Sizeof(histmap.Value{})) {
		t.Fatalf("rq_hist: %v key %d value %d", h.Type, h.KeySize, h.ValueSize)
	}
	if s := spec.Maps["rq_start"]; s.Type != ebpf.TaskStorage || s.ValueSize != 8 {
		t.Fatalf("rq_start: %v value %d", s.Type, s.ValueSize)
	}
	if s := spec.Maps["rq_start_pid"]; s.Type != ebpf.LRUHash || s.KeySize != 4 || s.ValueSize != 8 {
		t.Fatalf("rq_start_pid: %v key %d value %d", s.Type, s.KeySize, s.ValueSize)
	}
	for _, objs := range []any{new(rqMaps), new(btfProgs), new(tpProgs)} {
		if err := latency.CheckSpec(spec, objs); err != nil {
			t.Errorf("%T: %v", objs, err)
		}
	}
}

func only(name string) map[string]bool {
	skip := map[string]bool{}
	for _, s := range strategies {
		skip[s.name] = s.name != name
	}
	return skip
}

func TestContentionShowsMillisecondDelays(t *testing.T) {
	testenv.RequireRoot(t)
	self := selfComm(t)
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			p, err := Open(Options{Skip: only(s.name), ByProcess: true})
			testenv.RequireStrategy(t, "runqueue", s.name, err)
			defer p.Close()
			if p.Report().Chosen != s.name {
				t.Fatalf("chose %s", p.Report().Chosen)
			}
			const d = time.Second
			n, c := 3*runtime.NumCPU(), runtime.NumCPU()
			spin(n, d)
			h := seriesOf(t, p, self)
			above, mass := countAbove(h, 1e6), massAbove(h, 1e6)
			t.Logf("%s: %d delays, %d above 1 ms holding at least %v, mean %.1f µs", self, h.Count, above, mass, float64(h.SumNs)/float64(max(h.Count, 1))/1e3)
			// n spinners on c CPUs for d: at any moment n-c of them wait,
			// (n-c)*d of run-queue delay in all, in waits of whole time
			// slices (milliseconds). The spinners never sleep, so these
			// waits all come from being re-queued when preempted.
			if want := time.Duration(n-c) * d / 2; mass < want || above < 20 {
				t.Fatalf("%d delays above 1 ms holding %v, want at least 20 holding %v: %+v", above, mass, want, h)
			}
		})
	}
}

// seriesOf returns the histogram of the process named comm.
func seriesOf(t *testing.T, p *Program, comm string) hist.Histogram {
	t.Helper()
	r, err := p.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 1 || r[0].Name != MetricDelay || r[0].Unit != "s" {
		t.Fatalf("reading %+v", r)
	}
	for _, s := range r[0].Histograms {
		if s.Attrs[histmap.AttrProcess] == comm {
			return s.Hist
		}
	}
	t.Fatalf("no series for %q among %d", comm, len(r[0].Histograms))
	return hist.Histogram{}
}

func selfComm(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestWholeMachineAndCap(t *testing.T) {
	testenv.RequireRoot(t)
	all, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	capped, err := Open(Options{ByProcess: true, MaxSeries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer capped.Close()
	spin(2*runtime.NumCPU(), 300*time.Millisecond)
	r, err := all.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(r[0].Histograms) != 1 || len(r[0].Histograms[0].Attrs) != 0 || countAbove(r[0].Histograms[0].Hist, 1e6) == 0 {
		t.Fatalf("whole-machine reading %+v", r)
	}
	r, err = capped.Read()
	if err != nil {
		t.Fatal(err)
	}
	// One name fits; the spinners, the test's other threads and everything
	// else on the machine overflow.
	var named, over int
	for _, s := range r[0].Histograms {
		switch {
		case s.Attrs[histmap.AttrOverflow] == "true" && s.Hist.Count > 0:
			over++
		case s.Attrs[histmap.AttrProcess] != "":
			named++
		}
	}
	if named != 1 || over != 1 || len(r[0].Histograms) != 2 {
		t.Fatalf("capped at 1: %d named and %d overflow series in %+v", named, over, r[0].Histograms)
	}
}

// spin runs n busy threads for d.
func spin(n int, d time.Duration) {
	// Each spinner needs its own P: with fewer Ps than spinners (one on a
	// 1-CPU machine) the runtime parks the locked threads in turn and the
	// kernel's run queue never holds more than one of them.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n + 1))
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for time.Now().Before(deadline) {
			}
		}()
	}
	wg.Wait()
}

// massAbove is a lower bound of the time held by the values in buckets
// entirely above ns: each counted at its bucket's lower edge.
func massAbove(h hist.Histogram, ns uint64) time.Duration {
	from := hist.IndexOf(h.Scale, ns) + 1
	var sum uint64
	for i, c := range h.Counts {
		if idx := h.Offset + int32(i); idx >= from {
			sum += c * hist.UpperNs(h.Scale, idx-1)
		}
	}
	return time.Duration(sum)
}

// countAbove counts values in buckets entirely above ns.
func countAbove(h hist.Histogram, ns uint64) uint64 {
	from := hist.IndexOf(h.Scale, ns) + 1
	var n uint64
	for i, c := range h.Counts {
		if h.Offset+int32(i) >= from {
			n += c
		}
	}
	return n
}

func TestSkipTakesTracepoint(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Open(Options{Skip: map[string]bool{"tp_btf": true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := p.Report()
	if r.Chosen != "tracepoint" || len(r.Attempts) != 2 || r.Attempts[0].Err == nil {
		t.Fatalf("report %+v", r)
	}
	if st := p.Stats(); len(st) != 3 {
		t.Fatalf("stats for %d programs, want 3", len(st))
	}
}

func TestBadOptionsAreNotAttachFailures(t *testing.T) {
	for _, o := range []Options{{Scale: 9}, {Scale: -1}, {ByProcess: true, MaxSeries: -2}, {MaxSeries: histmap.MaxSeriesLimit + 1}} {
		_, err := Open(o)
		if err == nil || errors.Is(err, attach.ErrNoStrategy) {
			t.Fatalf("options %+v: error %v, want a validation error", o, err)
		}
	}
}

func TestStrategyOrderIsTheRegistrys(t *testing.T) {
	var names []string
	for _, s := range strategies {
		names = append(names, s.name)
	}
	testenv.RequireOrder(t, "runqueue", names)
}
