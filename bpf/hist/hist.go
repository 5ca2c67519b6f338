// Package hist defines the in-kernel latency histogram layout shared by every
// latency program and the exporter.
//
// Bucketing follows OpenTelemetry's exponential histogram exactly. For a scale
// s the base is 2^(2^-s), and bucket i holds the values v (in seconds) with
// base^i < v <= base^(i+1). The BPF programs measure nanoseconds, so at load
// time Go computes, for every bucket of the layout, the largest whole number of
// nanoseconds that still falls into it (floor(1e9 * base^(i+1))). The kernel
// side finds the first bound that is >= the measured value with a binary
// search over that table; because measured values are integers, "v <= floor(x)"
// is the same test as "v <= x", so no value is ever placed in a neighbouring
// bucket. Zero goes to the zero bucket, and values above the last bound are
// clamped into the last bucket and also counted as overflow.
package hist

import (
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strings"
)

// MaxBuckets is the number of bucket slots compiled into the BPF programs'
// histogram values (see bpf/include/hist.bpf.h). A layout never uses more.
const MaxBuckets = 512

// MinScale and MaxScale bound the configurable scale. Scale 3 (base ≈ 1.09,
// at most 9% relative error) is the default; the range a layout covers is
// chosen by its caller (histmap.DefaultLayout: 1 ns to 2^62 ns up to scale 3,
// 16 ns to about 64 s at scale 4).
const (
	MinScale     = 0
	MaxScale     = 4
	DefaultScale = 3
)

// Layout is the bucket table for one scale and range.
type Layout struct {
	Scale    int32
	MinIndex int32    // OTel bucket index of Bounds[0]
	Bounds   []uint64 // Bounds[j] = largest ns value in bucket MinIndex+j
}

// NewLayout returns the table for scale covering loNs..hiNs nanoseconds.
// Values below loNs land in the first bucket (its lower edge is the bucket
// that contains loNs), values above the last bound are overflow.
func NewLayout(scale int32, loNs, hiNs uint64) (*Layout, error) {
	if scale < MinScale || scale > MaxScale {
		return nil, fmt.Errorf("histogram scale %d: must be between %d and %d", scale, MinScale, MaxScale)
	}
	if loNs == 0 || hiNs <= loNs {
		return nil, fmt.Errorf("histogram range %d..%d ns: need 0 < low < high", loNs, hiNs)
	}
	lo, hi := IndexOf(scale, loNs), IndexOf(scale, hiNs)
	n := int(hi - lo + 1)
	if n > MaxBuckets {
		return nil, fmt.Errorf("histogram scale %d over %d..%d ns needs %d buckets, more than %d", scale, loNs, hiNs, n, MaxBuckets)
	}
	l := &Layout{Scale: scale, MinIndex: lo, Bounds: make([]uint64, n)}
	for j := range l.Bounds {
		l.Bounds[j] = UpperNs(scale, lo+int32(j))
	}
	return l, nil
}

// UpperNs is floor(1e9 * 2^((index+1) / 2^scale)): the largest whole number
// of nanoseconds inside bucket index. It is computed with big floats at 256
// bits so that bounds that are exact integers (powers of two times 1e9) are
// never off by one.
func UpperNs(scale, index int32) uint64 {
	// 2^((index+1)/2^scale) = 2^q * 2^(r/2^scale), with 0 <= r < 2^scale.
	k := int64(index) + 1
	den := int64(1) << scale
	q := floorDiv(k, den)
	r := k - q*den
	frac := new(big.Float).SetPrec(256).SetFloat64(1)
	if r != 0 {
		frac = root2(r, scale)
	}
	v := new(big.Float).SetPrec(256).SetMantExp(frac, int(q))
	v.Mul(v, new(big.Float).SetPrec(256).SetInt64(1e9))
	i, _ := v.Int(nil) // truncation toward zero == floor for positive values
	if !i.IsUint64() {
		return math.MaxUint64
	}
	return i.Uint64()
}

