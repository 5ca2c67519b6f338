package testenv

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/vigil-ebpf/vigil/bpf/hooks"
)

// RequireStrategy judges err, from attaching point (a name in bpf/hooks)
// with only strategy allowed. It skips, saying why, only when the running
// kernel is older than the strategy's minimum in bpf/hooks or truly lacks
// the feature the strategy is built on; any other error fails the test, so
// a regression on a kernel that should support the strategy is a failure,
// not a skip.
func RequireStrategy(tb testing.TB, point, strategy string, err error) {
	tb.Helper()
	s, lookupErr := lookup(point, strategy)
	if lookupErr != nil {
		tb.Fatal(lookupErr)
	}
	if err == nil {
		return
	}
	if why := Unsupported(s); why != "" {
		tb.Skipf("skipped: %s %s: %s: %v", point, strategy, why, err)
	}
	tb.Fatalf("%s %s should work on this kernel (%s; it needs %s): %v", point, strategy, running(), s.MinKernel, err)
}

// Unsupported says why the running kernel can't offer s, "" when it
// should: too old a release, or the feature absent.
func Unsupported(s hooks.Strategy) string {
	k, err := RunningKernel()
	if err == nil && k.Before(s.MinKernel) {
		return fmt.Sprintf("kernel %s is older than %s (%s)", k, s.MinKernel, s.Why)
	}
	return missingFeature(s.Name)
}

func lookup(point, strategy string) (hooks.Strategy, error) {
	p, ok := hooks.PointOf(point)
	if !ok {
		return hooks.Strategy{}, fmt.Errorf("hook %s is not in bpf/hooks", point)
	}
	s, ok := p.Strategy(strategy)
	if !ok {
		return hooks.Strategy{}, fmt.Errorf("hook %s has no strategy %s in bpf/hooks (it has %q)", point, strategy, p.StrategyNames())
	}
	return s, nil
}

// missingFeature probes what a strategy is built on, the way cilium/ebpf's
// features package does: a minimal program or the kernel's own files, so a
// refusal here is the kernel's, never vigil's programs'.
func missingFeature(strategy string) string {
	switch strategy {
	case hooks.Fentry:
		// Inconclusive answers count as absent too: the probe is a trivial
		// fentry program, and a kernel refusing it (lockdown, a security
		// module, no trampolines for this arch) refuses every fentry program.
		if err := features.HaveProgramType(ebpf.Tracing); err != nil {
			return "the kernel refuses fentry programs: " + err.Error()
		}
	case hooks.Kprobe:
		if !haveKprobes() {
			return "kernel built without CONFIG_KPROBES (no kprobe PMU, no kprobe_events)"
		}
	case hooks.TPBTF:
		if _, err := btf.LoadKernelSpec(); err != nil {
			return "no kernel BTF: " + err.Error()
		}
	case hooks.Tracepoint:
		if !haveAny("/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events") {
			return "no tracefs events directory"
		}
	}
	return ""
}

func haveKprobes() bool {
	return haveAny("/sys/bus/event_source/devices/kprobe",
		"/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events")
}

func haveAny(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// RunningKernel is this machine's release, major and minor.
func RunningKernel() (hooks.Kernel, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return hooks.Kernel{}, fmt.Errorf("uname: %w", err)
	}
	return ParseRelease(unix.ByteSliceToString(u.Release[:]))
}

// ParseRelease reads "6.12.44-amd64" as 6.12.
func ParseRelease(release string) (hooks.Kernel, error) {
	f := strings.SplitN(release, ".", 3)
	if len(f) < 2 {
		return hooks.Kernel{}, fmt.Errorf("kernel release %q: want major.minor", release)
	}
	major, err1 := strconv.Atoi(f[0])
	minor, err2 := strconv.Atoi(leadingDigits(f[1]))
	if err := errors.Join(err1, err2); err != nil {
		return hooks.Kernel{}, fmt.Errorf("kernel release %q: %w", release, err)
	}
	return hooks.Kernel{Major: major, Minor: minor}, nil
}

// leadingDigits is "12" of "12-rc3".
func leadingDigits(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		return s
	}
	return s[:i]
}

func running() string {
	k, err := RunningKernel()
	if err != nil {
		return err.Error()
	}
	return "kernel " + k.String()
}

// RequireOrder fails unless names, a package's strategies in the order it
// tries them, are the order bpf/hooks lists for point.
func RequireOrder(tb testing.TB, point string, names []string) {
	tb.Helper()
	p, ok := hooks.PointOf(point)
	if !ok {
		tb.Fatalf("hook %s is not in bpf/hooks", point)
	}
	if want := p.StrategyNames(); !slices.Equal(names, want) {
		tb.Errorf("%s tries %q, bpf/hooks lists %q", point, names, want)
	}
}
