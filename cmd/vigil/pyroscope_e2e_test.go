package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/exporter/backendtest"
)

// pyroscopeConfig profiles only pid at 99 Hz, one profile per interval,
// into Pyroscope over /ingest and into a directory of vigil's own pprof
// files; metrics is added to the metrics section, sinks to the sinks one.
func pyroscopeConfig(t *testing.T, py *backendtest.Pyroscope, pid int, dir, metrics, sinks string) string {
	return writeConfig(t, `
profiler:
  frequency: 99
  interval: 1s
  pids: [`+strconv.Itoa(pid)+`]
latency:
  enabled: false
metrics:
  otlp: false
`+metrics+`
web:
  enabled: false
sinks:
  pyroscope:
    url: `+py.URL()+`
    api: ingest
    labels: {test_run: e2e}
  directory:
    path: `+dir+`
`+sinks)
}

// The test: the flame graph Pyroscope renders for the workload's
// service, selected by the labels vigil sent, shows its two hot functions in
// the ratio vigil's own pprof files show.
func TestRunProfilesReachPyroscope(t *testing.T) {
	requireRoot(t)
	py := backendtest.StartPyroscope(t)
	bin := buildVigil(t)
	w := startWorkload(t, buildC(t, "hot", hotC))
	pid := w.Process.Pid
	dir := filepath.Join(t.TempDir(), "profiles")
	start := time.Now().Add(-time.Second)
	a := startAgentProc(t, bin, pyroscopeConfig(t, py, pid, dir, "", ""))

	host, _ := os.Hostname()
	query := `hot.cpu{host_name="` + host + `",process_pid="` + strconv.Itoa(pid) + `",test_run="e2e"}`
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if f, err := py.Render(ctx, query, start, time.Now().Add(time.Minute)); err == nil && f.Self()["hot_beta"] >= 60 {
			break
		}
	}
	a.stop(t) // the last interval is flushed to both sinks
	flame, err := py.Render(ctx, query, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	self := flame.Self()
	pa, pb := float64(self["hot_alpha"]), float64(self["hot_beta"])
	if pa < 100 || pb < 30 {
		apps, _ := py.Apps(ctx)
		t.Fatalf("Pyroscope's %s: hot_alpha=%v hot_beta=%v of %d ticks; apps %v\nvigil output:\n%s", query, pa, pb, flame.NumTicks, apps, a.stderr.String())
	}
	if flame.Units != "samples" {
		t.Errorf("units %q, want samples", flame.Units)
	}
	va, vb := dirLeafCounts(t, dir, pid)
	t.Logf("hot_alpha/hot_beta: Pyroscope %.3f (%v/%v of %d ticks), vigil's pprof %.3f (%v/%v)", pa/pb, pa, pb, flame.NumTicks, va/vb, va, vb)
	if math.Abs((pa/pb)/(va/vb)-1) > 0.10 {
		t.Errorf("Pyroscope's ratio %.3f differs from vigil's %.3f by more than 10%%", pa/pb, va/vb)
	}
	if pa+pb > (va+vb)*1.01 {
		t.Errorf("Pyroscope holds %v hot samples, more than the %v vigil made: profiles sent twice?", pa+pb, va+vb)
	}
}

// dirLeafCounts adds up the hot functions' leaf samples of pid in every
// profile the directory sink wrote.
func dirLeafCounts(t *testing.T, dir string, pid int) (alpha, beta float64) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.pb.gz"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		leaf := leafCounts(p, int64(pid))
		alpha += float64(leaf["hot_alpha"])
		beta += float64(leaf["hot_beta"])
	}
	if alpha == 0 || beta == 0 {
		t.Fatalf("vigil's own profiles in %s (%d files) lack the hot functions", dir, len(files))
	}
	return alpha, beta
}

// Pyroscope crashes mid-run and comes back: vigil keeps sampling with
// bounded memory, counts the failed sends and the dropped profiles, and
// profiles made after the restart arrive.
func TestRunSurvivesPyroscopeRestart(t *testing.T) {
	requireRoot(t)
	py := backendtest.StartPyroscope(t)
	bin := buildVigil(t)
	w := startWorkload(t, buildC(t, "hot", hotC))
	promAddr := freeAddr(t)
	cfg := pyroscopeConfig(t, py, w.Process.Pid, filepath.Join(t.TempDir(), "profiles"), "  prometheus: "+promAddr, `
  queue:
    max_batches: 3
    retry_initial: 200ms
    retry_max: 1s
`)
	a := startAgentProc(t, bin, cfg)
	ctx := context.Background()
	query := `hot.cpu{process_pid="` + strconv.Itoa(w.Process.Pid) + `"}`
	waitTicks := func(from time.Time, what string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if f, err := py.Render(ctx, query, from, time.Now().Add(time.Minute)); err == nil && f.NumTicks > 0 {
				return
			}
		}
		t.Fatalf("%s: no profile in Pyroscope; vigil output:\n%s\nPyroscope log:\n%s", what, a.stderr.String(), py.LogTail())
	}
	waitTicks(time.Now().Add(-time.Minute), "before the outage")

	rssBefore := rssKiB(t, a.cmd.Process.Pid)
	if err := py.Kill(); err != nil {
		t.Fatal(err)
	}
	outage := time.Now()
	time.Sleep(8 * time.Second) // eight intervals for a queue of three
	if a.cmd.ProcessState != nil {
		t.Fatalf("vigil exited while Pyroscope was down:\n%s", a.stderr.String())
	}
	rssDuring := rssKiB(t, a.cmd.Process.Pid)
	py.Restart(t)
	back := time.Now()
	waitTicks(back.Add(time.Second), "after the restart")

	m, err := scrapeText("http://" + promAddr + "/metrics")
	if err != nil {
		t.Fatalf("%v; vigil output:\n%s", err, a.stderr.String())
	}
	drops := promSum(m, "vigil_profile_drops_total", `vigil_sink="pyroscope`)
	failures := promSum(m, "vigil_profile_export_failures_total", `vigil_sink="pyroscope`)
	t.Logf("outage %v: %v profiles dropped, %v failed sends; RSS %d KiB before, %d KiB during",
		back.Sub(outage).Round(time.Second), drops, failures, rssBefore, rssDuring)
	if drops == 0 || failures == 0 {
		t.Errorf("drops %v, failures %v: the outage went uncounted\n%s", drops, failures, m)
	}
	if grow := rssDuring - rssBefore; grow > 64<<10 {
		t.Errorf("RSS grew by %d KiB while Pyroscope was down", grow)
	}
	a.stop(t)
}

// freeAddr is a loopback host:port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrapeText fetches a Prometheus text exposition, retrying while the
// endpoint is not up yet.
func scrapeText(url string) (string, error) {
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var resp *http.Response
		if resp, err = http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), nil
		}
	}
	return "", fmt.Errorf("scraping %s: %w", url, err)
}

var promLine = regexp.MustCompile(`(?m)^(\w+)(\{[^}]*\})? (\S+)$`)

// promSum adds the values of metric's series whose labels contain match.
func promSum(text, metric, match string) float64 {
	var sum float64
	for _, m := range promLine.FindAllStringSubmatch(text, -1) {
		if m[1] == metric && strings.Contains(m[2], match) {
			v, _ := strconv.ParseFloat(m[3], 64)
			sum += v
		}
	}
	return sum
}
