package main

// End-to-end acceptance of user-stack unwinding, judged the way users judge
// it: each workload (testdata/unwind, built here the way distributions
// build code) is sampled by vigil and by 'perf record --call-graph dwarf' in
// the same window, and in the samples whose leaf is the workload's hot
// function vigil must show the whole caller chain nearly as often as perf.

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

const (
	unwindHz     = 99
	unwindWindow = 4 * time.Second
	// triggerDelay is when, into the window, a workload's trigger (the
	// dlopen) fires: late enough that vigil has been sampling for a while.
	triggerDelay = 1500 * time.Millisecond
	// Bars: perf below perfBar means the workload, not vigil, is wrong;
	// vigil must reach vigilShare of perf's fraction, on at least
	// minVigilLeaf samples of a workload's hot leaves, and minClassLeaf
	// (for each profiler) of each class, so that a fraction means
	// something. The machine is shared: a workload gets 40 to 100 samples
	// a second at 99 Hz.
	perfBar      = 0.9
	vigilShare   = 0.95
	minVigilLeaf = 50
	minClassLeaf = 30
)

// unwindFrame is one user-space frame as either profiler names it.
type unwindFrame struct {
	name, file string
	addr       uint64 // shown when the frame has no name
}

// unwindStack is one sample, leaf first, kernel frames removed.
type unwindStack struct {
	frames []unwindFrame
	count  int64
}

// unwindClass picks samples by their leaf and names the chain they must
// hold, both as frame matchers. A frame matcher is a function name,
// matched after dropping argument lists, gcc's clone suffixes (.cold,
// .part.0) and Rust's hash, either whole or as the last path element
// ("rust_leaf" matches "rust_chain::rust_leaf"); or "in:" and part of the
// mapped file's base name, for frames in code the test does not name
// (libc's qsort internals, the signal trampoline, libgcc_s).
type unwindClass struct {
	name  string
	leaf  []string // the sample counts when its first user frame matches one
	chain []string // and it holds these frames in this order, leaf first
}

type unwindWorkload struct {
	name    string
	build   func(t *testing.T, dir string) string
	classes []unwindClass
	// trigger, when set, runs triggerDelay into the window; vigil must
	// then have sampled seenBefore, the function the workload runs until
	// triggered, so the window did start before it.
	trigger    func(t *testing.T, bin string)
	seenBefore string
	// perfMayFail is why perf may be unable to unwind this workload; when
	// it can't, vigil is held to the bar perf reaches elsewhere (all).
	perfMayFail string
}

var chainClass = unwindClass{
	name:  "leaf_work",
	leaf:  []string{"leaf_work"},
	chain: []string{"leaf_work", "stage_inner", "stage_middle", "stage_outer", "main"},
}

func unwindWorkloads() []unwindWorkload {
	return []unwindWorkload{
		{name: "c_o2_chain_pie", build: buildChainPIE, classes: []unwindClass{chainClass}},
		{name: "c_o2_chain_nopie", build: buildChainNoPIE, classes: []unwindClass{chainClass}},
		{name: "c_o2_debug_frame_only", build: buildChainDebugFrame, classes: []unwindClass{chainClass},
			perfMayFail: "perf's libunwind reads .eh_frame only unless built with --enable-debug-frame"},
		{name: "c_o2_qsort_callback", build: cBuilder("qsort.c", "-O2"), classes: []unwindClass{{
			name: "cmp_callback", leaf: []string{"cmp_callback"},
			chain: []string{"cmp_callback", "in:libc.so", "sort_driver", "main"},
		}}},
		{name: "c_o2_fp_frameless_leaf", build: buildFramelessLeaf, classes: []unwindClass{{
			name: "hot_leaf", leaf: []string{"hot_leaf"},
			chain: []string{"hot_leaf", "work_loop", "main"},
		}}},
		{name: "cpp_o2_exceptions", build: buildExceptions, classes: []unwindClass{{
			name: "cpp_compute", leaf: []string{"cpp_compute"},
			chain: []string{"cpp_compute", "cpp_thrower", "cpp_driver", "main"},
		}, {
			// The unwinder proper, the personality routine, and the
			// FDE lookup it asks ld.so for (_dl_find_object).
			name: "unwinder", leaf: []string{"in:libgcc_s", "in:libstdc++", "in:ld-linux"},
			chain: []string{"cpp_driver", "main"},
		}}},
		{name: "rust_release", build: buildRust, classes: []unwindClass{{
			name: "rust_leaf", leaf: []string{"rust_leaf"},
			chain: []string{"rust_leaf", "rust_inner", "rust_outer", "rust_chain::main", "main"},
		}}},
		{name: "c_o2_signal_handler", build: cBuilder("signal.c", "-O2"), classes: []unwindClass{{
			name: "handler_work", leaf: []string{"handler_work"},
			chain: []string{"handler_work", "in:libc.so", "interrupted_fn", "sig_driver", "main"},
		}}},
		{name: "c_o2_dlopen_late", build: buildDlopen, trigger: createGoFile, seenBefore: "wait_for_go",
			classes: []unwindClass{{
				name: "lib_inner", leaf: []string{"lib_inner"},
				chain: []string{"lib_inner", "lib_outer", "call_plugin", "main"},
			}}},
	}
}