// IndexOf is the OTel bucket index of ns nanoseconds (ns > 0) at scale: the
// smallest i with ns <= UpperNs(scale, i).
func IndexOf(scale int32, ns uint64) int32 {
	// Start from the float estimate and correct with exact bounds.
	i := int32(math.Ceil(math.Log2(float64(ns)/1e9)*float64(int64(1)<<scale))) - 1
	for i > math.MinInt32 && UpperNs(scale, i-1) >= ns {
		i--
	}
	for UpperNs(scale, i) < ns {
		i++
	}
	return i
}

// Bucket returns the slot of ns in the layout (what the BPF code computes),
// and whether it overflowed. Zero is not a slot: callers count it apart.
func (l *Layout) Bucket(ns uint64) (slot int, overflow bool) {
	lo, hi := 0, len(l.Bounds)
	for lo < hi {
		mid := (lo + hi) / 2
		if l.Bounds[mid] >= ns {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == len(l.Bounds) {
		return len(l.Bounds) - 1, true
	}
	return lo, false
}

// root2 returns 2^(r/2^scale) for 0 < r < 2^scale by repeated square roots.
func root2(r int64, scale int32) *big.Float {
	out := new(big.Float).SetPrec(256).SetFloat64(1)
	step := new(big.Float).SetPrec(256).SetFloat64(2)
	// 2^(r/2^scale) = prod over bits b of r of 2^(2^b/2^scale).
	roots := make([]*big.Float, scale)
	for s := int32(0); s < scale; s++ {
		step = new(big.Float).SetPrec(256).Sqrt(step)
		roots[s] = step // 2^(1/2^(s+1))
	}
	for b := int32(0); b < scale; b++ {
		if r&(1<<b) != 0 {
			out.Mul(out, roots[scale-1-b])
		}
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Histogram is one series read from a BPF map, summed over CPUs.
type Histogram struct {
	Scale     int32
	Offset    int32    // OTel bucket index of Counts[0]
	Counts    []uint64 // consecutive buckets starting at Offset
	ZeroCount uint64   // values of exactly 0 ns
	Count     uint64   // all values, including zero and overflow
	SumNs     uint64   // sum of all values in nanoseconds
	Overflow  uint64   // values above the layout's last bound (also in the last bucket)
}

// Series is one histogram with the attributes that tell it apart
// (for example the hook that produced it, or the I/O direction).
type Series struct {
	Attrs map[string]string
	Hist  Histogram
}

// Reading is one metric a latency program reports at a collection. All
// values are cumulative since the program attached.
type Reading struct {
	Name        string          // OpenTelemetry metric name, e.g. "vigil.read.duration"
	Description string          // one sentence for the metric's description
	Unit        string          // "s" for durations; counters carry theirs, e.g. "{segment}"
	Histograms  []Series        // set for histogram metrics
	Counters    []CounterSeries // set for monotonic counters
	Gauges      []CounterSeries // set for gauges: values now, such as bytes in use
}

// CounterSeries is one monotonic counter with its attributes.
type CounterSeries struct {
	Attrs map[string]string
	Value uint64
}

// NonEmpty returns the range [lo, hi) of counts without the empty buckets
// at either end; all-empty counts give an empty range.
func NonEmpty(counts []uint64) (lo, hi int) {
	hi = len(counts)
	for lo < hi && counts[lo] == 0 {
		lo++
	}
	for hi > lo && counts[hi-1] == 0 {
		hi--
	}
	return lo, hi
}

// Trimmed returns a copy of h without its empty edge buckets, so it never
// aliases h's counts. With no bucketed values Counts is nil and Offset 0.
func (h Histogram) Trimmed() Histogram {
	lo, hi := NonEmpty(h.Counts)
	out := h
	out.Offset = h.Offset + int32(lo)
	out.Counts = append([]uint64(nil), h.Counts[lo:hi]...)
	if len(out.Counts) == 0 {
		out.Offset, out.Counts = 0, nil
	}
	return out
}

// SeriesKey identifies a series across readings: the metric name and its
// attributes in sorted order.
func SeriesKey(name string, attrs map[string]string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		b.WriteString("\x00" + k + "=" + attrs[k])
	}
	return b.String()
}
