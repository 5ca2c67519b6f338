package cpuprofile

import (
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
}
