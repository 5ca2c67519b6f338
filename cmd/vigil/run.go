package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vigil-ebpf/vigil/cmd/vigil/internal/agent"
	"github.com/vigil-ebpf/vigil/config"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runAgent is `vigil run`: continuous profiling and every latency hook,
// until SIGINT or SIGTERM.
func runAgent(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", "", "configuration file (YAML); without one the defaults apply")
	checkOnly := fs.Bool("check-config", false, "validate the configuration (file and --set), say whether it is valid and exit: 0 valid, 2 with every problem listed")
	var sets stringList
	fs.Var(&sets, "set", "override one key, e.g. --set profiler.frequency=49 (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, sets)
	if err != nil {
		return err
	}
	if *checkOnly {
		fmt.Fprintf(stdout, "configuration %s is valid\n", configName(*path))
		return nil
	}
	if err := checkPrivileges(); err != nil {
		return err
	}
	setupLog(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := agent.Start(ctx, cfg, agent.Options{Version: version, Stdout: stdout, OpenHooks: agentHooks})
	var ce agent.ConfigError
	if errors.As(err, &ce) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if addr := os.Getenv("VIGIL_DEBUG_PPROF"); addr != "" {
		serveDebugPprof(addr)
	}
	<-ctx.Done()
	slog.Info("stopping", "component", "agent")
	return a.Shutdown()
}

// loadConfig reads the file (or the defaults), applies --set overrides and
// validates, reporting every problem at once as a usage error.
func loadConfig(path string, sets []string) (config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return cfg, usageError{fmt.Errorf("configuration %s:\n%w", path, err)}
		}
	}
	for _, s := range sets {
		key, value, ok := strings.Cut(s, "=")
		if !ok {
			return cfg, usagef("--set %q: want key=value", s)
		}
		if err := cfg.Set(key, value); err != nil {
			return cfg, usageError{fmt.Errorf("--set %s: %w", s, err)}
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{fmt.Errorf("configuration %s:\n%w", configName(path), err)}
	}
	return cfg, nil
}

func configName(path string) string {
	if path == "" {
		return "(defaults)"
	}
	return path
}

func setupLog(c config.Log, w io.Writer) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	slog.SetDefault(slog.New(h))
}