// The acceptance test of table-based unwinding: vigil (default --unwind)
// shows the whole caller chain in at least 95% as many hot-leaf samples as
// perf's DWARF unwinding of the same process in the same window.
func TestUnwindAgainstPerfDwarf(t *testing.T) {
	requireRoot(t)
	requirePerf(t)
	vigil := buildVigil(t)
	for _, w := range unwindWorkloads() {
		t.Run(w.name, func(t *testing.T) {
			bin := w.build(t, t.TempDir())
			perfStacks, vigilProf := sampleBoth(t, vigil, bin, w.trigger)
			vigilStacks := vigilUnwindStacks(vigilProf)
			if w.seenBefore != "" && !anyFrame(vigilStacks, w.seenBefore) {
				t.Errorf("vigil has no sample of %s, so it was not sampling before the trigger", w.seenBefore)
			}
			var hot int64
			for _, c := range w.classes {
				hot += judgeClass(t, w, c, perfStacks, vigilStacks)
			}
			if hot < minVigilLeaf {
				t.Errorf("vigil has %d samples of the hot leaves, want at least %d; its most frequent leaves:\n%s",
					hot, minVigilLeaf, topLeaves(vigilStacks))
			}
		})
	}
}

// The frame-pointer walk must fail the bar on -O2 code: this proves the
// fractions above can fail and that --unwind frame-pointer selects it.
func TestUnwindFramePointerMissesCallersAtO2(t *testing.T) {
	requireRoot(t)
	vigil := buildVigil(t)
	bin := buildChainPIE(t, t.TempDir())
	w := startWorkload(t, bin)
	time.Sleep(200 * time.Millisecond)
	p, err := runVigilProfile(context.Background(), vigil, t.TempDir(), w.Process.Pid, "--unwind", "frame-pointer")
	if err != nil {
		t.Fatal(err)
	}
	s := scoreClass(vigilUnwindStacks(p), chainClass)
	t.Logf("c_o2_chain_pie with --unwind frame-pointer: vigil %s", s)
	if s.total < minVigilLeaf {
		t.Fatalf("vigil has %d samples of leaf_work, want at least %d", s.total, minVigilLeaf)
	}
	if s.fraction() >= 0.5 {
		t.Errorf("frame-pointer walk shows the whole chain in %s of leaf_work samples of frameless -O2 code; want below 50%%", s)
	}
}

