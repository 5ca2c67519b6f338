// Package readlat measures how long read system calls take, in the kernel,
// as the OpenTelemetry histogram vigil.read.duration.
//
// The hook is attached with the first strategy that works on the running
// kernel: fentry/fexit on vfs_read, kprobe/kretprobe on vfs_read, tp_btf on
// the raw sys_enter/sys_exit hooks filtered to the read syscalls, or the
// classic syscalls tracepoints of read, pread64, readv and preadv. vfs_read
// sees the reads of read(2) and pread64(2) and also reads the kernel makes
// for itself; the syscall strategies see the four syscalls from entry to
// exit. The metric's vigil.hook attribute says which of the two was measured.
//
// A read's start time is kept in per-task storage; on kernels before 5.11,
// which lack it, the kprobe and tracepoint strategies load twins that keep
// it in a hash keyed by thread id instead (slower, and needing no BTF).
package readlat

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
)

// MetricDuration is the name of the reading; its hist.AttrHook attribute
// says which hook measured it.
const (
	MetricDuration = "vigil.read.duration"
	hookName       = "read"
)

// Options configure Open.
type Options struct {
	Scale int32           // histogram scale; 0 means hist.DefaultScale
	Skip  map[string]bool // strategy names not to try
	// PID limits the measurement to one process (its tgid) when non-zero.
	PID uint32
	// ByProcess splits the histogram by process name (attribute
	// process.executable.name), at most MaxSeries names (0 means
	// histmap.DefaultMaxSeries); later names share one series marked
	// otel.metric.overflow=true.
	ByProcess bool
	MaxSeries int

	tidStorage bool // tests: load the *_tid twins even with task storage
}

// Program is the attached read-latency hook.
type Program struct {
	latency.Base
	maps   readMaps
	opts   Options
	layout *hist.Layout
	hook   string // vigil.hook attribute: "vfs_read" or "syscall"
}

// Open loads the program and attaches it with the first strategy that works.
// When none does, the error wraps attach.ErrNoStrategy and names each
// strategy's reason.
func Open(opts Options) (*Program, error) {
	layout, err := histmap.Prepare(opts.Scale, opts.MaxSeries)
	if err != nil {
		return nil, fmt.Errorf("read latency: %w", err)
	}
	spec, err := newSpec(layout, opts)
	if err != nil {
		return nil, err
	}
	p := &Program{layout: layout, opts: opts}
	if err := p.LoadShared(spec, &p.maps); err != nil {
		return nil, fmt.Errorf("read latency: %w", err)
	}
	tries := make([]attach.Strategy, 0, len(strategies))
	for _, s := range strategies {
		tries = append(tries, attach.Strategy{Name: s.name, Try: func() error { return p.try(spec, s) }})
	}
	if err := p.First(hookName, tries, opts.Skip); err != nil {
		p.Close()
		return nil, fmt.Errorf("attaching read latency: %w", err)
	}
	return p, nil
}

// try loads the programs of one strategy and attaches them; a failed
// strategy leaves nothing loaded.
func (p *Program) try(spec *ebpf.CollectionSpec, s strategy) error {
	objs := s.programs(p.opts.tidStorage)
	err := p.LoadAttach(spec, hookName, objs, func() ([]link.Link, error) { return s.attach(objs) })
	if err != nil && !s.tidTwins && !histmap.HaveTaskStorage() {
		return fmt.Errorf("%w: %w", histmap.ErrNoTaskStorage, err)
	}
	if err != nil {
		return err
	}
	p.hook = s.hook
	return nil
}

// Read returns vigil.read.duration, cumulative since attach.
func (p *Program) Read() ([]hist.Reading, error) {
	h, err := histmap.Lookup(p.maps.Hist, p.layout, uint32(0))
	if err != nil {
		return nil, fmt.Errorf("reading read latency: %w", err)
	}
	base := map[string]string{hist.AttrHook: p.hook}
	series := []hist.Series{{Attrs: base, Hist: h}}
	if p.opts.ByProcess {
		if series, err = histmap.ReadByProcess(p.maps.ByComm, p.layout, h, base); err != nil {
			return nil, fmt.Errorf("reading read latency: %w", err)
		}
	}
	return []hist.Reading{{
		Name:        MetricDuration,
		Description: "Time read system calls take, from entry to return.",
		Unit:        "s",
		Histograms:  series,
	}}, nil
}
