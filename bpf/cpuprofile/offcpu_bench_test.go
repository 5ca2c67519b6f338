package cpuprofile

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// pingRounds is the round trips of one measured run (about a second bare).
const pingRounds = 100000

// offcpuBpftrace is bpftrace's equivalent of the off-CPU hook: at every
// switch-out the time and both stacks (kernel stack-id walks, frame
// pointers for the user stack), at switch-in the time away added to the
// pair of stacks.
const offcpuBpftrace = `tracepoint:sched:sched_switch
{
	if (args->prev_pid != 0) {
		@start[args->prev_pid] = nsecs;
		@ks[args->prev_pid] = kstack;
		@us[args->prev_pid] = ustack;
	}
	$s = @start[args->next_pid];
	if ($s != 0) {
		@off[@ks[args->next_pid], @us[args->next_pid]] = sum(nsecs - $s);
		delete(@start[args->next_pid]);
	}
}
`

// kstackBpftrace takes only the kernel stack where offcpuBpftrace takes
// both stacks: the kernel's walk at every blocked switch, which vigil pays
// only for stacks its thread's cache doesn't hold.
const kstackBpftrace = `tracepoint:sched:sched_switch
{
	if (args->prev_pid != 0) {
		@ks[args->prev_pid] = kstack;
	}
}
`

// pingRun is one measured run: the workload's mean round trip, and with
// bpf_stats on the tool's in-kernel time and runs.
type pingRun struct {
	rtt          float64
	kernelNs     float64
	kernelRuns   float64
	statsEnabled bool
}

// pingTool runs the workload once under a tool.
type pingTool struct {
	name  string
	stats bool // bpf_stats on: for in-kernel time only, it costs ~45 ns a run
	run   func(b *testing.B, bin string, stats bool) pingRun
}

// BenchmarkOffCPU measures what recording off-CPU time adds to a context
// switch: a pipe ping-pong between two threads (each round trip blocks each
// thread once), bare, under vigil's off-CPU hook and under bpftrace's
// equivalent, alternating in the same run. End-to-end figures come from
// runs with bpf_stats off; in-kernel ns from separate runs with it on (tail
// calls are counted in the program that made them).
// Run with -benchtime 1x: each b.N iteration is a full round of every tool.
func BenchmarkOffCPU(b *testing.B) {
	testenv.RequireRoot(b)
	bin := buildPingPong(b)
	tools := []pingTool{
		{"bare", false, runBare},
		{"vigil", false, runVigil},
		{"vigil+stats", true, runVigil},
		// Where the time goes: the same hook with frame pointers (the
		// kernel's walk, as bpftrace's ustack) instead of the table walker.
		{"vigil-fp+stats", true, func(b *testing.B, bin string, stats bool) pingRun {
			return runVigilWith(b, bin, stats, func(o *Options) { o.Unwind = UnwindFramePointer })
		}},
		// Every stack walked: no reuse from the thread's cache.
		{"vigil-nocache+stats", true, runVigilNoCache},
		// The classic tracepoint strategy.
		{"vigil-tracepoint+stats", true, func(b *testing.B, bin string, stats bool) pingRun {
			return runVigilWith(b, bin, stats, func(o *Options) { o.Skip = map[string]bool{StrategyOffCPUBTF: true} })
		}},
		// User stacks only (--stacks user): no walk of the kernel stack.
		{"vigil-user", false, func(b *testing.B, bin string, stats bool) pingRun {
			return runVigilWith(b, bin, stats, func(o *Options) { o.OffCPUStacks = OffCPUStacksUser })
		}},
		{"vigil-user+stats", true, func(b *testing.B, bin string, stats bool) pingRun {
			return runVigilWith(b, bin, stats, func(o *Options) { o.OffCPUStacks = OffCPUStacksUser })
		}},
	}
	if _, err := exec.LookPath("bpftrace"); err == nil {
		tools = append(tools, pingTool{"bpftrace", false, runBpftrace}, pingTool{"bpftrace+stats", true, runBpftrace},
			// Only the kernel's walk of the kernel stack, at each
			// switch-out of a user thread.
			pingTool{"kstack-only+stats", true, func(b *testing.B, bin string, stats bool) pingRun {
				return runBpftraceScript(b, bin, stats, kstackBpftrace)
			}})
	} else {
		b.Log("bpftrace not installed: no comparison")
	}
	results := map[string][]pingRun{}
	const rounds = 5
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for k := range tools {
				t := tools[(k+r)%len(tools)] // rotate the order each round
				results[t.name] = append(results[t.name], t.run(b, bin, t.stats))
			}
		}
	}
	reportPing(b, results)
}

