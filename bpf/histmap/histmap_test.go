package histmap

import (
	"math"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// bpfSlot is hist.bpf.h's hist_slot transcribed step for step, run over the
// padded table SetLayout writes.
func bpfSlot(bounds *[hist.MaxBuckets]uint64, nb uint32, ns uint64) (int, bool) {
	lo := uint32(0)
	for step := uint32(hist.MaxBuckets / 2); step > 0; step /= 2 {
		if bounds[(lo+step-1)&(hist.MaxBuckets-1)] < ns {
			lo += step
		}
	}
	if lo == hist.MaxBuckets-1 && bounds[hist.MaxBuckets-1] < ns {
		lo = hist.MaxBuckets
	}
	if lo >= nb {
		return int(nb - 1), true
	}
	return int(lo), false
}

func padded(l *hist.Layout) *[hist.MaxBuckets]uint64 {
	var b [hist.MaxBuckets]uint64
	for i := range b {
		b[i] = math.MaxUint64
	}
	copy(b[:], l.Bounds)
	return &b
}

func layouts(t *testing.T) []*hist.Layout {
	t.Helper()
	var out []*hist.Layout
	for scale := int32(hist.MinScale); scale <= hist.MaxScale; scale++ {
		l, err := hist.NewLayout(scale, 1, 1<<62)
		if scale == 4 {
			l, err = DefaultLayout(scale)
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	// A short table whose last bound is far from the padding.
	short, err := hist.NewLayout(3, 1000, 2000)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, short)
}

func TestBPFSearchMatchesLayoutAtEdges(t *testing.T) {
	for _, l := range layouts(t) {
		b := padded(l)
		vals := []uint64{1, 2, math.MaxUint64 - 1, math.MaxUint64}
		for _, x := range l.Bounds {
			vals = append(vals, x-1, x, x+1)
		}
		for _, ns := range vals {
			ws, wo := l.Bucket(ns)
			gs, gov := bpfSlot(b, uint32(len(l.Bounds)), ns)
			if gs != ws || gov != wo {
				t.Fatalf("scale %d, %d bounds, %d ns: search gives (%d,%v), layout (%d,%v)", l.Scale, len(l.Bounds), ns, gs, gov, ws, wo)
			}
		}
		// Exact boundaries belong to their own bucket (the first with that
		// bound: near 1 ns some buckets hold no integer), +1 to a later one.
		for j, x := range l.Bounds[:len(l.Bounds)-1] {
			for _, v := range []uint64{x, x + 1} {
				s, _ := bpfSlot(b, uint32(len(l.Bounds)), v)
				if l.Bounds[s] < v || (s > 0 && l.Bounds[s-1] >= v) || (v == x && s > j) || (v == x+1 && s <= j) {
					t.Fatalf("scale %d: %d ns in slot %d (bounds %d, %d), bound %d is slot %d", l.Scale, v, s, l.Bounds[max(s-1, 0)], l.Bounds[s], x, j)
				}
			}
		}
		last := l.Bounds[len(l.Bounds)-1]
		if s, over := bpfSlot(b, uint32(len(l.Bounds)), last+1); !over || s != len(l.Bounds)-1 {
			t.Fatalf("scale %d: %d ns (last bound + 1) gave slot %d overflow %v", l.Scale, last+1, s, over)
		}
	}
}

func TestDefaultLayout(t *testing.T) {
	for scale := int32(hist.MinScale); scale <= hist.MaxScale; scale++ {
		l, err := DefaultLayout(scale)
		if err != nil {
			t.Fatalf("scale %d: %v", scale, err)
		}
		want := scale
		if scale == 0 {
			want = hist.DefaultScale
		}
		if l.Scale != want || len(l.Bounds) > hist.MaxBuckets {
			t.Fatalf("scale %d: got scale %d with %d bounds", scale, l.Scale, len(l.Bounds))
		}
		// Every default covers 16 ns to a minute in its own buckets.
		if s, over := l.Bucket(16); over || s != int(hist.IndexOf(want, 16)-l.MinIndex) {
			t.Fatalf("scale %d: 16 ns in slot %d (overflow %v)", scale, s, over)
		}
		if _, over := l.Bucket(60e9); over {
			t.Fatalf("scale %d: 60 s overflows", scale)
		}
	}
	if l, _ := DefaultLayout(4); len(l.Bounds) != hist.MaxBuckets {
		t.Fatalf("scale 4 uses %d slots, want all %d", len(l.Bounds), hist.MaxBuckets)
	}
	if l, _ := DefaultLayout(3); l.Bounds[0] != 1 || l.Bounds[len(l.Bounds)-1] < 1<<62 {
		t.Fatalf("scale 3 covers %d..%d ns, want 1..2^62", l.Bounds[0], l.Bounds[len(l.Bounds)-1])
	}
	if _, err := DefaultLayout(5); err == nil {
		t.Fatal("scale 5 accepted")
	}
}

func TestMergeSumsAndTrims(t *testing.T) {
	l, err := hist.NewLayout(0, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var a, b Value
	a.Buckets[3], a.Buckets[5] = 2, 1
	b.Buckets[5], b.Buckets[7] = 4, 1
	a.Zero, a.Count, a.SumNs = 1, 4, 100
	b.Count, b.SumNs, b.Overflow = 5, 50, 1
	h := Merge(l, []Value{a, b})
	want := []uint64{2, 0, 5, 0, 1}
	if h.Offset != l.MinIndex+3 || len(h.Counts) != len(want) {
		t.Fatalf("offset %d counts %v, want offset %d counts %v", h.Offset, h.Counts, l.MinIndex+3, want)
	}
	for i := range want {
		if h.Counts[i] != want[i] {
			t.Fatalf("counts %v, want %v", h.Counts, want)
		}
	}
	if h.ZeroCount != 1 || h.Count != 9 || h.SumNs != 150 || h.Overflow != 1 || h.Scale != 0 {
		t.Fatalf("totals %+v", h)
	}
	empty := Merge(l, nil)
	if empty.Counts != nil || empty.Count != 0 || empty.Offset != l.MinIndex {
		t.Fatalf("empty merge %+v", empty)
	}
}

func TestSetLayout(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec("internal/histtest/histtest_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	l, err := hist.NewLayout(2, 1000, 1e6)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetLayout(spec, l); err != nil {
		t.Fatal(err)
	}
	var bounds [hist.MaxBuckets]uint64
	var n uint32
	if err := spec.Variables[boundsVar].Get(&bounds); err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables[nboundsVar].Get(&n); err != nil {
		t.Fatal(err)
	}
	if int(n) != len(l.Bounds) || bounds[0] != l.Bounds[0] || bounds[n-1] != l.Bounds[n-1] || bounds[n] != math.MaxUint64 {
		t.Fatalf("written %d bounds, first %d last %d pad %d", n, bounds[0], bounds[n-1], bounds[n])
	}
	if err := SetLayout(spec, &hist.Layout{}); err == nil {
		t.Fatal("empty layout accepted")
	}
	if err := SetLayout(&ebpf.CollectionSpec{Variables: map[string]*ebpf.VariableSpec{}}, l); err == nil {
		t.Fatal("spec without hist.bpf.h accepted")
	}
}

func TestCommKeyString(t *testing.T) {
	var k CommKey
	copy(k[:], "runqlat.test\x00\x00\x00\x00")
	if k.String() != "runqlat.test" {
		t.Fatalf("%q", k.String())
	}
	copy(k[:], "0123456789abcdef") // no NUL: the kernel always ends with one, be safe anyway
	if k.String() != "0123456789abcdef" {
		t.Fatalf("%q", k.String())
	}
}

func TestSetupByProcess(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec("internal/histtest/histtest_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	// histtest has no by-process switch: a missing variable is an error
	// naming it, after the map is found.
	if err := SetupByProcess(spec, "by_comm", "hist_test_hash", true, 10); err == nil {
		t.Fatal("missing by_comm variable accepted")
	}
	if spec.Maps["hist_test_hash"].MaxEntries != 10 {
		t.Fatalf("max entries %d, want 10", spec.Maps["hist_test_hash"].MaxEntries)
	}
	if err := SetupByProcess(spec, "by_comm", "nope", true, 10); err == nil {
		t.Fatal("missing map accepted")
	}
	for _, bad := range []int{-1, MaxSeriesLimit + 1} {
		if err := SetupByProcess(spec, "by_comm", "hist_test_hash", true, bad); err == nil {
			t.Fatalf("max series %d accepted", bad)
		}
	}
}
