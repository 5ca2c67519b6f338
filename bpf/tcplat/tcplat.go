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

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
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
	latency.Base
	layout *hist.Layout
	maps   tcpMaps
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
	p := &Program{layout: layout}
	if err := p.LoadShared(spec, &p.maps); err != nil {
		return nil, fmt.Errorf("tcplat: %w", err)
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
	return p, nil
}

func configure(spec *ebpf.CollectionSpec, l *hist.Layout, port uint16) error {
	if err := histmap.SetLayout(spec, l); err != nil {
		return err
	}
	if err := spec.Variables[tcplatVarFilterPort].Set(port); err != nil {
		return fmt.Errorf("setting port filter: %w", err)
	}
	return nil
}

// attachAll attaches each hook with its first working strategy. A hook that
// fails is logged once and left out.
func (p *Program) attachAll(spec *ebpf.CollectionSpec, skip map[string]bool) error {
	var errs []error
	attached := 0
	for _, h := range hooks() {
		strategies := make([]attach.Strategy, 0, len(h.strategies))
		for _, s := range h.strategies {
			strategies = append(strategies, attach.Strategy{Name: s.name, Try: func() error { return s.load(&p.Base, spec) }})
		}
		if err := p.First(h.name, strategies, skip); err != nil {
			logger().Warn("tcp hook disabled", "hook", h.name, "reason", err)
			errs = append(errs, err)
			continue
		}
		attached++
	}
	if attached == 0 {
		return fmt.Errorf("attaching tcplat: %w", errors.Join(errs...))
	}
	return nil
}
