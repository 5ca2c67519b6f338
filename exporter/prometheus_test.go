package exporter

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

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

// A Prometheus server that scrapes native histograms (protobuf) gets the
// kernel's exponential buckets unchanged: same schema, same buckets.
func TestPrometheusNativeHistogramIsExact(t *testing.T) {
	r := readReading(20_000_000, 20_000_000, 20_000_001, 3_000)
	src := &fakeSource{start: time.Now()}
	src.set([]hist.Reading{r}, nil)
	p, err := New(context.Background(), Config{Prometheus: "127.0.0.1:0", Interval: time.Minute, Timeout: time.Second},
		[]Source{src}, Options{Version: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.PrometheusAddr()+"/metrics", nil)
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			t.Fatalf("no vigil_read_duration_seconds in the protobuf scrape: %v", err)
		}
		if mf.GetName() != "vigil_read_duration_seconds" {
			continue
		}
		checkNative(t, mf.GetMetric()[0].GetHistogram(), r.Histograms[0].Hist)
		return
	}
}

// checkNative expands the native histogram's spans and deltas into
// per-bucket counts and compares them with the kernel's buckets. Prometheus
// indexes buckets by upper bound, OTel by lower: native index = OTel index + 1.
func checkNative(t *testing.T, h *dto.Histogram, want hist.Histogram) {
	t.Helper()
	if h.GetSchema() != want.Scale || h.GetSampleCount() != want.Count {
		t.Fatalf("schema %d count %d, want %d and %d", h.GetSchema(), h.GetSampleCount(), want.Scale, want.Count)
	}
	got := map[int32]int64{}
	idx, count := int32(0), int64(0)
	deltas := h.GetPositiveDelta()
	for _, s := range h.GetPositiveSpan() {
		idx += s.GetOffset()
		for range s.GetLength() {
			count += deltas[0]
			deltas = deltas[1:]
			if count != 0 {
				got[idx-1] = count
			}
			idx++
		}
	}
	for i, c := range want.Counts {
		if c != 0 && got[want.Offset+int32(i)] != int64(c) {
			t.Errorf("bucket %d: scrape %d, kernel %d", want.Offset+int32(i), got[want.Offset+int32(i)], c)
		}
		delete(got, want.Offset+int32(i))
	}
	if len(got) > 0 {
		t.Errorf("scrape has buckets the kernel has not: %v", got)
	}
}
