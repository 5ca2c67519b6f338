package cpuprofile

import (
	"bufio"
	"bytes"
	"debug/elf"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"github.com/vigil-ebpf/vigil/bpf/kernels/report"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// prebuiltWorkload is testdata/<name> when the kernel matrix put it there
// (no compiler runs in its guests).
func prebuiltWorkload(name string) (string, bool) {
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		return "", false
	}
	_, err = os.Stat(p)
	return p, err == nil
}

// offcpuBinary is the prebuilt workload when there is one (inside the
// matrix guest), or testdata/offcpu.c compiled now, statically like the
// matrix builds it, so its addresses are its symbols'.
func offcpuBinary(t testing.TB) string {
	t.Helper()
	if p, ok := prebuiltWorkload("offcpu"); ok {
		return p
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("skipped: needs gcc to build testdata/offcpu.c (or a prebuilt testdata/offcpu)")
	}
	src, err := os.ReadFile("testdata/offcpu.c")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(src), "\n")
	flags := strings.Fields(strings.TrimPrefix(first, "// vigil-cflags:"))
	bin := filepath.Join(t.TempDir(), "offcpu")
	args := append([]string{"-static"}, flags...)
	if out, err := exec.Command("gcc", append(args, "-o", bin, "testdata/offcpu.c")...).CombinedOutput(); err != nil {
		t.Skipf("skipped: gcc -static (needs libc6-dev's libc.a): %v\n%s", err, out)
	}
	return bin
}

// checkAlternating checks that each drain holds time under both of two
// functions one thread calls in turn (the same wait at the same depth).
// A stack cache that told them apart by less than their return addresses
// would give one of them every interval after the first of a drain, in
// which each drain could pick either and the totals still agree.
func checkAlternating(t *testing.T, run offcpuRun, funcs funcRanges, a, b string) {
	t.Helper()
	for i, d := range run.drains {
		var na, nb uint64
		for _, s := range d {
			if funcs.stackHas(s.User, a) {
				na += s.OffCPUNanos
			}
			if funcs.stackHas(s.User, b) {
				nb += s.OffCPUNanos
			}
		}
		if na+nb < uint64(50*time.Millisecond) {
			continue // the workload not yet or no longer running
		}
		if share := float64(na) / float64(na+nb); share < 0.3 || share > 0.7 {
			t.Errorf("drain %d: %s %v, %s %v: one thread calls them in turn", i, a, time.Duration(na), b, time.Duration(nb))
		}
	}
}

// gonapBinary is the prebuilt Go workload (inside the matrix guest), or
// testdata/gonap.go built now.
func gonapBinary(t testing.TB) string {
	t.Helper()
	if p, ok := prebuiltWorkload("gonap"); ok {
		return p
	}
	bin := filepath.Join(t.TempDir(), "gonap")
	cmd := exec.Command("go", "build", "-o", bin, "testdata/gonap.go")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/gonap.go: %v\n%s", err, out)
	}
	return bin
}

// TestOffCPUGoStacks checks the off-CPU stacks of Go code, walked with frame
// pointers: a thread that waits in turn in main.napA and main.napB, the
// same system call at the same stack depth, gets each one's own time in
// every drain, and on tp_btf with task storage most of its user stacks come
// from the thread's cache, which must tell the two apart by their return
// addresses. The workload's own measure also holds what is not off-CPU
// under those functions: the Go runtime's work around the system call
// (handing its P over and taking one back, on the scheduler's stack) and,
// on one CPU, the wait for the CPU after the wakeup (together about 10% of
// it in a one-CPU matrix guest), so the times agree within 20%, not the C
// workload's 10%.
func TestOffCPUGoStacks(t *testing.T) {
	testenv.RequireRoot(t)
	bin := gonapBinary(t)
	funcs := loadFuncs(t, bin)
	for _, s := range offStrategies {
		t.Run(s.name, func(t *testing.T) {
			run := runOffCPUBinary(t, bin, onlyOffStrategy(s.name), 200*time.Millisecond)
			got := map[string]uint64{}
			for _, smp := range run.samples {
				for _, fn := range []string{"main.napA", "main.napB"} {
					if funcs.stackHas(smp.User, fn) {
						got[fn] += smp.OffCPUNanos
					}
				}
			}
			var reused, seen uint64
			for _, b := range run.totals {
				reused += b.UserStacksReused
				seen += b.Seen
			}
			t.Logf("%s: measured %v, recorded %v; user stacks reused for %d of %d intervals", run.report, run.measured, got, reused, seen)
			checkAlternating(t, run, funcs, "main.napA", "main.napB")
			for _, fn := range []string{"main.napA", "main.napB"} {
				want := float64(run.measured[fn])
				if want < 3e8 {
					t.Fatalf("%s blocked only %v ns by its own measure", fn, want)
				}
				if d := math.Abs(float64(got[fn])/want - 1); d > 0.20 {
					t.Errorf("%s: recorded %d ns off-CPU, the workload measured %d ns (%.1f%% off)", fn, got[fn], run.measured[fn], d*100)
				}
			}
			if cache := s.name == StrategyOffCPUBTF && histmap.HaveTaskStorage(); cache && reused < seen/4 {
				t.Errorf("user stacks reused for only %d of %d intervals: frame-pointer walks are not cached", reused, seen)
			}
		})
	}
}

