package web

import (
	"encoding/binary"
	"fmt"
	"maps"
	"path"
	"slices"
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

// flameBuilder merges stacks into a tree. Nodes live in one slice and are
// found by (parent, interned name) in one map: an hour of profiles is
// millions of frame visits, and this keeps each one a single lookup
// without an allocation.
type flameBuilder struct {
	names    map[string]int32
	nameList []string
	nodes    []buildNode
	kids     map[uint64]int32 // parent index << 32 | name id → node index
	stacks   map[string]int32 // stack of name ids, root first → index in values
	values   []int64
	key      []byte // reused stack key buffer
}

type buildNode struct {
	name   int32
	parent int32
	value  int64
}

// newFlameBuilder starts the subtree of one service.
func newFlameBuilder(service string) *flameBuilder {
	b := &flameBuilder{names: map[string]int32{}, kids: map[uint64]int32{}, stacks: map[string]int32{}}
	b.nodes = append(b.nodes, buildNode{name: b.intern(service), parent: -1})
	return b
}

func (b *flameBuilder) intern(name string) int32 {
	if id, ok := b.names[name]; ok {
		return id
	}
	id := int32(len(b.nameList))
	b.names[name] = id
	b.nameList = append(b.nameList, name)
	return id
}

// child returns the node for name under parent, adding v to its value.
func (b *flameBuilder) child(parent, name int32, v int64) int32 {
	key := uint64(parent)<<32 | uint64(uint32(name))
	i, ok := b.kids[key]
	if !ok {
		i = int32(len(b.nodes))
		b.nodes = append(b.nodes, buildNode{name: name, parent: parent})
		b.kids[key] = i
	}
	b.nodes[i].value += v
	return i
}

// buildFlame merges the entries' profiles into one tree: all, then one
// frame per service, then each stack from its root to its leaf. Services
// are separate subtrees, so each is built and pruned on its own with the
// threshold of the whole: the result is the same, and the transient build
// state is one service's, not all of them at once.
func buildFlame(entries []entry) *FlameNode {
	var total int64
	byService := map[string][]entry{}
	for _, e := range entries {
		total += e.value
		byService[e.p.Service] = append(byService[e.p.Service], e)
	}
	minValue := int64(float64(total) * minFlameFraction)
	root := &FlameNode{Name: "all"}
	for _, svc := range slices.Sorted(maps.Keys(byService)) {
		b := newFlameBuilder(svc)
		for _, e := range byService[svc] {
			// The entry was encoded by the store itself: a decoding
			// error means memory went bad, and the profile is left out.
			if p, err := e.profile(); err == nil {
				b.addProfile(p)
			}
		}
		b.tree()
		if n := b.finish(minValue); n.Value > 0 && n.Value >= minValue {
			root.Children = append(root.Children, n)
		}
		root.Value += b.nodes[0].value
	}
	return root
}

// addProfile adds p's samples as stacks of interned frame ids. Stacks
// repeat from one interval to the next (the same hot paths), so they are
// summed by stack first and walked into the tree once each, in tree().
func (b *flameBuilder) addProfile(p *profile.Profile) {
	vi := countIndex(p)
	frames := newLocFrames(p)
	for _, s := range p.Sample {
		if vi >= len(s.Value) || s.Value[vi] <= 0 {
			continue
		}
		key := b.key[:0]
		// Locations run leaf first, and so do the lines of a location
		// (inlined callees before their callers): walk both backwards.
		for i := len(s.Location) - 1; i >= 0; i-- {
			for _, id := range frames.of(b, s.Location[i]) {
				key = binary.LittleEndian.AppendUint32(key, uint32(id))
			}
		}
		b.key = key
		if j, ok := b.stacks[string(key)]; ok { // no allocation on a hit
			b.values[j] += s.Value[vi]
			continue
		}
		b.stacks[string(key)] = int32(len(b.values))
		b.values = append(b.values, s.Value[vi])
	}
}

// tree walks every distinct stack into the node tree.
func (b *flameBuilder) tree() {
	for key, j := range b.stacks {
		v := b.values[j]
		b.nodes[0].value += v
		n := int32(0)
		for i := 0; i+4 <= len(key); i += 4 {
			id := int32(binary.LittleEndian.Uint32([]byte(key[i : i+4])))
			n = b.child(n, id, v)
		}
	}
}

// locFrames names each location of one profile once. Profiles number
// their locations 1..n, so a slice indexed by id is the usual cache; a
// map takes over for sparse ids.
type locFrames struct {
	byID  [][]int32
	other map[*profile.Location][]int32
}

func newLocFrames(p *profile.Profile) *locFrames {
	return &locFrames{byID: make([][]int32, len(p.Location)+1), other: map[*profile.Location][]int32{}}
}

func (c *locFrames) of(b *flameBuilder, l *profile.Location) []int32 {
	dense := l.ID > 0 && l.ID < uint64(len(c.byID))
	if dense && c.byID[l.ID] != nil {
		return c.byID[l.ID]
	}
	if ids, ok := c.other[l]; ok {
		return ids
	}
	ids := make([]int32, 0, len(l.Line)+1)
	for _, name := range frameNames(l) {
		ids = append(ids, b.intern(name))
	}
	if dense {
		c.byID[l.ID] = ids
	} else {
		c.other[l] = ids
	}
	return ids
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

// finish converts the tree to FlameNodes with children sorted by name (a
// stable layout between refreshes), leaving out nodes below minValue.
func (b *flameBuilder) finish(minValue int64) *FlameNode {
	out := make([]*FlameNode, len(b.nodes))
	for i, n := range b.nodes {
		if i == 0 || (n.value > 0 && n.value >= minValue && out[n.parent] != nil) {
			out[i] = &FlameNode{Name: b.nameList[n.name], Value: n.value}
			if i > 0 {
				out[n.parent].Children = append(out[n.parent].Children, out[i])
			}
		}
	}
	for _, n := range out {
		if n != nil && len(n.Children) > 1 {
			sort.Slice(n.Children, func(i, j int) bool { return n.Children[i].Name < n.Children[j].Name })
		}
	}
	return out[0]
}