// judgeClass checks one class of hot leaves and returns vigil's count.
func judgeClass(t *testing.T, w unwindWorkload, c unwindClass, perfStacks, vigilStacks []unwindStack) int64 {
	t.Helper()
	ps, vs := scoreClass(perfStacks, c), scoreClass(vigilStacks, c)
	t.Logf("%s/%s: perf %s vigil %s", w.name, c.name, ps, vs)
	if ps.total < minClassLeaf {
		t.Errorf("perf has only %d samples of %v, too few to judge (want %d): the workload did not run hot",
			ps.total, c.leaf, minClassLeaf)
		return vs.total
	}
	if vs.total < minClassLeaf {
		t.Errorf("vigil names %v in only %d samples where perf has %d; its most frequent leaves:\n%s",
			c.leaf, vs.total, ps.total, topLeaves(vigilStacks))
		return vs.total
	}
	ref := ps.fraction()
	if ref < perfBar {
		if w.perfMayFail == "" {
			t.Errorf("perf shows the whole chain in only %s: the workload is wrong, not vigil; perf's stacks without it:\n%s",
				ps, missing(perfStacks, c))
			return vs.total
		}
		t.Logf("perf can't unwind this (%s); holding vigil to 100%%", w.perfMayFail)
		ref = 1
	}
	if vs.fraction() < vigilShare*ref {
		t.Errorf("vigil shows %v in %s of samples, below %.0f%% of perf's %.1f%%; vigil's stacks without it:\n%s",
			c.chain, vs, 100*vigilShare, 100*ref, missing(vigilStacks, c))
	}
	return vs.total
}

// classScore counts samples whose leaf is hot (total) and, of those, the
// ones with the whole chain.
type classScore struct{ whole, total int64 }

func (s classScore) fraction() float64 {
	if s.total == 0 {
		return 0
	}
	return float64(s.whole) / float64(s.total)
}

func (s classScore) String() string {
	return fmt.Sprintf("%d/%d (%.1f%%)", s.whole, s.total, 100*s.fraction())
}

func scoreClass(stacks []unwindStack, c unwindClass) classScore {
	var s classScore
	for _, st := range stacks {
		if !hotLeaf(st, c) {
			continue
		}
		s.total += st.count
		if hasChainInOrder(st.frames, c.chain) {
			s.whole += st.count
		}
	}
	return s
}

func hotLeaf(st unwindStack, c unwindClass) bool {
	if len(st.frames) == 0 {
		return false
	}
	for _, m := range c.leaf {
		if frameMatches(st.frames[0], m) {
			return true
		}
	}
	return false
}

// hasChainInOrder allows other frames between the chain's: libc's sort
// internals, the signal trampoline, std's lang_start.
func hasChainInOrder(frames []unwindFrame, chain []string) bool {
	i := 0
	for _, f := range frames {
		if i < len(chain) && frameMatches(f, chain[i]) {
			i++
		}
	}
	return i == len(chain)
}

var (
	cloneSuffix = regexp.MustCompile(`(\.(cold|part|constprop|isra|lto_priv)(\.\d+)?)+$`)
	rustHash    = regexp.MustCompile(`::h[0-9a-f]{16}$`)
)

func frameMatches(f unwindFrame, m string) bool {
	if lib, ok := strings.CutPrefix(m, "in:"); ok {
		return strings.Contains(filepath.Base(f.file), lib)
	}
	n, _, _ := strings.Cut(f.name, "(")
	n = rustHash.ReplaceAllString(cloneSuffix.ReplaceAllString(n, ""), "")
	return n == m || strings.HasSuffix(n, "::"+m)
}

func anyFrame(stacks []unwindStack, name string) bool {
	for _, st := range stacks {
		for _, f := range st.frames {
			if frameMatches(f, name) {
				return true
			}
		}
	}
	return false
}

// missing lists the most frequent hot-leaf stacks that lack the chain, so
// a failure shows where the walk stopped.
func missing(stacks []unwindStack, c unwindClass) string {
	counts := map[string]int64{}
	for _, st := range stacks {
		if hotLeaf(st, c) && !hasChainInOrder(st.frames, c.chain) {
			counts[formatFrames(st.frames)] += st.count
		}
	}
	return formatTop(counts)
}

// formatTop prints the five largest counts, one "count: key" a line.
func formatTop(counts map[string]int64) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	var b strings.Builder
	for i, k := range keys {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "  %d: %s\n", counts[k], k)
	}
	return b.String()
}

func topLeaves(stacks []unwindStack) string {
	counts := map[string]int64{}
	for _, st := range stacks {
		if len(st.frames) > 0 {
			counts[formatFrames(st.frames[:1])] += st.count
		}
	}
	return formatTop(counts)
}

func formatFrames(frames []unwindFrame) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		name := f.name
		if name == "" {
			name = fmt.Sprintf("%#x", f.addr)
		}
		parts[i] = name + " [" + filepath.Base(f.file) + "]"
	}
	return strings.Join(parts, " < ")
}