// funcRanges are the workload's functions by address.
type funcRanges []elf.Symbol

func loadFuncs(t testing.TB, bin string) funcRanges {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var out funcRanges
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out
}

// name is the function holding pc ("" when none).
func (r funcRanges) name(pc uint64) string {
	i := sort.Search(len(r), func(i int) bool { return r[i].Value > pc }) - 1
	if i >= 0 && pc < r[i].Value+r[i].Size {
		return r[i].Name
	}
	return ""
}

// stackHas reports whether a user stack passes through fn. Frames past the
// leaf are return addresses: the call is the byte before.
func (r funcRanges) stackHas(user []uint64, fn string) bool {
	for i, pc := range user {
		if i > 0 {
			pc--
		}
		if r.name(pc) == fn {
			return true
		}
	}
	return false
}

type offcpuRun struct {
	samples  []Sample
	drains   [][]Sample // samples by drain
	totals   []OffCPUTotals
	measured map[string]uint64
	report   string
}

// runOffCPUWorkload profiles the workload off-CPU only while it runs,
// draining every interval, and returns what was drained.
func runOffCPUWorkload(t *testing.T, skip map[string]bool, interval time.Duration) offcpuRun {
	return runOffCPUBinary(t, offcpuBinary(t), skip, interval)
}

// runOffCPUBinary is runOffCPUWorkload for the workload bin, which takes
// the same arguments and prints its measures the same way.
func runOffCPUBinary(t *testing.T, bin string, skip map[string]bool, interval time.Duration) offcpuRun {
	cmd := exec.Command(bin, "1500")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := uint32(cmd.Process.Pid)

	p, err := Open(Options{Frequency: 49, NoCPU: true, PIDs: []uint32{pid}, DrainInterval: interval, Skip: skip})
	testenv.SkipIfNotSupported(t, "off-CPU profiling", err)
	defer p.Close()
	t.Log(report.Line(p.OffCPUReport(), skip))
	p.WaitTables()

	var run offcpuRun
	run.report = p.OffCPUReport().String()
	drain := func() {
		b, err := p.Drain()
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Samples) != 0 {
			t.Errorf("NoCPU: %d CPU samples", len(b.Samples))
		}
		run.samples = append(run.samples, b.OffCPU...)
		run.drains = append(run.drains, b.OffCPU)
		run.totals = append(run.totals, b.OffCPUTotals)
	}
	done := make(chan error, 1)
	if _, err := stdin.Write([]byte("g")); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("workload: %v", err)
			}
			waiting = false
		case <-tick.C:
			drain()
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	drain()
	run.measured = map[string]uint64{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			run.measured[f[0]] = n
		}
	}
	return run
}

// TestOffCPUTimeOfBlockingFunctions checks that each function's recorded
// off-CPU time agrees within 10% with the time the workload measured itself
// blocked in it, that a CPU-bound thread adds none, and that the totals add
// up over every drain.
func TestOffCPUTimeOfBlockingFunctions(t *testing.T) {
	testenv.RequireRoot(t)
	for _, s := range offStrategies {
		t.Run(s.name, func(t *testing.T) {
			skip := onlyOffStrategy(s.name)
			// tp_btf reuses kernel stacks from each thread's cache.
			checkOffCPURun(t, skip, s.name == StrategyOffCPUBTF && histmap.HaveTaskStorage())
		})
	}
}

// blockedIn names, per blocking function of the workload, a part of the
// name of the kernel function its thread waits in. One thread alternates
// between mutex_waiter and waiter_pause: a kernel stack reused for the
// wrong one of its waits would show the other's.
var blockedIn = map[string]string{"sleeper": "nanosleep", "pipe_reader": "pipe_read", "mutex_waiter": "futex", "waiter_pause": "nanosleep",
	"nap_a": "nanosleep", "nap_b": "nanosleep"}

