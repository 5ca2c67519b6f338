package histtest

import (
	"math"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

func TestValueSizeMatchesGoType(t *testing.T) {
	if got, want := unsafe.Sizeof(histtestHistValue{}), unsafe.Sizeof(histmap.Value{}); got != want {
		t.Fatalf("struct hist_value is %d bytes, histmap.Value %d", got, want)
	}
	if got, want := len(histtestHistValue{}.Buckets), hist.MaxBuckets; got != want {
		t.Fatalf("HIST_MAX_BUCKETS = %d, hist.MaxBuckets = %d", got, want)
	}
}

func load(t *testing.T, l *hist.Layout) *histtestObjects {
	t.Helper()
	testenv.RequireRoot(t)
	spec, err := loadHisttest()
	if err != nil {
		t.Fatal(err)
	}
	if err := histmap.SetLayout(spec, l); err != nil {
		t.Fatal(err)
	}
	var objs histtestObjects
	err = spec.LoadAndAssign(&objs, nil)
	testenv.SkipIfNotSupported(t, "raw_tp programs with BPF_PROG_TEST_RUN", err)
	t.Cleanup(func() { objs.Close() })
	return &objs
}

// edgeValues are 0, 1 ns, every bound, bound-1 and bound+1, and the largest
// values.
func edgeValues(l *hist.Layout) []uint64 {
	vs := []uint64{0, 1, 2, math.MaxUint64 - 1, math.MaxUint64}
	for _, b := range l.Bounds {
		vs = append(vs, b-1, b, b+1)
	}
	return vs
}

func run(t *testing.T, p *ebpf.Program, args ...uint64) int32 {
	t.Helper()
	ret, err := p.Run(&ebpf.RunOptions{Context: args})
	if err != nil {
		t.Fatalf("test run with %v: %v", args, err)
	}
	return int32(ret)
}

func TestKernelBucketingMatchesLayout(t *testing.T) {
	for scale := int32(hist.MinScale); scale <= hist.MaxScale; scale++ {
		// Scale 0 yields a short table (padding in use), scale 4 a full one.
		l, err := histmap.DefaultLayout(scale)
		if err != nil {
			t.Fatal(err)
		}
		if scale == 0 {
			// DefaultLayout(0) means the default scale; build scale 0 itself.
			if l, err = hist.NewLayout(0, 1, 1<<62); err != nil {
				t.Fatal(err)
			}
		}
		objs := load(t, l)
		var want histmap.Value
		for _, ns := range edgeValues(l) {
			got := run(t, objs.Feed, ns)
			want.Count++
			want.SumNs += ns
			if ns == 0 {
				want.Zero++
				if got != 0x20000 {
					t.Fatalf("scale %d: 0 ns gave %#x, want the zero bucket", scale, got)
				}
				continue
			}
			slot, over := l.Bucket(ns)
			exp := int32(slot)
			if over {
				exp |= 0x10000
				want.Overflow++
			}
			want.Buckets[slot]++
			if got != exp {
				t.Fatalf("scale %d: %d ns: kernel slot %#x, layout %#x (bound %d)", scale, ns, got, exp, l.Bounds[slot])
			}
		}
		checkMap(t, objs.HistTest, l, &want)
	}
}

func checkMap(t *testing.T, m *ebpf.Map, l *hist.Layout, want *histmap.Value) {
	t.Helper()
	got, err := histmap.Lookup(m, l, uint32(0))
	if err != nil {
		t.Fatal(err)
	}
	exp := histmap.Merge(l, []histmap.Value{*want})
	if got.Count != exp.Count || got.SumNs != exp.SumNs || got.ZeroCount != exp.ZeroCount || got.Overflow != exp.Overflow {
		t.Fatalf("map totals %+v, want %+v", got, exp)
	}
	if got.Offset != exp.Offset || len(got.Counts) != len(exp.Counts) {
		t.Fatalf("map offset %d len %d, want %d len %d", got.Offset, len(got.Counts), exp.Offset, len(exp.Counts))
	}
	for i := range got.Counts {
		if got.Counts[i] != exp.Counts[i] {
			t.Fatalf("bucket %d: %d, want %d", exp.Offset+int32(i), got.Counts[i], exp.Counts[i])
		}
	}
}

func TestKernelLookupCreatesAndCaps(t *testing.T) {
	l, err := histmap.DefaultLayout(0)
	if err != nil {
		t.Fatal(err)
	}
	objs := load(t, l)
	// 20 ms lands in the bucket hist says, under two keys; a third key does
	// not fit in the two-entry map and is refused.
	const ns = 20_000_000
	for key := uint64(1); key <= 2; key++ {
		for range 3 {
			if got := run(t, objs.FeedHash, ns, key); got != 0 {
				t.Fatalf("key %d: feed_hash returned %d", key, got)
			}
		}
	}
	if got := run(t, objs.FeedHash, ns, 3); got != -1 {
		t.Fatalf("third key in a 2-entry map: feed_hash returned %d, want -1 (map full)", got)
	}
	all, err := histmap.ReadAll[uint32](objs.HistTestHash, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("%d series, want 2", len(all))
	}
	for key, h := range all {
		if h.Count != 3 || h.SumNs != 3*ns || len(h.Counts) != 1 || h.Counts[0] != 3 || h.Offset != hist.IndexOf(l.Scale, ns) {
			t.Fatalf("key %d: %+v, want 3 values in bucket %d", key, h, hist.IndexOf(l.Scale, ns))
		}
	}
}
