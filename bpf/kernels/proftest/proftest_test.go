package proftest

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"github.com/vigil-ebpf/vigil/bpf/kernels"
	"github.com/vigil-ebpf/vigil/bpf/kernels/report"
	"github.com/vigil-ebpf/vigil/profiler"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// dieWithTest ends a workload with the test process, even when a panic
// ends the test before its deferred kill runs.
var dieWithTest = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

// wantRatio is hot_alpha's loop count over hot_beta's in testdata/hot.c.
const wantRatio = 3.0

// TestHotFunctionsNamedInTheirRatio profiles the workload through the same
// path as 'vigil profile' (BPF sampler, symbolizer, pprof builder) and checks
// that both hot functions are named under work <- main and that their
// sample counts keep the 3:1 ratio of the work they do, within 15%. On a
// busy machine the workload gets only part of a CPU, so it profiles in
// rounds until the hot functions have enough samples for the ratio to mean
// something.
func TestHotFunctionsNamedInTheirRatio(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := exec.Command(hotBinary(t))
	cmd.SysProcAttr = dieWithTest
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	const hz, round, maxRounds, enough = 199, 2 * time.Second, 15, 600
	leaf := map[string]int64{}
	chains := map[string]bool{}
	for r := 0; r < maxRounds && leaf["hot_alpha"]+leaf["hot_beta"] < enough; r++ {
		p := profilePID(t, uint32(cmd.Process.Pid), hz, round)
		for fn, n := range leafCounts(p) {
			leaf[fn] += n
		}
		for _, fn := range []string{"hot_alpha", "hot_beta"} {
			chains[fn] = chains[fn] || hasChain(p, fn+";work;main")
		}
	}
	a, b := float64(leaf["hot_alpha"]), float64(leaf["hot_beta"])
	t.Logf("hot_alpha %v, hot_beta %v samples: ratio %.3f, want %.1f", a, b, a/b, wantRatio)
	if a+b < enough {
		t.Fatalf("too few samples of the hot functions after %d rounds: hot_alpha=%v hot_beta=%v (all leaves: %v)", maxRounds, a, b, leaf)
	}
	for _, fn := range []string{"hot_alpha", "hot_beta"} {
		if !chains[fn] {
			t.Errorf("no stack %s <- work <- main", fn)
		}
	}
	if math.Abs(a/b/wantRatio-1) > 0.15 {
		t.Errorf("ratio %.3f differs from %.1f by more than 15%%", a/b, wantRatio)
	}
}