// checkOffCPURun profiles the workload and checks its times and stacks;
// reuse: kernel stacks must mostly come from the threads' caches.
func checkOffCPURun(t *testing.T, skip map[string]bool, reuse bool) {
	run := runOffCPUWorkload(t, skip, 200*time.Millisecond)
	funcs := loadFuncs(t, offcpuBinary(t))
	ksyms := readKernelSymbols(t)
	got := map[string]uint64{}
	inKernel := map[string]uint64{} // of got, the time whose kernel stack shows the wait
	var sampled uint64
	truncated := map[string]uint64{}
	for _, s := range run.samples {
		sampled += s.OffCPUNanos
		if s.UserTruncated != "" {
			truncated[s.UserTruncated] += s.OffCPUNanos
		}
		var names []string
		for _, pc := range s.Kernel {
			names = append(names, ksyms.name(pc))
		}
		for _, fn := range []string{"sleeper", "pipe_reader", "mutex_waiter", "waiter_pause", "nap_a", "nap_b", "spinner"} {
			if funcs.stackHas(s.User, fn) {
				got[fn] += s.OffCPUNanos
				if slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, blockedIn[fn]) }) {
					inKernel[fn] += s.OffCPUNanos
				}
				for _, other := range []string{"nanosleep", "pipe_read", "futex"} {
					if other != blockedIn[fn] && slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, other) }) {
						t.Errorf("%s: %d ns with a kernel stack that waits in *%s*: %v", fn, s.OffCPUNanos, other, names)
					}
				}
			}
		}
	}
	var kreused, ureused, started uint64
	for _, b := range run.totals {
		kreused += b.KernelStacksReused
		ureused += b.UserStacksReused
		started += b.Seen
	}
	t.Logf("stacks reused from the threads' caches for %d intervals: kernel %d, user %d", started, kreused, ureused)
	for part, n := range map[string]uint64{"kernel": kreused, "user": ureused} {
		if reuse && n < started/2 {
			t.Errorf("%s stacks reused for only %d of %d intervals: the threads' caches are not used", part, n, started)
		}
		if !reuse && n > 0 {
			t.Errorf("%s stacks reused for %d intervals where no cache should be used", part, n)
		}
	}
	t.Logf("%s: measured %v, recorded %v, truncated %v", run.report, run.measured, got, truncated)
	// The kernel stacks show the waits.
	for fn, k := range blockedIn {
		if got[fn] > 0 && float64(inKernel[fn]) < 0.9*float64(got[fn]) {
			t.Errorf("%s: only %d of %d ns have a kernel stack through *%s*", fn, inKernel[fn], got[fn], k)
		}
	}

	// nap_a and nap_b block in the same call at the same stack depth: a
	// user stack reused for the other would move time between them.
	checkAlternating(t, run, funcs, "nap_a", "nap_b")
	for _, fn := range []string{"sleeper", "pipe_reader", "mutex_waiter", "nap_a", "nap_b"} {
		want := float64(run.measured[fn])
		if want < 1e8 {
			t.Fatalf("%s blocked only %v ns by its own measure", fn, want)
		}
		if d := math.Abs(float64(got[fn])/want - 1); d > 0.10 {
			t.Errorf("%s: recorded %d ns off-CPU, the workload measured %d ns (%.1f%% off)", fn, got[fn], run.measured[fn], d*100)
		}
	}
	if got["spinner"] != 0 {
		t.Errorf("the spinning thread recorded %d ns off-CPU", got["spinner"])
	}
	checkOffCPUTotals(t, run.totals, sampled)
}

// checkOffCPUTotals checks seen = recorded + below + lost, in count and
// nanoseconds, over every drain, and that the samples hold what was
// recorded.
func checkOffCPUTotals(t *testing.T, totals []OffCPUTotals, sampled uint64) {
	t.Helper()
	var sum OffCPUTotals
	var lost, lostNs uint64
	for _, b := range totals {
		sum.Seen += b.Seen
		sum.SeenNanos += b.SeenNanos
		sum.Recorded += b.Recorded
		sum.RecordedNanos += b.RecordedNanos
		sum.Below += b.Below
		sum.BelowNanos += b.BelowNanos
		for _, n := range b.Lost {
			lost += n
		}
		for _, n := range b.LostNanos {
			lostNs += n
		}
	}
	t.Logf("totals over %d drains: seen %d (%d ns), recorded %d (%d ns), below %d (%d ns), lost %d (%d ns)",
		len(totals), sum.Seen, sum.SeenNanos, sum.Recorded, sum.RecordedNanos, sum.Below, sum.BelowNanos, lost, lostNs)
	if sum.Seen != sum.Recorded+sum.Below+lost || sum.SeenNanos != sum.RecordedNanos+sum.BelowNanos+lostNs {
		t.Errorf("totals do not add up: seen %d/%d ns, recorded %d/%d, below %d/%d, lost %d/%d",
			sum.Seen, sum.SeenNanos, sum.Recorded, sum.RecordedNanos, sum.Below, sum.BelowNanos, lost, lostNs)
	}
	if sampled != sum.RecordedNanos {
		t.Errorf("samples hold %d ns, the totals recorded %d", sampled, sum.RecordedNanos)
	}
	if sum.Recorded == 0 {
		t.Error("nothing recorded")
	}
}

