// Package profilesink delivers the continuous agent's profiles (CPU and
// off-CPU): to a
// directory of rotated files, to an OpenTelemetry Collector as OTLP
// profiles, and to Pyroscope. A sink that is down or slow never blocks
// sampling: each sits behind a bounded queue that retries with backoff and
// drops the oldest batch first, counting every drop.
package profilesink

import (
	"context"
	"time"

	"github.com/google/pprof/profile"
)

// Kinds of profile, told apart by the pprof's default sample type (the
// profiler names them so): CPU time sampled, or time spent blocked.
const (
	KindCPU    = "cpu"
	KindOffCPU = "off_cpu"
)

// Profile is the profile of one process group over one interval: its CPU
// profile, or its off-CPU profile (Kind tells which).
type Profile struct {
	// Service is the group's service name (Pyroscope's service_name,
	// OTel's service.name): the container id, the executable name, or
	// what the configuration chose.
	Service string
	// Attrs are OpenTelemetry resource attributes of the group:
	// host.name, process.executable.name, process.pid, container.id, and,
	// when enabled, process.command_line.
	Attrs      map[string]string
	Start, End time.Time
	// Pprof is valid (CheckValid passes): samples/count and cpu/nanoseconds
	// for a CPU profile, samples/count and off_cpu/nanoseconds (period type
	// off_cpu/nanoseconds, period 1) for an off-CPU profile.
	Pprof *profile.Profile
}

// Kind is KindOffCPU for an off-CPU profile and KindCPU otherwise (a
// profile without a default sample type is a CPU profile: the first kind
// vigil made).
func (p *Profile) Kind() string {
	if p.Pprof != nil && p.Pprof.DefaultSampleType == KindOffCPU {
		return KindOffCPU
	}
	return KindCPU
}

// Sink delivers batches of profiles. Send may block and fail; the queue in
// front of it retries.
type Sink interface {
	Name() string
	Send(ctx context.Context, batch []Profile) error
	Close() error
}

// Counters are what a queued sink reports about itself, cumulative.
type Counters struct {
	Sent       uint64 // profiles delivered
	Failures   uint64 // Send calls that failed (each retry counts)
	Dropped    uint64 // profiles dropped because the queue was full or they were too old
	QueueDepth int    // batches waiting now

	// Dropped split by reason (they add up to Dropped), for a reason-labelled
	// counter.
	DroppedFull     uint64 // the queue was full: the oldest batch made room
	DroppedExpired  uint64 // older than the queue's max age
	DroppedRejected uint64 // the backend refused the data itself; retrying cannot help
	DroppedShutdown uint64 // still queued when Close's deadline passed, or offered after Close
	LastError       string // the most recent Send failure, "" before the first
}

// Names of the sinks' own metrics, by sink (attribute AttrSink).
const (
	MetricExports        = "vigil.profile.exports"         // {profile}: delivered
	MetricExportFailures = "vigil.profile.export.failures" // {attempt}: failed deliveries, each retry counted
	MetricDrops          = "vigil.profile.drops"           // {profile}: dropped (queue full or too old)
	AttrSink             = "vigil.sink"
)