// sampleBoth runs the workload and samples it with vigil and perf over the
// same window.
func sampleBoth(t *testing.T, vigil, bin string, trigger func(*testing.T, string)) ([]unwindStack, *profile.Profile) {
	t.Helper()
	w := startWorkload(t, bin)
	pid := w.Process.Pid
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		wg                sync.WaitGroup
		perfStacks        []unwindStack
		vigilProf         *profile.Profile
		perfErr, vigilErr error
	)
	dir := t.TempDir()
	wg.Add(2)
	go func() { defer wg.Done(); perfStacks, perfErr = perfDwarfStacks(ctx, dir, pid) }()
	go func() { defer wg.Done(); vigilProf, vigilErr = runVigilProfile(ctx, vigil, dir, pid) }()
	if trigger != nil {
		time.Sleep(triggerDelay)
		trigger(t, bin)
	}
	wg.Wait()
	if err := errors.Join(perfErr, vigilErr); err != nil {
		t.Fatal(err)
	}
	return perfStacks, vigilProf
}

// runVigilProfile runs the vigil binary as a user would, for pid only.
func runVigilProfile(ctx context.Context, vigil, dir string, pid int, extra ...string) (*profile.Profile, error) {
	out := filepath.Join(dir, "cpu.pb.gz")
	args := append([]string{"profile", "--pid", strconv.Itoa(pid), "-F", strconv.Itoa(unwindHz),
		"-d", unwindWindow.String(), "--top", "0", "-o", out}, extra...)
	if b, err := exec.CommandContext(ctx, vigil, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("vigil %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("parsing vigil's profile: %w", err)
	}
	return p, p.CheckValid()
}

func vigilUnwindStacks(p *profile.Profile) []unwindStack {
	var out []unwindStack
	for _, s := range p.Sample {
		st := unwindStack{count: s.Value[0]}
		for _, loc := range s.Location {
			file := ""
			if loc.Mapping != nil {
				file = loc.Mapping.File
			}
			if isKernelAddr(loc.Address) || file == "[kernel.kallsyms]" {
				continue
			}
			if len(loc.Line) == 0 {
				st.frames = append(st.frames, unwindFrame{file: file, addr: loc.Address})
			}
			// Inlined functions are further Lines of one Location,
			// innermost first: each is a frame, as perf shows them.
			for _, ln := range loc.Line {
				name := ""
				if ln.Function != nil {
					name = ln.Function.Name
				}
				st.frames = append(st.frames, unwindFrame{name: name, file: file, addr: loc.Address})
			}
		}
		out = append(out, st)
	}
	return out
}

func isKernelAddr(a uint64) bool { return a>>63 == 1 }

// perfDwarfStacks samples every CPU (per-task perf events give no samples
// on some VMs) with DWARF call graphs, and keeps pid's stacks.
func perfDwarfStacks(ctx context.Context, dir string, pid int) ([]unwindStack, error) {
	data := filepath.Join(dir, "perf.data")
	secs := strconv.FormatFloat(unwindWindow.Seconds(), 'f', 1, 64)
	rec := exec.CommandContext(ctx, "perf", "record", "-q", "-e", "cpu-clock", "-F", strconv.Itoa(unwindHz),
		"--call-graph", "dwarf", "-a", "-o", data, "--", "sleep", secs)
	if b, err := rec.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("perf record: %w\n%s", err, b)
	}
	// --no-inline: perf's inline expansion replaces a frame by its
	// inlined functions and drops the file, which the "in:" matchers need.
	script := exec.CommandContext(ctx, "perf", "script", "-i", data, "--no-inline", "--pid", strconv.Itoa(pid), "-F", "pid,tid,ip,sym,dso")
	var stderr strings.Builder
	script.Stderr = &stderr
	b, err := script.Output()
	if err != nil {
		return nil, fmt.Errorf("perf script: %w\n%s", err, stderr.String())
	}
	return parsePerfScript(strings.NewReader(string(b)))
}

