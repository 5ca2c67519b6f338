package main

// End-to-end acceptance of Python profiling, judged the way users judge it:
// CPython workloads (testdata/python) run under every interpreter the
// machine has (internal/pythons: Debian's, pyenv's, and Debian 11's and 13's
// from the archive), vigil profiles them as a user would, and the profile
// must name each hot Python function with its file, line and callers up to
// <module>, in the share of samples the workload measured for itself.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/vigil-ebpf/vigil/internal/pythons"
)

const (
	pyHz = 499
	// pyWindow is how long the long-running workloads are profiled: some
	// 1,500 samples of one busy thread, so that a function with a quarter
	// of them is within the share tolerance by three standard deviations.
	pyWindow = 3 * time.Second
	// pyShareTolerance is how far (relative) a function's share of the
	// samples may be from the share of CPU time the workload measured.
	pyShareTolerance = 0.15
	// pyWholeChain is the fraction of a hot function's samples that must
	// show all its callers: these stacks are a few frames deep, so every
	// walk that reads the frames reaches <module>.
	pyWholeChain = 0.95
	// pyMaxUnreadable bounds the samples with a frame that could not be read.
	pyMaxUnreadable = 0.05
	// pyMinSamples is the fewest samples of a function to judge it by.
	pyMinSamples = 30
	pyUnreadable = "[python frame unreadable]"
	pyModule     = "<module>"
)

// A hot function and the Python functions that call it, rootward, as
// co_qualname gives them; pyName turns them into co_name before 3.11.
type pyHot struct {
	qual    string
	callers []string
}

var (
	hotFunctions = []pyHot{
		{qual: "Worker.hot_a", callers: []string{"run", "main", pyModule}},
		{qual: "Worker.hot_b", callers: []string{"run", "main", pyModule}},
		{qual: "run.<locals>.hot_nested", callers: []string{"run", "main", pyModule}},
	}
	compressLoop = pyHot{qual: "compress_loop", callers: []string{"main", pyModule}}
	// A thread's target is called by threading's own frames.
	threadCallers = []string{"Thread.run", "Thread._bootstrap_inner", "Thread._bootstrap"}
	spinLeft      = pyHot{qual: "spin_left", callers: threadCallers}
	spinRight     = pyHot{qual: "spin_right", callers: threadCallers}
	shortBurn     = pyHot{qual: "short_lived_burn", callers: []string{pyModule}}
)

// The profile of a single-threaded workload names each hot function with
// its script and line, under its whole chain of callers, in the share of
// samples the workload's own thread_time gives it; every sample carries the
// process's comm, pid and tid; few frames are unreadable; and go tool pprof
// shows the Python names.
func TestPythonHotFunctionsWithCallersAndShares(t *testing.T) {
	requireRoot(t)
	vigil := buildVigil(t)
	pythons.Each(t, func(t *testing.T, py pythons.Interpreter) {
		w := startPython(t, py, "hot.py")
		comm := procComm(t, w.cmd.Process.Pid)
		dir := t.TempDir()
		p := profilePython(t, vigil, dir, w)
		res := w.finish(t)
		samples := pySamplesOf(p, w.cmd.Process.Pid)
		checkLabels(t, samples, comm, res.Tids["main"])
		checkPythonMapping(t, py, samples)
		counts := map[string]int64{}
		for _, h := range hotFunctions {
			counts[h.qual] = judgeHot(t, py, w, samples, h, pyMinSamples)
		}
		checkShares(t, py, counts, res.CPU)
		checkUnreadable(t, samples)
		checkInsideNativeStack(t, samples)
		checkGoToolPprof(t, filepath.Join(dir, "cpu.pb.gz"), py, hotFunctions)
	})
}

