// Package tcplat measures TCP in the kernel: active-open connect latency and
// smoothed round-trip time as OpenTelemetry exponential histograms, and
// retransmitted segments as a counter.
//
// Each of the three hooks (connect, rtt, retransmit) is attached on its own
// with the first strategy that works on the running kernel (see
// tcplat.bpf.c); a hook that can't attach anywhere disables only its metric.
package tcplat

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/progset"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// Hook names, as they appear in attach reports.
const (
	HookConnect    = "tcp_connect"
	HookRTT        = "tcp_rtt"
	HookRetransmit = "tcp_retransmit"
)

// Options configure Open.
type Options struct {
	Scale int32           // histogram scale; 0 means hist.DefaultScale
	Skip  map[string]bool // strategy names not to try, e.g. {"fentry": true}
	// Port, when non-zero, limits every metric to connections with this
	// local or remote port.
	Port uint16
}

// Program is the attached TCP hooks and their maps.
type Program struct {
	layout   *hist.Layout
	hists    *ebpf.Map // per-CPU hist_value, series HIST_CONNECT and HIST_RTT
	counters *ebpf.Map // per-CPU counters, CNT_* slots
	hooks    map[string]*progset.Set
	reports  []attach.Report
	start    time.Time
}

// logger is built on each use, not at package initialisation: the command
// installs its configured logger (level, JSON) after every package is
// initialised, and a logger made earlier keeps the default handler.
func logger() *slog.Logger { return slog.Default().With("component", "tcplat") }

// Open loads the programs and attaches every hook it can. It fails, with an
// error wrapping attach.ErrNoStrategy, only when no hook attaches at all.
func Open(opts Options) (*Program, error) {
	layout, err := histmap.Prepare(opts.Scale, 0)
	if err != nil {
		return nil, err
	}
	spec, err := loadTcplat()
	if err != nil {
		return nil, fmt.Errorf("loading tcplat spec: %w", err)
	}
	if err := configure(spec, layout, opts.Port); err != nil {
		return nil, err
	}
	p := &Program{layout: layout, hooks: make(map[string]*progset.Set)}
	if err := p.createShared(spec); err != nil {
		return nil, err
	}
	// Mount tracefs before any attach: the BPF library remembers the first
	// tracefs lookup for the life of the process.
	if _, err := tracefs.Ensure(); err != nil {
		logger().Debug("tracefs unavailable, tracepoint strategies will fail", "error", err)
	}
	if err := p.attachAll(spec, opts.Skip); err != nil {
		p.Close()
		return nil, err
	}
	p.start = time.Now()
	return p, nil
}

func configure(spec *ebpf.CollectionSpec, l *hist.Layout, port uint16) error {
	if err := histmap.SetLayout(spec, l); err != nil {
		return err
	}
	if err := spec.Variables["filter_port"].Set(port); err != nil {
		return fmt.Errorf("setting port filter: %w", err)
	}
	return nil
}

func (p *Program) createShared(spec *ebpf.CollectionSpec) error {
	var err error
	if p.hists, err = ebpf.NewMap(spec.Maps["tcp_hists"]); err != nil {
		return fmt.Errorf("creating tcp_hists: %w", err)
	}
	if p.counters, err = ebpf.NewMap(spec.Maps["tcp_counters"]); err != nil {
		p.hists.Close()
		return fmt.Errorf("creating tcp_counters: %w", err)
	}
	return nil
}

func (p *Program) shared() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{"tcp_hists": p.hists, "tcp_counters": p.counters}
}

// attachAll attaches each hook with its first working strategy. A hook that
// fails is logged once and left out.
func (p *Program) attachAll(spec *ebpf.CollectionSpec, skip map[string]bool) error {
	var errs []error
	for _, h := range hooks() {
		var set *progset.Set
		strategies := make([]attach.Strategy, 0, len(h.strategies))
		for _, s := range h.strategies {
			strategies = append(strategies, attach.Strategy{Name: s.name, Try: func() (err error) {
				set, err = s.try(spec, p.shared())
				return err
			}})
		}
		r, err := attach.First(h.name, strategies, skip)
		p.reports = append(p.reports, r)
		if err != nil {
			logger().Warn("tcp hook disabled", "hook", h.name, "reason", err)
			errs = append(errs, err)
			continue
		}
		for _, skipped := range set.Skipped {
			logger().Info("tcp hook attached partly", "hook", h.name, "strategy", r.Chosen, "reason", skipped)
		}
		p.hooks[h.name] = set
	}
	if len(p.hooks) == 0 {
		return fmt.Errorf("attaching tcplat: %w", errors.Join(errs...))
	}
	return nil
}

// Reports says, per hook, which strategy is in use and why the better ones
// failed.
func (p *Program) Reports() []attach.Report { return p.reports }

// StartTime is when the hooks were attached: the start of the cumulative
// values Read returns.
func (p *Program) StartTime() time.Time { return p.start }

// Stats returns the kernel's run count and run time of every attached
// program (counted while kernel.bpf_stats_enabled is 1).
func (p *Program) Stats() []attach.RunStat {
	var out []attach.RunStat
	for _, r := range p.reports {
		if set := p.hooks[r.Hook]; set != nil {
			out = append(out, attach.Stats(r.Hook, set.Progs)...)
		}
	}
	return out
}

// Close detaches every hook and frees the maps.
func (p *Program) Close() error {
	var errs []error
	for name, set := range p.hooks {
		errs = append(errs, set.Close())
		delete(p.hooks, name)
	}
	for _, m := range []*ebpf.Map{p.hists, p.counters} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	p.hists, p.counters = nil, nil
	return errors.Join(errs...)
}