// perfFrameLine is a call-chain line of 'perf script -F ip,sym,dso':
// address, symbol (which may hold spaces), and the file in parentheses.
var perfFrameLine = regexp.MustCompile(`^\s+([0-9a-f]+)\s+(.*)\s+\(([^()]*)\)$`)

// parsePerfScript reads samples separated by blank lines: a "pid/tid"
// header, then one line per frame, leaf first.
func parsePerfScript(r io.Reader) ([]unwindStack, error) {
	var out []unwindStack
	var cur *unwindStack
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			cur = nil
		case !strings.HasPrefix(line, "\t"):
			out = append(out, unwindStack{count: 1})
			cur = &out[len(out)-1]
		case cur != nil:
			if f, ok := parsePerfFrame(line); ok {
				cur.frames = append(cur.frames, f)
			}
		}
	}
	return out, sc.Err()
}

func parsePerfFrame(line string) (unwindFrame, bool) {
	m := perfFrameLine.FindStringSubmatch(line)
	if m == nil {
		return unwindFrame{}, false
	}
	addr, _ := strconv.ParseUint(m[1], 16, 64)
	if isKernelAddr(addr) || m[3] == "[kernel.kallsyms]" {
		return unwindFrame{}, false
	}
	return unwindFrame{name: m[2], file: m[3], addr: addr}, true
}

// Workload builders. Each returns the executable; compilers are those on
// PATH (gcc/g++ 12 on Debian 12), flags as distributions use them.

func unwindSource(name string) string {
	p, err := filepath.Abs(filepath.Join("testdata", "unwind", name))
	if err != nil {
		panic(err)
	}
	return p
}

func compileIn(t *testing.T, compiler, out string, args ...string) string {
	t.Helper()
	args = append(args, "-o", out)
	if b, err := exec.Command(compiler, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", compiler, strings.Join(args, " "), err, b)
	}
	return out
}

func cBuilder(src string, flags ...string) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		name := strings.TrimSuffix(src, filepath.Ext(src))
		return compileIn(t, "gcc", filepath.Join(dir, name), append(flags, unwindSource(src))...)
	}
}

// -O2 alone omits frame pointers on x86-64; the checks make sure of what
// each variant claims, so a change of compiler defaults can't make these
// tests easy.
func buildChainPIE(t *testing.T, dir string) string {
	bin := cBuilder("chain.c", "-O2", "-fPIE", "-pie")(t, dir)
	requireELFType(t, bin, elf.ET_DYN)
	requireNoFramePointer(t, bin, "stage_inner", "stage_middle", "stage_outer")
	return bin
}

func buildChainNoPIE(t *testing.T, dir string) string {
	bin := cBuilder("chain.c", "-O2", "-no-pie")(t, dir)
	requireELFType(t, bin, elf.ET_EXEC)
	requireNoFramePointer(t, bin, "stage_inner", "stage_middle", "stage_outer")
	return bin
}

// buildChainDebugFrame leaves the program's own functions with .debug_frame
// as their only unwind information (crt's _start still has .eh_frame).
func buildChainDebugFrame(t *testing.T, dir string) string {
	bin := cBuilder("chain.c", "-O2", "-fno-asynchronous-unwind-tables", "-g")(t, dir)
	requireNoFramePointer(t, bin, "stage_inner", "stage_middle", "stage_outer")
	fdes := readFDERanges(t, bin)
	for _, fn := range []string{"leaf_work", "stage_inner", "stage_middle", "stage_outer", "main"} {
		addr := symbolAddr(t, bin, fn)
		if covers(fdes[".eh_frame"], addr) || !covers(fdes[".debug_frame"], addr) {
			t.Fatalf("%s at %#x: want an FDE in .debug_frame only; FDE ranges: %v", fn, addr, fdes)
		}
	}
	return bin
}

// buildFramelessLeaf checks that -fno-omit-frame-pointer still leaves the
// leaf without a frame, which is what makes frame pointers insufficient.
func buildFramelessLeaf(t *testing.T, dir string) string {
	bin := cBuilder("fpleaf.c", "-O2", "-fno-omit-frame-pointer")(t, dir)
	if !setsFramePointer(t, bin, "work_loop") {
		t.Fatalf("work_loop sets up no frame pointer despite -fno-omit-frame-pointer")
	}
	requireNoFramePointer(t, bin, "hot_leaf")
	return bin
}

