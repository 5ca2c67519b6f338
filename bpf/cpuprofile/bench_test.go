package cpuprofile

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"github.com/vigil-ebpf/vigil/symbolizer/unwind"
)

// deepDepth is the length of the workload's call chain: with main, the leaf
// and libc's start-up frames a stack is about 35 frames deep, which is what
// a C++ service or an interpreter typically shows.
const deepDepth = 30

// deepC generates a C program whose main calls f1, f1 calls f2 and so on to
// f<depth>, which spins in leaf. Every function does work after its call,
// so -O2 can turn none of them into a jump (which would drop the frame),
// and noipa keeps gcc from inlining, cloning or merging them.
func deepC(depth int) string {
	var s strings.Builder
	s.WriteString("volatile unsigned long sink;\nvolatile int stop;\n")
	s.WriteString("__attribute__((noipa)) int leaf(void) { while (!stop) sink++; return 0; }\n")
	for i := depth; i >= 1; i-- {
		next := "leaf"
		if i < depth {
			next = fmt.Sprintf("f%d", i+1)
		}
		fmt.Fprintf(&s, "__attribute__((noipa)) int f%d(void) { int r = %s(); sink++; return r; }\n", i, next)
	}
	s.WriteString("int main(void) { return f1(); }\n")
	return s.String()
}

// buildDeep compiles deepC with gcc and the given flags into dir.
func buildDeep(b *testing.B, dir, name string, flags ...string) string {
	return buildDeepN(b, dir, name, deepDepth, flags...)
}

// buildDeepN is buildDeep with a call chain depth functions long.
func buildDeepN(b *testing.B, dir, name string, depth int, flags ...string) string {
	b.Helper()
	src := filepath.Join(dir, name+".c")
	if err := os.WriteFile(src, []byte(deepC(depth)), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	args := append(slices.Clone(flags), "-o", bin, src)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		b.Fatalf("gcc %v: %v\n%s", flags, err, out)
	}
	return bin
}

// startStopped starts bin and stops it at once: workloads run only inside
// a measured window, so no tool sees their samples while it starts up.
func startStopped(b *testing.B, bin string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// runWindow lets pid run for d, then stops it again.
func runWindow(b *testing.B, pid int, d time.Duration) {
	b.Helper()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		b.Fatal(err)
	}
	time.Sleep(d)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		b.Fatal(err)
	}
}

// kernelCost is what one measured window cost in the kernel.
type kernelCost struct {
	runtimeNs   float64 // bpf_stats run time of every sampling program
	runs        float64 // runs of the entry program (every CPU's tick)
	tailRuns    float64 // runs counted for walk_user itself
	samples     float64 // ticks that hit the workload and were recorded
	frames      float64 // user frames recorded per sample
	tableFrames float64 // frames walked with a table rule (UnwindStats)
	pyFrames    float64 // Python frames recorded per sample
	// The same tool's run time and runs over idleWindow just before, the
	// workload stopped: every run is one the pid filter rejects.
	idleNs, idleRuns float64
}

func (c kernelCost) nsPerSample() float64 { return c.runtimeNs / c.samples }
func (c kernelCost) nsPerRun() float64    { return c.runtimeNs / c.runs }

// nsPerRejected is what a run rejected by the pid filter costs.
func (c kernelCost) nsPerRejected() float64 { return c.idleNs / c.idleRuns }

// netNsPerSample takes the rejected runs of the window (runs - samples) at
// their idle cost off the window's run time: the cost of a sample itself.
func (c kernelCost) netNsPerSample() float64 {
	return (c.runtimeNs - (c.runs-c.samples)*c.nsPerRejected()) / c.samples
}

// idleWindow measures the rejected runs' cost before each window.
const idleWindow = time.Second

