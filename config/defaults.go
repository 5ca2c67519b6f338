package config

import (
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hooks"
)

// Default returns the default configuration: the one place defaults are
// written. deploy/vigil.yaml repeats them for readers, and a test keeps the
// two equal.
func Default() Config {
	return Config{
		Profiler: Profiler{
			Enabled: true,
			// 19 Hz is prime, so sampling doesn't beat against periodic work
			// (timers at 10, 50, 100 Hz would otherwise be over- or
			// under-sampled), and cheap enough to leave on.
			Frequency: 19,
			Interval:  15 * time.Second,
			GroupBy:   GroupAuto,
			PIDs:      []int{},
			Unwind:    UnwindAuto,
			// A typical host's libraries take a few MiB of tables; libLLVM
			// alone about 4.
			UnwindTableBytes: 16 * MiB,
			Python:           true,
			// Off until the cost per context switch is measured on the
			// kernels vigil supports. min_block matches the sampler's
			// own default (a test keeps them equal).
			OffCPU: OffCPU{Enabled: false, MinBlock: time.Microsecond, Stacks: OffCPUStacksBoth},
		},
		Latency: Latency{
			Enabled:        true,
			Hooks:          hooks.LatencyNames(),
			Scale:          3,
			SkipStrategies: []string{},
			MaxSeries:      64,
		},
		Metrics: Metrics{
			Interval: 15 * time.Second,
			OTLP:     true,
		},
		Sinks: Sinks{
			Directory: Directory{MaxFiles: 100, MaxBytes: 256 * MiB},
			OTLP: OTLP{
				Protocol: ProtocolGRPC,
				Headers:  map[string]string{},
				Timeout:  10 * time.Second,
			},
			Pyroscope: Pyroscope{
				// /ingest, because every Pyroscope takes it: 0.x has no
				// other API, and 1.x and 2.x still serve it for their
				// older clients. push is for 1.x and later only.
				API:    PyroscopeIngest,
				Labels: map[string]string{},
			},
			Queue: Queue{
				MaxBatches:   16,
				RetryInitial: time.Second,
				RetryMax:     30 * time.Second,
				MaxAge:       5 * time.Minute,
			},
		},
		Web: Web{
			Enabled: SwitchAuto,
			// Loopback: profiles name every process on the host, so the view
			// is exposed further only when the operator says so.
			Listen:    "127.0.0.1:7070",
			Retention: time.Hour,
			MaxBytes:  64 * MiB,
		},
		Log: Log{Level: "info", Format: "text"},
	}
}
