// Package latency is what the latency programs (bpf/readlat, bpf/runqlat,
// bpf/tcplat, bpf/biolat) share: Base, which each embeds for Report,
// Reports, StartTime, Stats and Close, and the one way they load and attach
// their programs.
//
// Every program loads the same way, cilium/ebpf's own: the maps all its
// strategies write (the histograms, the counters) are created once from a
// struct of ebpf-tagged *ebpf.Map fields (LoadShared); each strategy then
// names its programs, and any map of its own it must hand on, in a struct
// of ebpf-tagged fields loaded with CollectionSpec.LoadAndAssign and the
// shared maps as MapReplacements (Load). LoadAndAssign loads only what the
// struct names and what that references, so a kernel that lacks another
// strategy's features (fentry, task storage) never sees its programs.
package latency

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/attach"
)

// Base keeps what a latency program loaded and attached. The zero value is
// ready; its methods are the program's own through embedding.
type Base struct {
	shared  map[string]*ebpf.Map // the MapReplacements of every Load
	points  []point              // attached points, in order
	reports []attach.Report      // one per point tried, in order
	start   time.Time
}

// point is one attach point's chosen strategy.
type point struct {
	name  string
	objs  []any // ebpf-tagged structs it loaded
	links []link.Link
}

// LoadShared creates the maps tagged in maps (a pointer to a struct of
// ebpf-tagged *ebpf.Map fields) and has every later Load use them.
func (b *Base) LoadShared(spec *ebpf.CollectionSpec, maps any) error {
	if err := spec.LoadAndAssign(maps, nil); err != nil {
		return fmt.Errorf("creating shared maps: %w", err)
	}
	b.shared = mapsOf(maps)
	return nil
}

// Load loads the programs and maps tagged in objs (a pointer to a struct of
// ebpf-tagged fields) from spec, with the shared maps in place of the
// spec's. extra adds maps another Load created (a start-time table an
// optional program shares with its strategy's others).
func (b *Base) Load(spec *ebpf.CollectionSpec, objs any, extra ...any) error {
	repl := make(map[string]*ebpf.Map, len(b.shared))
	for n, m := range b.shared {
		repl[n] = m
	}
	for _, e := range extra {
		for n, m := range mapsOf(e) {
			repl[n] = m
		}
	}
	return spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: repl})
}

// First tries a point's strategies in order (attach.First) and records the
// report. Each strategy's Try calls Keep when it attached.
func (b *Base) First(name string, strategies []attach.Strategy, skip map[string]bool) error {
	r, err := attach.First(name, strategies, skip)
	b.reports = append(b.reports, r)
	return err
}

// Keep records what a strategy of point name loaded and attached, for Stats
// and Close; a point kept twice (a strategy's optional half) gathers both.
// The first point kept starts the cumulative values.
func (b *Base) Keep(name string, links []link.Link, objs ...any) {
	if b.start.IsZero() {
		b.start = time.Now()
	}
	for i := range b.points {
		if p := &b.points[i]; p.name == name {
			p.links = append(p.links, links...)
			p.objs = append(p.objs, objs...)
			return
		}
	}
	b.points = append(b.points, point{name: name, objs: objs, links: links})
}

// Attached reports whether point name has a strategy in use.
func (b *Base) Attached(name string) bool {
	for _, p := range b.points {
		if p.name == name {
			return true
		}
	}
	return false
}

// Report says which strategy the first point uses and why the better ones
// failed: the hook's only point, in every program but tcplat.
func (b *Base) Report() attach.Report {
	if len(b.reports) == 0 {
		return attach.Report{}
	}
	return b.reports[0]
}

// Reports are every point's reports, in the order tried.
func (b *Base) Reports() []attach.Report { return b.reports }

// StartTime is when the first point attached: the start of the cumulative
// values the program reads.
func (b *Base) StartTime() time.Time { return b.start }

// Stats returns the kernel's run count and run time of every attached
// program (counted while kernel.bpf_stats_enabled is 1), point by point.
func (b *Base) Stats() []attach.RunStat {
	var out []attach.RunStat
	for _, p := range b.points {
		progs := map[string]*ebpf.Program{}
		for _, o := range p.objs {
			for n, prog := range programsOf(o) {
				progs[n] = prog
			}
		}
		out = append(out, attach.Stats(p.name, progs)...)
	}
	return out
}

// Close detaches every point and frees its programs and maps, then the
// shared maps. Closing twice is harmless.
func (b *Base) Close() error {
	var errs []error
	for _, p := range b.points {
		errs = append(errs, closeLinks(p.links))
		for _, o := range p.objs {
			errs = append(errs, Unload(o))
		}
	}
	for _, m := range b.shared {
		errs = append(errs, m.Close())
	}
	b.points, b.shared = nil, nil
	return errors.Join(errs...)
}

// Closed reports whether Close ran (or nothing was loaded).
func (b *Base) Closed() bool { return b.shared == nil }
