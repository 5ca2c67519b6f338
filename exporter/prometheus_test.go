package exporter

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

func TestLoopbackAddrByDefault(t *testing.T) {
	for in, want := range map[string]string{":9464": "127.0.0.1:9464", "0.0.0.0:9464": "0.0.0.0:9464", "[::1]:1": "[::1]:1"} {
		if got, err := LoopbackAddr(in); err != nil || got != want {
			t.Errorf("LoopbackAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := LoopbackAddr("9464"); err == nil || !strings.Contains(err.Error(), `"9464"`) {
		t.Errorf("port without colon: error %v, want one quoting the address", err)
	}
}

func TestPrometheusScrapeShowsExplicitBuckets(t *testing.T) {
	src := &fakeSource{start: time.Now()}
	src.set([]hist.Reading{readReading(20_000_000, 20_000_000, 3_000), retransmitReading(7)}, nil)
	p, err := New(context.Background(), Config{Prometheus: "127.0.0.1:0", Histogram: Explicit,
		Interval: time.Minute, Timeout: time.Second}, []Source{src}, Options{Version: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	body := scrape(t, "http://"+p.PrometheusAddr()+"/metrics")
	for _, want := range []string{
		`vigil_read_duration_seconds_bucket{otel_scope_name="` + ScopeName,
		`le="0.03125"} 3`, // 20 ms is in (2^-6, 2^-5] s, and 3 µs below it
		`le="0.015625"} 1`,
		`vigil_read_duration_seconds_count{`,
		`vigil_tcp_retransmits_total{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}
