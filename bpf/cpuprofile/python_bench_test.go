package cpuprofile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"github.com/vigil-ebpf/vigil/internal/pythons"
)

// pyDeep is a Python program whose stack is depth Python frames deep,
// <module> included: f1 calls f2 and so on, each a code object of its
// own as in real code, and the last spins in pure Python.
func pyDeep(depth int) string {
	var b strings.Builder
	b.WriteString("def leaf():\n    while True:\n        x = 0\n        for i in range(1000):\n            x += i\n")
	b.WriteString("f%d = leaf\n")
	for i := depth - 2; i >= 1; i-- {
		fmt.Fprintf(&b, "def f%d():\n    f%d()\n    return 1\n", i, i+1)
	}
	b.WriteString("f1()\n")
	return fmt.Sprintf(b.String(), depth-1) // f1 .. f<depth-2>, leaf, <module>
}

// anyPython returns a CPython this machine has (VIGIL_BENCH_PYTHON names
// one), for benchmarks of the walker.
func anyPython(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("VIGIL_BENCH_PYTHON"); p != "" {
		return p // to compare interpreters
	}
	for _, py := range pythons.Installed() {
		return py.Exe
	}
	tb.Skip("skipped: no CPython 3.9-3.13 on this machine (apt-get install python3)")
	return ""
}

// startStoppedArgs is startStopped with arguments.
func startStoppedArgs(b *testing.B, bin string, args ...string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the interpreter's start-up
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// BenchmarkPythonKernelCost compares, in one run, the in-kernel cost of a
// sample of a Python process with deepDepth Python frames (native walk,
// then the Python walk) against a native process deepDepth frames deep
// walked with tables, one as deep as the Python sample's whole stack, and
// the same Python process with the Python walker off. Figures are bpf_stats run time per sample (see
// BenchmarkUnwindKernelCost).
//
//	sudo go test -run '^$' -bench PythonKernelCost -benchtime 1x ./bpf/cpuprofile/
func BenchmarkPythonKernelCost(b *testing.B) {
	testenv.RequireRoot(b)
	if _, err := exec.LookPath("gcc"); err != nil {
		b.Skip("skipped: the native workload is built with gcc (apt-get install gcc)")
	}
	py := anyPython(b)
	testenv.EnableStats(b)
	dir := b.TempDir()
	script := filepath.Join(dir, "deep.py")
	if err := os.WriteFile(script, []byte(pyDeep(deepDepth)), 0o644); err != nil {
		b.Fatal(err)
	}
	native := startStopped(b, buildDeep(b, dir, "deep-nofp", "-O2", "-fomit-frame-pointer"))
	// The Python sample's whole stack is its deepDepth Python frames and
	// about 12 native ones below them: a native stack as long, too.
	nativeLong := startStopped(b, buildDeepN(b, dir, "deep-long", deepDepth+12, "-O2", "-fomit-frame-pointer"))
	pyProc := startStoppedArgs(b, py, script)
	configs := []costConfig{
		{"native", func(d time.Duration) kernelCost { return vigilCost(b, native.Process.Pid, UnwindAuto, d) }},
		{"native-as-long", func(d time.Duration) kernelCost { return vigilCost(b, nativeLong.Process.Pid, UnwindAuto, d) }},
		{"python", func(d time.Duration) kernelCost { return pythonCost(b, pyProc.Process.Pid, false, d) }},
		{"python-walker-off", func(d time.Duration) kernelCost { return pythonCost(b, pyProc.Process.Pid, true, d) }},
	}
	const rounds, window = 5, 3 * time.Second
	for b.Loop() {
		got := map[string][]kernelCost{}
		for range rounds {
			for _, c := range configs {
				got[c.name] = append(got[c.name], c.measure(window))
			}
		}
		for _, name := range []string{"native", "native-as-long", "python", "python-walker-off"} {
			cs := got[name]
			logKernelCost(b, name, cs)
			b.ReportMetric(costMedian(cs, kernelCost.netNsPerSample), name+"-net-ns/sample")
			b.ReportMetric(costMedian(cs, func(c kernelCost) float64 { return c.frames }), name+"-native-frames/sample")
		}
		b.ReportMetric(costMedian(got["python"], func(c kernelCost) float64 { return c.pyFrames }), "python-py-frames/sample")
		b.ReportMetric(costMedian(got["python"], kernelCost.netNsPerSample)/costMedian(got["native"], kernelCost.netNsPerSample), "python/native")
		b.ReportMetric(costMedian(got["python"], kernelCost.netNsPerSample)/costMedian(got["native-as-long"], kernelCost.netNsPerSample), "python/native-as-long")
		b.Logf("python/native per round: %.2f", pairedRatios(got["python"], got["native"]))
		b.Logf("python/native-as-long per round: %.2f", pairedRatios(got["python"], got["native-as-long"]))
	}
}

// pythonCost samples a Python process for one window, with or without the
// Python walker, and counts its Python frames per sample.
func pythonCost(b *testing.B, pid int, noPython bool, d time.Duration) kernelCost {
	b.Helper()
	p, err := Open(Options{Frequency: 99, PIDs: []uint32{uint32(pid)}, NoPython: noPython})
	testenv.SkipIfNotSupported(b, "perf_event BPF programs", err)
	defer p.Close()
	want := StrategyPythonFrames
	if noPython {
		want = StrategyPythonOff
	}
	if got := p.PythonReport().Chosen; got != want {
		b.Fatalf("python walker: chose %q, want %q: %v", got, want, p.PythonReport())
	}
	p.Register(uint32(pid))
	p.WaitTables()
	if _, err := p.Drain(); err != nil {
		b.Fatal(err)
	}
	idle0 := p.Stats()
	time.Sleep(idleWindow)
	before := p.Stats()
	runWindow(b, pid, d)
	after := p.Stats()
	batch, err := p.Drain()
	if err != nil {
		b.Fatal(err)
	}
	c := vigilRunCost(before, after)
	idle := vigilRunCost(idle0, before)
	c.idleNs, c.idleRuns = idle.runtimeNs, idle.runs
	c.samples = float64(batch.Seen)
	c.frames = userFramesPerSample(batch)
	var pyFrames, n uint64
	for _, s := range batch.Samples {
		pyFrames += uint64(len(s.Python)) * s.Count
		n += s.Count
	}
	c.pyFrames = float64(pyFrames) / float64(max(n, 1))
	return c
}
