// Package agent is `vigil run` without its flags: it starts the CPU
// profiler and continuous profiles, the latency hooks, the metric exporters,
// the profile sinks and the web view from a configuration, feeds them, and
// flushes and closes them on shutdown. The command parses flags and the
// configuration file, installs the logger and waits for a signal.
//
// It lives under cmd/vigil because it wires together packages that must not
// import each other (profiler and exporter) and has no user besides the
// binary; being a package of its own, it is tested without building it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/bpf/ksyms"
	"github.com/vigil-ebpf/vigil/config"
	"github.com/vigil-ebpf/vigil/exporter"
	"github.com/vigil-ebpf/vigil/exporter/profilesink"
	"github.com/vigil-ebpf/vigil/profiler"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// Agent is a running `vigil run`: the sampler and continuous profiler, the
// latency hooks, the metric exporters, the profile sinks and the web view.
type Agent struct {
	cfg     config.Config
	opts    Options
	log     *slog.Logger // the agent's own lines: component=agent
	sinkLog *slog.Logger // handed to the sinks, which add their own attributes
	start   time.Time

	sampler     *cpuprofile.Profiler
	symbols     *symbolizer.Symbolizer
	kernelNames *ksyms.Lazy // names kernel frames for the symbolizer
	cont        *profiler.Continuous
	contDone    chan error

	hooks    []Hook
	export   exporter.Config // the metric exporters, parsed once from OTEL_* and the file
	provider *exporter.Provider
	sinks    profilesink.Fanout
	local    *localView // nil unless the web view runs
	stats    io.Closer  // holds the kernel's BPF run statistics on, when asked
	cancel   context.CancelFunc
}

// Hook is an attached latency hook as the agent reads it.
type Hook interface {
	exporter.Source
	exporter.StatsSource
	Close() error
}

// Options are what the agent takes from the command rather than the
// configuration.
type Options struct {
	Version string    // service.version of the exported metrics
	Stdout  io.Writer // where the console exporter writes
	// OpenHooks attaches the latency hooks latency.hooks names, logging
	// through log; a hook that can't attach is left out with a warning.
	// The command holds the adapters, which its latency and check commands
	// share. Nil opens none.
	OpenHooks func(l config.Latency, log *slog.Logger) []Hook
	// Getenv reads the OTEL_* environment; nil means os.Getenv.
	Getenv func(string) string
}

// ConfigError marks a start refused because of the configuration or the
// OTEL_* environment, before anything was opened: the command exits with
// its usage code.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

// ShutdownBudget is how long a stop may take: a final flush of every sink
// and export, then detaching. SIGTERM from systemd or Kubernetes waits
// longer than this before killing.
const ShutdownBudget = 4 * time.Second

// Memory: the symbolizer's byte budget in the agent, and the soft limit
// the Go runtime is asked to keep the heap under (unless GOMEMLIMIT is set),
// so garbage is collected before the process grows instead of after.
const (
	agentSymbolBytes = 32 << 20
	agentMemoryLimit = 128 << 20
)

// Start opens everything the configuration asks for. A latency hook that
// can't attach is disabled with a warning; a profiler that can't start, a
// sink or a listener that can't be set up, stops the start. The agent runs
// until ctx ends or Shutdown.
func Start(ctx context.Context, cfg config.Config, opts Options) (_ *Agent, err error) {
	a := newAgent(cfg, opts)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(agentMemoryLimit)
	}
	ctx, a.cancel = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	if a.export, err = exportConfig(cfg.Metrics, a.opts.Getenv); err != nil {
		return nil, err
	}
	if err := a.openSinks(); err != nil {
		return nil, err
	}
	if cfg.Profiler.Enabled {
		if err := a.openProfiler(); err != nil {
			return nil, err
		}
	}
	if cfg.Metrics.BPFStats {
		if a.stats, err = attach.EnableRunStats(); err != nil {
			return nil, fmt.Errorf("metrics.bpf_stats: %w", err)
		}
	}
	if cfg.Latency.Enabled && a.opts.OpenHooks != nil {
		a.hooks = a.opts.OpenHooks(cfg.Latency, a.log)
	}
	if err := a.openWeb(); err != nil {
		return nil, err
	}
	if err := a.startExport(ctx); err != nil {
		return nil, err
	}
	a.run(ctx)
	return a, nil
}

// newAgent is an agent with nothing opened yet, logging through the
// logger installed now.
func newAgent(cfg config.Config, opts Options) *Agent {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	base := slog.Default()
	return &Agent{cfg: cfg, opts: opts, log: base.With("component", "agent"), sinkLog: base, start: time.Now(), cancel: func() {}}
}