// BenchmarkUnwindKernelCost measures what the kernel spends per sample of
// a process ~35 frames deep, at 99 Hz, walking its user stack four ways in
// one run: vigil with its unwind tables ("tables"), vigil with frame
// pointers, and bpftrace's ustack and kstack+ustack (the kernel's
// frame-pointer walker). One -O2 binary with frame pointers serves all four,
// so the walks agree on the program's own frames (tables also walk the
// three libc start-up frames that frame pointers can't: frames/sample
// shows it); the same program built without frame pointers is also walked
// with tables ("tables-nofp"), the case tables exist for. The
// configurations alternate, five rounds of 3 s windows, so load from
// elsewhere falls on all of them alike; the medians over rounds are
// reported.
//
// Each window runs the workload only while the tool is attached and
// measured (it is stopped with SIGSTOP otherwise), so the samples the tool
// recorded are exactly the workload's ticks in the window. ns/sample is
// the run time of every program of the tool over those samples, so it also
// carries the runs on the other CPU that the pid filter rejected; how many
// there are depends on what else runs there, and what one costs differs
// by tool. Each tool's rejected run is therefore timed in the second
// before its window, the workload stopped, and net-ns/sample takes the
// window's rejected runs off at that cost. ns/run is run time over runs,
// as bpftool shows it. All include kernel.bpf_stats_enabled's own cost
// (about 45 ns per run), left in so that every tool is charged alike.
//
// walk_user is tail-called, and a tail call jumps into the next program
// without the accounting that wraps a program's entry: the kernel counts
// walk_user's runs and time under profile_cpu, and walk_user itself stays
// at zero runs. The benchmark adds walk_user's figures anyway and reports
// its runs per sample, so a kernel that counted otherwise would show.
//
//	sudo go test -run '^$' -bench UnwindKernelCost -benchtime 1x ./bpf/cpuprofile/
func BenchmarkUnwindKernelCost(b *testing.B) {
	testenv.RequireRoot(b)
	if _, err := exec.LookPath("gcc"); err != nil {
		b.Skip("skipped: the workload is built with gcc (apt-get install gcc)")
	}
	testenv.EnableStats(b)
	dir := b.TempDir()
	fp := startStopped(b, buildDeep(b, dir, "deep-fp", "-O2", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer"))
	nofp := startStopped(b, buildDeep(b, dir, "deep-nofp", "-O2", "-fomit-frame-pointer"))
	configs := kernelCostConfigs(b, fp.Process.Pid, nofp.Process.Pid)
	const rounds, window = 5, 3 * time.Second
	for b.Loop() {
		got := map[string][]kernelCost{}
		for range rounds {
			for _, c := range configs {
				got[c.name] = append(got[c.name], c.measure(window))
			}
		}
		reportKernelCost(b, got)
	}
}

type costConfig struct {
	name    string
	measure func(time.Duration) kernelCost
}

func kernelCostConfigs(b *testing.B, fp, nofp int) []costConfig {
	cs := []costConfig{
		{"tables", func(d time.Duration) kernelCost { return vigilCost(b, fp, UnwindAuto, d) }},
		{"frame-pointer", func(d time.Duration) kernelCost { return vigilCost(b, fp, UnwindFramePointer, d) }},
	}
	if _, err := exec.LookPath("bpftrace"); err != nil {
		b.Logf("bpftrace not installed, no comparison: %v", err)
	} else if _, err := exec.LookPath("bpftool"); err != nil {
		b.Logf("bpftool not installed, bpftrace's run time can't be read: %v", err)
	} else {
		cs = append(cs,
			costConfig{"bpftrace-ustack", func(d time.Duration) kernelCost {
				return bpftraceCost(b, fmt.Sprintf("profile:hz:99 /pid == %d/ { @[ustack] = count(); }", fp), fp, d)
			}},
			costConfig{"bpftrace-kstack+ustack", func(d time.Duration) kernelCost {
				return bpftraceCost(b, fmt.Sprintf("profile:hz:99 /pid == %d/ { @[kstack, ustack] = count(); }", fp), fp, d)
			}})
	}
	return append(cs, costConfig{"tables-nofp", func(d time.Duration) kernelCost { return vigilCost(b, nofp, UnwindAuto, d) }})
}

// vigilCost samples pid at 99 Hz for one window with the given unwinder,
// its tables (if any) built before the window opens.
func vigilCost(b *testing.B, pid int, mode string, d time.Duration) kernelCost {
	b.Helper()
	p, err := Open(Options{Frequency: 99, PIDs: []uint32{uint32(pid)}, Unwind: mode})
	testenv.SkipIfNotSupported(b, "perf_event BPF programs", err)
	defer p.Close()
	if want := map[string]string{UnwindAuto: StrategyTables, UnwindFramePointer: StrategyFramePointer}[mode]; p.UnwindReport().Chosen != want {
		b.Skipf("skipped: unwind %s chose %q, not %q: %v", mode, p.UnwindReport().Chosen, want, p.UnwindReport())
	}
	p.Register(uint32(pid))
	p.WaitTables()
	if _, err := p.Drain(); err != nil {
		b.Fatal(err)
	}
	idle0 := p.Stats()
	time.Sleep(idleWindow)
	before, ub := p.Stats(), p.UnwindStats()
	runWindow(b, pid, d)
	after, ua := p.Stats(), p.UnwindStats()
	batch, err := p.Drain()
	if err != nil {
		b.Fatal(err)
	}
	c := vigilRunCost(before, after)
	idle := vigilRunCost(idle0, before)
	c.idleNs, c.idleRuns = idle.runtimeNs, idle.runs
	c.samples = float64(batch.Seen)
	c.frames = userFramesPerSample(batch)
	c.tableFrames = float64(ua.Frames["table"]-ub.Frames["table"]) / c.samples
	if n := ua.Truncated; mode == UnwindAuto && sumValues(n) > sumValues(ub.Truncated) {
		b.Logf("tables: walks stopped early: %v", n)
	}
	return c
}

// vigilRunCost sums the sampling programs' run time between two readings;
// process_exec (a tracepoint, not sampling) is left out.
func vigilRunCost(before, after []attach.RunStat) kernelCost {
	prev := map[string]attach.RunStat{}
	for _, s := range before {
		prev[s.Program] = s
	}
	var c kernelCost
	for _, s := range after {
		runs, ns := float64(s.RunCount-prev[s.Program].RunCount), float64(s.RunTimeNs-prev[s.Program].RunTimeNs)
		switch s.Program {
		case "profile_cpu":
			c.runs, c.runtimeNs = c.runs+runs, c.runtimeNs+ns
		case "walk_user", "walk_python":
			c.tailRuns, c.runtimeNs = c.tailRuns+runs, c.runtimeNs+ns
		}
	}
	return c
}

func userFramesPerSample(batch *Batch) float64 {
	var frames, n uint64
	for _, s := range batch.Samples {
		frames += uint64(len(s.User)) * s.Count
		n += s.Count
	}
	if n == 0 {
		return 0
	}
	return float64(frames) / float64(n)
}

func sumValues(m map[string]uint64) uint64 {
	var t uint64
	for _, v := range m {
		t += v
	}
	return t
}

// bpftraceCost runs program for one window and reads its perf_event
// program's run time with bpftool, and its samples and depth from the map
// it prints at exit.
func bpftraceCost(b *testing.B, program string, pid int, d time.Duration) kernelCost {
	b.Helper()
	old := bpftoolPerfPrograms(b)
	cmd := exec.Command("bpftrace", "-e", program)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !waitAttaching(sc) {
		cmd.Wait()
		b.Fatalf("bpftrace exited before attaching: %s", stderr.String())
	}
	time.Sleep(time.Second) // "Attaching" is printed as attaching starts
	id := newProgram(b, old)
	idle0 := bpftoolPerfPrograms(b)[id]
	time.Sleep(idleWindow)
	before := bpftoolPerfPrograms(b)[id]
	runWindow(b, pid, d)
	after := bpftoolPerfPrograms(b)[id]
	cmd.Process.Signal(syscall.SIGINT)
	var rest bytes.Buffer
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("bpftrace: %v: %s", err, stderr.String())
	}
	samples, frames := parseBpftraceStacks(rest.String())
	return kernelCost{
		runtimeNs: float64(after.RunTimeNs - before.RunTimeNs),
		runs:      float64(after.RunCnt - before.RunCnt),
		samples:   float64(samples),
		frames:    float64(frames) / float64(max(samples, 1)),
		idleNs:    float64(before.RunTimeNs - idle0.RunTimeNs),
		idleRuns:  float64(before.RunCnt - idle0.RunCnt),
	}
}

func waitAttaching(sc *bufio.Scanner) bool {
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Attaching") {
			return true
		}
	}
	return false
}