// A C function called from Python (zlib's, in libz) is leafward of the
// Python frame that called it, with that frame's callers still above.
func TestPythonCExtensionUnderItsPythonCaller(t *testing.T) {
	requireRoot(t)
	vigil := buildVigil(t)
	pythons.Each(t, func(t *testing.T, py pythons.Interpreter) {
		w := startPython(t, py, "czlib.py")
		p := profilePython(t, vigil, t.TempDir(), w)
		w.finish(t)
		samples := pySamplesOf(p, w.cmd.Process.Pid)
		checkPythonMapping(t, py, samples)
		caller := pyName(py, compressLoop.qual)
		n := judgeHot(t, py, w, samples, compressLoop, pyMinSamples)
		var inLibz int64
		for _, s := range samples {
			i := indexPython(s.frames, caller)
			if i > 0 && anyLibz(s.frames[:i]) {
				inLibz += s.count
			}
		}
		t.Logf("%s: %d samples, %d with libz leafward of it", caller, n, inLibz)
		// perf puts 97% of this workload's time in libz.
		if float64(inLibz) < 0.5*float64(n) {
			t.Errorf("only %d of %d samples of %s have a libz frame leafward of it; its most frequent stacks:\n%s",
				inLibz, n, caller, topStacks(samples, caller))
		}
		checkUnreadable(t, samples)
	})
}

// Each thread's samples hold its own hot function and never the other's,
// and the two threads' shares follow their thread_time.
func TestPythonThreadsKeepTheirOwnFrames(t *testing.T) {
	requireRoot(t)
	vigil := buildVigil(t)
	pythons.Each(t, func(t *testing.T, py pythons.Interpreter) {
		w := startPython(t, py, "threads.py")
		p := profilePython(t, vigil, t.TempDir(), w)
		res := w.finish(t)
		samples := pySamplesOf(p, w.cmd.Process.Pid)
		checkPythonMapping(t, py, samples)
		counts := map[string]int64{}
		for _, h := range []pyHot{spinLeft, spinRight} {
			counts[h.qual] = judgeHot(t, py, w, samples, h, pyMinSamples)
		}
		pairs := [][2]pyHot{{spinLeft, spinRight}, {spinRight, spinLeft}}
		for _, pair := range pairs {
			own, other := pyName(py, pair[0].qual), pyName(py, pair[1].qual)
			tid := res.Tids[pair[0].qual]
			var total, withOwn, withOther int64
			for _, s := range samples {
				if s.tid != tid {
					continue
				}
				total += s.count
				if indexPython(s.frames, own) >= 0 {
					withOwn += s.count
				}
				if indexPython(s.frames, other) >= 0 {
					withOther += s.count
				}
			}
			t.Logf("tid %d (%s): %d samples, %d with %s, %d with %s", tid, own, total, withOwn, own, withOther, other)
			if withOther > 0 {
				t.Errorf("%d samples of the thread running %s (tid %d) show %s, which another thread runs", withOther, own, tid, other)
			}
			if total < pyMinSamples || float64(withOwn) < 0.9*float64(total) {
				t.Errorf("the thread running %s (tid %d) has %d samples, %d of them with it; its stacks:\n%s",
					own, tid, total, withOwn, topStacksOfTid(samples, tid))
			}
		}
		checkShares(t, py, counts, res.CPU)
		checkUnreadable(t, samples)
	})
}

