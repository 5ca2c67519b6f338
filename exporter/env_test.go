package exporter

import (
	"strings"
	"testing"
	"time"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OTLP != nil || cfg.Console || cfg.Prometheus != "" {
		t.Errorf("no variables set but exporters on: %+v", cfg)
	}
	if cfg.Interval != 60*time.Second || cfg.Timeout != 30*time.Second || cfg.Histogram != Exponential {
		t.Errorf("defaults %v/%v/%v, want 60s/30s/exponential", cfg.Interval, cfg.Timeout, cfg.Histogram)
	}
}

func TestGeneralHTTPEndpointGetsTheMetricsPath(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:8428/opentelemetry/",
		"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20abc, X-Scope-OrgID=team1",
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "2500",
		"OTEL_METRIC_EXPORT_INTERVAL": "1000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.OTLP
	if o == nil || o.Protocol != ProtocolHTTP || o.Endpoint.String() != "http://127.0.0.1:8428/opentelemetry/v1/metrics" {
		t.Fatalf("OTLP %+v, want http/protobuf to http://127.0.0.1:8428/opentelemetry/v1/metrics", o)
	}
	if o.Headers["Authorization"] != "Bearer abc" || o.Headers["X-Scope-OrgID"] != "team1" {
		t.Errorf("headers %v", o.Headers)
	}
	if o.Timeout != 2500*time.Millisecond || cfg.Interval != time.Second {
		t.Errorf("timeout %v interval %v, want 2.5s and 1s", o.Timeout, cfg.Interval)
	}
}

func TestMetricsSpecificVariablesWin(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":                              "http://ignored:4318",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT":                      "http://collector:9999/custom",
		"OTEL_EXPORTER_OTLP_PROTOCOL":                              "grpc",
		"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL":                      "http/protobuf",
		"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "explicit_bucket_histogram",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OTLP.Protocol != ProtocolHTTP || cfg.OTLP.Endpoint.String() != "http://collector:9999/custom" {
		t.Errorf("got %s %s, want http/protobuf to the metrics endpoint as is", cfg.OTLP.Protocol, cfg.OTLP.Endpoint)
	}
	if cfg.Histogram != Explicit {
		t.Errorf("histogram kind %v, want explicit", cfg.Histogram)
	}
}

func TestGRPCEndpointKeepsHostOnly(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OTLP.Protocol != ProtocolGRPC || cfg.OTLP.Endpoint.Host != "127.0.0.1:4317" || cfg.OTLP.Endpoint.Path != "" {
		t.Errorf("got %s %s", cfg.OTLP.Protocol, cfg.OTLP.Endpoint)
	}
}

func TestMalformedVariablesAreNamed(t *testing.T) {
	cases := []struct{ name, value, extra string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317", ""},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://host:21", ""},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://", ""},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://host:port", ""},
		{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "::nope", ""},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "OTEL_EXPORTER_OTLP_ENDPOINT=http://h:1"},
		{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "udp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://h:1"},
		{"OTEL_EXPORTER_OTLP_HEADERS", "novalue", "OTEL_EXPORTER_OTLP_ENDPOINT=http://h:1"},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "OTEL_EXPORTER_OTLP_ENDPOINT=http://h:1"},
		{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "OTEL_EXPORTER_OTLP_ENDPOINT=http://h:1"},
		{"OTEL_EXPORTER_OTLP_INSECURE", "true", "OTEL_EXPORTER_OTLP_ENDPOINT=https://h:1"},
		{"OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "OTEL_EXPORTER_OTLP_ENDPOINT=https://h:1"},
		{"OTEL_METRIC_EXPORT_INTERVAL", "-5", ""},
		{"OTEL_METRIC_EXPORT_TIMEOUT", "0", ""},
		{"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "linear", ""},
		{"OTEL_METRICS_EXPORTER", "zipkin", ""},
		{"OTEL_EXPORTER_PROMETHEUS_PORT", "99999", "OTEL_METRICS_EXPORTER=prometheus"},
	}
	for _, c := range cases {
		env := map[string]string{c.name: c.value}
		if k, v, ok := strings.Cut(c.extra, "="); ok {
			env[k] = v
		}
		_, err := ConfigFromEnv(envOf(env))
		if err == nil || !strings.Contains(err.Error(), c.name+"=") {
			t.Errorf("%s=%q: error %v, want one naming the variable", c.name, c.value, err)
		}
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	_, err := ConfigFromEnv(envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317",
		"OTEL_METRIC_EXPORT_INTERVAL": "soon",
	}))
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") || !strings.Contains(err.Error(), "OTEL_METRIC_EXPORT_INTERVAL") {
		t.Errorf("error %v, want both variables named", err)
	}
}

func TestHeaderValuesStayOutOfErrors(t *testing.T) {
	_, err := ConfigFromEnv(envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1",
		"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=secret%zz",
	}))
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v: want an error that does not repeat the header value", err)
	}
}

func TestExporterSelection(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"OTEL_METRICS_EXPORTER": "console,prometheus", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OTLP != nil || !cfg.Console || cfg.Prometheus != "localhost:9464" {
		t.Errorf("got otlp=%v console=%v prometheus=%q, want console and prometheus on localhost:9464 only", cfg.OTLP, cfg.Console, cfg.Prometheus)
	}
	cfg, err = ConfigFromEnv(envOf(map[string]string{"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1"}))
	if err != nil || cfg.OTLP != nil {
		t.Errorf("none: otlp %v err %v, want no exporter", cfg.OTLP, err)
	}
}
