package exporter

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

func TestExplicitBoundsArePowersOfTwoOfASecond(t *testing.T) {
	b := ExplicitBounds()
	if len(b) != MaxBoundExp-MinBoundExp+1 {
		t.Fatalf("%d bounds, want %d", len(b), MaxBoundExp-MinBoundExp+1)
	}
	for i, v := range b {
		frac, exp := math.Frexp(v)
		if frac != 0.5 || exp-1 != MinBoundExp+i {
			t.Errorf("bound %d = %g, want 2^%d", i, v, MinBoundExp+i)
		}
	}
}

// directSlot is the explicit bucket of ns nanoseconds computed straight from
// the definition (v <= bound, in exact integer arithmetic): the reference the
// re-bucketed kernel data must match.
func directSlot(ns uint64) int {
	if ns == 0 {
		return 0
	}
	v := new(big.Int).SetUint64(ns)
	for k := 0; k <= MaxBoundExp-MinBoundExp; k++ {
		// bound in ns = 1e9 * 2^e; compare v * 2^-e <= 1e9 for e < 0.
		e := MinBoundExp + k
		lhs, rhs := new(big.Int).Set(v), big.NewInt(1e9)
		if e < 0 {
			lhs.Lsh(lhs, uint(-e))
		} else {
			rhs.Lsh(rhs, uint(e))
		}
		if lhs.Cmp(rhs) <= 0 {
			return k
		}
	}
	return MaxBoundExp - MinBoundExp + 1
}

// edgeValues are values on and next to every power-of-two bound and every
// layout bound, plus 0 and values beyond the layout.
func edgeValues(l *hist.Layout) []uint64 {
	vals := []uint64{0, 1, l.Bounds[0], l.Bounds[len(l.Bounds)-1], l.Bounds[len(l.Bounds)-1] + 1, math.MaxUint64 / 2}
	for e := MinBoundExp; e <= MaxBoundExp; e++ {
		ns := uint64(math.Floor(math.Ldexp(1e9, e)))
		vals = append(vals, ns-1, ns, ns+1)
	}
	for _, b := range l.Bounds {
		vals = append(vals, b, b+1)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		vals = append(vals, uint64(math.Exp(r.Float64()*math.Log(2e11))))
	}
	return vals
}

// kernelHistogram buckets values the way the BPF programs do (Layout.Bucket).
func kernelHistogram(l *hist.Layout, vals []uint64) hist.Histogram {
	h := hist.Histogram{Scale: l.Scale, Offset: l.MinIndex, Counts: make([]uint64, len(l.Bounds))}
	for _, v := range vals {
		h.Count++
		h.SumNs += v
		if v == 0 {
			h.ZeroCount++
			continue
		}
		slot, over := l.Bucket(v)
		h.Counts[slot]++
		if over {
			h.Overflow++
		}
	}
	return h
}

func TestRebucketIsExactAtEveryScale(t *testing.T) {
	for scale := int32(hist.MinScale); scale <= hist.MaxScale; scale++ {
		// The layout's range reaches past both ends of the explicit bounds,
		// so only values outside it (clamped by the kernel) can disagree.
		l, err := hist.NewLayout(scale, 100, 100e9)
		if err != nil {
			t.Fatal(err)
		}
		vals := edgeValues(l)
		h := kernelHistogram(l, vals)
		got, err := rebucket(h)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]uint64, len(got))
		for _, v := range vals {
			if v > 0 && v < l.Bounds[0] {
				v = l.Bounds[0] // the kernel clamps into the first bucket
			}
			want[directSlot(v)]++
		}
		var total uint64
		for k := range got {
			total += got[k]
			if got[k] != want[k] {
				t.Errorf("scale %d: explicit bucket %d (le %g s) = %d, want %d", scale, k, boundOrInf(k), got[k], want[k])
			}
		}
		if total != h.Count {
			t.Errorf("scale %d: explicit buckets hold %d values, histogram count is %d", scale, total, h.Count)
		}
	}
}

func boundOrInf(k int) float64 {
	if b := ExplicitBounds(); k < len(b) {
		return b[k]
	}
	return math.Inf(1)
}

func TestRebucketPlacesBoundaryValuesInTheLowerBucket(t *testing.T) {
	// 2^-6 s = 15,625,000 ns exactly: on the bound it belongs to the bucket
	// it closes; one nanosecond more belongs to the next.
	l, err := hist.NewLayout(3, 1000, 10e9)
	if err != nil {
		t.Fatal(err)
	}
	on := kernelHistogram(l, []uint64{15_625_000})
	above := kernelHistogram(l, []uint64{15_625_001})
	k := -6 - MinBoundExp
	if c, _ := rebucket(on); c[k] != 1 {
		t.Errorf("15625000 ns: explicit counts %v, want the value in bucket %d (le 2^-6 s)", c, k)
	}
	if c, _ := rebucket(above); c[k+1] != 1 {
		t.Errorf("15625001 ns: explicit counts %v, want the value in bucket %d", c, k+1)
	}
}

func TestRebucketRefusesNegativeScale(t *testing.T) {
	_, err := rebucket(hist.Histogram{Scale: -1, Counts: []uint64{1}})
	if err == nil {
		t.Fatal("scale -1 re-bucketed without error; its buckets span several powers of two")
	}
}

func TestOctavesMergeBucketsOfOnePowerOfTwo(t *testing.T) {
	// Scale 1: buckets -2 and -1 are (2^-1, 2^-0.5] and (2^-0.5, 1]: both in
	// octave 0; bucket 0 is (1, 2^0.5]: octave 1.
	got, err := Octaves(hist.Histogram{Scale: 1, Offset: -2, Counts: []uint64{3, 4, 5, 0}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Octave{{Exp: 0, Count: 7}, {Exp: 1, Count: 5}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Octaves = %v, want %v", got, want)
	}
}