// A Python process that lives 300 ms, started while vigil profiles the
// whole machine, is named: its frames are read while it runs, from its
// first samples on, as its native frames are.
func TestPythonShortLivedProcessNamed(t *testing.T) {
	requireRoot(t)
	vigil := buildVigil(t)
	const hz = 299
	pythons.Each(t, func(t *testing.T, py pythons.Interpreter) {
		w := &pyWorkload{script: pyScript(t, "short.py")}
		w.lines = readLines(t, w.script)
		done := make(chan error, 1)
		var out strings.Builder
		w.cmd = py.Command(w.script)
		w.cmd.Stdout = &out
		w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		// Started well after vigil's own start (loading its programs
		// takes a second on a busy machine) and well before its end.
		go func() {
			time.Sleep(2 * time.Second)
			done <- w.cmd.Run()
		}()
		p, summary := profileMachine(t, vigil, "-d", "4s", "-F", strconv.Itoa(hz))
		if err := <-done; err != nil {
			t.Fatalf("%s %s: %v", py, w.script, err)
		}
		var res pyResult
		if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
			t.Fatalf("workload printed %q: %v", out.String(), err)
		}
		samples := pySamplesOf(p, w.cmd.Process.Pid)
		name := pyName(py, shortBurn.qual)
		var n, total int64
		for _, s := range samples {
			total += s.count
			if indexPython(s.frames, name) >= 0 {
				n += s.count
			}
		}
		// The C equivalent (TestProfileShortLivedFramelessProcessGetsWholeStacks)
		// holds whole stacks to 80%; half leaves room for the interpreter's
		// start, which runs no Python yet.
		expected := res.CPU[plainName(shortBurn.qual)] * hz
		t.Logf("%s: %d samples of pid %d, %d with %s, of the ~%.0f its CPU time predicts", py.Name, total, w.cmd.Process.Pid, n, name, expected)
		if float64(total) < 0.8*expected {
			t.Fatalf("vigil has %d samples of the process, want ~%.0f: it was not sampling while the process ran; summary:\n%s",
				total, expected, summary)
		}
		if float64(n) < 0.5*expected {
			t.Errorf("%s is in %d samples, want at least half of the ~%.0f its %.2fs of CPU predict; the process's most frequent stacks:\n%s\nsummary:\n%s",
				name, n, expected, res.CPU[plainName(shortBurn.qual)], topStacks(samples, ""), summary)
		}
		judgeHot(t, py, w, samples, shortBurn, 1)
	})
}

// --unwind frame-pointer walks no Python: the profile of a Python process
// then has native frames only.
func TestPythonNotWalkedWithFramePointerUnwinding(t *testing.T) {
	requireRoot(t)
	vigil := buildVigil(t)
	all := pythons.All(t)
	if len(all) == 0 || all[0].Missing != "" {
		t.Skip("skipped: no CPython on this machine")
	}
	py := all[0] // an installed one: Debian's, else pyenv's oldest
	w := startPython(t, py, "hot.py")
	p := profilePython(t, vigil, t.TempDir(), w, "--unwind", "frame-pointer")
	w.finish(t)
	samples := pySamplesOf(p, w.cmd.Process.Pid)
	var total, python int64
	for _, s := range samples {
		total += s.count
		for _, f := range s.frames {
			if f.python() {
				python += s.count
				break
			}
		}
	}
	t.Logf("%s with --unwind frame-pointer: %d samples, %d with Python frames", py.Name, total, python)
	if total < pyMinSamples {
		t.Fatalf("only %d samples of the workload", total)
	}
	if python > 0 {
		t.Errorf("%d samples have Python frames with --unwind frame-pointer", python)
	}
}

// pyWorkload is a running workload script.
type pyWorkload struct {
	cmd    *exec.Cmd
	script string
	lines  []string // the script's source, for line numbers
	stdout *bufio.Scanner
	stderr *strings.Builder
}

// pyResult is what a workload prints at exit: each function's CPU seconds
// and the native thread id that ran it.
type pyResult struct {
	CPU  map[string]float64 `json:"cpu"`
	Tids map[string]int64   `json:"tids"`
}

