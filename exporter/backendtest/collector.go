package backendtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Collector is a running OpenTelemetry Collector: an OTLP receiver, file
// exporters writing OTLP-JSON lines for metrics and profiles, and its own
// metrics on a Prometheus endpoint.
type Collector struct {
	GRPCAddr      string // host:port of the OTLP/gRPC receiver
	HTTPAddr      string // host:port of the OTLP/HTTP receiver
	TelemetryAddr string // host:port of the Collector's own /metrics
	MetricsFile   string // OTLP-JSON lines of received metrics
	ProfilesFile  string // OTLP-JSON lines of received profiles

	// What Restart needs to start the same Collector again.
	bin, dir, config string
	proc             *process
}

const collectorConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
      http:
        endpoint: %[2]s
exporters:
  debug:
    verbosity: basic
  file/metrics:
    path: %[4]s
    format: json
    flush_interval: 100ms
  file/profiles:
    path: %[5]s
    format: json
    flush_interval: 100ms
service:
  telemetry:
    logs:
      level: info
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[3]s
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [file/metrics, debug]
    profiles:
      receivers: [otlp]
      exporters: [file/profiles]
`

// StartCollector starts a Collector for this test (profiles support on) and
// stops it when the test ends. It skips when VIGIL_OTELCOL_BIN is not set.
func StartCollector(tb testing.TB) *Collector {
	tb.Helper()
	bin := binary(tb, EnvOtelcol)
	dir := tb.TempDir()
	var c *Collector
	start(tb, 3, func(ports []int) (*process, error) {
		c = &Collector{
			GRPCAddr: hostPort(ports[0]), HTTPAddr: hostPort(ports[1]), TelemetryAddr: hostPort(ports[2]),
			MetricsFile: filepath.Join(dir, "metrics.jsonl"), ProfilesFile: filepath.Join(dir, "profiles.jsonl"),
		}
		cfg := filepath.Join(dir, "config.yaml")
		_, telemetryPort, _ := strings.Cut(c.TelemetryAddr, ":")
		body := fmt.Sprintf(collectorConfig, c.GRPCAddr, c.HTTPAddr, telemetryPort, c.MetricsFile, c.ProfilesFile)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			return nil, err
		}
		c.bin, c.dir, c.config = bin, dir, cfg
		return c.launch(tb)
	})
	return c
}

func (c *Collector) launch(tb testing.TB) (*process, error) {
	p, err := startProcess(tb, "otelcol", c.dir, c.bin, "--config", c.config, "--feature-gates=service.profilesSupport")
	if err != nil {
		return nil, err
	}
	if err := p.waitHealthy(c.healthy); err != nil {
		_ = p.stop()
		return nil, err
	}
	c.proc = p
	return p, nil
}

// GRPCEndpoint and HTTPEndpoint are values for OTEL_EXPORTER_OTLP_ENDPOINT.
func (c *Collector) GRPCEndpoint() string { return "http://" + c.GRPCAddr }
func (c *Collector) HTTPEndpoint() string { return "http://" + c.HTTPAddr }

// healthy posts an empty OTLP/JSON request, which the receiver accepts.
func (c *Collector) healthy() error {
	req, err := http.NewRequest(http.MethodPost, c.HTTPEndpoint()+"/v1/metrics", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	_, err = do(req)
	return err
}

// Metrics returns every batch of metrics the Collector has written so far.
func (c *Collector) Metrics() ([]pmetric.Metrics, error) {
	var u pmetric.JSONUnmarshaler
	return readJSONLines(c.MetricsFile, u.UnmarshalMetrics)
}

// WaitMetrics polls the file output until done accepts it, returning the
// batches; the test fails if that does not happen within timeout.
func (c *Collector) WaitMetrics(tb testing.TB, timeout time.Duration, done func([]pmetric.Metrics) bool) []pmetric.Metrics {
	tb.Helper()
	return waitFor(tb, timeout, c.MetricsFile, c.Metrics, done)
}

// readJSONLines parses every complete line of an OTLP-JSON file the
// Collector writes; the Collector may be mid-line, so a last line without
// its newline is left for the next read. A missing file is no batches yet.
func readJSONLines[T any](path string, parse func([]byte) (T, error)) ([]T, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		v, err := parse(line)
		if err != nil {
			return out, fmt.Errorf("parsing %s: %w", path, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// waitFor polls read until done accepts what it returns, failing the test
// after timeout.
func waitFor[T any](tb testing.TB, timeout time.Duration, file string, read func() ([]T, error), done func([]T) bool) []T {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := read()
		if err != nil {
			tb.Fatal(err)
		}
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("collector output not as expected after %v (%d batches in %s)", timeout, len(got), file)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// SelfMetrics returns the Collector's own Prometheus metrics text, e.g. to
// read otelcol_receiver_accepted_metric_points.
func (c *Collector) SelfMetrics(ctx context.Context) (string, error) {
	b, err := httpGet(ctx, "http://"+c.TelemetryAddr+"/metrics")
	return string(b), err
}
