package biolat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"golang.org/x/sys/unix"
)

const blockSize = 4096

// loopDevice attaches a 16 MiB file in a temporary directory to a free loop
// device and detaches it when the test ends. It talks to the loop driver
// directly (what losetup -f does), so it needs no losetup binary.
func loopDevice(tb testing.TB) (path string, rdev uint64) {
	tb.Helper()
	img, err := os.Create(filepath.Join(tb.TempDir(), "disk.img"))
	if err != nil {
		tb.Fatal(err)
	}
	defer img.Close()
	if err := img.Truncate(16 << 20); err != nil {
		tb.Fatal(err)
	}
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		tb.Fatalf("loop devices unavailable (kernel without CONFIG_BLK_DEV_LOOP?): %v", err)
	}
	defer ctl.Close()
	path, err = attachLoop(ctl, img)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		d, err := os.OpenFile(path, os.O_RDWR, 0)
		if err == nil {
			err = unix.IoctlSetInt(int(d.Fd()), unix.LOOP_CLR_FD, 0)
			d.Close()
		}
		if err != nil {
			tb.Errorf("detaching %s: %v", path, err)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		tb.Fatal(err)
	}
	return path, st.Rdev
}

// attachLoop attaches img to a free loop device, trying again when another
// process takes the free device first.
func attachLoop(ctl, img *os.File) (string, error) {
	for try := 0; ; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", fmt.Errorf("finding a free loop device: %w", err)
		}
		path := fmt.Sprintf("/dev/loop%d", n)
		dev, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return "", err
		}
		err = unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_SET_FD, int(img.Fd()))
		dev.Close()
		if err == nil {
			return path, nil
		}
		if !errors.Is(err, unix.EBUSY) || try == 4 {
			return "", fmt.Errorf("attaching %s to %s: %w", img.Name(), path, err)
		}
	}
}

// directIO issues n single-block O_DIRECT writes or reads at distinct
// offsets: each becomes one request of its own.
type directIO struct {
	f   *os.File
	buf []byte
}

func openDirect(tb testing.TB, path string) *directIO {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		tb.Fatal(err)
	}
	// O_DIRECT needs a block-aligned buffer: mmap gives a page.
	buf, err := unix.Mmap(-1, 0, blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		f.Close()
		unix.Munmap(buf)
	})
	return &directIO{f, buf}
}

func (d *directIO) run(tb testing.TB, write bool, n int) {
	tb.Helper()
	for i := range n {
		off := int64(i%4096) * blockSize
		var err error
		if write {
			_, err = d.f.WriteAt(d.buf, off)
		} else {
			_, err = d.f.ReadAt(d.buf, off)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func counts(tb testing.TB, p *Program) map[string]hist.Histogram {
	tb.Helper()
	rs, err := p.Read()
	if err != nil {
		tb.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Name != MetricDuration || rs[0].Unit != "s" {
		tb.Fatalf("readings %+v", rs)
	}
	out := map[string]hist.Histogram{}
	for _, s := range rs[0].Histograms {
		out[s.Attrs[AttrDirection]] = s.Hist
	}
	if len(out) != 2 {
		tb.Fatalf("directions %v, want read and write", out)
	}
	return out
}

func openProgram(tb testing.TB, opts Options) *Program {
	tb.Helper()
	testenv.RequireRoot(tb)
	p, err := Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// Direct I/O on a loop device lands in the right direction, with each
// strategy that works here.
func TestDirectIOCountedByDirection(t *testing.T) {
	for _, s := range strategyList() {
		t.Run(s.name, func(t *testing.T) {
			testenv.RequireRoot(t)
			path, rdev := loopDevice(t)
			p, err := Open(Options{Device: rdev, Skip: only(s.name)})
			testenv.RequireStrategy(t, Hook, s.name, err)
			defer p.Close()
			if got := p.Report().Chosen; got != s.name {
				t.Fatalf("chose %q, want %q: %v", got, s.name, p.Report())
			}
			d := openDirect(t, path)
			const n = 64
			c0 := counts(t, p)
			d.run(t, true, n)
			c1 := counts(t, p)
			d.run(t, false, n)
			c2 := counts(t, p)
			w1, r1 := c1["write"].Count-c0["write"].Count, c1["read"].Count-c0["read"].Count
			r2, w2 := c2["read"].Count-c1["read"].Count, c2["write"].Count-c1["write"].Count
			t.Logf("write phase: %d writes %d reads; read phase: %d reads %d writes", w1, r1, r2, w2)
			if w1 < n || r2 < n {
				t.Fatalf("counted %d writes and %d reads, want at least %d each", w1, r2, n)
			}
			// Whatever else touches the new device (a udev probe) is far
			// fewer requests than the workload: a swapped direction is not.
			if r1 >= n || w2 >= n {
				t.Fatalf("direction mixed up: %d reads while writing, %d writes while reading", r1, w2)
			}
			if st := p.Stats(); len(st) != 2 {
				t.Fatalf("stats for %d programs, want issue and complete: %+v", len(st), st)
			}
			if p.StartTime().IsZero() || time.Since(p.StartTime()) > time.Minute {
				t.Fatalf("start time %v", p.StartTime())
			}
			for dir, h := range c2 {
				if h.Overflow != 0 || h.ZeroCount != 0 || h.SumNs == 0 || h.SumNs > h.Count*1e9 {
					t.Fatalf("%s: implausible loop device latencies %+v", dir, h)
				}
			}
		})
	}
}

// only returns a Skip set that leaves just the named strategy.
func only(name string) map[string]bool {
	skip := map[string]bool{}
	for _, s := range strategyList() {
		skip[s.name] = s.name != name
	}
	return skip
}

// With a device filter, I/O on another disk is not counted.
func TestDeviceFilterExcludesOtherDisks(t *testing.T) {
	testenv.RequireRoot(t)
	path, _ := loopDevice(t)
	_, other := loopDevice(t)
	p := openProgram(t, Options{Device: other})
	c0 := counts(t, p)
	openDirect(t, path).run(t, false, 32)
	c1 := counts(t, p)
	if got := c1["read"].Count - c0["read"].Count; got >= 32 {
		t.Fatalf("%d reads of another device counted", got)
	}
}

func TestAllSkippedIsNoStrategy(t *testing.T) {
	testenv.RequireRoot(t)
	_, err := Open(Options{Skip: map[string]bool{StrategyTPBTF: true, StrategyTracepoint: true}})
	if !errors.Is(err, attach.ErrNoStrategy) {
		t.Fatalf("Open with every strategy skipped: %v, want ErrNoStrategy", err)
	}
}

func TestKernelDev(t *testing.T) {
	for _, tc := range []struct {
		major, minor uint32
		want         uint32
	}{{7, 0, 7 << 20}, {259, 3, 259<<20 | 3}, {8, 300, 8<<20 | 300}} {
		if got := kernelDev(unix.Mkdev(tc.major, tc.minor)); got != tc.want {
			t.Errorf("kernelDev(%d:%d) = %#x, want %#x", tc.major, tc.minor, got, tc.want)
		}
	}
	if kernelDev(0) != 0 {
		t.Error("no filter must stay no filter")
	}
}

func TestStrategyOrderIsTheRegistrys(t *testing.T) {
	var names []string
	for _, s := range strategyList() {
		names = append(names, s.name)
	}
	testenv.RequireOrder(t, Hook, names)
}
