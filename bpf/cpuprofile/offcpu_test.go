package cpuprofile

import (
	"bufio"
	"bytes"
	"debug/elf"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"github.com/vigil-ebpf/vigil/bpf/kernels/report"
)

// offcpuBinary is the prebuilt workload when there is one (inside the
// matrix guest), or testdata/offcpu.c compiled now, statically like the
// matrix builds it, so its addresses are its symbols'.
func offcpuBinary(t testing.TB) string {
	t.Helper()
	if p, err := filepath.Abs("testdata/offcpu"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
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
	totals   []OffCPUTotals
	measured map[string]uint64
	report   string
}

// runOffCPUWorkload profiles the workload off-CPU only while it runs,
// draining every interval, and returns what was drained.
func runOffCPUWorkload(t *testing.T, skip map[string]bool, interval time.Duration) offcpuRun {
	bin := offcpuBinary(t)
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
			skip := map[string]bool{}
			for _, o := range offStrategies {
				if o.name != s.name {
					skip[o.name] = true
				}
			}
			checkOffCPURun(t, skip)
		})
	}
}

func checkOffCPURun(t *testing.T, skip map[string]bool) {
	run := runOffCPUWorkload(t, skip, 200*time.Millisecond)
	funcs := loadFuncs(t, offcpuBinary(t))
	got := map[string]uint64{}
	var sampled uint64
	truncated := map[string]uint64{}
	for _, s := range run.samples {
		sampled += s.OffCPUNanos
		if s.UserTruncated != "" {
			truncated[s.UserTruncated] += s.OffCPUNanos
		}
		for _, fn := range []string{"sleeper", "pipe_reader", "mutex_waiter", "spinner"} {
			if funcs.stackHas(s.User, fn) {
				got[fn] += s.OffCPUNanos
			}
		}
	}
	t.Logf("%s: measured %v, recorded %v, truncated %v", run.report, run.measured, got, truncated)
	for _, fn := range []string{"sleeper", "pipe_reader", "mutex_waiter"} {
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
