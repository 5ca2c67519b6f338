// Package progset loads and attaches the programs of one attach strategy
// from a collection spec that also holds the other strategies' programs.
//
// Programs are loaded one by one, each with only the maps it references:
// a spec usually carries fentry, kprobe and tracepoint variants of a hook,
// and the variants a kernel refuses must not stop the others from loading.
// Maps shared by all strategies (the histograms) are created once by the
// caller and passed in; maps used only by one strategy (start-time tables)
// are created here and freed with the set.
package progset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// Kind says how a program is attached.
type Kind int

const (
	Fentry     Kind = iota // fentry/fexit: target comes from the section name
	TPBTF                  // tp_btf: target comes from the section name
	Kprobe                 // Target is the kernel function
	Tracepoint             // Target is "group:name"
)

// Prog is one program of a strategy.
type Prog struct {
	Name     string // program (function) name in the spec
	Kind     Kind
	Target   string
	Optional bool // e.g. the IPv6 half of a hook: its failure is not the strategy's
}

// Set is the loaded and attached programs of one strategy.
type Set struct {
	Progs   map[string]*ebpf.Program
	Skipped []error // optional programs that did not load or attach
	links   []link.Link
	maps    []*ebpf.Map
}

// Load loads and attaches progs. shared maps are used as they are; every
// other map the programs reference is created for this set. On error
// everything opened so far is closed.
func Load(spec *ebpf.CollectionSpec, progs []Prog, shared map[string]*ebpf.Map) (*Set, error) {
	s := &Set{Progs: make(map[string]*ebpf.Program)}
	maps, err := s.ownMaps(spec, progs, shared)
	if err != nil {
		s.Close()
		return nil, err
	}
	for _, p := range progs {
		err := s.loadAttach(spec, p, maps)
		if err == nil {
			continue
		}
		if p.Optional {
			s.Skipped = append(s.Skipped, err)
			continue
		}
		s.Close()
		return nil, err
	}
	return s, nil
}

// ownMaps creates the non-shared maps the programs use and returns them
// together with the shared ones.
func (s *Set) ownMaps(spec *ebpf.CollectionSpec, progs []Prog, shared map[string]*ebpf.Map) (map[string]*ebpf.Map, error) {
	all := make(map[string]*ebpf.Map, len(shared))
	for k, v := range shared {
		all[k] = v
	}
	for _, p := range progs {
		ps, ok := spec.Programs[p.Name]
		if !ok {
			return nil, fmt.Errorf("program %s: not in the object", p.Name)
		}
		for _, name := range mapRefs(spec, ps) {
			if _, ok := all[name]; ok || strings.HasPrefix(name, ".") {
				continue // shared, or a constant section each program gets its own copy of
			}
			m, err := ebpf.NewMap(spec.Maps[name])
			if err != nil {
				return nil, fmt.Errorf("creating map %s: %w", name, err)
			}
			s.maps = append(s.maps, m)
			all[name] = m
		}
	}
	return all, nil
}

func mapRefs(spec *ebpf.CollectionSpec, ps *ebpf.ProgramSpec) []string {
	var out []string
	seen := map[string]bool{}
	for _, ins := range ps.Instructions {
		ref := ins.Reference()
		if _, isMap := spec.Maps[ref]; isMap && !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out
}

func (s *Set) loadAttach(spec *ebpf.CollectionSpec, p Prog, maps map[string]*ebpf.Map) error {
	prog, err := loadOne(spec, p.Name, maps)
	if err != nil {
		return err
	}
	l, err := attachOne(p, prog)
	if err != nil {
		prog.Close()
		return fmt.Errorf("attaching %s: %w", p.Name, err)
	}
	s.Progs[p.Name] = prog
	s.links = append(s.links, l)
	return nil
}

// loadOne loads one program of spec with the maps it references.
func loadOne(spec *ebpf.CollectionSpec, name string, maps map[string]*ebpf.Map) (*ebpf.Program, error) {
	cs := spec.Copy()
	ps := cs.Programs[name]
	cs.Programs = map[string]*ebpf.ProgramSpec{name: ps}
	refs := mapRefs(spec, ps)
	cs.Maps = make(map[string]*ebpf.MapSpec, len(refs))
	repl := make(map[string]*ebpf.Map)
	for _, r := range refs {
		cs.Maps[r] = spec.Maps[r]
		if m, ok := maps[r]; ok {
			repl[r] = m
		}
	}
	for n, v := range cs.Variables {
		if _, ok := cs.Maps[v.SectionName]; !ok {
			delete(cs.Variables, n) // in a section this program doesn't use
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	defer coll.Close() // the program keeps its own references to its maps
	return coll.DetachProgram(name), nil
}

func attachOne(p Prog, prog *ebpf.Program) (link.Link, error) {
	switch p.Kind {
	case Fentry, TPBTF:
		return link.AttachTracing(link.TracingOptions{Program: prog})
	case Kprobe:
		if err := kprobesAvailable(); err != nil {
			return nil, err
		}
		return link.Kprobe(p.Target, prog, nil)
	case Tracepoint:
		group, name, ok := strings.Cut(p.Target, ":")
		if !ok {
			return nil, fmt.Errorf("tracepoint %q: want group:name", p.Target)
		}
		if _, err := tracefs.Ensure(); err != nil {
			return nil, err
		}
		return link.Tracepoint(group, name, prog, nil)
	}
	return nil, fmt.Errorf("program %s: unknown attach kind %d", p.Name, p.Kind)
}

// Close detaches and frees everything in the set.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	for _, p := range s.Progs {
		errs = append(errs, p.Close())
	}
	for _, m := range s.maps {
		errs = append(errs, m.Close())
	}
	s.links, s.Progs, s.maps = nil, nil, nil
	return errors.Join(errs...)
}

// kprobesAvailable tells a kernel without kprobes apart from a missing
// function: the library's own error names a tracefs file instead.
func kprobesAvailable() error {
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); err == nil {
		return nil
	}
	dir, err := tracefs.Ensure()
	if err != nil {
		return fmt.Errorf("no kprobe PMU, and %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kprobe_events")); err != nil {
		return errors.New("kernel built without CONFIG_KPROBES (no kprobe PMU, no kprobe_events)")
	}
	return nil
}
