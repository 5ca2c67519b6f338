package unwind

import (
	"cmp"
	"slices"
	"sort"
)

// segment is the part of an FDE's range that ends up in the table once
// overlaps are resolved.
type segment struct {
	lo, hi uint64
	fde    int
}

// table assembles the final rows: FDEs sorted by address, overlaps given to
// the higher-priority section and then to the lower address, gaps filled
// with CFANone, and equal neighbours merged.
func (b *builder) table() *Table {
	segs := b.resolve()
	t := &Table{Unsupported: make(map[string]int)}
	a := assembler{rows: make([]Row, 0, len(b.in.rows)+len(segs)+1)}
	var prevHi uint64
	for i, s := range segs {
		if i > 0 && s.lo > prevHi {
			a.add(prevHi, Rule{}, reasonNone)
		}
		a.addSegment(s, b.fdes[s.fde], b.in.rows)
		prevHi = s.hi
	}
	if len(segs) > 0 {
		a.add(prevHi, Rule{}, reasonNone)
	}
	t.Rows = a.rows
	for why, n := range a.counts {
		if n > 0 && reason(why) != reasonNone {
			t.Unsupported[reasonNames[why]] += n
		}
	}
	if b.malformed > 0 {
		t.Unsupported[malformedFDE] = b.malformed
	}
	t.FDEs = b.fdeCount
	return t
}

// resolve turns the FDEs into sorted, non-overlapping segments.
func (b *builder) resolve() []segment {
	// Linkers mostly lay FDEs out in address order; checking first is
	// linear and skips a quarter of the work on such files.
	if !slices.IsSortedFunc(b.fdes, compareFDE) {
		slices.SortFunc(b.fdes, compareFDE)
	}
	segs := make([]segment, 0, len(b.fdes))
	for start := 0; start < len(b.fdes); {
		end := start + 1
		for end < len(b.fdes) && b.fdes[end].prio == b.fdes[start].prio {
			end++
		}
		segs = b.addPriority(segs, start, end)
		start = end
	}
	return segs
}

// addPriority adds the FDEs fdes[start:end] (one section, sorted by
// address) where neither an earlier FDE of the section nor a section of
// higher priority (already in segs) covers them.
func (b *builder) addPriority(segs []segment, start, end int) []segment {
	higher := len(segs)
	j := 0
	var covered uint64
	for i := start; i < end; i++ {
		f := b.fdes[i]
		lo := max(f.lo, covered)
		if lo >= f.hi {
			continue
		}
		covered = f.hi
		segs, j = subtract(segs, segs[:higher], j, segment{lo, f.hi, i})
	}
	if higher > 0 && len(segs) > higher {
		slices.SortFunc(segs, func(x, y segment) int { return cmp.Compare(x.lo, y.lo) })
	}
	return segs
}

// subtract appends to out the parts of s not covered by the sorted,
// disjoint segments in cover, starting the scan at cover[j]. Callers pass
// segments in address order, so j only moves forward.
func subtract(out, cover []segment, j int, s segment) ([]segment, int) {
	for s.lo < s.hi {
		for j < len(cover) && cover[j].hi <= s.lo {
			j++
		}
		if j == len(cover) || cover[j].lo >= s.hi {
			return append(out, s), j
		}
		if cover[j].lo > s.lo {
			out = append(out, segment{s.lo, cover[j].lo, s.fde})
		}
		s.lo = cover[j].hi
	}
	return out, j
}

// assembler appends rows, merging equal neighbours and counting the reason
// of every degraded row that survives.
type assembler struct {
	rows    []Row
	counts  [numReasons]int
	lastWhy reason
}

func (a *assembler) add(pc uint64, rule Rule, why reason) {
	n := len(a.rows)
	if n > 0 && a.rows[n-1].Rule == rule {
		if why != a.lastWhy {
			a.counts[why]++
			a.lastWhy = why
		}
		return
	}
	a.rows = append(a.rows, Row{PC: pc, Rule: rule})
	a.counts[why]++
	a.lastWhy = why
}

// addSegment adds the rows of f that apply within s, starting with the rule
// in force at s.lo (which is after f.lo when an earlier FDE overlapped).
func (a *assembler) addSegment(s segment, f fdeRange, all []rawRow) {
	rows := all[f.first:f.end]
	i := sort.Search(len(rows), func(i int) bool { return rows[i].pc > s.lo }) - 1
	i = max(i, 0)
	a.add(s.lo, rows[i].rule, rows[i].why)
	for i++; i < len(rows) && rows[i].pc < s.hi; i++ {
		a.add(rows[i].pc, rows[i].rule, rows[i].why)
	}
}

// compareFDE orders by section priority, then address, then file order.
func compareFDE(x, y fdeRange) int {
	return cmp.Or(cmp.Compare(x.prio, y.prio), cmp.Compare(x.lo, y.lo), cmp.Compare(x.seq, y.seq))
}
