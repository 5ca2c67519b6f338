package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/biolat"
	"github.com/vigil-ebpf/vigil/bpf/hooks"
	"github.com/vigil-ebpf/vigil/bpf/readlat"
	"github.com/vigil-ebpf/vigil/bpf/runqlat"
	"github.com/vigil-ebpf/vigil/bpf/tcplat"
	"github.com/vigil-ebpf/vigil/cmd/vigil/internal/agent"
	"github.com/vigil-ebpf/vigil/config"
)

// latencyProgram is an attached latency hook as the commands and the agent
// use it.
type latencyProgram = agent.Hook

// hookOptions are the settings every hook receives.
type hookOptions struct {
	scale int32
	skip  map[string]bool
	pid   uint32 // read hook only: one process
	// byProcess splits read and run-queue histograms by process name, at
	// most maxSeries names (beyond them one series marked
	// otel.metric.overflow=true).
	byProcess bool
	maxSeries int
}

// latencyHook opens one hook; reports say which strategies were tried.
type latencyHook struct {
	name string
	open hookOpener
}

// hookOpener opens one latency hook of bpf/hooks.
type hookOpener func(hookOptions) (latencyProgram, []attach.Report, error)

// latencyOpeners holds one adapter per latency hook of bpf/hooks: each
// package has its own Options type. A test fails when one is missing.
var latencyOpeners = map[string]hookOpener{
	"read": func(o hookOptions) (latencyProgram, []attach.Report, error) {
		p, err := readlat.Open(readlat.Options{Scale: o.scale, Skip: o.skip, PID: o.pid,
			ByProcess: o.byProcess, MaxSeries: o.maxSeries})
		if err != nil {
			return nil, nil, err
		}
		return p, []attach.Report{p.Report()}, nil
	},
	"runqueue": func(o hookOptions) (latencyProgram, []attach.Report, error) {
		p, err := runqlat.Open(runqlat.Options{Scale: o.scale, Skip: o.skip,
			ByProcess: o.byProcess, MaxSeries: o.maxSeries})
		if err != nil {
			return nil, nil, err
		}
		return p, []attach.Report{p.Report()}, nil
	},
	"tcp": func(o hookOptions) (latencyProgram, []attach.Report, error) {
		p, err := tcplat.Open(tcplat.Options{Scale: o.scale, Skip: o.skip})
		if err != nil {
			return nil, nil, err
		}
		return p, p.Reports(), nil
	},
	biolat.Hook: func(o hookOptions) (latencyProgram, []attach.Report, error) {
		p, err := biolat.Open(biolat.Options{Scale: o.scale, Skip: o.skip})
		if err != nil {
			return nil, nil, err
		}
		return p, []attach.Report{p.Report()}, nil
	},
}

// latencyHooks lists the hooks in the order they open and print: bpf/hooks'
// order. A hook without an adapter is left out (its test fails).
func latencyHooks() []latencyHook {
	var out []latencyHook
	for _, h := range hooks.OfKind(hooks.Latency) {
		if open, ok := latencyOpeners[h.Name]; ok {
			out = append(out, latencyHook{h.Name, open})
		}
	}
	return out
}

func hookNames() []string { return hooks.LatencyNames() }

// selectHooks parses --hooks: known names, no repeats, at least one.
func selectHooks(list string) ([]latencyHook, error) {
	byName := map[string]latencyHook{}
	for _, h := range latencyHooks() {
		byName[h.name] = h
	}
	var out []latencyHook
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		h, ok := byName[n]
		if !ok {
			return nil, usagef("--hooks: unknown hook %q (known: %s)", n, strings.Join(hookNames(), ", "))
		}
		if !seen[n] {
			out = append(out, h)
			seen[n] = true
		}
	}
	return out, nil
}

// openHooks opens every selected hook. A hook that can't attach anywhere is
// one warning naming the reason; only when none attaches is it an error.
func openHooks(hooks []latencyHook, o hookOptions, log *slog.Logger) ([]latencyProgram, error) {
	var progs []latencyProgram
	var errs []error
	for _, h := range hooks {
		p, reports, err := h.open(o)
		if err != nil {
			log.Warn("hook disabled", "hook", h.name, "reason", err)
			errs = append(errs, err)
			continue
		}
		for _, r := range reports {
			log.Info("hook attached", "hook", r.Hook, "strategy", r.Chosen, "report", r.String())
		}
		progs = append(progs, p)
	}
	if len(progs) == 0 {
		return nil, fmt.Errorf("no latency hook could attach: %w", errors.Join(errs...))
	}
	return progs, nil
}

// agentHooks opens the hooks latency.hooks names for the agent, with
// latency.skip_strategies off. Only a hook that attaches is returned; when
// none does, that is one warning.
func agentHooks(l config.Latency, log *slog.Logger) []latencyProgram {
	skip := map[string]bool{}
	for _, s := range l.SkipStrategies {
		skip[s] = true
	}
	hooks, err := selectHooks(strings.Join(l.Hooks, ","))
	if err != nil {
		// Validated with the configuration; nothing to attach otherwise.
		log.Warn("latency hooks disabled", "err", err)
		return nil
	}
	progs, err := openHooks(hooks, hookOptions{
		scale: int32(l.Scale), skip: skip, byProcess: l.ByProcess, maxSeries: l.MaxSeries,
	}, log)
	if err != nil && len(progs) == 0 {
		log.Warn("no latency hook could attach", "err", err)
	}
	return progs
}

func closeAll(progs []latencyProgram) error {
	var errs []error
	for _, p := range progs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
