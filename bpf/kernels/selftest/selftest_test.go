package selftest

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"github.com/vigil-ebpf/vigil/bpf/kernels/report"
)

const reads = 16

// TestFallbackOrder attaches with nothing forced off, then turns off each
// chosen strategy in turn: every next choice must come later in the
// preference order and must count the reads this test makes, until nothing
// is left and Open says so.
func TestFallbackOrder(t *testing.T) {
	testenv.RequireRoot(t)
	skip := map[string]bool{}
	last := -1
	for range Strategies {
		c, err := Open(Options{Skip: skip})
		if errors.Is(err, attach.ErrNoStrategy) && last >= 0 {
			return
		}
		if err != nil {
			t.Fatalf("Open(skip=%v): %v", skip, err)
		}
		t.Log(report.Line(c.Report(), skip))
		idx := slices.Index(Strategies, c.Report().Chosen)
		if idx <= last {
			c.Close()
			t.Fatalf("chose %q after %q: fallback order not honoured", c.Report().Chosen, Strategies[last])
		}
		// One subtest per strategy, so the matrix counts each one's result.
		t.Run(c.Report().Chosen, func(t *testing.T) { checkCounts(t, c) })
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		last = idx
		skip[c.Report().Chosen] = true
	}
	if _, err := Open(Options{Skip: skip}); !errors.Is(err, attach.ErrNoStrategy) {
		t.Fatalf("Open with every strategy off: err = %v, want ErrNoStrategy", err)
	}
}

func checkCounts(t *testing.T, c *Counter) {
	t.Helper()
	before, err := c.Count()
	if err != nil {
		t.Fatal(err)
	}
	readZero(t, reads)
	after, err := c.Count()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < reads {
		t.Fatalf("%s: counted %d calls across %d reads", c.Report().Chosen, after-before, reads)
	}
}

func readZero(t *testing.T, n int) {
	t.Helper()
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1)
	for range n {
		if _, err := f.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStrategiesComeFromTheRegistry(t *testing.T) {
	if want := []string{"fentry", "kprobe", "tp_btf", "tracepoint"}; !slices.Equal(Strategies, want) {
		t.Errorf("Strategies = %q, want %q", Strategies, want)
	}
}
