// Package biolat measures block I/O latency in the kernel, from a request's
// issue to the driver to its completion, as OpenTelemetry exponential
// histograms split by direction (read, write).
//
// The hook is attached with the first strategy that works on the running
// kernel: tp_btf, then the classic block tracepoints (see biolat.bpf.c).
// Flushes, discards and other operations that move no data are not counted.
package biolat

import (
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
	"golang.org/x/sys/unix"
)

// Hook is the hook name in attach reports.
const Hook = "block"

// Options configure Open.
type Options struct {
	Scale int32           // histogram scale; 0 means hist.DefaultScale
	Skip  map[string]bool // strategy names not to try, e.g. {"tp_btf": true}
	// Device, when non-zero, limits the histograms to one disk: its device
	// number as stat reports it (st_rdev). Requests are counted under their
	// whole disk, so a partition's number matches nothing.
	Device uint64
}

// Program is the attached block hook and its maps.
type Program struct {
	latency.Base
	layout *hist.Layout
	maps   blockMaps
}

// logger is built on each use, not at package initialisation: the command
// installs its configured logger (level, JSON) after every package is
// initialised, and a logger made earlier keeps the default handler.
func logger() *slog.Logger { return slog.Default().With("component", "biolat") }

// Open loads the programs and attaches them with the first strategy that
// works; the error wraps attach.ErrNoStrategy when none does.
func Open(opts Options) (*Program, error) {
	layout, err := histmap.Prepare(opts.Scale, 0)
	if err != nil {
		return nil, err
	}
	spec, err := loadBiolat()
	if err != nil {
		return nil, fmt.Errorf("loading biolat spec: %w", err)
	}
	if err := configure(spec, layout, opts.Device); err != nil {
		return nil, err
	}
	p := &Program{layout: layout}
	if err := p.LoadShared(spec, &p.maps); err != nil {
		return nil, fmt.Errorf("biolat: %w", err)
	}
	// Mount tracefs before any attach: the BPF library remembers the first
	// tracefs lookup for the life of the process.
	if _, err := tracefs.Ensure(); err != nil {
		logger().Debug("tracefs unavailable, tracepoint strategy will fail", "error", err)
	}
	if err := p.attach(spec, opts.Skip); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func configure(spec *ebpf.CollectionSpec, l *hist.Layout, dev uint64) error {
	if err := histmap.SetLayout(spec, l); err != nil {
		return err
	}
	if err := spec.Variables[biolatVarFilterDev].Set(kernelDev(dev)); err != nil {
		return fmt.Errorf("setting device filter: %w", err)
	}
	return nil
}

// kernelDev converts a user-space device number (st_rdev) into the kernel's
// internal dev_t, major << 20 | minor, which the block tracepoints report.
func kernelDev(rdev uint64) uint32 {
	if rdev == 0 {
		return 0
	}
	return unix.Major(rdev)<<20 | unix.Minor(rdev)
}

func (p *Program) attach(spec *ebpf.CollectionSpec, skip map[string]bool) error {
	var strategies []attach.Strategy
	for _, s := range strategyList() {
		strategies = append(strategies, attach.Strategy{Name: s.name, Try: func() error { return s.try(&p.Base, spec) }})
	}
	if err := p.First(Hook, strategies, skip); err != nil {
		return fmt.Errorf("attaching biolat: %w", err)
	}
	return nil
}
