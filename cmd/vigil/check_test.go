package main

import (
	"bytes"
	"regexp"
	"testing"
)

func TestCheckShowsEveryHookAndItsStrategy(t *testing.T) {
	requireRoot(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("vigil check exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	// This kernel has perf events, tracepoints and tp_btf, but neither
	// kprobes nor fentry: the table must say what was chosen and why the
	// better ones were not.
	for _, want := range []string{
		`(?m)^profile\s+perf_event_(link|ioctl)\s`,
		`(?m)^read\s+(tp_btf|tracepoint)\s+.*fentry: .*kprobe: `,
		`(?m)^runqueue\s+(tp_btf|raw_tracepoint|tracepoint)\s`,
		`(?m)^tcp_connect\s+tracepoint\s+.*kprobe: `,
		`(?m)^block\s+(tp_btf|tracepoint)\s`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("vigil check output lacks a line matching %s:\n%s", want, out)
		}
	}
}

func TestCheckRefusesArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "now"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("vigil check now: exit %d, want %d", code, exitUsage)
	}
}