func pyScript(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "python", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startPython runs a workload for at most a minute (the test stops it
// earlier) and returns once it is in its hot loop.
func startPython(t *testing.T, py pythons.Interpreter, name string) *pyWorkload {
	t.Helper()
	w := &pyWorkload{script: pyScript(t, name), stderr: &strings.Builder{}}
	w.lines = readLines(t, w.script)
	w.cmd = py.Command(w.script, "60")
	w.cmd.Stderr = w.stderr
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("%v: %v", py, err)
	}
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	w.stdout = bufio.NewScanner(out)
	ready := make(chan bool, 1)
	go func() { ready <- w.stdout.Scan() && w.stdout.Text() == "ready" }()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("%v %s did not start: %s", py, name, w.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%v %s not ready after 20s", py, name)
	}
	return w
}

// finish stops the workload and reads its result.
func (w *pyWorkload) finish(t *testing.T) pyResult {
	t.Helper()
	w.cmd.Process.Signal(syscall.SIGTERM)
	var res pyResult
	var last string
	for w.stdout.Scan() {
		last = w.stdout.Text()
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("workload %s: %v\n%s", w.script, err, w.stderr)
	}
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		t.Fatalf("workload %s printed %q: %v", w.script, last, err)
	}
	t.Logf("workload: cpu %v tids %v", res.CPU, res.Tids)
	return res
}

