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

// rebucket moves an exponential histogram's counts into the explicit buckets
// of ExplicitBounds: len(bounds)+1 counts, the last one for values above the
// largest bound. Zero values go to the first bucket (-inf, 2^MinBoundExp].
func rebucket(h hist.Histogram) ([]uint64, error) {
	if h.Scale < 0 {
		// Below scale 0 buckets span several powers of two: not exact.
		return nil, fmt.Errorf("histogram scale %d: explicit buckets need a scale >= 0", h.Scale)
	}
	n := MaxBoundExp - MinBoundExp + 1
	out := make([]uint64, n+1)
	out[0] = h.ZeroCount
	for j, c := range h.Counts {
		if c == 0 {
			continue
		}
		out[explicitSlot(h.Scale, h.Offset+int32(j))] += c
	}
	return out, nil
}

// explicitSlot is the explicit bucket of exponential bucket index at scale:
// the bucket's upper boundary is 2^((index+1)/2^scale), which lies in
// (2^(m-1), 2^m] for m = ceil((index+1)/2^scale).
func explicitSlot(scale, index int32) int {
	den := int64(1) << scale
	m := ceilDiv(int64(index)+1, den)
	switch {
	case m <= MinBoundExp:
		return 0
	case m > MaxBoundExp:
		return MaxBoundExp - MinBoundExp + 1
	}
	return int(m - MinBoundExp)
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) == (b < 0) {
		q++
	}
	return q
}
