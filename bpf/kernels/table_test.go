package kernels

import (
	"errors"
	"strings"
	"testing"
)

func TestTableShowsChainsTestsAndFailures(t *testing.T) {
	res := parseFile(t, "testdata/results.log")
	var b strings.Builder
	PrintTable(&b, []Run{{Kernel: "6.1", Result: res}, {Kernel: "6.12", Err: errors.New("timed out after 5m0s")}})
	out := b.String()
	for _, want := range []string{
		"6.1     read  fentry  fentry > kprobe > tracepoint",
		"readlat: FAIL (1 pass, 1 fail, 1 skip, 4s)",
		"runqlat: UNFINISHED",
		"6.1: module sch_netem did not load: insmod",
		"6.1: readlat SKIP TestKprobe: readlat_test.go:60: skipped: this kernel does not support kprobe",
		"6.1: readlat exited 1; last output:",
		"VM: guest did not finish its jobs",
		"VM: timed out after 5m0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !(Run{Kernel: "6.1", Result: res}).Failed() {
		t.Error("a run with a failing job is not reported as failed")
	}
	ok := Result{Done: true, Jobs: []JobResult{{Name: "a"}}}
	if (Run{Result: ok}).Failed() {
		t.Error("a finished run whose jobs all exited 0 is reported as failed")
	}
}

func TestMissingRequirements(t *testing.T) {
	res := parseFile(t, "testdata/results.log")
	reqs, err := ParseRequirements("read=fentry, read=tp_btf,tcp_rtt=kprobe")
	if err != nil {
		t.Fatal(err)
	}
	got := Missing(Run{Result: res}, reqs)
	want := []Requirement{{"read", "tp_btf"}, {"tcp_rtt", "kprobe"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Missing = %v, want %v", got, want)
	}
	for _, bad := range []string{"read", "=fentry", "read="} {
		if _, err := ParseRequirements(bad); err == nil {
			t.Errorf("ParseRequirements(%q) accepted", bad)
		}
	}
}