// BenchmarkOffCPUManyWaits is BenchmarkOffCPU's worst case for the stack
// cache: the echoing thread waits in six ways in turn, more stacks than
// its cache holds, so it misses at almost every switch; vigil with the
// cache against vigil walking every stack, in turns.
// Run with -benchtime 1x.
func BenchmarkOffCPUManyWaits(b *testing.B) {
	testenv.RequireRoot(b)
	bin := filepath.Join(b.TempDir(), "pingpong-mixed")
	script := "#!/bin/sh\nexec " + buildPingPong(b) + " \"$1\" \"$2\" mixed\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	tools := []pingTool{
		{"bare", false, runBare},
		{"vigil", false, runVigil},
		{"vigil+stats", true, runVigil},
		{"vigil-nocache", false, runVigilNoCache},
		{"vigil-nocache+stats", true, runVigilNoCache},
	}
	results := map[string][]pingRun{}
	for i := 0; i < b.N; i++ {
		for r := 0; r < 5; r++ {
			for k := range tools {
				t := tools[(k+r)%len(tools)]
				results[t.name] = append(results[t.name], t.run(b, bin, t.stats))
			}
		}
	}
	reportPing(b, results)
}

// reportPing prints medians: added ns per blocked switch (two per round
// trip) and in-kernel ns per blocked switch and per program run.
func reportPing(b *testing.B, results map[string][]pingRun) {
	med := func(runs []pingRun, f func(pingRun) float64) float64 {
		v := make([]float64, 0, len(runs))
		for _, r := range runs {
			v = append(v, f(r))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rtt := func(r pingRun) float64 { return r.rtt }
	bare := med(results["bare"], rtt)
	b.ReportMetric(bare, "bare-rtt-ns")
	for _, v := range []struct{ name, what string }{
		{"vigil-fp+stats", "vigil with frame pointers"},
		{"vigil-nocache+stats", "vigil walking every stack (no reuse)"},
		{"vigil-tracepoint+stats", "vigil on the classic tracepoint"},
		{"kstack-only+stats", "the kernel stack alone (bpftrace, kstack at each switch-out)"},
	} {
		if r := results[v.name]; len(r) > 0 {
			ns := med(r, func(r pingRun) float64 { return r.kernelNs / pingRounds / 2 })
			b.ReportMetric(ns, strings.TrimSuffix(v.name, "+stats")+"-kernel-ns/switch")
			b.Logf("%s: in kernel %.0f ns per blocked switch", v.what, ns)
		}
	}
	for _, tool := range []string{"vigil", "vigil-user", "vigil-nocache", "bpftrace"} {
		if len(results[tool]) == 0 {
			continue
		}
		added := (med(results[tool], rtt) - bare) / 2
		perSwitch := med(results[tool+"+stats"], func(r pingRun) float64 { return r.kernelNs / pingRounds / 2 })
		perRun := med(results[tool+"+stats"], func(r pingRun) float64 { return r.kernelNs / r.kernelRuns })
		b.ReportMetric(added, tool+"-added-ns/switch")
		b.ReportMetric(perSwitch, tool+"-kernel-ns/switch")
		b.ReportMetric(perRun, tool+"-kernel-ns/run")
		b.Logf("%s: round trip %.0f ns (bare %.0f): +%.0f ns per blocked switch; in kernel %.0f ns per blocked switch, %.0f ns per program run",
			tool, med(results[tool], rtt), bare, added, perSwitch, perRun)
	}
}

func buildPingPong(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "pingpong")
	out, err := exec.Command("gcc", "-O2", "-pthread", "-fasynchronous-unwind-tables", "-o", bin, "testdata/pingpong.c").CombinedOutput()
	if err != nil {
		b.Skipf("skipped: gcc: %v\n%s", err, out)
	}
	return bin
}

// startPing starts the workload waiting for its go byte.
func startPing(b *testing.B, bin string) (*exec.Cmd, io.WriteCloser, *strings.Builder) {
	b.Helper()
	cmd := exec.Command(bin, strconv.Itoa(pingRounds), "wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out := &strings.Builder{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, in, out
}

// finishPing lets the workload run and returns its mean round trip.
func finishPing(b *testing.B, cmd *exec.Cmd, in io.WriteCloser, out *strings.Builder) float64 {
	b.Helper()
	if _, err := in.Write([]byte("g")); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("pingpong: %v", err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
	if err != nil {
		b.Fatalf("pingpong output %q: %v", out.String(), err)
	}
	return v
}

func withStats(b *testing.B, on bool) func() {
	if !on {
		return func() {}
	}
	c, err := attach.EnableRunStats()
	if err != nil {
		b.Fatal(err)
	}
	return func() { c.Close() }
}

func runBare(b *testing.B, bin string, _ bool) pingRun {
	cmd, in, out := startPing(b, bin)
	return pingRun{rtt: finishPing(b, cmd, in, out)}
}

// runVigil profiles the whole machine off-CPU, as the agent would, with
// the workload's tables loaded before it starts.
func runVigil(b *testing.B, bin string, stats bool) pingRun {
	return runVigilWith(b, bin, stats, nil)
}

// runVigilWith is runVigil with the options changed by set.
// runVigilNoCache runs vigil walking every stack, with no reuse from the
// threads' caches.
func runVigilNoCache(b *testing.B, bin string, stats bool) pingRun {
	return runVigilWith(b, bin, stats, func(o *Options) { o.NoStackCache = true })
}

func runVigilWith(b *testing.B, bin string, stats bool, set func(*Options)) pingRun {
	cmd, in, out := startPing(b, bin)
	defer cmd.Process.Kill()
	opts := Options{Frequency: 49, NoCPU: true, DrainInterval: time.Second, Unwind: UnwindAuto}
	if set != nil {
		set(&opts)
	}
	p, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	p.Register(uint32(cmd.Process.Pid))
	p.WaitTables()
	done := withStats(b, stats)
	r := pingRun{rtt: finishPing(b, cmd, in, out), statsEnabled: stats}
	for _, s := range p.Stats() {
		if s.Hook == OffCPUHook {
			r.kernelNs += float64(s.RunTimeNs)
			if s.Program == "offcpu_switch" {
				r.kernelRuns += float64(s.RunCount)
			}
		}
	}
	done()
	if _, err := p.Drain(); err != nil {
		b.Fatal(err)
	}
	return r
}

// runBpftrace runs the bpftrace equivalent around the workload; its
// programs are the ones loaded after it started.
func runBpftrace(b *testing.B, bin string, stats bool) pingRun {
	return runBpftraceScript(b, bin, stats, offcpuBpftrace)
}

func runBpftraceScript(b *testing.B, bin string, stats bool, script string) pingRun {
	before := progIDs()
	bt := exec.Command("bpftrace", "-e", script)
	bt.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := bt.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	bt.Stderr = os.Stderr
	if err := bt.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { bt.Process.Kill(); bt.Wait() }()
	if err := waitFor(stdout, "Attaching"); err != nil {
		b.Fatalf("bpftrace: %v", err)
	}
	go io.Copy(io.Discard, stdout)
	cmd, in, out := startPing(b, bin)
	defer cmd.Process.Kill()
	done := withStats(b, stats)
	r := pingRun{rtt: finishPing(b, cmd, in, out), statsEnabled: stats}
	for id := range progIDs() {
		if before[id] {
			continue
		}
		ns, runs := progStats(id)
		r.kernelNs += ns
		r.kernelRuns += runs
	}
	done()
	return r
}

func waitFor(r io.Reader, prefix string) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			time.Sleep(200 * time.Millisecond) // the line comes just before attaching
			return nil
		}
	}
	return errors.New("exited before attaching")
}

// progIDs lists the BPF programs loaded now.
func progIDs() map[ebpf.ProgramID]bool {
	out := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return out
		}
		out[next], id = true, next
	}
}

func progStats(id ebpf.ProgramID) (ns, runs float64) {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return 0, 0
	}
	defer p.Close()
	s, err := p.Stats()
	if err != nil {
		return 0, 0
	}
	return float64(s.Runtime.Nanoseconds()), float64(s.RunCount)
}