func (a *Agent) openProfiler() error {
	pids := make([]uint32, len(a.cfg.Profiler.PIDs))
	for i, p := range a.cfg.Profiler.PIDs {
		pids[i] = uint32(p)
	}
	drain := time.Second
	off := a.cfg.Profiler.OffCPU
	opts := cpuprofile.Options{
		Frequency: a.cfg.Profiler.Frequency, PIDs: pids, IncludeIdle: a.cfg.Profiler.IncludeIdle, DrainInterval: drain,
		Unwind: a.cfg.Profiler.Unwind, UnwindTableBytes: int64(a.cfg.Profiler.UnwindTableBytes), NoPython: !a.cfg.Profiler.Python,
		OffCPU: off.Enabled, MinBlock: off.MinBlock, OffCPUStacks: off.Stacks,
	}
	s, err := cpuprofile.Open(opts)
	if offErr := err; err != nil && off.Enabled {
		// The sampler refuses to open when the off-CPU hook can't attach;
		// a missing hook disables only its feature, so try without it.
		opts.OffCPU = false
		if s, err = cpuprofile.Open(opts); err == nil {
			a.log.Warn("off-CPU profiles disabled: the scheduler switch hook did not attach", "err", offErr)
		}
	}
	if err != nil {
		return ExplainProfilerError(err)
	}
	a.sampler = s
	// Half the symbolizer's default budget: the agent shares its memory
	// with the web view's retained profiles and runs for months.
	// Kernel frames are named in BPF when the kernel can, else from kallsyms.
	a.kernelNames = ksyms.NewLazy(ksyms.Options{})
	a.symbols = symbolizer.New(symbolizer.Options{MaxBytes: agentSymbolBytes, KernelNamer: a.kernelNames.Name})
	host, _ := os.Hostname()
	a.cont = profiler.NewContinuous(s, a.symbols, profiler.ContinuousOptions{
		Frequency: a.cfg.Profiler.Frequency, Interval: a.cfg.Profiler.Interval, DrainInterval: drain,
		GroupBy: a.cfg.Profiler.GroupBy, HostName: host, MinBlock: off.MinBlock,
		Proc: profiler.ProcReader{CommandLine: a.cfg.Attributes.CommandLine, Environ: a.cfg.Attributes.ServiceNameFromEnviron},
	})
	if r := s.UnwindReport(); r.Chosen != cpuprofile.StrategyTables && a.cfg.Profiler.Unwind == config.UnwindAuto {
		a.log.Warn("user stacks walked with frame pointers only", "reason", r.Reasons())
	}
	a.log.Info("profiling", "strategy", s.Report().Chosen, "unwind", s.UnwindReport().Chosen, "frequency_hz", a.cfg.Profiler.Frequency,
		"interval", a.cfg.Profiler.Interval, "cpus", s.CPUs())
	if opts.OffCPU {
		a.log.Info("off-CPU profiles", "strategy", s.OffCPUReport().Chosen, "min_block", off.MinBlock, "stacks", off.Stacks)
	}
	return nil
}

// run starts the continuous profiler; its last flush happens when ctx ends.
func (a *Agent) run(ctx context.Context) {
	if a.cont == nil {
		return
	}
	a.contDone = make(chan error, 1)
	go func() { a.contDone <- a.cont.Run(ctx, a.emit) }()
}

// emit hands one interval's profiles to every sink without blocking.
func (a *Agent) emit(groups []profiler.Group) {
	if len(groups) == 0 {
		return
	}
	batch := make([]profilesink.Profile, len(groups))
	for i, g := range groups {
		batch[i] = profilesink.Profile{Service: g.Service, Attrs: g.Attrs, Start: g.Start, End: g.End, Pprof: g.Profile}
	}
	a.sinks.Offer(batch)
	if a.local != nil {
		a.local.profiles(batch)
	}
}

// Shutdown flushes and stops everything within ShutdownBudget. A backend
// that can't take the final flush loses that data (counted and logged),
// which is no reason to fail the exit: only releasing the kernel's and the
// system's resources can fail it.
func (a *Agent) Shutdown() error {
	deadline := time.Now().Add(ShutdownBudget)
	a.cancel()
	if a.contDone != nil {
		select {
		case err := <-a.contDone:
			a.warnIf("final profile drain", err)
		case <-time.After(time.Until(deadline) / 2):
			a.log.Warn("profiler did not stop in time; its last interval is lost")
		}
	}
	if a.local != nil {
		a.warnIf("closing the web view", a.local.close())
		a.local = nil
	}
	// The sinks flush together and leave the last second to the final
	// metric export, which then carries their drop counts.
	sinkCtx, cancelSinks := context.WithDeadline(context.Background(), deadline.Add(-time.Second))
	a.warnIf("final flush of the profile sinks", a.sinks.Close(sinkCtx))
	cancelSinks()
	for name, c := range a.sinks.Counters() {
		if c.Dropped > 0 {
			a.log.Warn("profiles dropped", "sink", name, "dropped", c.Dropped, "sent", c.Sent)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if a.provider != nil {
		a.warnIf("final metric export", a.provider.Shutdown(ctx))
	}
	a.sinks, a.provider = nil, nil
	return a.closeAll()
}

func (a *Agent) warnIf(what string, err error) {
	if err != nil {
		a.log.Warn(what+" failed", "err", err)
	}
}

// closeAll releases kernel objects and listeners (no flushing).
func (a *Agent) closeAll() error {
	a.cancel()
	var errs []error
	if a.local != nil {
		errs = append(errs, a.local.close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	errs = append(errs, a.sinks.Close(ctx))
	cancel()
	for _, h := range a.hooks {
		errs = append(errs, h.Close())
	}
	if a.stats != nil {
		errs = append(errs, a.stats.Close())
	}
	if a.sampler != nil {
		errs = append(errs, a.sampler.Close())
	}
	if a.symbols != nil {
		errs = append(errs, a.symbols.Close())
	}
	if a.kernelNames != nil {
		errs = append(errs, a.kernelNames.Close())
	}
	return errors.Join(errs...)
}
