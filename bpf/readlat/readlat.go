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
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
)

// Metric and attribute names of the reading.
const (
	MetricName = "vigil.read.duration"
	HookAttr   = "vigil.hook"
	hookName   = "read"
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
	coll   *ebpf.Collection
	links  []link.Link
	hist   *ebpf.Map // everything, or the overflow series when by process
	byComm *ebpf.Map
	opts   Options
	layout *hist.Layout
	hook   string // vigil.hook attribute: "vfs_read" or "syscall"
	report attach.Report
	start  time.Time
}

// Open loads the program and attaches it with the first strategy that works.
// When none does, the error wraps attach.ErrNoStrategy and names each
// strategy's reason.
func Open(opts Options) (*Program, error) {
	layout, err := histmap.Prepare(opts.Scale, opts.MaxSeries)
	if err != nil {
		return nil, fmt.Errorf("read latency: %w", err)
	}
	p := &Program{layout: layout, opts: opts}
	tries := make([]attach.Strategy, 0, len(strategies))
	for _, s := range strategies {
		tries = append(tries, attach.Strategy{Name: s.name, Try: func() error { return p.try(s, opts) }})
	}
	p.report, err = attach.First(hookName, tries, opts.Skip)
	if err != nil {
		return nil, fmt.Errorf("attaching read latency: %w", err)
	}
	p.start = time.Now()
	return p, nil
}

// try loads the programs of one strategy and attaches them, closing
// everything it opened when a step fails.
func (p *Program) try(s strategy, opts Options) error {
	names := s.programNames(opts.tidStorage)
	coll, err := load(names, p.layout, opts)
	if err != nil && !s.tidTwins && !histmap.HaveTaskStorage() {
		return fmt.Errorf("%w: %w", histmap.ErrNoTaskStorage, err)
	}
	if err != nil {
		return err
	}
	// The attach functions know the programs by their base names.
	byBase := make(map[string]*ebpf.Program, len(names))
	for i, n := range names {
		byBase[s.progs[i]] = coll.Programs[n]
	}
	links, err := s.attach(byBase)
	if err != nil {
		coll.Close()
		return err
	}
	p.coll, p.links, p.hook = coll, links, s.hook
	p.hist, p.byComm = coll.Maps["read_hist"], coll.Maps["read_hist_comm"]
	return nil
}

// Report says which strategy is in use and why the better ones failed.
func (p *Program) Report() attach.Report { return p.report }

// StartTime is when the hook was attached: the start of the cumulative
// histogram.
func (p *Program) StartTime() time.Time { return p.start }

// Stats returns the kernel's run count and run time of the attached programs.
func (p *Program) Stats() []attach.RunStat {
	return attach.Stats(hookName, p.coll.Programs)
}

// Read returns vigil.read.duration, cumulative since attach.
func (p *Program) Read() ([]hist.Reading, error) {
	h, err := histmap.Lookup(p.hist, p.layout, uint32(0))
	if err != nil {
		return nil, fmt.Errorf("reading read latency: %w", err)
	}
	base := map[string]string{HookAttr: p.hook}
	series := []hist.Series{{Attrs: base, Hist: h}}
	if p.opts.ByProcess {
		if series, err = histmap.ReadByProcess(p.byComm, p.layout, h, base); err != nil {
			return nil, fmt.Errorf("reading read latency: %w", err)
		}
	}
	return []hist.Reading{{
		Name:        MetricName,
		Description: "Time read system calls take, from entry to return.",
		Unit:        "s",
		Histograms:  series,
	}}, nil
}

// Close detaches the hook and frees its maps.
func (p *Program) Close() error {
	var errs []error
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	if p.coll != nil {
		p.coll.Close()
		p.coll = nil
	}
	return errors.Join(errs...)
}
