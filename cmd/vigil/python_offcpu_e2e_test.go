package main

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/internal/pythons"
)

// waitSleep is where waits.py blocks, under main and <module>.
var waitSleep = pyHot{qual: "wait_sleep", callers: []string{"main", pyModule}}

// pyOffCPUWindow is how long the off-CPU tests profile a Python workload.
const pyOffCPUWindow = 2 * time.Second

// An off-CPU profile of a Python process names the Python function it
// waits in, with its line and its callers up to <module> at their call
// lines, under every interpreter; the time charged to it is the share of
// the window the workload measured itself blocked in it.
func TestPythonOffCPUNamesTheWaitingFunction(t *testing.T) {
	requireRoot(t)
	vigil := buildVigil(t)
	pythons.Each(t, func(t *testing.T, py pythons.Interpreter) {
		w := startPython(t, py, "waits.py")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := runVigilProfile(ctx, vigil, t.TempDir(), w.cmd.Process.Pid,
			"--off-cpu", "-d", pyOffCPUWindow.String())
		if err != nil {
			t.Fatal(err)
		}
		res := w.finish(t)
		if len(p.SampleType) != 2 || p.SampleType[1].Type != "off_cpu" {
			t.Fatalf("sample types %v: not an off-CPU profile", p.SampleType)
		}
		name := pyName(py, waitSleep.qual)
		body := defRange(w.lines, name)
		var total, inWait, whole int64
		for _, s := range p.Sample {
			if pids := s.NumLabel["pid"]; len(pids) == 0 || pids[0] != int64(w.cmd.Process.Pid) {
				continue
			}
			ns := s.Value[1]
			total += ns
			var frames []pyFrame
			for _, loc := range s.Location {
				frames = append(frames, locationFrames(loc)...)
			}
			i := indexPython(frames, name)
			if i < 0 {
				continue
			}
			if f := frames[i]; f.line < body[0] || f.line > body[1] || filepath.Base(f.file) != "waits.py" {
				t.Errorf("%s at %s:%d, not in its body (lines %d-%d)", name, f.file, f.line, body[0], body[1])
			}
			inWait += ns
			var callers []string
			for _, c := range waitSleep.callers {
				callers = append(callers, pyName(py, c))
			}
			if equalStrings(pythonChain(frames, i+1), callers) && len(misplacedCallers(w, frames[i+1:], waitSleep.callers)) == 0 {
				whole += ns
			}
		}
		if total == 0 {
			t.Fatal("no off-CPU time recorded for the workload")
		}
		// The workload's own share of its run spent blocked in wait_sleep.
		want := res.CPU["wait_sleep"] / res.CPU["elapsed"]
		got := float64(inWait) / float64(pyOffCPUWindow.Nanoseconds())
		t.Logf("%s: %s %v of %v recorded (%.3f of the window; the workload measured %.3f blocked); whole chain %.3f",
			py, name, time.Duration(inWait), time.Duration(total), got, want, float64(whole)/float64(max(inWait, 1)))
		if math.Abs(got/want-1) > 0.10 {
			t.Errorf("%s: %.3f of the window recorded, the workload measured itself blocked %.3f of its run", name, got, want)
		}
		if float64(whole) < pyWholeChain*float64(inWait) {
			t.Errorf("%s: only %v of %v under %v at their call lines", name, time.Duration(whole), time.Duration(inWait), waitSleep.callers)
		}
	})
}
