package hist

import (
	"math"
	"math/big"
	"testing"
)

// Powers of two of a second times 1e9 are whole numbers of nanoseconds
// from 2^-9 s up: those bounds must come out exact, not one below.
func TestUpperNsExactAtPowersOfTwo(t *testing.T) {
	for scale := int32(MinScale); scale <= MaxScale; scale++ {
		for k := int32(-9); k <= 20; k++ {
			// Bucket index whose upper bound is 2^k s: (i+1)/2^scale = k.
			i := k<<scale - 1
			want := new(big.Int).Mul(big.NewInt(1e9), new(big.Int).Lsh(big.NewInt(1), uint(k+9)))
			want.Rsh(want, 9)
			if got := UpperNs(scale, i); got != want.Uint64() {
				t.Errorf("scale %d: UpperNs(2^%d s) = %d, want %d", scale, k, got, want.Uint64())
			}
		}
	}
}

// IndexOf follows OTel: bucket i holds (base^i, base^(i+1)], so a value
// exactly on a bound belongs to the lower bucket and one more nanosecond
// to the next.
func TestIndexOfBoundsAreUpperInclusive(t *testing.T) {
	for scale := int32(MinScale); scale <= MaxScale; scale++ {
		for _, i := range []int32{-200, -100, -1, 0, 1, 40} {
			ub := UpperNs(scale, i)
			if ub == 0 || ub == math.MaxUint64 {
				continue
			}
			if got := IndexOf(scale, ub); got != i {
				t.Errorf("scale %d: IndexOf(upper bound of %d = %d) = %d", scale, i, ub, got)
			}
			if got := IndexOf(scale, ub+1); got != i+1 {
				t.Errorf("scale %d: IndexOf(%d+1) = %d, want %d", scale, ub, got, i+1)
			}
		}
	}
	// 1 s is the upper bound of bucket -1 at every scale.
	for scale := int32(MinScale); scale <= MaxScale; scale++ {
		if got := IndexOf(scale, 1e9); got != -1 {
			t.Errorf("scale %d: IndexOf(1 s) = %d, want -1", scale, got)
		}
	}
}

func TestLayoutBucketMatchesIndexOf(t *testing.T) {
	l, err := NewLayout(DefaultScale, 1000, 60e9)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []uint64{1, 999, 1000, 1001, 20e6, 1e9, 1e9 + 1, 59e9, 60e9} {
		slot, over := l.Bucket(ns)
		want := IndexOf(l.Scale, ns) - l.MinIndex
		if want < 0 {
			want = 0 // below the range: the first bucket
		}
		if over || int32(slot) != want {
			t.Errorf("Bucket(%d) = %d, %v; want slot %d", ns, slot, over, want)
		}
	}
	last := l.Bounds[len(l.Bounds)-1]
	if slot, over := l.Bucket(last + 1); !over || slot != len(l.Bounds)-1 {
		t.Errorf("above the last bound: slot %d overflow %v", slot, over)
	}
	for j := 1; j < len(l.Bounds); j++ {
		if l.Bounds[j] <= l.Bounds[j-1] {
			t.Fatalf("bounds not ascending at %d", j)
		}
	}
}

func TestNewLayoutRejectsNonsense(t *testing.T) {
	for _, tc := range []struct {
		scale  int32
		lo, hi uint64
	}{{-1, 1, 10}, {MaxScale + 1, 1, 10}, {3, 0, 10}, {3, 10, 10}, {MaxScale, 1, math.MaxUint64}} {
		if _, err := NewLayout(tc.scale, tc.lo, tc.hi); err == nil {
			t.Errorf("NewLayout(%d, %d, %d) accepted", tc.scale, tc.lo, tc.hi)
		}
	}
}
