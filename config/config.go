package config

import "time"

// Config is the whole of vigil.yaml. The yaml tags are the key names; the
// strict decoder, Set and the tests walk the struct by those tags.
type Config struct {
	Profiler   Profiler   `yaml:"profiler"`
	Attributes Attributes `yaml:"attributes"`
	Latency    Latency    `yaml:"latency"`
	Metrics    Metrics    `yaml:"metrics"`
	Sinks      Sinks      `yaml:"sinks"`
	Web        Web        `yaml:"web"`
	Log        Log        `yaml:"log"`
}

// Profiler configures continuous CPU profiling.
type Profiler struct {
	Enabled     bool          `yaml:"enabled"`
	Frequency   int           `yaml:"frequency"` // Hz
	Interval    time.Duration `yaml:"interval"`  // one profile per process group per interval
	IncludeIdle bool          `yaml:"include_idle"`
	PIDs        []int         `yaml:"pids"` // empty: every process
	GroupBy     string        `yaml:"group_by"`
	// Unwind is how user stacks are walked: UnwindAuto or UnwindFramePointer.
	Unwind string `yaml:"unwind"`
	// UnwindTableBytes bounds the BPF memory of the unwind tables.
	UnwindTableBytes ByteSize `yaml:"unwind_table_bytes"`
	// Python names the Python functions of CPython 3.9-3.13 processes
	// (with unwind: auto).
	Python bool `yaml:"python"`
	// OffCPU adds off-CPU profiles: where threads block, and for how long.
	OffCPU OffCPU `yaml:"off_cpu"`
}

// OffCPU configures off-CPU profiles, made beside the CPU profiles of
// every process group from the scheduler's switches.
type OffCPU struct {
	Enabled bool `yaml:"enabled"`
	// MinBlock is the shortest blocked interval recorded with its stacks;
	// shorter ones are only counted (no stack in the profile; the stacks
	// are taken when a thread blocks, so this saves no cost).
	MinBlock time.Duration `yaml:"min_block"`
	// Stacks says which stacks each interval gets: both (the default),
	// user (no kernel stack: no walk of it, the larger part of the cost
	// where a thread's cache doesn't hold it) or kernel.
	Stacks string `yaml:"stacks"`
}

// Choices of profiler.off_cpu.stacks.
const (
	OffCPUStacksBoth   = "both"
	OffCPUStacksUser   = "user"
	OffCPUStacksKernel = "kernel"
)

// User stack walking modes of profiler.unwind.
const (
	UnwindAuto         = "auto"          // each binary's unwind tables, frame pointers where none
	UnwindFramePointer = "frame-pointer" // frame pointers only
)

// Process grouping modes of profiler.group_by.
const (
	GroupAuto       = "auto" // container id from the cgroup, else executable name
	GroupExecutable = "executable"
	GroupContainer  = "container"
	GroupPID        = "pid"
)

// Attributes holds the opt-in process attributes, off by default because
// command lines and environments can carry secrets.
type Attributes struct {
	CommandLine            bool `yaml:"command_line"`
	ServiceNameFromEnviron bool `yaml:"service_name_from_environ"`
}

// Latency configures the kernel latency histograms.
type Latency struct {
	Enabled        bool     `yaml:"enabled"`
	Hooks          []string `yaml:"hooks"`
	Scale          int      `yaml:"scale"`
	SkipStrategies []string `yaml:"skip_strategies"`
	ByProcess      bool     `yaml:"by_process"`
	MaxSeries      int      `yaml:"max_series"`
}

// Metrics configures how the histograms and vigil's own counters leave.
type Metrics struct {
	Interval   time.Duration `yaml:"interval"`
	OTLP       bool          `yaml:"otlp"`
	Prometheus string        `yaml:"prometheus"` // listen address; empty: off
	Console    bool          `yaml:"console"`
	// BPFStats has the kernel count the run time and runs of vigil's BPF
	// programs (vigil.bpf.run.*); it costs about 45 ns per program run and
	// needs CAP_SYS_ADMIN (or kernel.bpf_stats_enabled=1 set on the host).
	BPFStats bool `yaml:"bpf_stats"`
}

// Sinks configures where profiles go.
type Sinks struct {
	Directory Directory `yaml:"directory"`
	OTLP      OTLP      `yaml:"otlp"`
	Pyroscope Pyroscope `yaml:"pyroscope"`
	Queue     Queue     `yaml:"queue"`
}

// Directory writes rotated .pb.gz files, bounded by count and bytes.
type Directory struct {
	Path     string   `yaml:"path"` // empty: off
	MaxFiles int      `yaml:"max_files"`
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// OTLP sends profiles to an OpenTelemetry Collector.
type OTLP struct {
	Endpoint string            `yaml:"endpoint"` // empty: off
	Protocol string            `yaml:"protocol"`
	Insecure bool              `yaml:"insecure"`
	Headers  map[string]string `yaml:"headers"`
	Timeout  time.Duration     `yaml:"timeout"`
}

// OTLP transport protocols of sinks.otlp.protocol.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Pyroscope pushes profiles to a Pyroscope server.
type Pyroscope struct {
	URL         string            `yaml:"url"` // empty: off
	API         string            `yaml:"api"` // PyroscopeIngest or PyroscopePush
	TenantID    string            `yaml:"tenant_id"`
	BasicAuth   BasicAuth         `yaml:"basic_auth"`
	BearerToken string            `yaml:"bearer_token"`
	Labels      map[string]string `yaml:"labels"`
}

// Pyroscope APIs of sinks.pyroscope.api.
const (
	PyroscopeIngest = "ingest" // HTTP /ingest: every Pyroscope version (0.x, 1.x, 2.x)
	PyroscopePush   = "push"   // push.v1 Connect API: Pyroscope 1.x and later
)

// BasicAuth is an HTTP basic-auth credential; both empty means none.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Queue bounds each sink's backlog so a slow sink never blocks sampling.
type Queue struct {
	MaxBatches   int           `yaml:"max_batches"`
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	MaxAge       time.Duration `yaml:"max_age"`
}

// Web configures the local web view.
type Web struct {
	Enabled   Switch        `yaml:"enabled"`
	Listen    string        `yaml:"listen"`
	Retention time.Duration `yaml:"retention"`
	MaxBytes  ByteSize      `yaml:"max_bytes"`
}

// Log configures vigil's own log.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}
