package cpuprofile

import (
	"os"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// On this kernel the table unwinder must load; a fallback to frame pointers
// here is a regression, not a skip.
func TestTablesLoadAndWalkThisProcess(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Open(Options{Frequency: 499, DrainInterval: 100 * time.Millisecond})
	testenv.SkipIfNotSupported(t, "perf_event BPF programs", err)
	defer p.Close()
	if got := p.UnwindReport().Chosen; got != StrategyTables {
		t.Fatalf("unwind strategy %q: %v", got, p.UnwindReport())
	}
	stop := make(chan struct{})
	go spin(stop)
	defer close(stop)
	time.Sleep(time.Second)
	b, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}
	st := p.UnwindStats()
	t.Logf("samples %d, stats %+v", len(b.Samples), st)
	// This test binary is Go: registered at its first sample, given no
	// table, and walked with frame pointers to its outermost frame.
	if st.UserBytes == 0 {
		t.Errorf("no user-space bytes counted with a process registered: %+v", st)
	}
	if st.Processes == 0 || st.TablesNoCFI == 0 || st.Frames["frame_pointer"] == 0 {
		t.Errorf("the Go test process was not registered and walked with frame pointers: %+v", st)
	}
	deep := 0
	for _, s := range b.Samples {
		if s.PID == uint32(os.Getpid()) && len(s.User) >= 3 && s.UserTruncated == "" {
			deep++
		}
	}
	if deep == 0 {
		t.Errorf("no whole user stack of this process in %d samples", len(b.Samples))
	}
}

// With frame pointers chosen, the table walker is not even loaded and the
// kernel's own walk records user stacks.
func TestFramePointerModeSamplesWithoutTheWalker(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Open(Options{Frequency: 499, DrainInterval: 100 * time.Millisecond, Unwind: UnwindFramePointer})
	testenv.SkipIfNotSupported(t, "perf_event BPF programs", err)
	defer p.Close()
	if got := p.UnwindReport().Chosen; got != StrategyFramePointer {
		t.Fatalf("unwind strategy %q, want %q", got, StrategyFramePointer)
	}
	if p.objs.WalkUser != nil || p.reg != nil {
		t.Fatal("the table walker was loaded with frame pointers chosen")
	}
	stop := make(chan struct{})
	go spin(stop)
	defer close(stop)
	time.Sleep(500 * time.Millisecond)
	b, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}
	user := 0
	for _, s := range b.Samples {
		if len(s.User) > 0 {
			user++
		}
	}
	if user == 0 {
		t.Fatalf("no user stacks in %d samples", len(b.Samples))
	}
}

func TestBadUnwindModeIsRefused(t *testing.T) {
	if _, err := Open(Options{Frequency: 99, Unwind: "dwarf"}); err == nil {
		t.Fatal("Open accepted unwind mode \"dwarf\"")
	}
}
