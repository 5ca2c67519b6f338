package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/config"
	"github.com/vigil-ebpf/vigil/exporter"
	"github.com/vigil-ebpf/vigil/exporter/profilesink"
	"github.com/vigil-ebpf/vigil/profiler"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// agent is a running `vigil run`: the sampler and continuous profiler, the
// latency hooks, the metric exporters, the profile sinks and the web view.
type agent struct {
	cfg     config.Config
	log     *slog.Logger // the agent's own lines: component=agent
	sinkLog *slog.Logger // handed to the sinks, which add their own attributes
	start   time.Time

	sampler  *cpuprofile.Profiler
	symbols  *symbolizer.Symbolizer
	cont     *profiler.Continuous
	contDone chan error

	hooks    []latencyProgram
	export   exporter.Config // the metric exporters, parsed once from OTEL_* and the file
	provider *exporter.Provider
	sinks    profilesink.Fanout
	local    *localView // nil unless the web view runs
	stats    io.Closer  // holds the kernel's BPF run statistics on, when asked
	cancel   context.CancelFunc
}

// Memory: the symbolizer's byte budget in the agent, and the soft limit
// the Go runtime is asked to keep the heap under (unless GOMEMLIMIT is set),
// so garbage is collected before the process grows instead of after.
const (
	agentSymbolBytes = 32 << 20
	agentMemoryLimit = 128 << 20
)

// startAgent opens everything the configuration asks for. A latency hook
// that can't attach is disabled with a warning; a profiler that can't
// start, a sink or a listener that can't be set up, stops the start.
func startAgent(parent context.Context, cfg config.Config, stdout io.Writer) (_ *agent, err error) {
	a := newAgent(cfg)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(agentMemoryLimit)
	}
	ctx, cancel := context.WithCancel(parent)
	a.cancel = cancel
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	if a.export, err = agentExportConfig(cfg.Metrics, os.Getenv); err != nil {
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
		if a.stats, err = enableRunStats(); err != nil {
			return nil, fmt.Errorf("metrics.bpf_stats: %w", err)
		}
	}
	if cfg.Latency.Enabled {
		a.openHooks()
	}
	if err := a.openWeb(); err != nil {
		return nil, err
	}
	if err := a.startExport(ctx, stdout); err != nil {
		return nil, err
	}
	a.run(ctx)
	return a, nil
}

// newAgent is an agent with nothing opened yet, logging through the
// logger installed now.
func newAgent(cfg config.Config) *agent {
	base := slog.Default()
	return &agent{cfg: cfg, log: base.With("component", "agent"), sinkLog: base, start: time.Now(), cancel: func() {}}
}

func (a *agent) openProfiler() error {
	pids := make([]uint32, len(a.cfg.Profiler.PIDs))
	for i, p := range a.cfg.Profiler.PIDs {
		pids[i] = uint32(p)
	}
	drain := time.Second
	s, err := cpuprofile.Open(cpuprofile.Options{
		Frequency: a.cfg.Profiler.Frequency, PIDs: pids, IncludeIdle: a.cfg.Profiler.IncludeIdle, DrainInterval: drain,
		Unwind: a.cfg.Profiler.Unwind, UnwindTableBytes: int64(a.cfg.Profiler.UnwindTableBytes),
	})
	if err != nil {
		return explainOpenError(err)
	}
	a.sampler = s
	// Half the symbolizer's default budget: the agent shares its memory
	// with the web view's retained profiles and runs for months.
	a.symbols = symbolizer.New(symbolizer.Options{MaxBytes: agentSymbolBytes})
	host, _ := os.Hostname()
	a.cont = profiler.NewContinuous(s, a.symbols, profiler.ContinuousOptions{
		Frequency: a.cfg.Profiler.Frequency, Interval: a.cfg.Profiler.Interval, DrainInterval: drain,
		GroupBy: a.cfg.Profiler.GroupBy, HostName: host,
		Proc: profiler.ProcReader{CommandLine: a.cfg.Attributes.CommandLine, Environ: a.cfg.Attributes.ServiceNameFromEnviron},
	})
	if r := s.UnwindReport(); r.Chosen != cpuprofile.StrategyTables && a.cfg.Profiler.Unwind == config.UnwindAuto {
		a.log.Warn("user stacks walked with frame pointers only", "reason", r.Reasons())
	}
	a.log.Info("profiling", "strategy", s.Report().Chosen, "unwind", s.UnwindReport().Chosen, "frequency_hz", a.cfg.Profiler.Frequency,
		"interval", a.cfg.Profiler.Interval, "cpus", s.CPUs())
	return nil
}

func (a *agent) openHooks() {
	skip := map[string]bool{}
	for _, s := range a.cfg.Latency.SkipStrategies {
		skip[s] = true
	}
	hooks, err := selectHooks(strings.Join(a.cfg.Latency.Hooks, ","))
	if err != nil {
		// Validated with the configuration; nothing to attach otherwise.
		a.log.Warn("latency hooks disabled", "err", err)
		return
	}
	progs, err := openHooks(hooks, hookOptions{
		scale: int32(a.cfg.Latency.Scale), skip: skip, byProcess: a.cfg.Latency.ByProcess, maxSeries: a.cfg.Latency.MaxSeries,
	}, a.log)
	if err != nil && len(progs) == 0 {
		a.log.Warn("no latency hook could attach", "err", err)
	}
	a.hooks = progs
}

// run starts the continuous profiler; its last flush happens when ctx ends.
func (a *agent) run(ctx context.Context) {
	if a.cont == nil {
		return
	}
	a.contDone = make(chan error, 1)
	go func() { a.contDone <- a.cont.Run(ctx, a.emit) }()
}

// emit hands one interval's profiles to every sink without blocking.
func (a *agent) emit(groups []profiler.Group) {
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

// shutdown flushes and stops everything within shutdownBudget. A backend
// that can't take the final flush loses that data (counted and logged),
// which is no reason to fail the exit: only releasing the kernel's and the
// system's resources can fail it.
func (a *agent) shutdown() error {
	deadline := time.Now().Add(shutdownBudget)
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

func (a *agent) warnIf(what string, err error) {
	if err != nil {
		a.log.Warn(what+" failed", "err", err)
	}
}

// closeAll releases kernel objects and listeners (no flushing).
func (a *agent) closeAll() error {
	a.cancel()
	var errs []error
	if a.local != nil {
		errs = append(errs, a.local.close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	errs = append(errs, a.sinks.Close(ctx))
	cancel()
	errs = append(errs, closeAll(a.hooks))
	if a.stats != nil {
		errs = append(errs, a.stats.Close())
	}
	if a.sampler != nil {
		errs = append(errs, a.sampler.Close())
	}
	if a.symbols != nil {
		errs = append(errs, a.symbols.Close())
	}
	return errors.Join(errs...)
}
