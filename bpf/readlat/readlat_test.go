package readlat

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestSpecMatchesGoTypes(t *testing.T) {
	spec, err := loadReadlat()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := unsafe.Sizeof(readlatHistValue{}), unsafe.Sizeof(histmap.Value{}); got != want {
		t.Fatalf("struct hist_value is %d bytes, histmap.Value %d", got, want)
	}
	if n := len(readlatHistValue{}.Buckets); n != hist.MaxBuckets {
		t.Fatalf("HIST_MAX_BUCKETS = %d, hist.MaxBuckets = %d", n, hist.MaxBuckets)
	}
	h := spec.Maps["read_hist"]
	if h.Type != ebpf.PerCPUArray || h.KeySize != 4 || h.ValueSize != uint32(unsafe.Sizeof(histmap.Value{})) {
		t.Fatalf("read_hist: %v key %d value %d", h.Type, h.KeySize, h.ValueSize)
	}
	if s := spec.Maps["read_start"]; s.Type != ebpf.TaskStorage || s.ValueSize != 8 {
		t.Fatalf("read_start: %v value %d", s.Type, s.ValueSize)
	}
	for _, s := range strategies {
		for _, p := range s.progs {
			if spec.Programs[p] == nil {
				t.Errorf("strategy %s: program %s missing from the object", s.name, p)
			}
		}
	}
	if len(spec.Variables["read_nr"].Value) != int(unsafe.Sizeof(syscallNrs)) {
		t.Fatalf("read_nr is %d bytes, Go has %d", len(spec.Variables["read_nr"].Value), unsafe.Sizeof(syscallNrs))
	}
}

// only returns a Skip set that leaves just the named strategy.
func only(name string) map[string]bool {
	skip := map[string]bool{}
	for _, s := range strategies {
		skip[s.name] = s.name != name
	}
	return skip
}

func TestPipeReadsLandInTheir20msBucket(t *testing.T) {
	testenv.RequireRoot(t)
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			p, err := Open(Options{Skip: only(s.name), PID: uint32(os.Getpid())})
			if errors.Is(err, attach.ErrNoStrategy) {
				t.Skipf("skipped: this kernel refuses %s: %v", s.name, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			checkPipeReads(t, p, s.hook)
		})
	}
}

// checkPipeReads blocks n reads on a pipe whose writer answers each about
// 19.5 ms after the read began, and expects them in the bucket of 20 ms.
func checkPipeReads(t *testing.T, p *Program, wantHook string) {
	const n = 20
	const delay = 19500 * time.Microsecond
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil { // blocking, unlike os.Pipe
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	started := make(chan time.Time)
	go writer(fds[1], started, delay)
	buf := make([]byte, 1)
	for range n {
		started <- time.Now()
		if _, err := unix.Read(fds[0], buf); err != nil {
			t.Fatal(err)
		}
	}
	close(started)
	r, err := p.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 1 || r[0].Name != MetricName || r[0].Unit != "s" || len(r[0].Histograms) != 1 {
		t.Fatalf("reading %+v", r)
	}
	s := r[0].Histograms[0]
	if s.Attrs[HookAttr] != wantHook {
		t.Fatalf("hook attribute %q, want %q", s.Attrs[HookAttr], wantHook)
	}
	h := s.Hist
	idx := hist.IndexOf(h.Scale, 20e6)
	got := countAt(h, idx)
	// A loaded 2-CPU machine may wake the reader late now and then.
	if got < n*8/10 || h.Count < n || h.SumNs < n*18e6 {
		t.Fatalf("bucket %d (holds 20 ms) has %d of %d reads; histogram %+v", idx, got, n, h)
	}
}

func writer(fd int, started <-chan time.Time, delay time.Duration) {
	for t0 := range started {
		// Sleep most of the delay, then spin: timer slack alone is
		// tens of µs, a sizeable share of a 9% wide bucket.
		time.Sleep(time.Until(t0.Add(delay)) - time.Millisecond)
		for time.Since(t0) < delay {
		}
		unix.Write(fd, []byte{1})
	}
}

func countAt(h hist.Histogram, idx int32) uint64 {
	i := int(idx - h.Offset)
	if i < 0 || i >= len(h.Counts) {
		return 0
	}
	return h.Counts[i]
}

func TestSkipTakesTheNextStrategy(t *testing.T) {
	testenv.RequireRoot(t)
	def, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	chosen := def.Report().Chosen
	def.Close()
	idx := indexOf(chosen)
	if idx == len(strategies)-1 {
		t.Skipf("skipped: only the last strategy (%s) works on this kernel, nothing to fall back to", chosen)
	}
	p, err := Open(Options{Skip: map[string]bool{chosen: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := p.Report()
	if indexOf(r.Chosen) <= idx {
		t.Fatalf("skipping %s chose %s", chosen, r.Chosen)
	}
	for _, a := range r.Attempts {
		if a.Strategy != r.Chosen && a.Err == nil {
			t.Fatalf("attempt %s has no reason", a.Strategy)
		}
	}
	t.Logf("default %s; %s", chosen, r)
	if !strings.Contains(r.String(), chosen+": disabled by configuration") {
		t.Fatalf("report %q does not say %s was skipped", r, chosen)
	}
}

func indexOf(name string) int {
	for i, s := range strategies {
		if s.name == name {
			return i
		}
	}
	return -1
}

func TestReportNamesFailedStrategies(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := p.Report()
	t.Log(r)
	if r.Hook != "read" || r.Chosen == "" || r.Attempts[len(r.Attempts)-1].Strategy != r.Chosen {
		t.Fatalf("report %+v", r)
	}
	for _, a := range r.Attempts[:len(r.Attempts)-1] {
		if a.Err == nil || a.Err.Error() == "" {
			t.Fatalf("%s failed without a reason", a.Strategy)
		}
	}
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); err != nil && indexOf(r.Chosen) > indexOf("kprobe") {
		for _, a := range r.Attempts {
			if a.Strategy == "kprobe" && !strings.Contains(a.Err.Error(), "CONFIG_KPROBES") {
				t.Fatalf("kprobe reason %q does not name the missing kernel option", a.Err)
			}
		}
	}
	if st := p.Stats(); len(st) != 2 {
		t.Fatalf("stats for %d programs, want 2: %+v", len(st), st)
	}
	if time.Since(p.StartTime()) > time.Minute || p.StartTime().IsZero() {
		t.Fatalf("start time %v", p.StartTime())
	}
}
