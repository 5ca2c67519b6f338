// Package testenv holds the checks that privileged tests share: they skip only
// when the process is not root or the kernel truly lacks a feature, and say which.
package testenv

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// RequireRoot skips the test when not running as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipped: needs root (CAP_BPF, CAP_PERFMON); run the tests with sudo")
	}
}

// SkipIfNotSupported skips when err says the kernel lacks the feature and
// fails the test on any other error.
func SkipIfNotSupported(tb testing.TB, what string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		tb.Skipf("skipped: this kernel does not support %s: %v", what, err)
	}
	tb.Fatalf("%s: %v", what, err)
}
