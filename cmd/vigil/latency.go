package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/exporter"
)

// latencyConfig is a validated `vigil latency` invocation.
type latencyConfig struct {
	duration   time.Duration // 0: until interrupted
	interval   time.Duration
	hooks      []latencyHook
	output     string
	cumulative bool
	bpfStats   bool
	hookOpts   hookOptions
	export     exporter.Config
}

// runLatency attaches the selected hooks, prints their histograms every
// interval and, when the OTEL_* variables ask for it, exports them.
func runLatency(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseLatency(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	if err := checkPrivileges(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.Default().With("component", "latency")
	if cfg.bpfStats {
		stats, err := attach.EnableRunStats()
		if err != nil {
			return fmt.Errorf("--bpf-stats: %w", err)
		}
		defer stats.Close()
	}
	progs, err := openHooks(cfg.hooks, cfg.hookOpts, log)
	if err != nil {
		return err
	}
	prov, err := startExport(ctx, cfg.export, progs)
	if err != nil {
		return errors.Join(err, closeAll(progs))
	}
	runErr := printLoop(ctx, cfg, progs, stdout, log)
	return errors.Join(runErr, stopExport(prov, cfg.export.Timeout), closeAll(progs))
}

func parseLatency(args []string, stderr io.Writer, getenv func(string) string) (latencyConfig, error) {
	fs := newFlagSet("latency", stderr)
	duration := fs.Duration("duration", 10*time.Second, "how long to run; 0 runs until interrupted")
	interval := fs.Duration("interval", time.Second, "how often to print")
	hooks := fs.String("hooks", strings.Join(hookNames(), ","), "comma-separated hooks to attach: "+strings.Join(hookNames(), ", "))
	output := fs.String("output", "text", "text (BCC-style histograms) or json (one object per interval)")
	cumulative := fs.Bool("cumulative", false, "print totals since start instead of each interval's values")
	scale := fs.Int("scale", hist.DefaultScale, fmt.Sprintf("exponential histogram scale, %d to %d (2^scale buckets per power of two)", hist.MinScale, hist.MaxScale))
	pid := fs.Int("pid", 0, "measure only this process's reads (read hook)")
	byProcess := fs.Bool("by-process", false, "split read and run-queue histograms by process name (attribute process.executable.name)")
	maxSeries := fs.Int("max-series", 0, "with --by-process, the most process names kept; later ones share one series marked otel.metric.overflow=true (0: the programs' default)")
	skip := fs.String("skip", "", "comma-separated attach strategies not to try: "+strings.Join(strategyNames, ", "))
	prom := fs.String("prometheus", "", "serve a Prometheus scrape endpoint on this address, e.g. 127.0.0.1:9464 (a bare :port binds loopback)")
	bpfStats := fs.Bool("bpf-stats", false, "have the kernel count run time and runs of vigil's BPF programs (exported as vigil.bpf.run.*; costs about 45 ns per program run)")
	console := fs.Bool("console", false, "also print every export to stdout with the OpenTelemetry console exporter (debugging)")
	fs.Usage = func() {
		fmt.Fprint(stderr, latencyUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return latencyConfig{}, err
	}
	cfg := latencyConfig{duration: *duration, interval: *interval, output: *output, cumulative: *cumulative, bpfStats: *bpfStats,
		hookOpts: hookOptions{scale: int32(*scale), pid: uint32(*pid), byProcess: *byProcess, maxSeries: *maxSeries}}
	if err := validateLatency(cfg, *scale, *pid); err != nil {
		return cfg, err
	}
	var err error
	if cfg.hooks, err = selectHooks(*hooks); err != nil {
		return cfg, err
	}
	if cfg.hookOpts.skip, err = parseSkip(*skip); err != nil {
		return cfg, err
	}
	if cfg.export, err = exportConfig(getenv, *prom, *console); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func validateLatency(cfg latencyConfig, scale, pid int) error {
	switch {
	case cfg.interval <= 0:
		return usagef("--interval must be positive, got %v", cfg.interval)
	case cfg.duration < 0:
		return usagef("--duration must not be negative, got %v (0 runs until interrupted)", cfg.duration)
	case cfg.output != "text" && cfg.output != "json":
		return usagef("--output must be text or json, got %q", cfg.output)
	case scale < hist.MinScale || scale > hist.MaxScale:
		return usagef("--scale must be between %d and %d, got %d", hist.MinScale, hist.MaxScale, scale)
	case pid < 0:
		return usagef("--pid must be a process id, got %d", pid)
	case cfg.hookOpts.maxSeries < 0 || cfg.hookOpts.maxSeries > histmap.MaxSeriesLimit:
		return usagef("--max-series must be between 0 and %d, got %d", histmap.MaxSeriesLimit, cfg.hookOpts.maxSeries)
	}
	return nil
}

const latencyUsage = `usage: vigil latency [flags]

Prints kernel latency histograms every interval. Rows are powers of two of a
second shown in microseconds, exact merges of the kernel's exponential buckets.

Export uses the standard OpenTelemetry variables:
  OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_METRICS_ENDPOINT  turn OTLP on
  OTEL_EXPORTER_OTLP_PROTOCOL        http/protobuf (default) or grpc
  OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY
  OTEL_METRIC_EXPORT_INTERVAL        milliseconds between exports (default 60000; one more at exit)
  OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=explicit_bucket_histogram
                                     explicit buckets at powers of two of a second instead
                                     of exponential histograms (also for --prometheus)
  OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME, OTEL_METRICS_EXPORTER (otlp,prometheus,console,none)

flags:
`

// strategyNames are the attach strategies the latency hooks know.
var strategyNames = []string{"fentry", "kprobe", "tp_btf", "tracepoint"}

// parseSkip parses --skip, which forces fallbacks (to compare strategies, or
// to avoid one that misbehaves on some kernel).
func parseSkip(list string) (map[string]bool, error) {
	skip := map[string]bool{}
	if strings.TrimSpace(list) == "" {
		return skip, nil
	}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(strategyNames, n) {
			return nil, usagef("--skip: unknown strategy %q (known: %s)", n, strings.Join(strategyNames, ", "))
		}
		skip[n] = true
	}
	return skip, nil
}

// exportConfig reads the standard OTEL_* variables; flags add exporters.
func exportConfig(getenv func(string) string, prom string, console bool) (exporter.Config, error) {
	cfg, err := exporter.ConfigFromEnv(getenv)
	if err != nil {
		return cfg, usageError{fmt.Errorf("bad OpenTelemetry setting: %w", err)}
	}
	if prom != "" {
		if cfg.Prometheus, err = exporter.LoopbackAddr(prom); err != nil {
			return cfg, usagef("--prometheus: %v", err)
		}
	}
	cfg.Console = cfg.Console || console
	return cfg, nil
}

// startExport starts the exporters the configuration asks for; nil when none.
func startExport(ctx context.Context, cfg exporter.Config, progs []latencyProgram) (*exporter.Provider, error) {
	if cfg.OTLP == nil && cfg.Prometheus == "" && !cfg.Console {
		return nil, nil
	}
	// The SDK reports failed exports here; one line per failed export
	// (at most one per interval), never per value.
	log := slog.Default().With("component", "exporter")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("export failed", "error", err) }))
	sources := make([]exporter.Source, len(progs))
	for i, p := range progs {
		sources[i] = p
	}
	prov, err := exporter.New(ctx, cfg, sources, exporter.Options{Version: version})
	if err != nil {
		return nil, fmt.Errorf("starting export: %w", err)
	}
	if cfg.OTLP != nil {
		log.Info("exporting over OTLP", "protocol", cfg.OTLP.Protocol, "endpoint", cfg.OTLP.Endpoint.Redacted(),
			"interval", cfg.Interval, "histograms", cfg.Histogram.String())
	}
	if a := prov.PrometheusAddr(); a != "" {
		log.Info("serving Prometheus metrics", "url", "http://"+a+"/metrics")
	}
	return prov, nil
}

