package runqlat

import (
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"golang.org/x/sys/unix"
)

// pingPong bounces a byte between two threads over two pipes n times: two
// wakeups and at least two context switches per round trip.
func pingPong(tb testing.TB, n int) {
	var a, c [2]int
	if err := unix.Pipe(a[:]); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Pipe(c[:]); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		for _, fd := range []int{a[0], a[1], c[0], c[1]} {
			unix.Close(fd)
		}
	}()
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		buf := make([]byte, 1)
		for range n {
			unix.Read(a[0], buf)
			unix.Write(c[1], buf)
		}
		close(done)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 1)
	for range n {
		unix.Write(a[1], buf)
		unix.Read(c[0], buf)
	}
	<-done
}

// BenchmarkKernelNsPerEvent reports the in-kernel run time per program run
// of each strategy that works here, from the kernel's BPF statistics
// (enabled for the benchmark only, through a stats fd that the kernel drops
// when it is closed), with statsCostNs, the accounting's own cost,
// subtracted. The workload is a pipe ping-pong: wakeups and switches.
func BenchmarkKernelNsPerEvent(b *testing.B) {
	testenv.RequireRoot(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skipf("skipped: this kernel cannot enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	for b.Loop() {
		for _, s := range strategies {
			p, err := Open(Options{Skip: only(s.name)})
			if err != nil {
				continue
			}
			pingPong(b, 50_000)
			for _, st := range p.Stats() {
				if st.RunCount > 0 {
					b.ReportMetric(float64(st.RunTimeNs)/float64(st.RunCount)-statsCostNs, s.name+"/"+st.Program+"-ns/run")
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
	pingPong(b, 1000)
	for b.Loop() {
		if _, err := p.Read(); err != nil {
			b.Fatal(err)
		}
	}
}