// kernelSymbols names kernel addresses with the symbolizer's own reading
// of /proc/kallsyms.
type kernelSymbols struct{ k *symbolizer.Kallsyms }

func readKernelSymbols(t testing.TB) kernelSymbols {
	t.Helper()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := symbolizer.ParseKallsyms(f)
	if err != nil {
		t.Skipf("skipped: /proc/kallsyms: %v", err)
	}
	return kernelSymbols{k}
}

// name is the function at pc ("" when none covers it).
func (k kernelSymbols) name(pc uint64) string {
	if l := k.k.Lookup(pc); len(l.Frames) > 0 {
		return l.Frames[0].Function
	}
	return ""
}

// TestOffCPUThreadBlockedAcrossDrains checks that a thread blocked across
// several drains gets its whole interval, with the user stack walked when
// it blocked (kept by user space from its drain epoch: the records are
// listed from task storage or from the hash) and its kernel stack.
func TestOffCPUThreadBlockedAcrossDrains(t *testing.T) {
	testenv.RequireRoot(t)
	ksyms := readKernelSymbols(t)
	for _, s := range offStrategies {
		t.Run(s.name, func(t *testing.T) {
			skip := onlyOffStrategy(s.name)
			p, err := Open(Options{Frequency: 49, NoCPU: true, DrainInterval: 100 * time.Millisecond, Skip: skip})
			testenv.SkipIfNotSupported(t, "off-CPU profiling", err)
			defer p.Close()
			long, stackLost := blockedAcrossDrains(t, p)
			checkIntervalStacks(t, ksyms, long, stackLost, "nanosleep")
		})
	}
}

// checkIntervalStacks checks that an interval kept both stacks, the kernel
// one showing a function named like wait. The one loss it accepts is a
// kernel stack refused because other stacks of the same drain held its
// hash bucket in the stack map and in the spill map, and counted as such
// (kernel_stack_collision in stackLost, the losses over the drains that saw
// the interval). Which stacks collide follows the kernel's addresses, so
// KASLR: rare, but a boot can pair the awaited stack with ones that recur.
func checkIntervalStacks(t *testing.T, ksyms kernelSymbols, s Sample, stackLost map[string]uint64, wait string) {
	t.Helper()
	var kernel []string
	for _, pc := range s.Kernel {
		kernel = append(kernel, ksyms.name(pc))
	}
	t.Logf("%d ns blocked; user frames %d; kernel %v; stack parts lost %v", s.OffCPUNanos, len(s.User), kernel, stackLost)
	if s.UserLost || len(s.User) == 0 {
		t.Errorf("the user stack of the interval is lost (%d frames)", len(s.User))
	}
	if s.KernelLost && stackLost["kernel_stack_collision"] > 0 {
		t.Logf("the kernel stack met a hash-bucket collision, counted: not checked")
		return
	}
	if s.KernelLost || !slices.ContainsFunc(kernel, func(n string) bool { return strings.Contains(n, wait) }) {
		t.Errorf("the kernel stack of the interval does not show %s: lost %v, %v", wait, s.KernelLost, kernel)
	}
}

// blockedAcrossDrains runs sleep 1.2 while draining p every 100 ms, and
// returns its interval of 1 s or more with the stack parts lost over those
// drains, by reason.
func blockedAcrossDrains(t *testing.T, p *Profiler) (Sample, map[string]uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "1.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var samples []Sample
	stackLost := map[string]uint64{}
	drains := 0
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			waiting = false
		case <-time.After(100 * time.Millisecond):
		}
		b, err := p.Drain()
		if err != nil {
			t.Fatal(err)
		}
		drains++
		for _, s := range b.OffCPU {
			if s.PID == pid {
				samples = append(samples, s)
			}
		}
		for k, v := range b.OffCPUTotals.StackLost {
			stackLost[k] += v
		}
	}
	for i := range samples {
		if samples[i].OffCPUNanos >= 1e9 {
			t.Logf("%d drains", drains)
			return samples[i], stackLost
		}
	}
	t.Fatalf("over %d drains, no interval of sleep of 1 s or more: %+v", drains, samples)
	return Sample{}, nil
}