// bpftoolProg is the part of `bpftool -j prog show` the benchmark reads.
type bpftoolProg struct {
	ID        int    `json:"id"`
	Type      string `json:"type"`
	Name      string `json:"name"`
	RunTimeNs uint64 `json:"run_time_ns"`
	RunCnt    uint64 `json:"run_cnt"`
}

func bpftoolPerfPrograms(b *testing.B) map[int]bpftoolProg {
	b.Helper()
	out, err := exec.Command("bpftool", "-j", "prog", "show").Output()
	if err != nil {
		b.Fatalf("bpftool prog show: %v", err)
	}
	var progs []bpftoolProg
	if err := json.Unmarshal(out, &progs); err != nil {
		b.Fatalf("bpftool prog show: %v", err)
	}
	m := map[int]bpftoolProg{}
	for _, p := range progs {
		if p.Type == "perf_event" {
			m[p.ID] = p
		}
	}
	return m
}

// newProgram is the one perf_event program loaded since old was read that
// is not vigil's (another engineer's vigil may come and go meanwhile).
func newProgram(b *testing.B, old map[int]bpftoolProg) int {
	b.Helper()
	var ids []int
	for id, p := range bpftoolPerfPrograms(b) {
		if _, ok := old[id]; !ok && p.Name != "profile_cpu" && p.Name != "walk_user" {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		b.Fatalf("want bpftrace's one new perf_event program, found %v", ids)
	}
	return ids[0]
}

// parseBpftraceStacks sums the counts of a printed stack map and the
// frames of its stacks, each weighted by its count. An entry reads
// "@[", one frame per line (kstack and ustack separated by a line with a
// comma), then "]: count".
func parseBpftraceStacks(out string) (samples, frames uint64) {
	var inEntry uint64
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "@["):
			inEntry = 0
		case strings.HasPrefix(t, "]: "):
			n, err := strconv.ParseUint(strings.TrimPrefix(t, "]: "), 10, 64)
			if err == nil {
				samples += n
				frames += inEntry * n
			}
		case t != "" && t != ",":
			inEntry++
		}
	}
	return samples, frames
}

