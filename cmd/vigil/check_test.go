package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/hooks"
)

// vigil check shows a row per attach point of bpf/hooks (the matrix's own
// hook aside), each with one of that point's strategies, and
// names the reason each better strategy was not taken. What the strategies
// are on the machine running the test doesn't matter.
func TestCheckShowsEveryHookAndItsStrategy(t *testing.T) {
	requireRoot(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("vigil check exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	rows := checkRows(stdout.String())
	// The profiler's rows come first: it is what check must find working.
	var want, got []string
	for _, h := range append(hooks.OfKind(hooks.Profiler), hooks.OfKind(hooks.Latency)...) {
		for _, p := range h.Points {
			want = append(want, p.Name)
		}
	}
	for _, r := range rows {
		got = append(got, r.hook)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rows for %q, want %q:\n%s", got, want, stdout.String())
	}
	for _, r := range rows {
		checkRowAgainstRegistry(t, r)
	}
}

// checkRowAgainstRegistry: the strategy is one of the point's (or
// "unavailable", with every strategy's reason), and every strategy before
// the chosen one has its reason.
func checkRowAgainstRegistry(t *testing.T, r checkRow) {
	t.Helper()
	p, _ := hooks.PointOf(r.hook)
	order := p.StrategyNames()
	i := slices.Index(order, r.strategy)
	switch {
	case r.strategy == "unavailable" && r.hook != "profile":
		i = len(order)
	case i < 0:
		t.Errorf("%s: strategy %q is not one of %q", r.hook, r.strategy, order)
		return
	}
	for _, better := range order[:i] {
		if !strings.Contains(r.why, better+": ") {
			t.Errorf("%s uses %s without saying why not %s: %q", r.hook, r.strategy, better, r.why)
		}
	}
}

// checkRows reads the table: HOOK, STRATEGY, then the reasons.
func checkRows(out string) []checkRow {
	var rows []checkRow
	lines := strings.Split(out, "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 3 {
			break // the table ends at the blank line
		}
		rows = append(rows, checkRow{hook: f[0], strategy: f[1], why: strings.Join(f[2:], " ")})
	}
	return rows
}

func TestCheckRefusesArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "now"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("vigil check now: exit %d, want %d", code, exitUsage)
	}
}

// vigil check names the running CPython processes with their versions,
// read from the interpreter files themselves.
func TestCheckListsPythonProcesses(t *testing.T) {
	requireRoot(t)
	py := "/usr/bin/python3"
	out, err := exec.Command(py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.Skipf("skipped: no %s to run (apt-get install python3): %v", py, err)
	}
	version := strings.TrimSpace(string(out))
	cmd := exec.Command(py, "-c", "import time; time.sleep(60)")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("vigil check exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	want := fmt.Sprintf("pid %d: CPython %s.", cmd.Process.Pid, version)
	if !strings.Contains(stdout.String(), want) {
		t.Fatalf("vigil check does not list %q:\n%s", want, stdout.String())
	}
	if !strings.Contains(stdout.String(), "python frames: walked") {
		t.Errorf("vigil check does not say Python frames are walked:\n%s", stdout.String())
	}
}
