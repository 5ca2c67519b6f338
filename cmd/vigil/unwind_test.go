package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// shortFramelessC runs about 300 ms in sl_leaf under sl_inner < sl_outer <
// main, built at -O2 without frame pointers.
const shortFramelessC = `
#include <stdint.h>
#include <time.h>
volatile uint64_t sink;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
__attribute__((noinline)) void sl_leaf(void) { uint64_t x = sink; for (int i = 0; i < 100000; i++) x = x * 2654435761u + i; sink = x; }
__attribute__((noinline)) void sl_inner(double end) { while (now() < end) sl_leaf(); sink += 1; }
__attribute__((noinline)) void sl_outer(double end) { sl_inner(end); sink += 2; }
int main(void) { sl_outer(now() + 0.3); return 0; }
`

// A process that lives 300 ms, started while vigil runs, gets whole stacks
// through frameless code: its tables are built at its first sample, and the
// few samples taken before they are in place are marked as such rather
// than shown with made-up callers.
func TestProfileShortLivedFramelessProcessGetsWholeStacks(t *testing.T) {
	requireRoot(t)
	bin := buildO2(t, "slframeless", shortFramelessC)
	done := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		done <- exec.Command(bin).Run()
	}()
	p, summary := profileCmd(t, "-d", "3s", "-F", "499")
	if err := <-done; err != nil {
		t.Fatalf("workload: %v", err)
	}
	var leaf, whole, marked int64
	var other []string
	for _, s := range p.Sample {
		names := sampleNames(s)
		i := indexOf(names, "sl_leaf")
		if i < 0 {
			continue
		}
		leaf += s.Value[0]
		rest := strings.Join(names[i:], ";")
		switch {
		case strings.HasPrefix(rest, "sl_leaf;sl_inner;sl_outer;main;"):
			whole += s.Value[0]
		case strings.HasPrefix(names[len(names)-1], "[user stack truncated: "):
			marked += s.Value[0]
		default:
			other = append(other, rest)
		}
	}
	t.Logf("sl_leaf: %d samples, %d whole, %d marked truncated", leaf, whole, marked)
	if leaf < 30 {
		t.Fatalf("sl_leaf has %d samples, want most of its ~150; summary:\n%s", leaf, summary)
	}
	if float64(whole) < 0.8*float64(leaf) {
		t.Errorf("only %d of %d samples carry the whole chain; summary:\n%s", whole, leaf, summary)
	}
	if len(other) > 0 {
		t.Errorf("stacks neither whole nor marked truncated: %q", other)
	}
}

