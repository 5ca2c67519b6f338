package profilesink

import (
	"fmt"
	"strconv"
	"time"
)

// pyroscopeType is how Pyroscope names and measures one kind of vigil
// profile. Each kind is told apart by its pprof default sample type, so a
// new kind is one more entry in pyroscopeTypes and no change to either
// API's code.
type pyroscopeType struct {
	// sampleType is the pprof default sample type that marks the kind.
	sampleType string
	// pushName is __name__ on the push API: the profile type's name in
	// Pyroscope 1.x (process_cpu is what its own eBPF and Go agents send).
	pushName string
	// ingestSuffix is added to the application name on /ingest, so that
	// kinds sharing pprof sample type names never land in one series. The
	// server adds its own suffix after it from the sample type (Pyroscope
	// 0.x stores a CPU profile's samples/count as <name>.cpu).
	ingestSuffix string
	// spyName is /ingest's spyName: ebpfspy is the name Pyroscope gives
	// profiles of whole hosts sampled from eBPF, which vigil's are.
	spyName string
	// sampleTypeConfig, when set, is sent with the pprof on /ingest (as a
	// multipart form) to tell the server which sample type to store and
	// how: Pyroscope 0.x knows only the sample types of Go's profiles and
	// would otherwise store an off-CPU profile's samples/count as CPU
	// samples and drop its off_cpu/nanoseconds.
	sampleTypeConfig string
}

// pyroscopeTypes are the kinds of profile vigil sends. CPU profiles carry
// samples/count and cpu/nanoseconds (the profiler's default sample type is
// cpu) at a fixed period, from which Pyroscope derives the sample rate.
//
// Off-CPU profiles carry samples/count (blocked intervals) and
// off_cpu/nanoseconds (time blocked, period 1 ns): on the push API their
// profile type is off_cpu:off_cpu:nanoseconds:off_cpu:nanoseconds; on
// /ingest the suffix keeps them out of the CPU series of the same
// application (app.off_cpu, which the server stores per sample type).
var pyroscopeTypes = []pyroscopeType{
	{sampleType: KindCPU, pushName: "process_cpu", ingestSuffix: "", spyName: "ebpfspy"},
	{sampleType: KindOffCPU, pushName: "off_cpu", ingestSuffix: ".off_cpu", spyName: "ebpfspy",
		// Only the blocked time, stored as <app>.off_cpu.off_cpu. "sampled"
		// has the server take the rate from the period (1 ns, so 1e9 Hz),
		// which makes its "samples" nanoseconds and shows them as time.
		sampleTypeConfig: `{"off_cpu":{"units":"samples","display-name":"off_cpu","sampled":true}}`},
}

// pyroscopeTypeOf finds the kind of p (a profile without a default sample
// type is a CPU profile: the first sample types vigil made).
func pyroscopeTypeOf(p *Profile) (pyroscopeType, error) {
	st := "cpu"
	if p.Pprof != nil && p.Pprof.DefaultSampleType != "" {
		st = p.Pprof.DefaultSampleType
	}
	for _, t := range pyroscopeTypes {
		if t.sampleType == st {
			return t, nil
		}
	}
	return pyroscopeType{}, fmt.Errorf("profile of %q: no Pyroscope profile type for pprof sample type %q", p.Service, st)
}

// sampleRate is the sampling frequency in Hz of a profile whose period is in
// nanoseconds of CPU time, as /ingest's sampleRate wants it; "" when the
// profile says nothing usable (the server then reads it from the pprof).
func sampleRate(p *Profile) string {
	pp := p.Pprof
	if pp == nil || pp.Period <= 0 || pp.PeriodType == nil || pp.PeriodType.Unit != "nanoseconds" {
		return ""
	}
	hz := (int64(time.Second) + pp.Period/2) / pp.Period
	if hz < 1 {
		return ""
	}
	return strconv.FormatInt(hz, 10)
}
