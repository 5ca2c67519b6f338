package agent

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/vigil-ebpf/vigil/config"
)

// The web view in "auto" mode runs exactly when metrics go nowhere else, as
// the parsed exporter configuration says, not as the raw environment does.
func TestWebViewFollowsTheExporterConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		web  bool
	}{
		{"nothing configured", nil, true},
		{"OTLP endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, false},
		{"endpoint but exporter none", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_METRICS_EXPORTER": "none"}, true},
		{"Prometheus from the environment", map[string]string{
			"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": freePort(t)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Profiler.Enabled, cfg.Latency.Enabled = false, false
			cfg.Web.Listen = "127.0.0.1:0"
			a, err := Start(context.Background(), cfg, Options{Getenv: func(k string) string { return tc.env[k] }})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Shutdown()
			if got := a.local != nil; got != tc.web {
				t.Errorf("web view on = %v, want %v", got, tc.web)
			}
		})
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
