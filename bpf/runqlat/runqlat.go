// Package runqlat measures run-queue delay, how long runnable tasks wait for
// a CPU, in the kernel, as the OpenTelemetry histogram
// vigil.sched.runqueue.delay.
//
// A task's wait starts when it is woken (sched_wakeup, sched_wakeup_new) or
// when it is switched out while still runnable (preempted), and ends when it
// is switched in (sched_switch). The hooks are attached with tp_btf where the
// kernel has BTF, else with the classic sched tracepoints.
package runqlat

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
)

// MetricDelay is the name of the reading.
const (
	MetricDelay = "vigil.sched.runqueue.delay"
	hookName    = "runqueue"
)

// Options configure Open.
type Options struct {
	Scale int32           // histogram scale; 0 means hist.DefaultScale
	Skip  map[string]bool // strategy names not to try
	// ByProcess splits the histogram by process name (attribute
	// process.executable.name), at most MaxSeries names (0 means
	// histmap.DefaultMaxSeries); later names share one series marked
	// otel.metric.overflow=true. With the tracepoint strategy the name is
	// the thread's, as the classic records carry no process name.
	ByProcess bool
	MaxSeries int
}

// Program is the attached run-queue delay hook.
type Program struct {
	latency.Base
	maps   rqMaps
	opts   Options
	layout *hist.Layout
}

// Open loads the program and attaches it with the first strategy that works.
// When none does, the error wraps attach.ErrNoStrategy and names each
// strategy's reason.
func Open(opts Options) (*Program, error) {
	layout, err := histmap.Prepare(opts.Scale, opts.MaxSeries)
	if err != nil {
		return nil, fmt.Errorf("run-queue delay: %w", err)
	}
	spec, err := newSpec(layout, opts)
	if err != nil {
		return nil, err
	}
	p := &Program{layout: layout, opts: opts}
	if err := p.LoadShared(spec, &p.maps); err != nil {
		return nil, fmt.Errorf("run-queue delay: %w", err)
	}
	tries := make([]attach.Strategy, 0, len(strategies))
	for _, s := range strategies {
		tries = append(tries, attach.Strategy{Name: s.name, Try: func() error { return p.try(spec, s) }})
	}
	if err := p.First(hookName, tries, opts.Skip); err != nil {
		p.Close()
		return nil, fmt.Errorf("attaching run-queue delay: %w", err)
	}
	return p, nil
}

// try loads the programs of one strategy and attaches them; a failed
// strategy leaves nothing loaded.
func (p *Program) try(spec *ebpf.CollectionSpec, s strategy) error {
	err := s.loadAttach(&p.Base, spec)
	if err != nil && s.name == "tp_btf" && !histmap.HaveTaskStorage() {
		return fmt.Errorf("%w: %w", histmap.ErrNoTaskStorage, err)
	}
	return err
}

// newSpec returns the embedded object with the layout and options written
// into its constants, ready for each strategy's load.
func newSpec(l *hist.Layout, opts Options) (*ebpf.CollectionSpec, error) {
	spec, err := loadRunqlat()
	if err != nil {
		return nil, fmt.Errorf("loading run-queue delay spec: %w", err)
	}
	if err := histmap.SetLayout(spec, l); err != nil {
		return nil, err
	}
	if err := histmap.SetupByProcess(spec, runqlatVarByComm, runqlatMapRqHistComm, opts.ByProcess, opts.MaxSeries); err != nil {
		return nil, err
	}
	return spec, nil
}

// Read returns vigil.sched.runqueue.delay, cumulative since attach.
func (p *Program) Read() ([]hist.Reading, error) {
	h, err := histmap.Lookup(p.maps.Hist, p.layout, uint32(0))
	if err != nil {
		return nil, fmt.Errorf("reading run-queue delay: %w", err)
	}
	series := []hist.Series{{Attrs: map[string]string{}, Hist: h}}
	if p.opts.ByProcess {
		if series, err = histmap.ReadByProcess(p.maps.ByComm, p.layout, h, nil); err != nil {
			return nil, fmt.Errorf("reading run-queue delay: %w", err)
		}
	}
	return []hist.Reading{{
		Name:        MetricDelay,
		Description: "Time runnable tasks wait on a run queue before they run.",
		Unit:        "s",
		Histograms:  series,
	}}, nil
}
