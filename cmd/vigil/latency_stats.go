package main

import (
	"fmt"
	"io"

	"github.com/cilium/ebpf"
)

// bpfStatsRunTime is BPF_STATS_RUN_TIME (linux/bpf.h): run count and run time.
const bpfStatsRunTime = 0

// enableRunStats makes the kernel count run time and runs of every BPF
// program while the returned closer is open, so vigil.bpf.run.* carry real
// values without touching the kernel.bpf_stats_enabled sysctl. It is opt-in
// because the accounting itself costs about 45 ns per program run.
func enableRunStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(bpfStatsRunTime)
	if err != nil {
		return nil, fmt.Errorf("enabling BPF run statistics: %w", err)
	}
	return c, nil
}
