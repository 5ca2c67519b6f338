package agent

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// ExplainProfilerError turns the kernel's refusals to start the CPU
// profiler into advice; `vigil profile` gives the same.
func ExplainProfilerError(err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("starting the CPU profiler: %w (vigil needs root or CAP_BPF+CAP_PERFMON; kernel.perf_event_paranoid or a security module may also forbid it)", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("starting the CPU profiler: this kernel lacks a needed BPF feature: %w", err)
	}
	return fmt.Errorf("starting the CPU profiler: %w", err)
}