func buildExceptions(t *testing.T, dir string) string {
	return compileIn(t, "g++", filepath.Join(dir, "exceptions"), "-O2", unwindSource("exceptions.cc"))
}

// buildDlopen puts libhot.so next to the program, where it looks for it.
func buildDlopen(t *testing.T, dir string) string {
	compileIn(t, "gcc", filepath.Join(dir, "libhot.so"), "-O2", "-fPIC", "-shared", unwindSource("libhot.c"))
	requireNoFramePointer(t, filepath.Join(dir, "libhot.so"), "lib_inner", "lib_outer")
	return compileIn(t, "gcc", filepath.Join(dir, "dlopen"), "-O2", unwindSource("dlopen.c"))
}

// createGoFile tells the dlopen workload to load its library.
func createGoFile(t *testing.T, bin string) {
	if err := os.WriteFile(filepath.Join(filepath.Dir(bin), "go"), nil, 0o644); err != nil {
		t.Error(err)
	}
}

func buildRust(t *testing.T, dir string) string {
	cargo, err := exec.LookPath("cargo")
	if err != nil {
		t.Skip("skipped: cargo is not installed, so the Rust workload can't be built")
	}
	src, err := os.ReadFile(unwindSource("rust_chain.rs"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := "[package]\nname = \"rust_chain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Cargo.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "main.rs"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cargo, "build", "--release", "--offline", "--quiet")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CARGO_TARGET_DIR="+filepath.Join(dir, "target"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cargo build: %v\n%s", err, b)
	}
	return filepath.Join(dir, "target", "release", "rust_chain")
}

func requireELFType(t *testing.T, bin string, want elf.Type) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != want {
		t.Fatalf("%s is %v, want %v", bin, f.Type, want)
	}
}

func requireNoFramePointer(t *testing.T, bin string, fns ...string) {
	t.Helper()
	for _, fn := range fns {
		if setsFramePointer(t, bin, fn) {
			t.Fatalf("%s sets up a frame pointer in %s; the workload would not test table-based unwinding", bin, fn)
		}
	}
}

var movRSPToRBP = regexp.MustCompile(`mov\s+%rsp,%rbp`)

func setsFramePointer(t *testing.T, bin, fn string) bool {
	t.Helper()
	b, err := exec.Command("objdump", "-d", "--no-show-raw-insn", "--disassemble="+fn, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump %s: %v\n%s", bin, err, b)
	}
	if !strings.Contains(string(b), "<"+fn+">:") {
		t.Fatalf("objdump finds no %s in %s", fn, bin)
	}
	return movRSPToRBP.Match(b)
}

func symbolAddr(t *testing.T, bin, name string) uint64 {
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
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return s.Value
		}
	}
	t.Fatalf("no symbol %s in %s", name, bin)
	return 0
}

type pcRange struct{ lo, hi uint64 }

var (
	frameSection = regexp.MustCompile(`^Contents of the (\.\S+) section:`)
	fdePCRange   = regexp.MustCompile(`FDE cie=\S+ pc=([0-9a-f]+)\.\.([0-9a-f]+)`)
)

// readFDERanges lists the address ranges of the FDEs in each CFI section,
// as readelf decodes them.
func readFDERanges(t *testing.T, bin string) map[string][]pcRange {
	t.Helper()
	b, err := exec.Command("readelf", "--debug-dump=frames", bin).Output()
	if err != nil {
		t.Fatalf("readelf --debug-dump=frames %s: %v", bin, err)
	}
	out := map[string][]pcRange{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		if m := frameSection.FindStringSubmatch(line); m != nil {
			section = m[1]
		} else if m := fdePCRange.FindStringSubmatch(line); m != nil && section != "" {
			lo, _ := strconv.ParseUint(m[1], 16, 64)
			hi, _ := strconv.ParseUint(m[2], 16, 64)
			out[section] = append(out[section], pcRange{lo, hi})
		}
	}
	return out
}

func covers(ranges []pcRange, addr uint64) bool {
	for _, r := range ranges {
		if addr >= r.lo && addr < r.hi {
			return true
		}
	}
	return false
}
