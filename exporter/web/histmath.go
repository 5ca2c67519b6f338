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

// delta is cur minus prev, bucket by bucket, for two cumulative readings of
// the same series (prev's counts never exceed cur's). A scale change means
// the program was reloaded: cur is then everything there is.
func delta(cur, prev hist.Histogram) hist.Histogram {
	if prev.Scale != cur.Scale || prev.Count > cur.Count {
		return cur
	}
	out := hist.Histogram{
		Scale: cur.Scale, Offset: cur.Offset, Counts: append([]uint64(nil), cur.Counts...),
		ZeroCount: sub(cur.ZeroCount, prev.ZeroCount), Count: cur.Count - prev.Count,
		SumNs: sub(cur.SumNs, prev.SumNs), Overflow: sub(cur.Overflow, prev.Overflow),
	}
	for i, c := range prev.Counts {
		j := int(prev.Offset-cur.Offset) + i
		if j >= 0 && j < len(out.Counts) {
			out.Counts[j] = sub(out.Counts[j], c)
		}
	}
	return out.Trimmed()
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
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