// buildO2 compiles a C workload as distributions build code: -O2, which on
// x86-64 also omits frame pointers.
func buildO2(t *testing.T, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	c, bin := filepath.Join(dir, name+".c"), filepath.Join(dir, name)
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-O2", "-o", bin, c).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// vdsoC spends its time in the vDSO's clock_gettime, a frameless leaf
// that only the vDSO's own unwind table can step out of.
const vdsoC = `
#include <time.h>
volatile long sink;
__attribute__((noinline)) void vd_loop(void) { struct timespec t; for (int i = 0; i < 1000; i++) { clock_gettime(CLOCK_MONOTONIC, &t); sink += t.tv_nsec; } }
__attribute__((noinline)) void vd_outer(void) { vd_loop(); sink++; }
int main(void) { for (;;) vd_outer(); }
`

// Samples inside the vDSO keep their callers: vigil builds the vDSO's table
// from process memory once and walks out of it like any library.
func TestProfileWalksOutOfTheVDSO(t *testing.T) {
	requireRoot(t)
	cmd := startWorkload(t, buildO2(t, "vd", vdsoC))
	p, summary := profileCmd(t, "-d", "3s", "-F", "299", "--pid", strconv.Itoa(cmd.Process.Pid))
	var inVDSO, whole int64
	for _, s := range p.Sample {
		if len(s.Location) == 0 || !userLeafIn(s, "[vdso]") {
			continue
		}
		inVDSO += s.Value[0]
		if strings.Contains(strings.Join(sampleNames(s), ";"), ";vd_loop;vd_outer;main") {
			whole += s.Value[0]
		}
	}
	t.Logf("%d samples in the vDSO, %d with vd_loop < vd_outer < main above", inVDSO, whole)
	if inVDSO < 30 {
		t.Fatalf("only %d samples in the vDSO; summary:\n%s", inVDSO, summary)
	}
	if float64(whole) < 0.95*float64(inVDSO) {
		t.Errorf("only %d of %d vDSO samples carry their callers", whole, inVDSO)
	}
}

// userLeafIn tells whether the first non-kernel frame of s is in a mapping
// named file.
func userLeafIn(s *profile.Sample, file string) bool {
	for _, l := range s.Location {
		if l.Mapping == nil || l.Mapping.File == "[kernel.kallsyms]" {
			continue
		}
		return l.Mapping.File == file
	}
	return false
}

// deepC spins 200 calls deep, past the walker's 127 frames.
const deepC = `
volatile unsigned long sink;
__attribute__((noinline)) void deep_leaf(void) { for (unsigned long i = 0; i < 100000000UL; i++) sink += i; }
__attribute__((noinline)) void deep_rec(int n) { if (n == 0) deep_leaf(); else deep_rec(n - 1); sink++; }
int main(void) { for (;;) deep_rec(200); }
`

// A stack deeper than the walker goes keeps its 127 innermost frames and
// says why it ends there.
func TestProfileMarksStacksPastTheDepthLimit(t *testing.T) {
	requireRoot(t)
	cmd := startWorkload(t, buildO2(t, "deep", deepC))
	p, summary := profileCmd(t, "-d", "2s", "-F", "199", "--pid", strconv.Itoa(cmd.Process.Pid))
	var leaf, marked int64
	for _, s := range p.Sample {
		names := sampleNames(s)
		i := indexOf(names, "deep_leaf")
		if i < 0 {
			continue
		}
		leaf += s.Value[0]
		rec := 0
		for _, n := range names[i+1:] {
			if n == "deep_rec" {
				rec++
			}
		}
		if names[len(names)-1] == "[user stack truncated: depth_limit]" && rec == 126 {
			marked += s.Value[0]
		}
	}
	t.Logf("deep_leaf: %d samples, %d with 126 deep_rec frames ending in the depth-limit marker", leaf, marked)
	if leaf < 30 {
		t.Fatalf("only %d samples in deep_leaf; summary:\n%s", leaf, summary)
	}
	if float64(marked) < 0.95*float64(leaf) {
		t.Errorf("only %d of %d samples keep 127 frames and the depth-limit marker", marked, leaf)
	}
}

// gcChurnGo allocates without pause, so the garbage collector runs most of
// the time, on the system stack (runtime.systemstack).
const gcChurnGo = `package main

var sink [][]byte

func churn() {
	for i := 0; i < 1000; i++ {
		sink = append(sink, make([]byte, 4096))
		if len(sink) > 20000 {
			sink = nil
		}
	}
}

func main() {
	for {
		churn()
	}
}
`

// Go code is walked with frame pointers, and its chain crosses from the
// thread's system stack to the goroutine's stack, which usually lies below
// it: the garbage collector's stacks must still reach runtime.goexit.
func TestProfileGoStacksCrossTheSystemStack(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(gcChurnGo), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gcchurn\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gcchurn")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := startWorkload(t, bin)
	p, summary := profileCmd(t, "-d", "3s", "-F", "499", "--pid", strconv.Itoa(cmd.Process.Pid))
	var gc, whole int64
	for _, s := range p.Sample {
		names := sampleNames(s)
		if indexOf(names, "runtime.gcDrain") < 0 {
			continue
		}
		gc += s.Value[0]
		if j := indexOf(names, "runtime.systemstack"); j > 0 && names[len(names)-1] == "runtime.goexit" {
			whole += s.Value[0]
		}
	}
	t.Logf("runtime.gcDrain: %d samples, %d through runtime.systemstack to runtime.goexit", gc, whole)
	if gc < 20 {
		t.Fatalf("only %d samples in runtime.gcDrain; summary:\n%s", gc, summary)
	}
	if float64(whole) < 0.9*float64(gc) {
		t.Errorf("only %d of %d garbage-collector samples reach runtime.goexit", whole, gc)
	}
}
