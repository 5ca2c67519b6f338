// Package profiler turns sampled stacks into pprof profiles: it symbolizes
// each drained batch while the processes still exist and accumulates one
// profile.Profile with a mapping per mapped file, locations keyed by
// (mapping, address), and pid/tid/comm labels on every sample.
package profiler

import (
	"fmt"
	"sort"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// Symbolizer names addresses; *symbolizer.Symbolizer satisfies it.
type Symbolizer interface {
	User(pid int, addrs []uint64) []symbolizer.Location
	Kernel(addrs []uint64) []symbolizer.Location
}

// Kinds of profile, each named by its pprof default sample type: a CPU
// profile weighs stacks by CPU time sampled, an off-CPU profile by the time
// threads spent blocked there. Sinks tell them apart by the same name.
const (
	KindCPU    = "cpu"
	KindOffCPU = "off_cpu"
)

// Builder accumulates samples into one profile.
type Builder struct {
	sym    Symbolizer
	kind   string // KindCPU or KindOffCPU
	period int64  // nanoseconds of CPU time one sample stands for (1 off-CPU)
	start  time.Time
	// minBlock is the off-CPU threshold, named in the profile's comment.
	minBlock time.Duration

	prof     *profile.Profile
	mappings map[mappingKey]*profile.Mapping
	funcs    map[funcKey]*profile.Function
	locs     map[locKey]*profile.Location
	samples  map[sampleKey]*profile.Sample
	// userLocs remembers, per process, what an address resolved to, so an
	// address seen again in a later batch is not symbolized twice.
	// Keyed by pid first so an exec forgets one process in O(1).
	userLocs map[uint32]map[uint64]*profile.Location
	// unmapped are addresses that fell outside every mapping known when
	// they were symbolized (a library opened with dlopen since): they are
	// asked again in the next batch instead of staying unnamed.
	unmapped   map[uint32][]uint64
	kernelLocs map[uint64]*profile.Location
	unnamed    map[*profile.Mapping]bool // mappings with at least one unnamed location
	py         *PythonNamer              // nil: Python frames are not named
	pyLocs     map[pyLocKey]*profile.Location

	stats Stats
}

// Stats summarises what went into the profile.
type Stats struct {
	Samples      uint64            // samples recorded, lost ones excluded
	Lost         map[string]uint64 // by reason
	Processes    int
	Frames       uint64 // distinct locations
	UnnamedFrame uint64 // distinct locations that got no function name
	// PythonUnreadable counts distinct Python frames named
	// "[python frame unreadable]"; PythonLost samples whose Python stack
	// could not be stored.
	PythonUnreadable, PythonLost uint64
	// OffCPU accounts for blocked time in an off-CPU profile: what was
	// recorded with its stacks, below the min-block threshold (counted
	// only) and lost, by reason. Seen and the below and lost parts come
	// from whole batches (Add), so a profile of one group out of many
	// (AddSamples) has only its recorded part.
	OffCPU cpuprofile.OffCPUTotals
}

type mappingKey struct {
	path                 string
	start, limit, offset uint64
	kernel               bool
}

type funcKey struct {
	name, file string
}

type locKey struct {
	mapping *profile.Mapping
	addr    uint64
	name    string // only for synthetic and unmapped frames
}

type sampleKey struct {
	stack string // location IDs joined
	pid   uint32
	tid   uint32
	comm  string
}

// NewBuilder starts an empty CPU profile sampled at hz.
func NewBuilder(sym Symbolizer, hz int, start time.Time) *Builder {
	period := int64(time.Second) / int64(hz)
	b := newBuilder(sym, KindCPU, period, start)
	b.prof = &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "samples", Unit: "count"},
			{Type: "cpu", Unit: "nanoseconds"},
		},
		PeriodType:        &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:            period,
		TimeNanos:         start.UnixNano(),
		DefaultSampleType: KindCPU,
	}
	return b
}

// NewOffCPUBuilder starts an empty off-CPU profile: each stack weighs the
// time its threads were blocked there (off_cpu/nanoseconds, the name
// Pyroscope and the OpenTelemetry profiler use) and how many blocked
// intervals that was (samples/count). The time is measured, not sampled,
// so the period is 1 ns. minBlock is the sampler's threshold, below which
// intervals were only counted; the profile's comment names it.
func NewOffCPUBuilder(sym Symbolizer, minBlock time.Duration, start time.Time) *Builder {
	b := newBuilder(sym, KindOffCPU, 1, start)
	b.minBlock = minBlock
	b.prof = &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "samples", Unit: "count"},
			{Type: "off_cpu", Unit: "nanoseconds"},
		},
		PeriodType:        &profile.ValueType{Type: "off_cpu", Unit: "nanoseconds"},
		Period:            1,
		TimeNanos:         start.UnixNano(),
		DefaultSampleType: KindOffCPU,
	}
	return b
}

