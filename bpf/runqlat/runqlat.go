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
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
)

// MetricName is the name of the reading.
const (
	MetricName = "vigil.sched.runqueue.delay"
	hookName   = "runqueue"
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
	coll   *ebpf.Collection
	links  []link.Link
	hist   *ebpf.Map // everything, or the overflow series when by process
	byComm *ebpf.Map
	opts   Options
	layout *hist.Layout
	report attach.Report
	start  time.Time
}

// Open loads the program and attaches it with the first strategy that works.
// When none does, the error wraps attach.ErrNoStrategy and names each
// strategy's reason.
func Open(opts Options) (*Program, error) {
	layout, err := histmap.Prepare(opts.Scale, opts.MaxSeries)
	if err != nil {
		return nil, fmt.Errorf("run-queue delay: %w", err)
	}
	p := &Program{layout: layout, opts: opts}
	tries := make([]attach.Strategy, 0, len(strategies))
	for _, s := range strategies {
		tries = append(tries, attach.Strategy{Name: s.name, Try: func() error { return p.try(s, opts) }})
	}
	p.report, err = attach.First(hookName, tries, opts.Skip)
	if err != nil {
		return nil, fmt.Errorf("attaching run-queue delay: %w", err)
	}
	p.start = time.Now()
	return p, nil
}

// try loads the programs of one strategy and attaches them, closing
// everything it opened when a step fails.
func (p *Program) try(s strategy, opts Options) error {
	coll, err := load(s.progs, p.layout, opts)
	if err != nil && s.name == "tp_btf" && !histmap.HaveTaskStorage() {
		return fmt.Errorf("%w: %w", histmap.ErrNoTaskStorage, err)
	}
	if err != nil {
		return err
	}
	links, err := s.attach(coll.Programs)
	if err != nil {
		coll.Close()
		return err
	}
	p.coll, p.links = coll, links
	p.hist, p.byComm = coll.Maps["rq_hist"], coll.Maps["rq_hist_comm"]
	return nil
}

func load(progs []string, l *hist.Layout, opts Options) (*ebpf.Collection, error) {
	spec, err := loadRunqlat()
	if err != nil {
		return nil, fmt.Errorf("loading run-queue delay spec: %w", err)
	}
	if err := histmap.SetLayout(spec, l); err != nil {
		return nil, err
	}
	if err := histmap.SetupByProcess(spec, "by_comm", "rq_hist_comm", opts.ByProcess, opts.MaxSeries); err != nil {
		return nil, err
	}
	if err := histmap.KeepPrograms(spec, progs...); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("loading %v: %w", progs, err)
	}
	return coll, nil
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

// Read returns vigil.sched.runqueue.delay, cumulative since attach.
func (p *Program) Read() ([]hist.Reading, error) {
	h, err := histmap.Lookup(p.hist, p.layout, uint32(0))
	if err != nil {
		return nil, fmt.Errorf("reading run-queue delay: %w", err)
	}
	series := []hist.Series{{Attrs: map[string]string{}, Hist: h}}
	if p.opts.ByProcess {
		if series, err = histmap.ReadByProcess(p.byComm, p.layout, h, nil); err != nil {
			return nil, fmt.Errorf("reading run-queue delay: %w", err)
		}
	}
	return []hist.Reading{{
		Name:        MetricName,
		Description: "Time runnable tasks wait on a run queue before they run.",
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