// reportKernelCost reports each configuration's medians and the ratios the
// issue sets a target for (tables at most twice bpftrace's ustack), both
// gross (every run of the window over its samples) and net (rejected runs
// taken off at their idle cost).
func reportKernelCost(b *testing.B, got map[string][]kernelCost) {
	gross, net := map[string]float64{}, map[string]float64{}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		cs := got[name]
		logKernelCost(b, name, cs)
		gross[name], net[name] = costMedian(cs, kernelCost.nsPerSample), costMedian(cs, kernelCost.netNsPerSample)
		frames := costMedian(cs, func(c kernelCost) float64 { return c.frames })
		b.ReportMetric(gross[name], name+"-ns/sample")
		b.ReportMetric(net[name], name+"-net-ns/sample")
		b.ReportMetric(costMedian(cs, kernelCost.nsPerRun), name+"-ns/run")
		b.ReportMetric(costMedian(cs, kernelCost.nsPerRejected), name+"-rejected-ns/run")
		b.ReportMetric(frames, name+"-frames/sample")
		b.ReportMetric(net[name]/frames, name+"-net-ns/frame")
		if strings.HasPrefix(name, "tables") {
			b.ReportMetric(costMedian(cs, func(c kernelCost) float64 { return c.tableFrames }), name+"-table-frames/sample")
			b.ReportMetric(costMedian(cs, func(c kernelCost) float64 { return c.tailRuns / c.samples }), name+"-walk_user-runs/sample")
		}
	}
	for _, ref := range []string{"bpftrace-ustack", "bpftrace-kstack+ustack", "frame-pointer"} {
		if gross[ref] > 0 {
			b.ReportMetric(gross["tables"]/gross[ref], "tables/"+ref)
			b.ReportMetric(net["tables"]/net[ref], "net:tables/"+ref)
			b.Logf("net tables/%s per round: %.2f", ref, pairedRatios(got["tables"], got[ref]))
		}
	}
}

// pairedRatios divides a's net cost by b's round by round: the two ran
// seconds apart, under much the same load from elsewhere.
func pairedRatios(a, b []kernelCost) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i].netNsPerSample() / b[i].netNsPerSample()
	}
	return out
}