// hotBinary is the prebuilt workload when there is one (inside the matrix
// guest), or testdata/hot.c compiled now.
func hotBinary(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs("testdata/hot"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("skipped: needs gcc to build testdata/hot.c (or a prebuilt testdata/hot)")
	}
	bin := filepath.Join(t.TempDir(), "hot")
	out, err := exec.Command("gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", bin, "testdata/hot.c").CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

func profilePID(t *testing.T, pid uint32, hz int, d time.Duration) *profile.Profile {
	t.Helper()
	p, _ := profilePIDUnwind(t, pid, hz, d, nil)
	return p
}

func leafCounts(p *profile.Profile) map[string]int64 {
	out := map[string]int64{}
	for _, s := range p.Sample {
		if names := sampleNames(s); len(names) > 0 {
			out[names[0]] += s.Value[0]
		}
	}
	return out
}

// hasChain reports whether a sample's stack holds chain (leaf first,
// semicolon-separated) as consecutive frames.
func hasChain(p *profile.Profile, chain string) bool {
	for _, s := range p.Sample {
		if strings.Contains(";"+strings.Join(sampleNames(s), ";")+";", ";"+chain+";") {
			return true
		}
	}
	return false
}

func sampleNames(s *profile.Sample) []string {
	var names []string
	for _, l := range s.Location {
		for _, ln := range l.Line {
			names = append(names, ln.Function.Name)
		}
	}
	return names
}

// TestUnwindStrategiesOnFramelessChain profiles testdata/nofp (-O2, no
// frame pointers) with each user-stack strategy in turn. With the unwind
// tables, at least 95% of the samples in leaf_work must carry stage_inner,
// stage_middle, stage_outer and main above it; with frame pointers forced,
// fewer than half may (the walk can't get past the frameless leaf), which
// shows that each subtest really ran the strategy it names.
func TestUnwindStrategiesOnFramelessChain(t *testing.T) {
	testenv.RequireRoot(t)
	pid := startNofp(t)
	skip := map[string]bool{}
	for _, strategy := range []string{cpuprofile.StrategyTables, cpuprofile.StrategyFramePointer} {
		t.Run(strategy, func(t *testing.T) {
			leaf, whole := chainSamples(t, pid, skip, strategy, true)
			t.Logf("leaf_work: %d samples, %d with the whole chain to main (%.1f%%)", leaf, whole, 100*float64(whole)/float64(max(leaf, 1)))
			if leaf < 100 {
				t.Fatalf("too few samples in leaf_work: %d", leaf)
			}
			if strategy == cpuprofile.StrategyTables && float64(whole) < 0.95*float64(leaf) {
				t.Errorf("only %d of %d samples in leaf_work carry its caller chain", whole, leaf)
			}
			if strategy == cpuprofile.StrategyFramePointer && float64(whole) >= 0.5*float64(leaf) {
				t.Errorf("frame pointers walked %d of %d frameless stacks whole: not the strategy under test", whole, leaf)
			}
		})
		skip[strategy] = true
	}
}

// TestPythonStrategiesKeepNativeStacks loads the profiler with each
// strategy of the python hook in turn (the matrix's guests run no
// interpreter: the Python frames themselves are tested where one runs,
// in bpf/cpuprofile and cmd/vigil) and checks that the chosen one is the
// one forced, and that native stacks of testdata/nofp stay whole with the
// Python walker in the chain after every native walk.
func TestPythonStrategiesKeepNativeStacks(t *testing.T) {
	testenv.RequireRoot(t)
	pid := startNofp(t)
	skip := map[string]bool{}
	for _, strategy := range []string{cpuprofile.StrategyPythonFrames, cpuprofile.StrategyPythonOff} {
		t.Run(strategy, func(t *testing.T) {
			sampler, err := cpuprofile.Open(cpuprofile.Options{Frequency: 199, PIDs: []uint32{pid}, DrainInterval: time.Second, Skip: skip, PythonAtOpen: true})
			if err != nil {
				t.Fatal(err)
			}
			py := sampler.PythonReport()
			t.Log(report.Line(py, skip))
			sampler.Close()
			if py.Chosen != strategy {
				t.Fatalf("python walker: chose %q, want %q: %v", py.Chosen, strategy, py)
			}
			leaf, whole := chainSamples(t, pid, skip, cpuprofile.StrategyTables, false)
			if leaf < 100 || float64(whole) < 0.95*float64(leaf) {
				t.Errorf("with python %s, %d of %d samples in leaf_work carry its caller chain", strategy, whole, leaf)
			}
		})
		skip[strategy] = true
	}
}

// chainSamples profiles pid with the strategies in skip off, in rounds until
// leaf_work has enough samples, and counts them and those with the chain.
// logUnwind tags the test as one of the unwind hook's (the matrix reads the
// tag); another hook's test leaves it out.
func chainSamples(t *testing.T, pid uint32, skip map[string]bool, want string, logUnwind bool) (leaf, whole int64) {
	const hz, round, maxRounds, enough = 199, 2 * time.Second, 15, 300
	for r := 0; r < maxRounds && leaf < enough; r++ {
		p, unwind := profilePIDUnwind(t, pid, hz, round, skip)
		if r == 0 && logUnwind {
			t.Log(report.Line(unwind, skip))
		}
		if unwind.Chosen != want {
			t.Fatalf("user stacks walked with %q, want %q: %v", unwind.Chosen, want, unwind)
		}
		for _, s := range p.Sample {
			names := sampleNames(s)
			if len(names) == 0 || names[0] != "leaf_work" {
				continue
			}
			leaf += s.Value[0]
			if strings.Contains(strings.Join(names, ";"), "leaf_work;stage_inner;stage_middle;stage_outer;main") {
				whole += s.Value[0]
			}
		}
	}
	return leaf, whole
}

// workload is testdata/<name> prebuilt (inside the matrix guest) or built
// now with the flags its source names.
func workload(t *testing.T, name string) string {
	t.Helper()
	if p, err := filepath.Abs("testdata/" + name); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("skipped: needs gcc to build testdata/%s.c (or a prebuilt testdata/%s)", name, name)
	}
	bin := filepath.Join(t.TempDir(), name)
	src := "testdata/" + name + ".c"
	out, err := exec.Command("gcc", append(kernels.WorkloadCFlags(src), "-o", bin, src)...).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

func profilePIDUnwind(t *testing.T, pid uint32, hz int, d time.Duration, skip map[string]bool) (*profile.Profile, attach.Report) {
	t.Helper()
	// The Python walker loaded now, so that it is in the chain after every
	// native walk when its strategy is on.
	sampler, err := cpuprofile.Open(cpuprofile.Options{Frequency: hz, PIDs: []uint32{pid}, DrainInterval: time.Second, Skip: skip, PythonAtOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sampler.Close()
	sym := symbolizer.New(symbolizer.Options{})
	defer sym.Close()
	s := &profiler.Session{Sampler: sampler, Symbols: sym, Frequency: hz, Interval: time.Second}
	p, err := s.Run(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return p, sampler.UnwindReport()
}

// startNofp runs testdata/nofp (-O2, no frame pointers) for the test.
func startNofp(t *testing.T) uint32 {
	t.Helper()
	cmd := exec.Command(workload(t, "nofp"))
	cmd.SysProcAttr = dieWithTest
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return uint32(cmd.Process.Pid)
}
