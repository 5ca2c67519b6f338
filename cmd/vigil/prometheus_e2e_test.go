package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/exporter/backendtest"
)

// slowPipeC reads one byte at a time from a pipe whose writer, a child
// process named slowpipe-w, waits 20 ms after the reader says it is about to
// read: every read() of the process named slowpipe lasts at least 20 ms.
const slowPipeC = `
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
int main(void) {
	int data[2], ready[2]; char b = 1;
	if (pipe(data) || pipe(ready)) return 1;
	if (fork() == 0) {
		prctl(PR_SET_NAME, "slowpipe-w");
		close(ready[1]); close(data[0]);
		struct timespec d = {0, 20000000};
		for (;;) { if (read(ready[0], &b, 1) != 1) return 0; nanosleep(&d, 0); if (write(data[1], &b, 1) != 1) return 0; }
	}
	close(ready[0]); close(data[1]);
	for (;;) { if (write(ready[1], &b, 1) != 1 || read(data[0], &b, 1) != 1) return 1; }
}
`

// The test: a real Prometheus scrapes vigil every second, and the
// median read latency it computes over the induced 20 ms reads is 20 ms:
// within 10% from the native histogram (scale 3 buckets are 9% wide), and
// inside the power-of-two bucket (15.6, 31.25] ms, the only precision
// explicit buckets have, from the explicit-bucket form.
func TestRunPrometheusQuantileOfInducedReads(t *testing.T) {
	requireRoot(t)
	bin := buildVigil(t)
	slow := buildC(t, "slowpipe", slowPipeC)
	const sel = `{process_executable_name="slowpipe"}`
	for _, tc := range []struct {
		name, env, query string
		lo, hi           float64
	}{
		{"native", "", `histogram_quantile(0.5, sum(rate(vigil_read_duration_seconds` + sel + `[30s])))`, 0.018, 0.022},
		{"explicit", "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=explicit_bucket_histogram",
			`histogram_quantile(0.5, sum by (le) (rate(vigil_read_duration_seconds_bucket` + sel + `[30s])))`, 0.015625, 0.03125},
	} {
		t.Run(tc.name, func(t *testing.T) {
			startWorkload(t, slow)
			addr := freeAddr(t)
			a := startAgentProc(t, bin, writeConfig(t, `
profiler:
  enabled: false
latency:
  hooks: [read]
  by_process: true
metrics:
  otlp: false
  prometheus: `+addr+`
web:
  enabled: false
`), tc.env)
			if _, err := scrapeText("http://" + addr + "/metrics"); err != nil {
				t.Fatalf("%v; vigil output:\n%s", err, a.stderr.String())
			}
			prom := backendtest.StartPrometheus(t, addr)
			ctx := context.Background()
			if _, err := prom.Scalar(ctx, tc.query, 20*time.Second); err != nil {
				t.Fatalf("%v; vigil output:\n%s", err, a.stderr.String())
			}
			time.Sleep(3 * time.Second) // a few more scrapes in the window
			v, err := prom.Scalar(ctx, tc.query, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.2f ms", tc.query, v*1000)
			if v < tc.lo || v > tc.hi {
				t.Errorf("median of the induced 20 ms reads is %.2f ms, want %.2f to %.2f ms", v*1000, tc.lo*1000, tc.hi*1000)
			}
			a.stop(t)
		})
	}
}

// Scrapes every second (and a client scraping back to back) while the
// machine is busy never hold up sampling: as Prometheus scraped it, the
// sample count (updated at each one-second drain) never stands still for
// two seconds, nothing is lost for want of a drain, and every scrape answers
// quickly.
func TestRunPrometheusScrapeDoesNotBlockSampling(t *testing.T) {
	requireRoot(t)
	bin := buildVigil(t)
	hot := buildC(t, "hot", hotC)
	startWorkload(t, hot)
	startWorkload(t, hot)
	addr := freeAddr(t)
	a := startAgentProc(t, bin, writeConfig(t, `
profiler:
  frequency: 499
  interval: 2s
latency:
  by_process: true
metrics:
  otlp: false
  prometheus: `+addr+`
web:
  enabled: false
`))
	url := "http://" + addr + "/metrics"
	if _, err := scrapeText(url); err != nil {
		t.Fatalf("%v; vigil output:\n%s", err, a.stderr.String())
	}
	prom := backendtest.StartPrometheus(t, addr)
	ctx := context.Background()
	// Prometheus applies a new target list after up to 5 s.
	if _, err := prom.Scalar(ctx, `up`, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	scrapes := make(chan int, 1)
	go func() { scrapes <- scrapeLoop(url, stop) }()
	time.Sleep(11 * time.Second)
	close(stop)
	points, err := prom.Raw(ctx, `vigil_profile_samples_total[10s]`)
	if err != nil {
		t.Fatal(err)
	}
	lost, err := prom.Scalar(ctx, `sum(increase(vigil_profile_samples_lost_total{reason=~".*full.*"}[10s])) or vector(0)`, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	slowest, err := prom.Scalar(ctx, `max_over_time(scrape_duration_seconds[10s])`, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	flat, last := time.Duration(0), points[0]
	for _, p := range points[1:] {
		if p.V != last.V {
			last = p
			continue
		}
		flat = max(flat, p.T.Sub(last.T))
	}
	n := <-scrapes
	first, end := points[0], points[len(points)-1]
	t.Logf("%d Prometheus scrapes in %v: %.0f samples/s, the count stood still at most %v; slowest scrape %.1f ms; %d back-to-back scrapes alongside; %v samples lost to full maps",
		len(points), end.T.Sub(first.T).Round(time.Second), (end.V-first.V)/end.T.Sub(first.T).Seconds(), flat, slowest*1000, n, lost)
	if len(points) < 8 {
		t.Errorf("%d scrapes in 10 s at a 1 s interval", len(points))
	}
	if flat >= 2*time.Second {
		t.Errorf("the sample count stood still for %v between scrapes: sampling stalled", flat)
	}
	if lost > 0 {
		t.Errorf("%v samples lost to full maps: draining was held up", lost)
	}
	if slowest > 0.5 {
		t.Errorf("a scrape took %.0f ms", slowest*1000)
	}
	a.stop(t)
}

// scrapeLoop scrapes url back to back until stop closes; it returns how
// many scrapes it made.
func scrapeLoop(url string, stop chan struct{}) int {
	n := 0
	for {
		select {
		case <-stop:
			return n
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		n++
	}
}
