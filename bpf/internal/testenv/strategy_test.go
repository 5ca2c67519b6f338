package testenv

import (
	"errors"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/hooks"
)

func TestParseRelease(t *testing.T) {
	for in, want := range map[string]hooks.Kernel{
		"6.18.44-fc-v1147": {Major: 6, Minor: 18}, "5.10.0-28-amd64": {Major: 5, Minor: 10},
		"6.1": {Major: 6, Minor: 1}, "6.12-rc3": {Major: 6, Minor: 12},
	} {
		if got, err := ParseRelease(in); err != nil || got != want {
			t.Errorf("ParseRelease(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "6", "x.y"} {
		if _, err := ParseRelease(bad); err == nil {
			t.Errorf("ParseRelease(%q) accepted", bad)
		}
	}
}

func TestUnsupportedByRelease(t *testing.T) {
	k, err := RunningKernel()
	if err != nil {
		t.Fatal(err)
	}
	future := hooks.Strategy{Name: "none_such", MinKernel: hooks.Kernel{Major: k.Major + 1}, Why: "from the future"}
	if why := Unsupported(future); why == "" {
		t.Errorf("a strategy for kernel %s is supported on %s", future.MinKernel, k)
	}
	if why := Unsupported(hooks.Strategy{Name: "none_such", MinKernel: hooks.Minimum}); why != "" {
		t.Errorf("a featureless strategy for %s is unsupported: %s", hooks.Minimum, why)
	}
}

// Unknown names are the test's mistake: they fail, never skip.
func TestRequireStrategyFailsOnUnknownNames(t *testing.T) {
	if _, err := lookup("read", "uprobe"); err == nil {
		t.Error("lookup accepted a strategy read does not have")
	}
	if _, err := lookup("faults", "tracepoint"); err == nil {
		t.Error("lookup accepted an unknown hook")
	}
	if _, err := lookup("read", hooks.Kprobe); err != nil {
		t.Error(err)
	}
}

// verdictTB records whether a check skipped or failed.
type verdictTB struct {
	testing.TB
	skipped, failed bool
}

func (v *verdictTB) Helper()               {}
func (v *verdictTB) Fatal(...any)          { v.failed = true }
func (v *verdictTB) Fatalf(string, ...any) { v.failed = true }
func (v *verdictTB) Skipf(string, ...any)  { v.skipped = true }

// A strategy the kernel has (tracepoints: tracefs is there) that fails to
// attach is a failure; one the kernel is too new a requirement for skips.
func TestRequireStrategyFailsWhenTheKernelShouldSupportIt(t *testing.T) {
	if missingFeature(hooks.Tracepoint) != "" {
		t.Skip("skipped: no tracefs here, so tracepoints are truly absent")
	}
	v := &verdictTB{TB: t}
	RequireStrategy(v, "runqueue", hooks.Tracepoint, errFake)
	if !v.failed || v.skipped {
		t.Errorf("tracepoint attach error on a kernel with tracefs: failed %v, skipped %v; want a failure", v.failed, v.skipped)
	}
	v = &verdictTB{TB: t}
	RequireStrategy(v, "runqueue", hooks.Tracepoint, nil)
	if v.failed || v.skipped {
		t.Errorf("no error: failed %v, skipped %v", v.failed, v.skipped)
	}
}

var errFake = errors.New("attach failed")
