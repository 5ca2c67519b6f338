package main

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// hotC has two hot functions doing work in a 3:1 ratio, called through
// work() from main, built with frame pointers in every function, leaves
// included: a frame-pointer unwinder (the kernel's, perf's) skips the caller
// of a leaf that sets up no frame. gcc 12 drops leaf frames from -O1 up
// even with -mno-omit-leaf-frame-pointer, so the workloads are built at -O0.
const hotC = `
#include <stdint.h>
volatile uint64_t sink;
__attribute__((noinline)) void hot_alpha(void) { for (int i = 0; i < 300000; i++) sink += (uint64_t)i * i; }
__attribute__((noinline)) void hot_beta(void)  { for (int i = 0; i < 100000; i++) sink += (uint64_t)i * i; }
__attribute__((noinline)) void work(void) { hot_alpha(); hot_beta(); }
int main(void) { for (;;) work(); }
`

// readC spends its time in the kernel's read path.
const readC = `
#include <fcntl.h>
#include <unistd.h>
static char buf[1 << 20];
int main(void) { int fd = open("/dev/zero", O_RDONLY); for (;;) read(fd, buf, sizeof buf); }
`

// shortC spins for 300 ms and exits.
const shortC = `
#include <stdint.h>
#include <time.h>
volatile uint64_t sink;
__attribute__((noinline)) void short_lived_spin(void) {
	struct timespec s, n; clock_gettime(CLOCK_MONOTONIC, &s);
	do { for (int i = 0; i < 10000; i++) sink += i; clock_gettime(CLOCK_MONOTONIC, &n); }
	while ((n.tv_sec - s.tv_sec) * 1000000000L + (n.tv_nsec - s.tv_nsec) < 300000000L);
}
int main(void) { short_lived_spin(); return 0; }
`

// spinGo is a Go program with two named hot functions, built stripped.
// They call tick() so that they are not frameless leaves: Go gives leaf
// functions without locals no frame pointer, which hides their caller from
// a frame-pointer unwinder.
const spinGo = `package main

var sink uint64

//go:noinline
func tick(i int) { sink ^= uint64(i) }

//go:noinline
func spinGamma() { for i := 0; i < 3000000; i++ { sink += uint64(i) * 3; if i%1000000 == 0 { tick(i) } } }

//go:noinline
func spinDelta() { for i := 0; i < 1000000; i++ { sink += uint64(i) * 5; if i%1000000 == 0 { tick(i) } } }

func main() { for { spinGamma(); spinDelta() } }
`

func buildC(t testing.TB, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	c := filepath.Join(dir, name+".c")
	bin := filepath.Join(dir, name)
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", bin, c).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

func buildStrippedGo(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(spinGo), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module spin\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "spin")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startWorkload runs bin until the test ends.
func startWorkload(t *testing.T, bin string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin)
	// Killed with the test process too, should a panic skip the cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// profileCmd runs 'vigil profile' in process and parses what it wrote.
func profileCmd(t *testing.T, args ...string) (*profile.Profile, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cpu.pb.gz")
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"profile", "-o", out}, args...), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("vigil profile exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("parsing %s: %v", out, err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return p, stderr.String()
}

// leafCounts sums samples by leaf function name, for one pid (0: all).
func leafCounts(p *profile.Profile, pid int64) map[string]int64 {
	out := map[string]int64{}
	for _, s := range p.Sample {
		if pid != 0 && (len(s.NumLabel["pid"]) == 0 || s.NumLabel["pid"][0] != pid) {
			continue
		}
		if len(s.Location) > 0 && len(s.Location[0].Line) > 0 {
			out[s.Location[0].Line[0].Function.Name] += s.Value[0]
		}
	}
	return out
}

