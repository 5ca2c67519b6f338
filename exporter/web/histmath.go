package web

import (
	"math"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// bucketLower is the lower edge in seconds of OTel exponential bucket index
// at scale: base^index with base = 2^(2^-scale). Exp2 is exact for whole
// powers of two, so boundaries like 1 s or 2 ms-ish powers stay exact.
func bucketLower(scale, index int32) float64 {
	return math.Exp2(float64(index) / float64(int64(1)<<scale))
}

// quantile estimates the q-quantile (0 < q <= 1) in seconds. The rank is
// found by walking the buckets; inside a bucket the value is interpolated
// geometrically, matching the buckets' exponential spacing. Zero values
// rank first. ok is false for an empty histogram.
func quantile(h hist.Histogram, q float64) (v float64, ok bool) {
	total := h.ZeroCount
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	if rank <= float64(h.ZeroCount) {
		return 0, true
	}
	cum := float64(h.ZeroCount)
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			idx := h.Offset + int32(i)
			lo, hi := bucketLower(h.Scale, idx), bucketLower(h.Scale, idx+1)
			frac := (rank - cum) / float64(c)
			return lo * math.Pow(hi/lo, frac), true
		}
		cum += float64(c)
	}
	// Rounding left the rank past the last bucket: its upper edge.
	last := h.Offset + int32(len(h.Counts))
	return bucketLower(h.Scale, last), true
}

func quantileOrNaN(h hist.Histogram, q float64) float64 {
	if v, ok := quantile(h, q); ok {
		return v
	}
	return math.NaN()
}
