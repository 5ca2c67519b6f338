package kernels

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestTableShowsChainsTestsAndFailures(t *testing.T) {
	res := parseFile(t, "testdata/results.log")
	var b strings.Builder
	PrintTable(&b, []Run{{Kernel: "6.1", Result: res}, {Kernel: "6.12", Err: errors.New("timed out after 5m0s")}})
	out := b.String()
	for _, want := range []string{
		"6.1     read  fentry  fentry > kprobe > tracepoint ",
		" fentry untested, kprobe untested, tracepoint untested ",
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

func TestCheckExpectations(t *testing.T) {
	res := parseFile(t, "testdata/results.log")
	exps, err := ParseExpectations(strings.NewReader(`
# comment
6.     read  fentry > kprobe          # loses tracepoint: a mismatch
6.1.   tcp   none
5.10.  read  kprobe
`))
	if err != nil {
		t.Fatal(err)
	}
	mm, applied := Check(Run{Kernel: "6.1.0-56-cloud-amd64", Result: res}, exps)
	if !applied || len(mm) != 1 || mm[0].Hook != "read" {
		t.Fatalf("mismatches %v applied %v, want one for read", mm, applied)
	}
	if want := "hook read: fallback order fentry > kprobe > tracepoint, expected fentry > kprobe (expectations line 3)"; mm[0].String() != want {
		t.Errorf("mismatch reads %q, want %q", mm[0], want)
	}
	exps[0].Chain = []string{"fentry", "kprobe", "tracepoint"}
	if mm, _ := Check(Run{Kernel: "6.1.0-56-cloud-amd64", Result: res}, exps); len(mm) != 0 {
		t.Errorf("matching chains reported: %v", mm)
	}
	if _, applied := Check(Run{Kernel: "4.19.0", Result: res}, exps); applied {
		t.Error("expectations applied to a kernel no prefix matches")
	}
	for _, bad := range []string{"6. read", "6."} {
		if _, err := ParseExpectations(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseExpectations(%q) accepted", bad)
		}
	}
}

func TestShippedExpectationsParse(t *testing.T) {
	f, err := os.Open("expect.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exps, err := ParseExpectations(f)
	if err != nil || len(exps) == 0 {
		t.Fatalf("expect.txt: %d expectations, err %v", len(exps), err)
	}
}

func TestStrategyCountsLeavesNamingTheStrategy(t *testing.T) {
	tests := []TestResult{
		{Name: "TestA/fentry", Status: "PASS"},
		{Name: "TestA/kprobe_tid", Status: "FAIL"},
		{Name: "TestB/kprobe", Status: "PASS"},
		{Name: "TestB/kprobe/tcp4", Status: "PASS"},
		{Name: "TestB/kprobe/tcp6", Status: "SKIP"},
		{Name: "TestKprobeAlone", Status: "PASS"},
	}
	cases := map[string]string{"fentry": "1ok", "kprobe": "1FAIL+1ok+1skip", "tracepoint": "untested"}
	for st, want := range cases {
		if got := strategyCounts(tests, st); got != want {
			t.Errorf("strategyCounts(%s) = %q, want %q", st, got, want)
		}
	}
}