// stopExport makes the final export, bounded by the export timeout.
func stopExport(prov *exporter.Provider, timeout time.Duration) error {
	if prov == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return prov.Shutdown(ctx)
}

// printLoop prints every interval until the duration is over or the
// context is cancelled (SIGINT), then prints the partial last interval.
func printLoop(ctx context.Context, cfg latencyConfig, progs []latencyProgram, w io.Writer, log *slog.Logger) error {
	start := time.Now()
	last := start
	snap := newSnapshot()
	for {
		wait := cfg.interval
		if cfg.duration > 0 {
			wait = min(wait, cfg.duration-time.Since(start))
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		now := time.Now()
		if err := printInterval(w, cfg, now, now.Sub(last), readAll(progs, log), snap); err != nil {
			return err
		}
		last = now
		if ctx.Err() != nil || (cfg.duration > 0 && now.Sub(start) >= cfg.duration) {
			return nil
		}
	}
}

func printInterval(w io.Writer, cfg latencyConfig, now time.Time, elapsed time.Duration, readings []hist.Reading, snap *snapshot) error {
	if !cfg.cumulative {
		readings = snap.since(readings)
	}
	if cfg.output == "json" {
		return writeJSON(w, now, elapsed, readings)
	}
	return writeText(w, now, readings)
}

// readAll reads every program; one that fails is left out of this interval.
func readAll(progs []latencyProgram, log *slog.Logger) []hist.Reading {
	var out []hist.Reading
	for _, p := range progs {
		rs, err := p.Read()
		if err != nil {
			log.Warn("reading histograms failed", "error", err)
			continue
		}
		out = append(out, rs...)
	}
	return out
}