func newBuilder(sym Symbolizer, kind string, period int64, start time.Time) *Builder {
	return &Builder{
		sym: sym, kind: kind, period: period, start: start,
		mappings: map[mappingKey]*profile.Mapping{}, funcs: map[funcKey]*profile.Function{},
		locs: map[locKey]*profile.Location{}, samples: map[sampleKey]*profile.Sample{},
		userLocs: map[uint32]map[uint64]*profile.Location{}, kernelLocs: map[uint64]*profile.Location{},
		unmapped: map[uint32][]uint64{},
		unnamed:  map[*profile.Mapping]bool{},
		pyLocs:   map[pyLocKey]*profile.Location{},
		stats:    Stats{Lost: map[string]uint64{}},
	}
}

// Kind is KindCPU or KindOffCPU.
func (b *Builder) Kind() string { return b.kind }

// SetPython has the builder name the Python frames of samples with n.
func (b *Builder) SetPython(n *PythonNamer) { b.py = n }

// ForgetProcess drops the cached locations of pid, for when it execs and
// the same addresses start meaning something else.
func (b *Builder) ForgetProcess(pid uint32) {
	delete(b.userLocs, pid)
	delete(b.unmapped, pid)
}

// Add symbolizes a drained batch and adds it to the profile, lost samples
// included: the CPU samples to a CPU profile, the off-CPU ones to an
// off-CPU profile.
func (b *Builder) Add(batch *cpuprofile.Batch) {
	if b.kind == KindOffCPU {
		b.addOffCPU(batch)
		return
	}
	b.AddSamples(batch.Samples)
	for reason, n := range batch.Lost {
		b.stats.Lost[reason] += n
		if cpuprofile.WholeSampleLost(reason) {
			b.addLost(reason, n)
		}
	}
}

// AddSamples symbolizes samples and adds them to the profile.
func (b *Builder) AddSamples(samples []cpuprofile.Sample) {
	b.resolveUser(samples)
	b.resolveKernel(samples)
	for i := range samples {
		b.addSample(&samples[i])
	}
}

// Stats returns what the profile holds so far.
func (b *Builder) Stats() Stats {
	s := b.stats
	s.Lost = make(map[string]uint64, len(b.stats.Lost))
	for k, v := range b.stats.Lost {
		s.Lost[k] = v
	}
	s.OffCPU = cloneOffCPU(b.stats.OffCPU)
	pids := map[uint32]bool{}
	for k := range b.samples {
		if k.pid != 0 {
			pids[k.pid] = true
		}
	}
	s.Processes = len(pids)
	s.Frames = uint64(len(b.locs))
	return s
}

// Profile finishes the profile at end and returns it. The builder must not
// be used afterwards.
func (b *Builder) Profile(end time.Time) (*profile.Profile, error) {
	p := b.prof
	p.DurationNanos = end.Sub(b.start).Nanoseconds()
	b.setMappingFlags()
	keys := make([]sampleKey, 0, len(b.samples))
	for k := range b.samples {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lessSampleKey(keys[i], keys[j]) })
	p.Sample = make([]*profile.Sample, 0, len(keys))
	for _, k := range keys {
		p.Sample = append(p.Sample, b.samples[k])
	}
	if b.kind == KindOffCPU {
		p.Comments = append(p.Comments, offCPUComment(b.stats.OffCPU, b.minBlock))
	} else if len(b.stats.Lost) > 0 {
		p.Comments = append(p.Comments, lostComment(b.stats.Lost))
	}
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("built an invalid profile: %w", err)
	}
	return p, nil
}

func lessSampleKey(a, b sampleKey) bool {
	if a.pid != b.pid {
		return a.pid < b.pid
	}
	if a.tid != b.tid {
		return a.tid < b.tid
	}
	return a.stack < b.stack
}

func lostComment(lost map[string]uint64) string {
	reasons := make([]string, 0, len(lost))
	for r := range lost {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	s := "vigil lost:"
	for _, r := range reasons {
		s += fmt.Sprintf(" %s=%d", r, lost[r])
	}
	return s
}

// setMappingFlags sets each mapping's Has* flags, which promise a property
// of all of its locations, in one pass over the locations.
func (b *Builder) setMappingFlags() {
	type flags struct{ any, files, lines bool }
	seen := make(map[*profile.Mapping]*flags, len(b.prof.Mapping))
	for _, m := range b.prof.Mapping {
		seen[m] = &flags{files: true, lines: true}
	}
	for _, l := range b.prof.Location {
		f := seen[l.Mapping]
		if f == nil {
			continue // synthetic and unmapped frames
		}
		f.any = true
		for _, ln := range l.Line {
			f.files = f.files && ln.Function.Filename != ""
			f.lines = f.lines && ln.Line != 0
		}
	}
	for _, m := range b.prof.Mapping {
		f := seen[m]
		m.HasFunctions = f.any && !b.unnamed[m]
		m.HasFilenames = m.HasFunctions && f.files
		m.HasLineNumbers = m.HasFunctions && f.lines
		m.HasInlineFrames = m.HasLineNumbers
	}
}
