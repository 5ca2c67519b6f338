package web

import (
	"fmt"
	"path"
	"sort"

	"github.com/google/pprof/profile"
)

// minFlameFraction is the smallest share of all samples a frame must hold
// to be sent to the page; smaller frames stay counted in their parent. At
// 1/10000 a frame is under a pixel wide until zoomed a hundredfold, and the
// tree of an hour of whole-machine profiles stays a few thousand nodes.
const minFlameFraction = 1e-4

// FlameNode is one frame of the merged flame graph: its value is the
// samples of every stack through it, its children's values included.
type FlameNode struct {
	Name     string       `json:"name"`
	Value    int64        `json:"value"`
	Children []*FlameNode `json:"children,omitempty"`
}

// flameBuilder merges stacks into a tree keyed by frame name.
type flameBuilder struct {
	root *buildNode
}

type buildNode struct {
	name  string
	value int64
	kids  map[string]*buildNode
}

func (n *buildNode) child(name string) *buildNode {
	if c, ok := n.kids[name]; ok {
		return c
	}
	if n.kids == nil {
		n.kids = map[string]*buildNode{}
	}
	c := &buildNode{name: name}
	n.kids[name] = c
	return c
}

// buildFlame merges the entries' profiles into one tree: all, then one
// frame per service, then each stack from its root to its leaf.
func buildFlame(entries []entry) *FlameNode {
	b := flameBuilder{root: &buildNode{name: "all"}}
	for _, e := range entries {
		b.addProfile(e.p.Service, e.p.Pprof)
	}
	return b.root.finish(int64(float64(b.root.value) * minFlameFraction))
}

func (b *flameBuilder) addProfile(service string, p *profile.Profile) {
	vi := countIndex(p)
	svc := b.root.child(service)
	for _, s := range p.Sample {
		if vi >= len(s.Value) || s.Value[vi] <= 0 {
			continue
		}
		v := s.Value[vi]
		b.root.value += v
		svc.value += v
		n := svc
		// Locations run leaf first, and so do the lines of a location
		// (inlined callees before their callers): walk both backwards.
		for i := len(s.Location) - 1; i >= 0; i-- {
			for _, name := range frameNames(s.Location[i]) {
				n = n.child(name)
				n.value += v
			}
		}
	}
}

// frameNames returns the location's frames from caller to callee.
func frameNames(l *profile.Location) []string {
	if len(l.Line) == 0 {
		return []string{addrName(l)}
	}
	out := make([]string, 0, len(l.Line))
	for i := len(l.Line) - 1; i >= 0; i-- {
		f := l.Line[i].Function
		switch {
		case f == nil:
			out = append(out, addrName(l))
		case f.Name != "":
			out = append(out, f.Name)
		case f.SystemName != "":
			out = append(out, f.SystemName)
		default:
			out = append(out, addrName(l))
		}
	}
	return out
}

// addrName names an unsymbolized frame by module and offset, as pprof
// does, so it still tells where the time went.
func addrName(l *profile.Location) string {
	m := l.Mapping
	if m == nil || l.Address < m.Start {
		return fmt.Sprintf("0x%x", l.Address)
	}
	return fmt.Sprintf("%s+0x%x", path.Base(m.File), l.Address-m.Start+m.Offset)
}

// finish converts the tree to FlameNodes sorted by name (a stable layout
// between refreshes), leaving out children below minValue.
func (n *buildNode) finish(minValue int64) *FlameNode {
	out := &FlameNode{Name: n.name, Value: n.value}
	for _, c := range n.kids {
		if c.value > 0 && c.value >= minValue {
			out.Children = append(out.Children, c.finish(minValue))
		}
	}
	sort.Slice(out.Children, func(i, j int) bool { return out.Children[i].Name < out.Children[j].Name })
	return out
}
