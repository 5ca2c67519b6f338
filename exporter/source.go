package exporter

import (
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// Source is one latency program as the exporter sees it. Read returns
// values cumulative since StartTime (when the program attached).
type Source interface {
	Read() ([]hist.Reading, error)
	StartTime() time.Time
}

// StatsSource is optionally implemented by a Source that can tell how much
// kernel time its BPF programs take; the exporter reports it as vigil's own
// metrics.
type StatsSource interface {
	Stats() []attach.RunStat
}
