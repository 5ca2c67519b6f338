package attach

import (
	"fmt"
	"io"
	"sort"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// RunStat is the kernel's own accounting of one BPF program: how often it
// ran and the nanoseconds it spent. Run count and time are only
// counted while kernel.bpf_stats_enabled is 1 (or a stats fd is held).
type RunStat struct {
	Hook      string
	Program   string
	RunCount  uint64
	RunTimeNs uint64
	// RecursionMisses counts runs the kernel skipped because another BPF
	// program was already running on that CPU: events vigil never saw.
	RecursionMisses uint64
}

// Stats reads run count and run time of each program of a hook.
func Stats(hook string, progs map[string]*ebpf.Program) []RunStat {
	out := make([]RunStat, 0, len(progs))
	for name, p := range progs {
		if p == nil {
			continue
		}
		ps, err := p.Stats()
		if err != nil {
			continue
		}
		out = append(out, RunStat{
			Hook: hook, Program: name,
			RunCount: ps.RunCount, RunTimeNs: uint64(ps.Runtime.Nanoseconds()),
			RecursionMisses: ps.RecursionMisses,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Program < out[j].Program })
	return out
}

// EnableRunStats makes the kernel count run time and runs of every BPF
// program while the returned closer is open, so RunStat carries real values
// without touching the kernel.bpf_stats_enabled sysctl. Callers make it
// opt-in: the accounting itself costs about 45 ns per program run.
func EnableRunStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enabling BPF run statistics: %w", err)
	}
	return c, nil
}