// profilePython profiles the workload's process with the vigil binary;
// the profile is left in dir/cpu.pb.gz.
func profilePython(t *testing.T, vigil, dir string, w *pyWorkload, extra ...string) *profile.Profile {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"-F", strconv.Itoa(pyHz), "-d", pyWindow.String()}, extra...)
	p, err := runVigilProfile(ctx, vigil, dir, w.cmd.Process.Pid, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// profileMachine profiles every process with the vigil binary and returns
// the profile and vigil's summary.
func profileMachine(t *testing.T, vigil string, args ...string) (*profile.Profile, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cpu.pb.gz")
	args = append([]string{"profile", "--top", "0", "-o", out}, args...)
	b, err := exec.Command(vigil, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("parsing vigil's profile: %v", err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return p, string(b)
}

// pyFrame is one frame of a sample as the profile names it.
type pyFrame struct {
	mapping, name, file string
	line                int64
}

func (f pyFrame) python() bool { return strings.HasPrefix(f.mapping, "[python") }

func (f pyFrame) String() string {
	name := f.name
	if name == "" {
		name = "?"
	}
	if f.python() {
		return fmt.Sprintf("%s (%s:%d)", name, filepath.Base(f.file), f.line)
	}
	return name + " [" + filepath.Base(f.mapping) + "]"
}

// pySample is one sample of the workload, frames leaf first.
type pySample struct {
	frames   []pyFrame
	count    int64
	pid, tid int64
	comm     string
}

// pySamplesOf returns the samples of pid, kernel frames dropped.
func pySamplesOf(p *profile.Profile, pid int) []pySample {
	var out []pySample
	for _, s := range p.Sample {
		ps := pySample{count: s.Value[0], comm: firstOf(s.Label["comm"])}
		pids, tids := s.NumLabel["pid"], s.NumLabel["tid"]
		if len(pids) == 0 || pids[0] != int64(pid) {
			continue
		}
		ps.pid = pids[0]
		if len(tids) > 0 {
			ps.tid = tids[0]
		}
		for _, loc := range s.Location {
			ps.frames = append(ps.frames, locationFrames(loc)...)
		}
		out = append(out, ps)
	}
	return out
}

func locationFrames(loc *profile.Location) []pyFrame {
	m := ""
	if loc.Mapping != nil {
		m = loc.Mapping.File
	}
	if m == "[kernel.kallsyms]" || isKernelAddr(loc.Address) {
		return nil
	}
	if len(loc.Line) == 0 {
		return []pyFrame{{mapping: m}}
	}
	out := make([]pyFrame, 0, len(loc.Line))
	for _, ln := range loc.Line {
		f := pyFrame{mapping: m, line: ln.Line}
		if ln.Function != nil {
			f.name, f.file = ln.Function.Name, ln.Function.Filename
		}
		out = append(out, f)
	}
	return out
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// pyName is how the profile names a function of the given co_qualname:
// before 3.11 code objects have no qualified name, only co_name.
func pyName(py pythons.Interpreter, qual string) string {
	if py.Minor() >= 11 {
		return qual
	}
	return plainName(qual)
}

// plainName is co_name: the last part of a qualified name.
func plainName(qual string) string { return qual[strings.LastIndex(qual, ".")+1:] }

// indexPython is the index in frames of the Python frame named name, -1
// when there is none.
func indexPython(frames []pyFrame, name string) int {
	for i, f := range frames {
		if f.python() && f.name == name {
			return i
		}
	}
	return -1
}

// pythonChain lists the names of the Python frames from index i rootward.
func pythonChain(frames []pyFrame, i int) []string {
	var out []string
	for _, f := range frames[i:] {
		if f.python() {
			out = append(out, f.name)
		}
	}
	return out
}

// judgeHot checks a hot function's frames: in at least atLeast samples, at a
// line of its body in the script, and in nearly every sample under the
// whole chain of callers, each at the line where it calls on. It returns
// the function's samples.
func judgeHot(t *testing.T, py pythons.Interpreter, w *pyWorkload, samples []pySample, h pyHot, atLeast int64) int64 {
	t.Helper()
	name := pyName(py, h.qual)
	want := []string{name}
	for _, c := range h.callers {
		want = append(want, pyName(py, c))
	}
	body := defRange(w.lines, plainName(h.qual))
	var n, whole int64
	badFrame, badCaller := map[string]int64{}, map[string]int64{}
	for _, s := range samples {
		i := indexPython(s.frames, name)
		if i < 0 {
			continue
		}
		n += s.count
		f := s.frames[i]
		if f.file != w.script || f.line < body[0] || f.line > body[1] {
			badFrame[fmt.Sprintf("%s:%d", f.file, f.line)] += s.count
		}
		if equalStrings(pythonChain(s.frames, i), want) {
			whole += s.count
			for _, c := range misplacedCallers(w, s.frames[i+1:], h.callers) {
				badCaller[c] += s.count
			}
		}
	}
	t.Logf("%s: %d samples, %d with the whole chain %s", name, n, whole, strings.Join(want, " < "))
	if n < atLeast {
		t.Errorf("%s is in %d samples, want at least %d; the process's most frequent stacks:\n%s",
			name, n, atLeast, topStacks(samples, ""))
		return n
	}
	if len(badFrame) > 0 {
		t.Errorf("%s: want %s at lines %d-%d; got (file:line: samples) %v", name, w.script, body[0], body[1], badFrame)
	}
	if len(badCaller) > 0 {
		t.Errorf("callers of %s not at the line that calls on (want: got: samples): %v", name, badCaller)
	}
	if float64(whole) < pyWholeChain*float64(n) {
		t.Errorf("only %d of %d samples of %s show the callers %s; its stacks without them:\n%s",
			whole, n, name, strings.Join(want, " < "), brokenChains(samples, name, want))
	}
	return n
}

// misplacedCallers checks that each caller in the script is at the line
// that calls on, the one marked "# frame: <caller>" (threading's are
// judged by name only), and describes those that are not.
func misplacedCallers(w *pyWorkload, frames []pyFrame, callers []string) []string {
	var bad []string
	i := 0
	for _, f := range frames {
		if !f.python() || i >= len(callers) {
			continue
		}
		line := markedLine(w.lines, callers[i])
		i++
		if line != 0 && (f.file != w.script || f.line != line) {
			bad = append(bad, fmt.Sprintf("%s:%d: %s:%d", filepath.Base(w.script), line, filepath.Base(f.file), f.line))
		}
	}
	return bad
}

// checkShares compares each function's share of the samples with its share
// of the CPU time the workload measured.
func checkShares(t *testing.T, py pythons.Interpreter, counts map[string]int64, cpu map[string]float64) {
	t.Helper()
	var nSum int64
	var cpuSum float64
	for qual, n := range counts {
		nSum += n
		cpuSum += cpu[plainName(qual)]
	}
	if nSum == 0 || cpuSum == 0 {
		t.Errorf("no samples (%d) or CPU time (%v) to compare shares", nSum, cpu)
		return
	}
	for qual, n := range counts {
		got := float64(n) / float64(nSum)
		want := cpu[plainName(qual)] / cpuSum
		t.Logf("%s: %.1f%% of samples, %.1f%% of the workload's CPU time", pyName(py, qual), 100*got, 100*want)
		if math.Abs(got-want) > pyShareTolerance*want {
			t.Errorf("%s has %.1f%% of the samples, the workload measured %.1f%% of its CPU time (tolerance %.0f%% relative)",
				pyName(py, qual), 100*got, 100*want, 100*pyShareTolerance)
		}
	}
}

// checkLabels: every sample carries the process's comm and the thread's tid.
func checkLabels(t *testing.T, samples []pySample, comm string, tid int64) {
	t.Helper()
	bad := map[string]int64{}
	for _, s := range samples {
		if s.comm != comm || s.tid != tid {
			bad[fmt.Sprintf("comm=%q tid=%d", s.comm, s.tid)] += s.count
		}
	}
	if len(bad) > 0 {
		t.Errorf("samples without comm=%q tid=%d: %v", comm, tid, bad)
	}
}

// checkPythonMapping: Python frames are under the mapping of the
// interpreter's version.
func checkPythonMapping(t *testing.T, py pythons.Interpreter, samples []pySample) {
	t.Helper()
	want := "[python" + py.Version + "]"
	seen := map[string]int64{}
	for _, s := range samples {
		for _, f := range s.frames {
			if f.python() {
				seen[f.mapping] += s.count
			}
		}
	}
	for m, n := range seen {
		if m != want {
			t.Errorf("%d samples have Python frames under mapping %q, want %q", n, m, want)
		}
	}
}

func checkUnreadable(t *testing.T, samples []pySample) {
	t.Helper()
	var total, bad int64
	for _, s := range samples {
		total += s.count
		for _, f := range s.frames {
			if f.name == pyUnreadable {
				bad += s.count
				break
			}
		}
	}
	if bad > 0 {
		t.Logf("%d of %d samples have %s", bad, total, pyUnreadable)
	}
	if float64(bad) >= pyMaxUnreadable*float64(total) {
		t.Errorf("%d of %d samples have %s (want under %.0f%%); they look like:\n%s",
			bad, total, pyUnreadable, 100*pyMaxUnreadable, topStacks(samples, pyUnreadable))
	}
}

// checkInsideNativeStack: the Python frames take the eval loop's place in
// the native stack, so the interpreter's native entry (Py_RunMain, which
// every build exports) stays rootward of <module>.
func checkInsideNativeStack(t *testing.T, samples []pySample) {
	t.Helper()
	var module, rooted int64
	for _, s := range samples {
		i := indexPython(s.frames, pyModule)
		if i < 0 {
			continue
		}
		module += s.count
		for _, f := range s.frames[i+1:] {
			if !f.python() && f.name == "Py_RunMain" {
				rooted += s.count
				break
			}
		}
	}
	if module > 0 && float64(rooted) < pyWholeChain*float64(module) {
		t.Errorf("only %d of %d samples with <module> have Py_RunMain rootward of it; stacks:\n%s",
			rooted, module, topStacks(samples, pyModule))
	}
}

// checkGoToolPprof: go tool pprof -traces shows the Python functions and
// their callers by name, <module> included.
func checkGoToolPprof(t *testing.T, file string, py pythons.Interpreter, hot []pyHot) {
	t.Helper()
	b, err := exec.Command("go", "tool", "pprof", "-traces", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -traces: %v\n%s", err, b)
	}
	seen := map[string]bool{}
	for _, h := range hot {
		for _, qual := range append([]string{h.qual}, h.callers...) {
			name := pyName(py, qual)
			if seen[name] {
				continue
			}
			seen[name] = true
			if !regexp.MustCompile(`(?m)^\s.*\s` + regexp.QuoteMeta(name) + `$`).Match(b) {
				t.Errorf("go tool pprof -traces shows no frame %s; a trace:\n%s", name, grepLines(b, "-----", 30))
			}
		}
	}
}

// procComm is the comm of pid as the kernel has it.
func procComm(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

// defRange returns the first and last line (1-based) of the function
// named name ("def name(" through its indented body).
func defRange(lines []string, name string) [2]int64 {
	if name == pyModule {
		return [2]int64{1, int64(len(lines))}
	}
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if !strings.HasPrefix(trimmed, "def "+name+"(") {
			continue
		}
		indent := len(l) - len(trimmed)
		end := i
		for j := i + 1; j < len(lines); j++ {
			lj := lines[j]
			if strings.TrimSpace(lj) == "" {
				continue
			}
			if len(lj)-len(strings.TrimLeft(lj, " ")) <= indent {
				break
			}
			end = j
		}
		return [2]int64{int64(i + 1), int64(end + 1)}
	}
	return [2]int64{0, 0}
}

// markedLine is the line (1-based) ending in "# frame: qual", 0 if none.
func markedLine(lines []string, qual string) int64 {
	for i, l := range lines {
		if strings.HasSuffix(l, "# frame: "+qual) {
			return int64(i + 1)
		}
	}
	return 0
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func anyLibz(frames []pyFrame) bool {
	for _, f := range frames {
		if !f.python() && strings.Contains(filepath.Base(f.mapping), "libz.so") {
			return true
		}
	}
	return false
}

// topStacks shows the most frequent stacks holding a frame named name (all
// when name is empty), leaf first.
func topStacks(samples []pySample, name string) string {
	counts := map[string]int64{}
	for _, s := range samples {
		if name == "" || hasFrameNamed(s.frames, name) {
			counts[formatPyFrames(s.frames)] += s.count
		}
	}
	return formatTop(counts)
}

func topStacksOfTid(samples []pySample, tid int64) string {
	counts := map[string]int64{}
	for _, s := range samples {
		if s.tid == tid {
			counts[formatPyFrames(s.frames)] += s.count
		}
	}
	return formatTop(counts)
}

// brokenChains shows the stacks of name that lack the chain want.
func brokenChains(samples []pySample, name string, want []string) string {
	counts := map[string]int64{}
	for _, s := range samples {
		if i := indexPython(s.frames, name); i >= 0 && !equalStrings(pythonChain(s.frames, i), want) {
			counts[formatPyFrames(s.frames)] += s.count
		}
	}
	return formatTop(counts)
}

func hasFrameNamed(frames []pyFrame, name string) bool {
	for _, f := range frames {
		if f.name == name {
			return true
		}
	}
	return false
}

func formatPyFrames(frames []pyFrame) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		parts[i] = f.String()
	}
	return strings.Join(parts, " < ")
}

// The workloads have what the tests look for: each hot function's def,
// and a "# frame:" marker for each caller in the script itself.
func TestPythonWorkloadsMarkTheirCallers(t *testing.T) {
	for script, hot := range map[string][]pyHot{
		"hot.py":     hotFunctions,
		"czlib.py":   {compressLoop},
		"threads.py": {spinLeft, spinRight},
		"short.py":   {shortBurn},
		"waits.py":   {waitSleep},
	} {
		lines := readLines(t, pyScript(t, script))
		for _, h := range hot {
			if r := defRange(lines, plainName(h.qual)); r[0] == 0 || r[1] <= r[0] {
				t.Errorf("%s: no body of %s found (%v)", script, h.qual, r)
			}
			for _, c := range h.callers {
				if !strings.HasPrefix(c, "Thread.") && markedLine(lines, c) == 0 {
					t.Errorf("%s: no line marked \"# frame: %s\"", script, c)
				}
			}
		}
	}
}
