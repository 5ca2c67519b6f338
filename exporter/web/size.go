package web

import (
	"unsafe"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// Approximate heap costs of a parsed profile's parts. The serialized size
// understates what a parsed profile holds (pointers, slice and map headers,
// allocator rounding) by a factor of three or more, and the byte bound is
// about memory, so the estimate walks the structure instead. It only reads
// the profile: other sinks may hold the same one.
const (
	sampleCost   = int64(unsafe.Sizeof(profile.Sample{})) + 16
	locationCost = int64(unsafe.Sizeof(profile.Location{})) + 16
	lineCost     = int64(unsafe.Sizeof(profile.Line{}))
	functionCost = int64(unsafe.Sizeof(profile.Function{})) + 16
	mappingCost  = int64(unsafe.Sizeof(profile.Mapping{})) + 16
	mapCost      = 224 // a small map: header plus one group of slots, as measured
	mapEntryCost = 48
	ptrCost      = 8
)

// estimateSize returns the approximate bytes of heap p holds.
func estimateSize(p *profile.Profile) int64 {
	n := int64(unsafe.Sizeof(*p))
	for _, s := range p.Sample {
		n += sampleCost + ptrCost*int64(len(s.Location)) + 8*int64(len(s.Value))
		n += labelsSize(s.Label, s.NumLabel)
	}
	for _, l := range p.Location {
		n += locationCost + lineCost*int64(len(l.Line)) + ptrCost
	}
	for _, f := range p.Function {
		n += functionCost + int64(len(f.Name)+len(f.SystemName)+len(f.Filename)) + ptrCost
	}
	for _, m := range p.Mapping {
		n += mappingCost + int64(len(m.File)+len(m.BuildID)) + ptrCost
	}
	for _, c := range p.Comments {
		n += 16 + int64(len(c))
	}
	return n
}

func labelsSize(str map[string][]string, num map[string][]int64) int64 {
	var n int64
	if len(str) > 0 {
		n += mapCost
	}
	for k, vs := range str {
		n += mapEntryCost + int64(len(k))
		for _, v := range vs {
			n += 16 + int64(len(v))
		}
	}
	if len(num) > 0 {
		n += 2 * mapCost // NumLabel and its NumUnit twin
	}
	for k, vs := range num {
		n += 2*mapEntryCost + int64(len(k)) + 8*int64(len(vs))
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
