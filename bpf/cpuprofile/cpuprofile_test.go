package cpuprofile

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// spin keeps one locked OS thread busy until stop is closed.
func spin(stop chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for x := 0; ; x++ {
		select {
		case <-stop:
			return
		default:
		}
		for i := 0; i < 1e5; i++ {
			x ^= i
		}
	}
}

// Draining while samples keep arriving must neither lose nor double-count
// any: every sample that passed the filters is in a batch or counted lost.
func TestDrainAccountsForEverySample(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Open(Options{Frequency: 999, DrainInterval: 20 * time.Millisecond})
	testenv.SkipIfNotSupported(t, "perf_event BPF programs", err)
	defer p.Close()
	if p.Report().Chosen == "" {
		t.Fatalf("no strategy chosen: %v", p.Report())
	}
	stop := make(chan struct{})
	go spin(stop)
	defer close(stop)

	var seen, recorded, lostWhole uint64
	deadline := time.Now().Add(2 * time.Second)
	for drains := 0; time.Now().Before(deadline) || drains < 3; drains++ {
		time.Sleep(20 * time.Millisecond)
		b, err := p.Drain()
		if err != nil {
			t.Fatal(err)
		}
		seen += b.Seen
		for _, s := range b.Samples {
			recorded += s.Count
		}
		for r, n := range b.Lost {
			if WholeSampleLost(r) {
				lostWhole += n
			}
		}
	}
	// Stop sampling, then a last drain collects what is still in flight,
	// so the totals must match exactly.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	b, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range b.Samples {
		recorded += s.Count
	}
	seen += b.Seen
	t.Logf("seen %d, recorded %d, lost whole %d", seen, recorded, lostWhole)
	// The busy thread gets what CPU a loaded (or emulated) machine gives
	// it; the test needs enough samples that drains overlap sampling.
	if seen < 100 {
		t.Fatalf("only %d samples in 2 s at 999 Hz with a busy thread", seen)
	}
	if seen != recorded+lostWhole {
		t.Errorf("seen %d != recorded %d + lost whole %d", seen, recorded, lostWhole)
	}
}

func TestPIDFilterKeepsOnlyThatProcess(t *testing.T) {
	testenv.RequireRoot(t)
	self := uint32(os.Getpid())
	p, err := Open(Options{Frequency: 499, PIDs: []uint32{self}})
	testenv.SkipIfNotSupported(t, "perf_event BPF programs", err)
	defer p.Close()
	stop := make(chan struct{})
	go spin(stop)
	time.Sleep(time.Second)
	close(stop)
	b, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}
	var mine uint64
	for _, s := range b.Samples {
		if s.PID != self {
			t.Fatalf("sample of pid %d (%s) with a filter on %d", s.PID, s.Comm, self)
		}
		if len(s.User) == 0 && !s.UserLost {
			t.Errorf("sample of a user process without user stack: %+v", s)
		}
		mine += s.Count
	}
	if mine < 100 {
		t.Errorf("%d samples of the busy test process in 1 s at 499 Hz", mine)
	}
}

// A new process is announced so its mappings can be captured in time.
func TestNewProcessIsAnnounced(t *testing.T) {
	testenv.RequireRoot(t)
	self := uint32(os.Getpid())
	p, err := Open(Options{Frequency: 499, PIDs: []uint32{self}})
	testenv.SkipIfNotSupported(t, "perf_event BPF programs", err)
	defer p.Close()
	got := make(chan Event, 16)
	go p.WatchProcesses(func(e Event) { got <- e })
	stop := make(chan struct{})
	go spin(stop)
	defer close(stop)
	select {
	case e := <-got:
		if e.PID != self || e.Kind != NewProcess {
			t.Errorf("event %+v, want NewProcess for %d", e, self)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no announcement of the sampled process")
	}
}

// Close leaves no program behind in the kernel.
func TestCloseReleasesPrograms(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Open(Options{Frequency: 99})
	testenv.SkipIfNotSupported(t, "perf_event BPF programs", err)
	info, err := p.objs.ProfileCpu.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Skip("skipped: kernel does not report program IDs")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		prog, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if prog != nil {
			prog.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("program %d still loaded 5 s after Close (err %v)", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOpenRejectsBadFrequency(t *testing.T) {
	for _, hz := range []int{0, -1, 20000} {
		if _, err := Open(Options{Frequency: hz}); err == nil {
			t.Errorf("Open accepted frequency %d", hz)
		}
	}
}
