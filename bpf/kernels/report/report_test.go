package report

import (
	"errors"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/attach"
)

func TestLineNamesSkippedChosenAndFailures(t *testing.T) {
	r := attach.Report{Hook: "read", Chosen: "tracepoint", Attempts: []attach.Attempt{
		{Strategy: "fentry", Err: errors.New("disabled by configuration")},
		{Strategy: "kprobe", Err: errors.New("no such\nfile")},
		{Strategy: "tracepoint"},
	}}
	got := Line(r, map[string]bool{"fentry": true, "tp_btf": false})
	want := "vigil-strategy: hook=read skip=fentry chosen=tracepoint why=kprobe: no such file"
	if got != want {
		t.Fatalf("Line =\n%q, want\n%q", got, want)
	}
}

func TestLineWhenNothingAttached(t *testing.T) {
	r := attach.Report{Hook: "tcp", Attempts: []attach.Attempt{{Strategy: "fentry", Err: errors.New("EINVAL")}}}
	got := Line(r, nil)
	want := "vigil-strategy: hook=tcp skip=- chosen=none why=fentry: EINVAL"
	if got != want {
		t.Fatalf("Line = %q, want %q", got, want)
	}
}
