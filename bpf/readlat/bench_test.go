package readlat

import (
	"bufio"
	"bytes"
	"maps"
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
// the equivalent bpftrace program, in one run. Each repetition times bare
// reads, then each configuration, then bare reads again, and takes each
// configuration's added cost against the mean of those two bare figures;
// the medians over repetitions are reported. Pairing in time keeps load
// from elsewhere (which comes and goes) out of the differences. Run with
// kernel.bpf_stats_enabled=0: stats add their own cost per program run.
func BenchmarkReadOverhead(b *testing.B) {
	testenv.RequireRoot(b)
	fd, err := unix.Open("/dev/zero", unix.O_RDONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	bpftrace, err := exec.LookPath("bpftrace")
	if err != nil {
		b.Logf("bpftrace not installed, no comparison: %v", err)
	}
	const reps = 7
	for b.Loop() {
		added := map[string][]float64{}
		var bare []float64
		for range reps {
			before := nsPerRead(b, fd)
			got := map[string]float64{}
			for _, s := range []string{"tp_btf", "tracepoint"} {
				if v, ok := withVigil(b, s, fd); ok {
					got[s] = v
				}
			}
			if bpftrace != "" {
				got["bpftrace"] = withBpftrace(b, bpftrace, fd)
			}
			base := (before + nsPerRead(b, fd)) / 2
			bare = append(bare, base)
			for k, v := range got {
				added[k] = append(added[k], v-base)
			}
		}
		report(b, bare, added)
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

func report(b *testing.B, bare []float64, added map[string][]float64) {
	b.Logf("bare ns/read per repetition: %.0f", bare)
	b.ReportMetric(median(bare), "bare-ns/read")
	med := map[string]float64{}
	for _, k := range slices.Sorted(maps.Keys(added)) {
		b.Logf("%s added ns/read per repetition: %.0f", k, added[k])
		med[k] = median(added[k])
		b.ReportMetric(med[k], k+"-added-ns/read")
	}
	if bt := med["bpftrace"]; bt > 0 {
		for _, s := range []string{"tp_btf", "tracepoint"} {
			if v, ok := med[s]; ok {
				b.ReportMetric(v/bt, s+"/bpftrace-added")
			}
		}
	}
}

// withBpftrace starts bpftrace, waits until its probes are attached, times
// one repetition and stops it.
func withBpftrace(b *testing.B, path string, fd int) float64 {
	cmd := exec.Command(path, "-e", bpftraceProg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	// bpftrace warns that it cannot raise RLIMIT_MEMLOCK on kernels that
	// don't need it: show its stderr only when it fails.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if !waitAttached(bufio.NewScanner(out)) {
		stop(cmd) // waits, so stderr is complete
		b.Fatalf("bpftrace exited before attaching its probes: %s", stderr.String())
	}
	defer stop(cmd)
	go func() { _, _ = bufio.NewReader(out).WriteTo(discard{}) }()
	return nsPerRead(b, fd)
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