// TestOffCPUIntervalEndingDuringDrain ends a wait that began three drains
// earlier in the middle of a drain, after the buffers flipped: its interval
// is counted in the next buffer, and the stacks of its record, from an
// epoch no longer kept whole, must still be there when that buffer is read.
func TestOffCPUIntervalEndingDuringDrain(t *testing.T) {
	testenv.RequireRoot(t)
	ksyms := readKernelSymbols(t)
	for _, s := range offStrategies {
		t.Run(s.name, func(t *testing.T) {
			p, err := Open(Options{Frequency: 49, NoCPU: true, DrainInterval: 100 * time.Millisecond, Skip: onlyOffStrategy(s.name)})
			testenv.SkipIfNotSupported(t, "off-CPU profiling", err)
			defer p.Close()
			cmd := exec.Command("head", "-c", "1")
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			pid := uint32(cmd.Process.Pid)
			for range 4 { // head blocks in read; its record ages three epochs
				time.Sleep(100 * time.Millisecond)
				if _, err := p.Drain(); err != nil {
					t.Fatal(err)
				}
			}
			var werr error
			p.afterFlip = func() {
				p.afterFlip = nil
				// head wakes, is switched in (its interval ends) and exits.
				if _, werr = in.Write([]byte{'x'}); werr == nil {
					werr = cmd.Wait()
				}
			}
			var samples []Sample
			stackLost := map[string]uint64{}
			for range 2 {
				b, err := p.Drain()
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range b.OffCPU {
					if s.PID == pid && s.OffCPUNanos >= 300e6 {
						samples = append(samples, s)
					}
				}
				for k, v := range b.OffCPUTotals.StackLost {
					stackLost[k] += v
				}
			}
			if werr != nil {
				t.Fatal(werr)
			}
			if len(samples) != 1 {
				t.Fatalf("want one interval of 300 ms or more of pid %d, got %+v", pid, samples)
			}
			checkIntervalStacks(t, ksyms, samples[0], stackLost, "pipe_read")
		})
	}
}

// TestOffCPUStacksChoice checks Options.OffCPUStacks: user stacks only
// leave the kernel part out (not lost: not taken), kernel stacks only the
// user part.
func TestOffCPUStacksChoice(t *testing.T) {
	testenv.RequireRoot(t)
	for _, c := range []struct{ stacks string }{{OffCPUStacksUser}, {OffCPUStacksKernel}} {
		t.Run(c.stacks, func(t *testing.T) {
			p, err := Open(Options{Frequency: 49, NoCPU: true, DrainInterval: time.Second, OffCPUStacks: c.stacks})
			testenv.SkipIfNotSupported(t, "off-CPU profiling", err)
			defer p.Close()
			cmd := exec.Command("sleep", "0.3")
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			b, err := p.Drain()
			if err != nil {
				t.Fatal(err)
			}
			var user, kernel int
			for _, s := range b.OffCPU {
				if s.PID != uint32(cmd.Process.Pid) {
					continue
				}
				user += len(s.User)
				kernel += len(s.Kernel)
				if s.UserLost || s.KernelLost {
					t.Errorf("a stack part is marked lost: %+v", s)
				}
			}
			switch {
			case c.stacks == OffCPUStacksUser && (kernel != 0 || user == 0):
				t.Errorf("user stacks only: %d kernel and %d user frames", kernel, user)
			case c.stacks == OffCPUStacksKernel && (user != 0 || kernel == 0):
				t.Errorf("kernel stacks only: %d kernel and %d user frames", kernel, user)
			}
		})
	}
	if _, err := Open(Options{Frequency: 49, NoCPU: true, OffCPUStacks: "all"}); err == nil || !strings.Contains(err.Error(), `"all"`) {
		t.Errorf("OffCPUStacks \"all\": got %v, want an error naming it", err)
	}
}

// onlyOffStrategy is the skip set that leaves only the named off-CPU
// strategy to try.
func onlyOffStrategy(name string) map[string]bool {
	skip := map[string]bool{}
	for _, o := range offStrategies {
		if o.name != name {
			skip[o.name] = true
		}
	}
	return skip
}
