package histmap

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// Value mirrors struct hist_value in hist.bpf.h, one CPU's share of a series.
// Its size is checked against every program's generated type by tests.
type Value struct {
	Buckets  [hist.MaxBuckets]uint64
	Zero     uint64
	Count    uint64
	SumNs    uint64
	Overflow uint64
}

// Merge sums the per-CPU values of one series into a histogram in the
// layout's scale. Empty buckets at both ends are trimmed: Offset is the OTel
// index of the first non-empty bucket. With no bucketed values Counts is nil
// and Offset is the layout's first index.
func Merge(l *hist.Layout, perCPU []Value) hist.Histogram {
	var sum Value
	for i := range perCPU {
		add(&sum, &perCPU[i])
	}
	return toHistogram(l, &sum)
}

func add(dst, src *Value) {
	for i := range dst.Buckets {
		dst.Buckets[i] += src.Buckets[i]
	}
	dst.Zero += src.Zero
	dst.Count += src.Count
	dst.SumNs += src.SumNs
	dst.Overflow += src.Overflow
}

func toHistogram(l *hist.Layout, v *Value) hist.Histogram {
	h := hist.Histogram{
		Scale: l.Scale, Offset: l.MinIndex,
		ZeroCount: v.Zero, Count: v.Count, SumNs: v.SumNs, Overflow: v.Overflow,
	}
	n := min(len(l.Bounds), hist.MaxBuckets)
	first, last := -1, -1
	for i := 0; i < n; i++ {
		if v.Buckets[i] == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	if first >= 0 {
		h.Offset = l.MinIndex + int32(first)
		h.Counts = append([]uint64(nil), v.Buckets[first:last+1]...)
	}
	return h
}

// Lookup reads the series stored under key in a per-CPU map. A key that was
// never written reads as an empty histogram.
func Lookup(m *ebpf.Map, l *hist.Layout, key any) (hist.Histogram, error) {
	var perCPU []Value
	err := m.Lookup(key, &perCPU)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return toHistogram(l, &Value{}), nil
	}
	if err != nil {
		return hist.Histogram{}, fmt.Errorf("reading histogram map %s: %w", m.String(), err)
	}
	return Merge(l, perCPU), nil
}

// ReadAll reads every series of a per-CPU hash map keyed by K.
func ReadAll[K comparable](m *ebpf.Map, l *hist.Layout) (map[K]hist.Histogram, error) {
	out := make(map[K]hist.Histogram)
	var (
		key    K
		perCPU []Value
	)
	it := m.Iterate()
	for it.Next(&key, &perCPU) {
		out[key] = Merge(l, perCPU)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading histogram map %s: %w", m.String(), err)
	}
	return out, nil
}
