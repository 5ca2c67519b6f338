// Package histmap connects the Go histogram layout (bpf/hist) with the BPF
// side (bpf/include/hist.bpf.h): it writes a layout's bucket table into a
// collection spec before load, and reads per-CPU histogram maps back into
// hist.Histogram values.
//
// A latency program uses it like this:
//
//	BPF: #include "hist.bpf.h"; a BPF_MAP_TYPE_PERCPU_ARRAY (or PERCPU_HASH
//	for several series) with value struct hist_value; per event
//	hist_add(bpf_map_lookup_elem(&map, &key), ns), or
//	hist_add(hist_lookup(&hash, &key), ns) to create hash entries.
//	Go:  l, _ := histmap.Prepare(opts.Scale, opts.MaxSeries) // layout, series cap, memlock
//	     spec, _ := load<Prog>()
//	     histmap.SetLayout(spec, l) // before load
//	     then load the maps and each strategy's programs through
//	     bpf/internal/latency (typed structs, LoadAndAssign with the
//	     histograms as MapReplacements).
//	     h, _ := histmap.Lookup(m, l, uint32(0)) // or ReadAll[K]
//
// Tests should compare unsafe.Sizeof of the generated <prog>HistValue with
// histmap.Value.
package histmap

import (
	"fmt"
	"math"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// Names of the load-time constants declared in hist.bpf.h.
const (
	boundsVar  = "hist_bounds"
	nboundsVar = "hist_nbounds"
)

// topNs is the upper end of a default layout when it fits: 2^62 ns (about
// 146 years), so in practice nothing overflows.
const topNs = uint64(1) << 62

// DefaultLayout returns the layout the latency programs use for scale (0 for
// hist.DefaultScale). Up to scale 3 the table covers 1 ns to 2^62 ns, so every
// value the kernel can measure lands in its own OTel bucket. At scale 4 the
// 512 slots span only 32 doublings: the table starts at 16 ns (below any
// syscall or scheduler latency) and ends where the slots run out, about 64 s;
// longer values are counted as overflow.
func DefaultLayout(scale int32) (*hist.Layout, error) {
	if scale == 0 {
		scale = hist.DefaultScale
	}
	if scale < hist.MinScale || scale > hist.MaxScale {
		return nil, fmt.Errorf("histogram scale %d: must be between %d and %d", scale, hist.MinScale, hist.MaxScale)
	}
	lo := uint64(1)
	if scale >= 4 {
		lo = 16
	}
	last := hist.IndexOf(scale, lo) + hist.MaxBuckets - 1
	hi := min(hist.UpperNs(scale, last), topNs)
	return hist.NewLayout(scale, lo, hi)
}

// SetLayout writes l into the spec's hist_bounds and hist_nbounds constants.
// Slots past the layout are padded with the largest value so the kernel's
// fixed-length search needs no bound of its own.
func SetLayout(spec *ebpf.CollectionSpec, l *hist.Layout) error {
	if len(l.Bounds) == 0 || len(l.Bounds) > hist.MaxBuckets {
		return fmt.Errorf("histogram layout with %d bounds: need 1 to %d", len(l.Bounds), hist.MaxBuckets)
	}
	var bounds [hist.MaxBuckets]uint64
	for i := range bounds {
		bounds[i] = math.MaxUint64
	}
	copy(bounds[:], l.Bounds)
	if err := setVar(spec, boundsVar, bounds); err != nil {
		return err
	}
	return setVar(spec, nboundsVar, uint32(len(l.Bounds)))
}

func setVar(spec *ebpf.CollectionSpec, name string, v any) error {
	vs, ok := spec.Variables[name]
	if !ok {
		return fmt.Errorf("setting histogram layout: object has no variable %s (does it include hist.bpf.h?)", name)
	}
	if err := vs.Set(v); err != nil {
		return fmt.Errorf("setting histogram layout variable %s: %w", name, err)
	}
	return nil
}

// Prepare is what every latency program does before loading: the bucket
// layout for scale, a check of the series cap (0 where a program has no
// breakdown), and the RLIMIT_MEMLOCK raise kernels before 5.11 need.
// Its errors are the caller's bad options, never attach failures.
func Prepare(scale int32, maxSeries int) (*hist.Layout, error) {
	layout, err := DefaultLayout(scale)
	if err != nil {
		return nil, err
	}
	if err := CheckMaxSeries(maxSeries); err != nil {
		return nil, err
	}
	RaiseMemlock()
	return layout, nil
}
