package agent

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/config"
)

// fakeHook is a latency hook that counts its reads and records its close.
type fakeHook struct {
	reads  int
	closed bool
}

func (f *fakeHook) StartTime() time.Time          { return time.Time{} }
func (f *fakeHook) Stats() []attach.RunStat       { return nil }
func (f *fakeHook) Read() ([]hist.Reading, error) { f.reads++; return nil, nil }
func (f *fakeHook) Close() error                  { f.closed = true; return nil }

// The agent runs with what the command hands it, without the binary or the
// kernel: the hooks are read for the web view and closed on shutdown.
func TestAgentReadsAndClosesItsHooks(t *testing.T) {
	cfg := config.Default()
	cfg.Profiler.Enabled = false
	cfg.Web.Listen = "127.0.0.1:0"
	hook := &fakeHook{}
	var gotLatency config.Latency
	a, err := Start(context.Background(), cfg, Options{
		Getenv: func(string) string { return "" },
		OpenHooks: func(l config.Latency, _ *slog.Logger) []Hook {
			gotLatency = l
			return []Hook{hook}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.local == nil {
		t.Fatal("no web view with nowhere else to send")
	}
	if len(gotLatency.Hooks) == 0 {
		t.Error("OpenHooks got no hook names from the configuration")
	}
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if hook.reads == 0 || !hook.closed {
		t.Fatalf("hook read %d times, closed %v; want read and closed", hook.reads, hook.closed)
	}
}

// A bad OTEL_* setting is the configuration's fault: the command exits
// with its usage code for a ConfigError.
func TestBadEnvironmentIsAConfigError(t *testing.T) {
	cfg := config.Default()
	cfg.Profiler.Enabled, cfg.Latency.Enabled = false, false
	env := map[string]string{"OTEL_METRICS_EXPORTER": "carrier-pigeon"}
	_, err := Start(context.Background(), cfg, Options{Getenv: func(k string) string { return env[k] }})
	var ce ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Start with OTEL_METRICS_EXPORTER=carrier-pigeon: %v, want a ConfigError", err)
	}
}