// hasChain reports whether some sample's stack holds want as consecutive
// frames, leaf first.
func hasChain(p *profile.Profile, want ...string) bool {
	for _, s := range p.Sample {
		names := sampleNames(s)
		joined := ";" + strings.Join(names, ";") + ";"
		if strings.Contains(joined, ";"+strings.Join(want, ";")+";") {
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

// perfRecord samples the whole machine with perf at hz until ctx ends and
// returns the percentages of leaf symbols of pid. (Per-task perf events give
// no samples on some VMs; system-wide ones always work.)
func perfRecord(ctx context.Context, t *testing.T, hz int, d time.Duration, pid int) map[string]float64 {
	t.Helper()
	data := filepath.Join(t.TempDir(), "perf.data")
	secs := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
	rec := exec.CommandContext(ctx, "perf", "record", "-q", "-e", "cpu-clock", "-F", strconv.Itoa(hz), "-a", "-o", data, "--", "sleep", secs)
	if out, err := rec.CombinedOutput(); err != nil {
		t.Fatalf("perf record: %v\n%s", err, out)
	}
	rep := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "pid,symbol", "-g", "none")
	out, err := rep.Output()
	if err != nil {
		t.Fatalf("perf report: %v", err)
	}
	return parsePerfReport(out, pid)
}

var perfLine = regexp.MustCompile(`^\s*([0-9.]+)%\s+(\d+):\S*\s+\[.\]\s+(\S+)`)

func parsePerfReport(out []byte, pid int) map[string]float64 {
	res := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil || m[2] != strconv.Itoa(pid) {
			continue
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		res[m[3]] += v
	}
	return res
}

func requirePerf(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("perf"); err != nil {
		t.Fatalf("perf is needed as the reference profiler (apt-get install linux-perf; .ci/run installs it): %v", err)
	}
}

// The acceptance test of the profiler: a C program's two hot functions are
// named with their caller chain, and the ratio between them agrees with perf
// sampling the same process in the same run.
func TestProfileCProgramAgreesWithPerf(t *testing.T) {
	requireRoot(t)
	requirePerf(t)
	bin := buildC(t, "hot", hotC)
	w := startWorkload(t, bin)
	pid := w.Process.Pid
	time.Sleep(200 * time.Millisecond)

	const hz, d = 999, 4 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	perfDone := make(chan map[string]float64, 1)
	go func() { perfDone <- perfRecord(ctx, t, hz, d, pid) }()
	p, _ := profileCmd(t, "--pid", strconv.Itoa(pid), "-F", strconv.Itoa(hz), "-d", d.String())
	ref := <-perfDone

	leaf := leafCounts(p, int64(pid))
	a, b := float64(leaf["hot_alpha"]), float64(leaf["hot_beta"])
	if a < 100 || b < 30 {
		t.Fatalf("too few samples of the hot functions: hot_alpha=%v hot_beta=%v (all leaves: %v)", a, b, leaf)
	}
	for _, fn := range []string{"hot_alpha", "hot_beta"} {
		if !hasChain(p, fn, "work", "main") {
			t.Errorf("no stack %s <- work <- main; profile:\n%s", fn, p)
		}
	}
	ra, rb := ref["hot_alpha"], ref["hot_beta"]
	if ra == 0 || rb == 0 {
		t.Fatalf("perf saw hot_alpha=%v%% hot_beta=%v%% of pid %d", ra, rb, pid)
	}
	vigilRatio, perfRatio := a/b, ra/rb
	t.Logf("hot_alpha/hot_beta: vigil %.3f (%v/%v samples), perf %.3f (%.2f%%/%.2f%%)", vigilRatio, a, b, perfRatio, ra, rb)
	if math.Abs(vigilRatio/perfRatio-1) > 0.15 {
		t.Errorf("vigil's ratio %.3f differs from perf's %.3f by more than 15%%", vigilRatio, perfRatio)
	}
}

func TestProfileStrippedGoBinaryNamedFromPclntab(t *testing.T) {
	requireRoot(t)
	bin := buildStrippedGo(t)
	if out, _ := exec.Command("file", bin).Output(); len(out) > 0 && !strings.Contains(string(out), "stripped") {
		t.Logf("file says: %s", out)
	}
	w := startWorkload(t, bin)
	time.Sleep(200 * time.Millisecond)
	p, _ := profileCmd(t, "--pid", strconv.Itoa(w.Process.Pid), "-d", "2s", "-F", "499")
	leaf := leafCounts(p, int64(w.Process.Pid))
	if leaf["main.spinGamma"] == 0 || leaf["main.spinDelta"] == 0 {
		t.Fatalf("stripped Go functions not named: %v", leaf)
	}
	if !hasChain(p, "main.spinGamma", "main.main", "runtime.main") {
		t.Errorf("no main.spinGamma <- main.main <- runtime.main stack")
	}
}

func TestProfileNamesKernelReadPath(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, buildC(t, "reader", readC))
	time.Sleep(200 * time.Millisecond)
	p, _ := profileCmd(t, "--pid", strconv.Itoa(w.Process.Pid), "-d", "2s", "-F", "499")
	var kernelNamed bool
	for _, s := range p.Sample {
		names := strings.Join(sampleNames(s), ";")
		if strings.Contains(names, "vfs_read") || strings.Contains(names, "ksys_read") {
			kernelNamed = true
			if !strings.Contains(names, "main") {
				t.Errorf("kernel read path without its user caller: %s", names)
			}
			break
		}
	}
	if !kernelNamed {
		t.Fatalf("no sample names vfs_read or ksys_read; leaves: %v", leafCounts(p, 0))
	}
	var kmap *profile.Mapping
	for _, m := range p.Mapping {
		if m.File == "[kernel.kallsyms]" {
			kmap = m
		}
	}
	if kmap == nil || !kmap.HasFunctions {
		t.Errorf("kernel mapping %+v: want [kernel.kallsyms] with functions", kmap)
	}
}

// A process that lives 300 ms inside the profile, and whose binary is
// deleted while it runs, is still named.
func TestProfileNamesShortLivedProcess(t *testing.T) {
	requireRoot(t)
	bin := buildC(t, "shortlived", shortC)
	done := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		cmd := exec.Command(bin)
		if err := cmd.Start(); err != nil {
			done <- err
			return
		}
		time.Sleep(50 * time.Millisecond)
		os.Remove(bin)
		done <- cmd.Wait()
	}()
	p, summary := profileCmd(t, "-d", "3s", "-F", "99")
	if err := <-done; err != nil {
		t.Fatalf("short-lived workload: %v", err)
	}
	var n int64
	for _, s := range p.Sample {
		for _, name := range sampleNames(s) {
			if name == "short_lived_spin" {
				n += s.Value[0]
				break
			}
		}
	}
	if n < 5 {
		t.Fatalf("short_lived_spin has %d samples, want most of its ~30; summary:\n%s\nleaves: %v", n, summary, leafCounts(p, 0))
	}
}

