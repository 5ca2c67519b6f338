package web

import (
	"unsafe"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// Approximate heap costs of an entry's parts other than the encoded
// profile, which is counted by its length.
const (
	mapCost      = 224 // a small map: header plus one group of slots, as measured
	mapEntryCost = 48
)

// entrySize returns the approximate bytes of heap e holds besides its
// encoded profile: the entry itself, its service name and attributes.
func entrySize(e *entry) int64 {
	n := int64(unsafe.Sizeof(*e)) + int64(len(e.p.Service))
	if len(e.p.Attrs) > 0 {
		n += mapCost
	}
	for k, v := range e.p.Attrs {
		n += mapEntryCost + int64(len(k)+len(v))
	}
	return n
}

// countIndex is the value index the views weigh stacks by: the time
// blocked (off_cpu/nanoseconds) in an off-CPU profile; in a CPU profile
// samples/count when it has it, else its first value.
func countIndex(p *profile.Profile) int {
	if p.DefaultSampleType == profilesink.KindOffCPU {
		for i, st := range p.SampleType {
			if st.Type == profilesink.KindOffCPU {
				return i
			}
		}
	}
	for i, st := range p.SampleType {
		if st.Type == "samples" && st.Unit == "count" {
			return i
		}
	}
	return 0
}

// countSamples sums the weighed value over every sample.
func countSamples(p *profile.Profile) int64 {
	i := countIndex(p)
	var n int64
	for _, s := range p.Sample {
		if i < len(s.Value) {
			n += s.Value[i]
		}
	}
	return n
}