func logKernelCost(b *testing.B, name string, cs []kernelCost) {
	b.Logf("%-22s ns/sample %6.0f net %6.0f  rejected ns/run %4.0f  samples %4.0f of runs %4.0f  frames/sample %4.1f  (per round)",
		name, each(cs, kernelCost.nsPerSample), each(cs, kernelCost.netNsPerSample), each(cs, kernelCost.nsPerRejected),
		each(cs, func(c kernelCost) float64 { return c.samples }),
		each(cs, func(c kernelCost) float64 { return c.runs }),
		each(cs, func(c kernelCost) float64 { return c.frames }))
}

func each(cs []kernelCost, f func(kernelCost) float64) []float64 {
	out := make([]float64, len(cs))
	for i, c := range cs {
		out[i] = f(c)
	}
	return out
}

func costMedian(cs []kernelCost, f func(kernelCost) float64) float64 {
	s := each(cs, f)
	slices.Sort(s)
	return s[len(s)/2]
}

// tableBuildFiles are the files the issue sizes the tables with; the first
// of each group that exists is built, and groups with none are skipped.
var tableBuildFiles = [][]string{
	{"/lib/x86_64-linux-gnu/libc.so.6"},
	{"/usr/lib/x86_64-linux-gnu/libstdc++.so.6"},
	{"/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"},
	{"/usr/bin/python3.11"},
	{"/usr/bin/node"},
	{"/usr/lib/llvm-19/lib/libLLVM.so.19.1", "/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1"},
}

// BenchmarkTableBuild is what the table builder does for one file: parse
// its CFI into a table (unwind.Build) and lay the table out in pages as
// the store writes it into BPF memory (buildLayout). It reports the CPU
// seconds per build (user+system of the whole process, so the garbage
// collector's work counts too: on a shared machine wall time would also
// count other people's work), the BPF bytes of rows and pages, and the
// bytes of .eh_frame/.debug_frame read. The targets: libLLVM in
// under 0.5 CPU-s, in fewer bytes than its .eh_frame.
//
//	go test -run '^$' -bench TableBuild ./bpf/cpuprofile/
func BenchmarkTableBuild(b *testing.B) {
	for _, group := range tableBuildFiles {
		path, ok := firstExisting(group)
		if !ok {
			b.Logf("skipped: none of %v", group)
			continue
		}
		b.Run(filepath.Base(path), func(b *testing.B) { benchTableBuild(b, path) })
	}
}

func firstExisting(paths []string) (string, bool) {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

func benchTableBuild(b *testing.B, path string) {
	f, err := elf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var (
		tab   *unwind.Table
		lay   tableLayout
		rules int
	)
	cpu0 := processCPU(b)
	for b.Loop() {
		if tab, err = unwind.Build(f); err != nil {
			b.Fatal(err)
		}
		ids := ruleIDs{}
		if lay, err = buildLayout(tab.Rows, ids.id); err != nil {
			b.Fatal(err)
		}
		rules = len(ids)
	}
	cpu := (processCPU(b) - cpu0).Seconds() / float64(b.N)
	bpfBytes := float64(len(lay.rows)*rowSize + len(lay.pages)*pageInfoSize)
	b.ReportMetric(cpu, "cpu-s/build")
	b.ReportMetric(bpfBytes, "bpf-bytes")
	b.ReportMetric(float64(tab.SourceBytes()), "cfi-bytes")
	b.ReportMetric(bpfBytes/float64(tab.SourceBytes()), "bpf/cfi-bytes")
	b.ReportMetric(float64(len(tab.Rows)), "rows")
	b.ReportMetric(float64(rules), "rules")
}

// ruleIDs numbers distinct rules as the store does (tableStore.ruleID),
// without BPF memory: 0 is no rule, and offsets the BPF rule can't hold
// become one invalid rule.
type ruleIDs map[unwind.Rule]uint16

func (m ruleIDs) id(r unwind.Rule) (uint16, error) {
	if r.CFA == unwind.CFANone {
		return 0, nil
	}
	if r.RBPOffset < -32768 || r.RBPOffset > 32767 {
		r = unwind.Rule{CFA: unwind.CFAInvalid}
	}
	id, ok := m[r]
	if !ok {
		if len(m)+1 >= maxRules {
			return 0, ErrNoRoom
		}
		id = uint16(len(m) + 1)
		m[r] = id
	}
	return id, nil
}

// processCPU is the process's user+system CPU time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
