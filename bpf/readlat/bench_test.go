package readlat

import (
	"bufio"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"golang.org/x/sys/unix"
)

// bpftraceProg is the usual way to get the same histogram ad hoc: the
// comparison point for vigil's overhead.
const bpftraceProg = `tracepoint:syscalls:sys_enter_read { @s[tid] = nsecs; } tracepoint:syscalls:sys_exit_read /@s[tid]/ { @ = hist(nsecs - @s[tid]); delete(@s[tid]); }`

const readsPerRep = 200_000

// nsPerRead times readsPerRep reads of 1 byte from /dev/zero on one thread,
// in the thread's CPU time (user and kernel, BPF programs included): on a
// shared machine wall time would also count the time other work held the
// CPU.
func nsPerRead(tb testing.TB, fd int) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 1)
	start := threadCPU(tb)
	for range readsPerRep {
		if _, err := unix.Read(fd, buf); err != nil {
			tb.Fatal(err)
		}
	}
	return float64(threadCPU(tb)-start) / readsPerRep
}

func threadCPU(tb testing.TB) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		tb.Fatal(err)
	}
	return ts.Nano()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkReadOverhead measures what a read() of 1 byte from /dev/zero
// costs bare, with vigil attached (each strategy that works here) and with
// the equivalent bpftrace program, in one run: repetitions are interleaved
// and the medians reported, so load from elsewhere hits all alike. Run with
// kernel.bpf_stats_enabled=0: stats add their own cost per program run.
func BenchmarkReadOverhead(b *testing.B) {
	testenv.RequireRoot(b)
	fd, err := unix.Open("/dev/zero", unix.O_RDONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	const reps = 7
	for b.Loop() {
		res := map[string][]float64{}
		for range reps {
			res["bare"] = append(res["bare"], nsPerRead(b, fd))
			for _, s := range []string{"tp_btf", "tracepoint"} {
				if v, ok := withVigil(b, s, fd); ok {
					res[s] = append(res[s], v)
				}
			}
		}
		res["bpftrace"] = withBpftrace(b, fd, reps)
		for range reps {
			res["bare"] = append(res["bare"], nsPerRead(b, fd))
		}
		report(b, res)
	}
}

func withVigil(b *testing.B, strategy string, fd int) (float64, bool) {
	p, err := Open(Options{Skip: only(strategy)})
	if err != nil {
		return 0, false
	}
	defer p.Close()
	return nsPerRead(b, fd), true
}

func report(b *testing.B, res map[string][]float64) {
	for _, k := range slices.Sorted(maps.Keys(res)) {
		b.Logf("%s ns/read per repetition: %.0f", k, res[k])
	}
	bare := median(res["bare"])
	b.ReportMetric(bare, "bare-ns/read")
	added := map[string]float64{}
	for k, v := range res {
		if k == "bare" || len(v) == 0 {
			continue
		}
		added[k] = median(v) - bare
		b.ReportMetric(added[k], k+"-added-ns/read")
	}
	if bt := added["bpftrace"]; bt > 0 {
		for _, s := range []string{"tp_btf", "tracepoint"} {
			if v, ok := added[s]; ok {
				b.ReportMetric(v/bt, s+"/bpftrace-added")
			}
		}
	}
}

// withBpftrace starts bpftrace, waits until its probes are attached, times
// reps repetitions and stops it.
func withBpftrace(b *testing.B, fd, reps int) []float64 {
	path, err := exec.LookPath("bpftrace")
	if err != nil {
		b.Logf("bpftrace not installed, no comparison: %v", err)
		return nil
	}
	cmd := exec.Command(path, "-e", bpftraceProg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer stop(cmd)
	if !waitAttached(bufio.NewScanner(out)) {
		b.Fatal("bpftrace exited before attaching its probes")
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(discard{}) }()
	var v []float64
	for range reps {
		v = append(v, nsPerRead(b, fd))
	}
	return v
}

// waitAttached waits for bpftrace's "Attaching N probes..." line, then a
// little longer: the line is printed as attaching starts.
func waitAttached(sc *bufio.Scanner) bool {
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Attaching") {
			time.Sleep(time.Second)
			return true
		}
	}
	return false
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkKernelNsPerEvent reports the in-kernel run time per program run
// of each strategy that works here, from the kernel's BPF statistics
// (enabled for the benchmark only, through a stats fd that the kernel drops
// when it is closed). statsCostNs, the cost of the accounting itself, is
// subtracted.
func BenchmarkKernelNsPerEvent(b *testing.B) {
	testenv.RequireRoot(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skipf("skipped: this kernel cannot enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	fd, err := unix.Open("/dev/zero", unix.O_RDONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	for b.Loop() {
		for _, s := range []string{"tp_btf", "tracepoint"} {
			p, err := Open(Options{Skip: only(s)})
			if err != nil {
				continue
			}
			nsPerRead(b, fd)
			for _, st := range p.Stats() {
				if st.RunCount > 0 {
					b.ReportMetric(float64(st.RunTimeNs)/float64(st.RunCount)-statsCostNs, s+"/"+st.Program+"-ns/run")
				}
			}
			p.Close()
		}
	}
}

// statsCostNs is what kernel.bpf_stats_enabled adds to each program run on
// the development machine (design notes).
const statsCostNs = 45

// BenchmarkRead is the cost of one collection: reading the per-CPU map and
// building the histogram.
func BenchmarkRead(b *testing.B) {
	testenv.RequireRoot(b)
	p, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for b.Loop() {
		if _, err := p.Read(); err != nil {
			b.Fatal(err)
		}
	}
}
