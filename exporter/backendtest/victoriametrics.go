package backendtest

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"
)

// VictoriaMetrics is a running single-node VictoriaMetrics taking OTLP over
// HTTP, with Prometheus naming for OTLP metrics (vigil.read.duration becomes
// vigil_read_duration_seconds).
type VictoriaMetrics struct {
	Addr string // host:port of the HTTP API
}

// StartVictoriaMetrics starts a server for this test and stops it when the
// test ends. It skips when VIGIL_VICTORIAMETRICS_BIN is not set.
func StartVictoriaMetrics(tb testing.TB) *VictoriaMetrics {
	tb.Helper()
	bin := binary(tb, EnvVictoriaMetrics)
	dir := tb.TempDir()
	var v *VictoriaMetrics
	start(tb, 1, func(ports []int) (*process, error) {
		v = &VictoriaMetrics{Addr: hostPort(ports[0])}
		p, err := startProcess(tb, "victoria-metrics", dir, bin,
			"-httpListenAddr="+v.Addr, "-storageDataPath="+dir+"/data", "-retentionPeriod=1d",
			"-search.latencyOffset=0s", "-opentelemetry.usePrometheusNaming")
		if err != nil {
			return nil, err
		}
		if err := p.waitHealthy(func() error { _, err := httpGet(context.Background(), v.url("/health")); return err }); err != nil {
			_ = p.stop()
			return nil, err
		}
		return p, nil
	})
	return v
}

func (v *VictoriaMetrics) url(path string) string { return "http://" + v.Addr + path }

// OTLPEndpoint is the value for OTEL_EXPORTER_OTLP_ENDPOINT (protocol
// http/protobuf): exporters append /v1/metrics to it.
func (v *VictoriaMetrics) OTLPEndpoint() string { return v.url("/opentelemetry") }

// ForceFlush makes freshly received samples visible to queries.
func (v *VictoriaMetrics) ForceFlush(ctx context.Context) error {
	_, err := httpGet(ctx, v.url("/internal/force_flush"))
	return err
}

// Sample is one instant-vector element of a query result.
type Sample struct {
	Metric map[string]string
	Value  string // as the API returns it; parse with strconv.ParseFloat
}

// Query runs an instant PromQL query.
func (v *VictoriaMetrics) Query(ctx context.Context, promql string) ([]Sample, error) {
	b, err := httpGet(ctx, v.url("/api/v1/query?query="+url.QueryEscape(promql)))
	if err != nil {
		return nil, err
	}
	return parseVector(b, promql)
}

// QueryEventually flushes and queries until the result is non-empty or
// timeout passes. Fresh samples are invisible to an instant query evaluated
// at a time (rounded to the second) just before their own timestamp, so a
// query right after an export can legitimately come back empty.
func (v *VictoriaMetrics) QueryEventually(ctx context.Context, promql string, timeout time.Duration) ([]Sample, error) {
	deadline := time.Now().Add(timeout)
	for {
		if err := v.ForceFlush(ctx); err != nil {
			return nil, err
		}
		res, err := v.Query(ctx, promql)
		if err != nil || len(res) > 0 || time.Now().After(deadline) {
			return res, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Series lists the metric names VictoriaMetrics holds (handy when a query
// finds nothing and the test wants to say why).
func (v *VictoriaMetrics) Series(ctx context.Context) ([]string, error) {
	b, err := httpGet(ctx, v.url("/api/v1/label/__name__/values"))
	if err != nil {
		return nil, err
	}
	var resp struct{ Data []string }
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}
