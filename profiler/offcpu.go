package profiler

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
)

// Synthetic frames of off-CPU profiles. Blocked time that has no stack in
// the profile still weighs in it, under one of these, so the profile's
// total is all the blocked time the kernel saw.
const (
	// offCPUBelowFrame holds the intervals shorter than the min-block
	// threshold: the sampler counts them and their time, but records no
	// stack for them.
	offCPUBelowFrame = "[off-cpu below min-block]"
	// offCPULostPrefix names the intervals lost for a reason (a full map,
	// for one): "[lost off-cpu time: counts_map_full]".
	offCPULostPrefix = "[lost off-cpu time: "
)

// tracingFrames start the names of the kernel's tracing machinery, which
// an off-CPU kernel stack taken from the scheduler switch's tracepoint
// begins with (the BPF program, the tracepoint's iterator), above the
// scheduler function where the thread really stopped.
var tracingFrames = []string{"bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_", "perf_trace_", "trace_event_raw_event_"}

// trimTracing drops the leading tracing frames of a kernel stack (the
// stack holds only kernel frames yet), so an off-CPU stack's leaf is the
// scheduler (__schedule), below wherever the thread blocked.
func trimTracing(stack []*profile.Location) []*profile.Location {
	n := 0
	for n < len(stack) && isTracing(stack[n]) {
		n++
	}
	return stack[n:]
}

func isTracing(l *profile.Location) bool {
	if len(l.Line) == 0 {
		return false
	}
	name := l.Line[len(l.Line)-1].Function.Name
	for _, p := range tracingFrames {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// addOffCPU adds a batch's off-CPU samples and the blocked time it has no
// stacks for: below the threshold, and lost by reason.
func (b *Builder) addOffCPU(batch *cpuprofile.Batch) {
	b.AddSamples(batch.OffCPU)
	t := batch.OffCPUTotals
	o := &b.stats.OffCPU
	o.Seen += t.Seen
	o.SeenNanos += t.SeenNanos
	o.Below += t.Below
	o.BelowNanos += t.BelowNanos
	addCounts(&o.StackLost, t.StackLost)
	o.KernelStacksReused += t.KernelStacksReused
	o.UserStacksReused += t.UserStacksReused
	if t.Below > 0 || t.BelowNanos > 0 {
		b.count([]*profile.Location{b.synthetic(offCPUBelowFrame)}, 0, 0, "", t.Below, t.BelowNanos)
	}
	for _, reason := range lostReasons(t) {
		n, ns := t.Lost[reason], t.LostNanos[reason]
		if n == 0 && ns == 0 {
			continue
		}
		if o.Lost == nil {
			o.Lost, o.LostNanos = map[string]uint64{}, map[string]uint64{}
		}
		o.Lost[reason] += n
		o.LostNanos[reason] += ns
		b.stats.Lost[reason] += n
		b.count([]*profile.Location{b.synthetic(offCPULostPrefix + reason + "]")}, 0, 0, "", n, ns)
	}
}

// lostReasons are the reasons of either loss map, sorted.
func lostReasons(t cpuprofile.OffCPUTotals) []string {
	all := maps.Clone(t.Lost)
	if all == nil {
		all = map[string]uint64{}
	}
	for r := range t.LostNanos {
		all[r] = 0
	}
	return slices.Sorted(maps.Keys(all))
}

// AddOffCPUTotals adds t to into, the loss maps included.
func AddOffCPUTotals(into *cpuprofile.OffCPUTotals, t cpuprofile.OffCPUTotals) {
	into.Seen += t.Seen
	into.Recorded += t.Recorded
	into.Below += t.Below
	into.SeenNanos += t.SeenNanos
	into.RecordedNanos += t.RecordedNanos
	into.BelowNanos += t.BelowNanos
	addCounts(&into.Lost, t.Lost)
	addCounts(&into.LostNanos, t.LostNanos)
	addCounts(&into.StackLost, t.StackLost)
	into.KernelStacksReused += t.KernelStacksReused
	into.UserStacksReused += t.UserStacksReused
}

// addCounts adds the counts of from to *into, making the map when needed.
func addCounts(into *map[string]uint64, from map[string]uint64) {
	for r, n := range from {
		if *into == nil {
			*into = map[string]uint64{}
		}
		(*into)[r] += n
	}
}

func cloneOffCPU(t cpuprofile.OffCPUTotals) cpuprofile.OffCPUTotals {
	c := t
	c.Lost, c.LostNanos, c.StackLost = maps.Clone(t.Lost), maps.Clone(t.LostNanos), maps.Clone(t.StackLost)
	return c
}

// LostNanos is the blocked time lost, all reasons together.
func LostNanos(t cpuprofile.OffCPUTotals) uint64 {
	var n uint64
	for _, v := range t.LostNanos {
		n += v
	}
	return n
}

// offCPUComment says what the profile's blocked time is made of:
//
//	vigil off-cpu: recorded 1.5s in 42 intervals; below min-block 1µs: 2ms in 300 intervals (counted, no stacks); lost: counts_map_full 3ms in 2 intervals
func offCPUComment(t cpuprofile.OffCPUTotals, minBlock time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vigil off-cpu: recorded %v in %d intervals", time.Duration(t.RecordedNanos), t.Recorded)
	if t.Below > 0 || t.BelowNanos > 0 {
		fmt.Fprintf(&b, "; below min-block %v: %v in %d intervals (counted, no stacks)", minBlock, time.Duration(t.BelowNanos), t.Below)
	} else if minBlock > 0 {
		fmt.Fprintf(&b, "; min-block %v", minBlock)
	}
	if reasons := lostReasons(t); len(reasons) > 0 {
		b.WriteString("; lost:")
		for _, r := range reasons {
			fmt.Fprintf(&b, " %s %v in %d intervals", r, time.Duration(t.LostNanos[r]), t.Lost[r])
		}
	}
	if len(t.StackLost) > 0 {
		b.WriteString("; recorded with part of the stack lost:")
		for _, r := range slices.Sorted(maps.Keys(t.StackLost)) {
			fmt.Fprintf(&b, " %s=%d", r, t.StackLost[r])
		}
	}
	return b.String()
}

// IsOffCPU reports whether p is an off-CPU profile (its default sample type
// is off_cpu).
func IsOffCPU(p *profile.Profile) bool { return p.DefaultSampleType == KindOffCPU }

// weightIndex is the value folded output and Top weigh stacks by: samples
// of a CPU profile (as always), nanoseconds blocked of an off-CPU one.
func weightIndex(p *profile.Profile) int {
	if !IsOffCPU(p) {
		return 0
	}
	for i, st := range p.SampleType {
		if st.Type == KindOffCPU {
			return i
		}
	}
	return 0
}
