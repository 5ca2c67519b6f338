package exporter

import (
	"fmt"
	"math"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// Explicit bucket bounds are the powers of two of a second from
// 2^MinBoundExp s (about 0.95 µs) to 2^MaxBoundExp s (64 s): 27 bounds, 28
// buckets. An exponential bucket at scale s >= 0 covers
// (2^(i/2^s), 2^((i+1)/2^s)] seconds, and every power of two is one of its
// boundaries, so each exponential bucket lies inside exactly one explicit
// bucket and re-bucketing moves counts without guessing.
const (
	MinBoundExp = -20
	MaxBoundExp = 6
)

// ExplicitBounds returns the explicit bucket upper bounds in seconds.
func ExplicitBounds() []float64 {
	b := make([]float64, 0, MaxBoundExp-MinBoundExp+1)
	for e := MinBoundExp; e <= MaxBoundExp; e++ {
		b = append(b, math.Ldexp(1, e))
	}
	return b
}

// Octave is the number of values in (2^(Exp-1), 2^Exp] seconds.
type Octave struct {
	Exp   int32
	Count uint64
}

// Octaves merges an exponential histogram's buckets into powers of two of a
// second, exactly (the zero count is not included): at scale s >= 0 bucket i
// ends at 2^((i+1)/2^s), which lies in (2^(m-1), 2^m] for
// m = ceil((i+1)/2^s), and so does the whole bucket. The result is in
// ascending order and leaves out empty octaves.
func Octaves(h hist.Histogram) ([]Octave, error) {
	if h.Scale < 0 {
		// Below scale 0 buckets span several powers of two: not exact.
		return nil, fmt.Errorf("histogram scale %d: power-of-two buckets need a scale >= 0", h.Scale)
	}
	var out []Octave
	den := int64(1) << h.Scale
	for j, c := range h.Counts {
		if c == 0 {
			continue
		}
		m := int32(ceilDiv(int64(h.Offset)+int64(j)+1, den))
		if n := len(out); n > 0 && out[n-1].Exp == m {
			out[n-1].Count += c
			continue
		}
		out = append(out, Octave{Exp: m, Count: c})
	}
	return out, nil
}

// rebucket moves an exponential histogram's counts into the explicit buckets
// of ExplicitBounds: len(bounds)+1 counts, the last one for values above the
// largest bound. Zero values go to the first bucket (-inf, 2^MinBoundExp].
func rebucket(h hist.Histogram) ([]uint64, error) {
	octaves, err := Octaves(h)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, MaxBoundExp-MinBoundExp+2)
	out[0] = h.ZeroCount
	for _, o := range octaves {
		out[explicitSlot(o.Exp)] += o.Count
	}
	return out, nil
}

// explicitSlot is the explicit bucket holding the octave ending at 2^exp s.
func explicitSlot(exp int32) int {
	switch {
	case exp <= MinBoundExp:
		return 0
	case exp > MaxBoundExp:
		return MaxBoundExp - MinBoundExp + 1
	}
	return int(exp - MinBoundExp)
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) == (b < 0) {
		q++
	}
	return q
}
