package backendtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Prometheus is a running Prometheus server (Debian's package, 2.42 here)
// scraping one target every second, with native histograms on.
type Prometheus struct {
	Addr string // host:port of the HTTP API
}

const prometheusConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: [%q]
`

// StartPrometheus starts a server scraping target (host:port, path
// /metrics) for this test and stops it when the test ends. The binary is
// VIGIL_PROMETHEUS_BIN, else prometheus on PATH (.ci/run installs
// Debian's); without one the test skips (fails under CI=true).
func StartPrometheus(tb testing.TB, target string) *Prometheus {
	tb.Helper()
	bin := prometheusBinary(tb)
	dir := tb.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(prometheusConfig, target)), 0o644); err != nil {
		tb.Fatal(err)
	}
	var pr *Prometheus
	start(tb, 1, func(ports []int) (*process, error) {
		pr = &Prometheus{Addr: hostPort(ports[0])}
		// native-histograms also makes Prometheus ask for the protobuf
		// exposition format, the only one that carries them.
		p, err := startProcess(tb, "prometheus", dir, bin,
			"--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+pr.Addr, "--enable-feature=native-histograms")
		if err != nil {
			return nil, err
		}
		if err := p.waitHealthy(func() error { _, err := httpGet(context.Background(), pr.url("/-/ready")); return err }); err != nil {
			_ = p.stop()
			return nil, err
		}
		return p, nil
	})
	return pr
}

func prometheusBinary(tb testing.TB) string {
	tb.Helper()
	if os.Getenv(EnvPrometheus) != "" {
		return binary(tb, EnvPrometheus)
	}
	if testing.Short() {
		tb.Skip("skipped in -short mode: starts a real server")
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		missing(tb, "no prometheus on PATH and %s is not set (apt-get install prometheus; .ci/run installs it)", EnvPrometheus)
	}
	return p
}

func (pr *Prometheus) url(path string) string { return "http://" + pr.Addr + path }

// Query runs an instant PromQL query now.
func (pr *Prometheus) Query(ctx context.Context, promql string) ([]Sample, error) {
	b, err := httpGet(ctx, pr.url("/api/v1/query?query="+url.QueryEscape(promql)))
	if err != nil {
		return nil, err
	}
	return parseVector(b, promql)
}

func parseVector(b []byte, promql string) ([]Sample, error) {
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("query %q: %w", promql, err)
	}
	out := make([]Sample, 0, len(resp.Data.Result))
	for _, r := range resp.Data.Result {
		s, _ := r.Value[1].(string)
		out = append(out, Sample{Metric: r.Metric, Value: s})
	}
	return out, nil
}

// Scalar runs promql until it answers one finite number or timeout passes.
func (pr *Prometheus) Scalar(ctx context.Context, promql string, timeout time.Duration) (float64, error) {
	deadline := time.Now().Add(timeout)
	for {
		res, err := pr.Query(ctx, promql)
		if err == nil && len(res) == 1 {
			if v, perr := strconv.ParseFloat(res[0].Value, 64); perr == nil && v == v { // not NaN
				return v, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: no single finite answer after %v (last: %v, %v)", promql, timeout, res, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Target is the health of the scrape target as Prometheus sees it.
type Target struct {
	Health     string
	LastError  string
	LastScrape time.Time
	Duration   float64 // seconds the last scrape took
}

// Targets lists the active scrape targets.
func (pr *Prometheus) Targets(ctx context.Context) ([]Target, error) {
	b, err := httpGet(ctx, pr.url("/api/v1/targets?state=active"))
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data struct {
			ActiveTargets []struct {
				Health             string
				LastError          string
				LastScrape         time.Time
				LastScrapeDuration float64
			}
		}
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, err
	}
	var out []Target
	for _, t := range resp.Data.ActiveTargets {
		out = append(out, Target{Health: t.Health, LastError: t.LastError, LastScrape: t.LastScrape, Duration: t.LastScrapeDuration})
	}
	return out, nil
}

// Point is one scraped value and when it was scraped.
type Point struct {
	T time.Time
	V float64
}

// Raw returns the values Prometheus scraped for a range selector such as
// metric[15s], one series (the first) as scraped, oldest first.
func (pr *Prometheus) Raw(ctx context.Context, selector string) ([]Point, error) {
	b, err := httpGet(ctx, pr.url("/api/v1/query?query="+url.QueryEscape(selector)))
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data struct {
			ResultType string
			Result     []struct{ Values [][2]any }
		}
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("query %q: %w", selector, err)
	}
	if resp.Data.ResultType != "matrix" || len(resp.Data.Result) == 0 {
		return nil, fmt.Errorf("query %q: no series (%s)", selector, resp.Data.ResultType)
	}
	var out []Point
	for _, v := range resp.Data.Result[0].Values {
		ts, _ := v[0].(float64)
		s, _ := v[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %q: %w", selector, s, err)
		}
		out = append(out, Point{T: time.Unix(0, int64(ts*1e9)), V: f})
	}
	return out, nil
}
