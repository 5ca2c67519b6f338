package cpuprofile

import (
	"errors"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// TestCollidingStacksSpill shrinks the main stack maps to four buckets, so
// that the kernel stacks of threads blocked in different calls collide, and
// checks that the stacks refused there are kept, whole and correct, in the
// spill map: more distinct kernel stacks come back than four buckets can
// hold, and each is a kernel stack of named functions ending in a wait.
func TestCollidingStacksSpill(t *testing.T) {
	testenv.RequireRoot(t)
	ksyms := readKernelSymbols(t)
	stackEntriesForTest = 4
	defer func() { stackEntriesForTest = 0 }()
	p, err := Open(Options{Frequency: 49, NoCPU: true, DrainInterval: time.Second})
	testenv.SkipIfNotSupported(t, "off-CPU profiling", err)
	defer p.Close()
	// Waits in several different kernel paths, besides the test's own.
	var cmds []*exec.Cmd
	for _, args := range [][]string{{"sleep", "0.3"}, {"head", "-c", "1"}, {"sh", "-c", "sleep 0.3 & wait"}} {
		c := exec.Command(args[0], args[1:]...)
		if args[0] == "head" {
			in, err := c.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			time.AfterFunc(300*time.Millisecond, func() { in.Write([]byte{'x'}) })
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	lost := 0
	for _, s := range b.OffCPU {
		if s.KernelLost {
			lost++
			continue
		}
		if len(s.Kernel) == 0 {
			continue
		}
		var names []string
		for _, pc := range s.Kernel {
			n := ksyms.name(pc)
			if n == "" && len(names) > 0 { // only the leaf may be the program itself
				t.Errorf("kernel frame %#x has no name in %v", pc, s.Kernel)
			}
			names = append(names, n)
		}
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "schedule") }) {
			t.Errorf("a kernel stack of an off-CPU interval without schedule: %v", names)
		}
		distinct[strings.Join(names, ";")] = true
	}
	t.Logf("%d intervals, %d distinct kernel stacks, %d lost; stack parts lost %v", len(b.OffCPU), len(distinct), lost, b.OffCPUTotals.StackLost)
	if len(distinct) <= 4 {
		t.Errorf("%d distinct kernel stacks from four buckets: the colliding ones were not spilled", len(distinct))
	}
}

// TestCollidingStacksSpillCPU is the same for CPU samples, whose kernel and
// (with frame pointers) user stacks share the main map: a workload busy in
// read and write system calls gives more distinct stacks than four buckets.
func TestCollidingStacksSpillCPU(t *testing.T) {
	testenv.RequireRoot(t)
	stackEntriesForTest = 4
	defer func() { stackEntriesForTest = 0 }()
	p, err := Open(Options{Frequency: 997, Unwind: UnwindFramePointer, DrainInterval: time.Second})
	testenv.SkipIfNotSupported(t, "CPU profiling", err)
	defer p.Close()
	dd := exec.Command("dd", "if=/dev/zero", "of=/dev/null", "bs=1")
	if err := dd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	dd.Process.Kill()
	dd.Wait()
	b, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, s := range b.Samples {
		for _, part := range []struct {
			frames []uint64
			lost   bool
			kind   string
		}{{s.Kernel, s.KernelLost, "k"}, {s.User, s.UserLost, "u"}} {
			if part.lost || len(part.frames) == 0 {
				continue
			}
			var b strings.Builder
			b.WriteString(part.kind)
			for _, pc := range part.frames {
				b.WriteString(" " + strconv.FormatUint(pc, 16))
			}
			distinct[b.String()] = true
		}
	}
	// The drain took buffer A (the first epoch) and must leave both of its
	// stack maps empty for the epoch after next.
	for _, m := range []*ebpf.Map{p.objs.StacksA, p.objs.SpillA} {
		var k uint32
		if err := m.NextKey(nil, &k); !errors.Is(err, ebpf.ErrKeyNotExist) {
			t.Errorf("%v still holds stacks after the drain (first key %d, %v)", m, k, err)
		}
	}
	t.Logf("%d samples, %d distinct stacks; lost %v", len(b.Samples), len(distinct), b.Lost)
	if len(distinct) <= 4 {
		t.Errorf("%d distinct stacks from four buckets: the colliding ones were not spilled", len(distinct))
	}
}