func TestProfileFoldedOutput(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, buildC(t, "hot", hotC))
	time.Sleep(200 * time.Millisecond)
	out := filepath.Join(t.TempDir(), "cpu.folded")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"profile", "--format", "folded", "-o", out, "-d", "1s", "-F", "499", "--pid", strconv.Itoa(w.Process.Pid)}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^hot;[^ ]*main;work;hot_alpha \d+$`)
	if !line.Match(b) {
		t.Fatalf("no 'hot;...main;work;hot_alpha N' line in folded output:\n%s", b)
	}
}

// go tool pprof itself must open a profile of the real machine.
func TestGoToolPprofReadsMachineProfile(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, buildC(t, "hot", hotC))
	time.Sleep(200 * time.Millisecond)
	out := filepath.Join(t.TempDir(), "cpu.pb.gz")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"profile", "-o", out, "-d", "2s"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "hot_alpha") {
		t.Errorf("top functions printed by vigil lack hot_alpha:\n%s", stdout.String())
	}
	for _, mode := range []string{"-top", "-traces", "-raw"} {
		b, err := exec.Command("go", "tool", "pprof", mode, out).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof %s: %v\n%s", mode, err, b)
		}
		if !strings.Contains(string(b), "hot_alpha") {
			t.Errorf("go tool pprof %s lacks hot_alpha", mode)
		}
	}
	b, _ := exec.Command("go", "tool", "pprof", "-raw", out).CombinedOutput()
	if !regexp.MustCompile(`(?m)^\d+: 0x[0-9a-f]+/0x[0-9a-f]+/0x[0-9a-f]+ \S*/hot [0-9a-f]{40}`).Match(b) {
		t.Errorf("the workload's mapping carries no build ID in -raw output:\n%s", grepLines(b, "Mappings", 30))
	}
	_ = w
}

func grepLines(b []byte, from string, n int) string {
	i := bytes.Index(b, []byte(from))
	if i < 0 {
		return ""
	}
	lines := strings.SplitN(string(b[i:]), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (CAP_BPF, CAP_PERFMON); run the tests with sudo")
	}
}
