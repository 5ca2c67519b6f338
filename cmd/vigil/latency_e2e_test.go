package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/exporter/backendtest"
)

// Induced latency: the helper process makes pipeReads reads, each answered
// by a writer that waits pipeDelay first.
const (
	pipeReads = 50
	pipeDelay = 20 * time.Millisecond
	helperEnv = "VIGIL_LATENCY_PIPE_HELPER"
)

// The induced delay is a lower bound: every one of the reads lasts at least
// pipeDelay, and on an idle machine most end in the bucket holding it. A
// loaded machine (CI shares two cores) stretches some reads by tens of
// milliseconds, so the tests want all reads at or above that bucket and
// mass in it, not a fixed share in it.

// TestLatencyPipeHelper is not a test: it is the workload process the
// end-to-end tests start (the test binary run again). It waits for one byte
// on stdin (vigil is attached), then does the slow pipe reads and exits.
func TestLatencyPipeHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("workload process of the latency end-to-end tests, not a test")
	}
	var b [1]byte
	if _, err := os.Stdin.Read(b[:]); err != nil {
		os.Exit(3)
	}
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil { // blocking fds: read() really waits
		os.Exit(4)
	}
	// The writer starts its wait when the reader is about to call read, not
	// after its own last write: a reader woken late would otherwise make
	// the next read shorter than the delay.
	reading := make(chan struct{}, 1)
	go func() {
		for range pipeReads {
			<-reading
			time.Sleep(pipeDelay)
			syscall.Write(fds[1], []byte{1})
		}
	}()
	for range pipeReads {
		reading <- struct{}{}
		if _, err := syscall.Read(fds[0], b[:]); err != nil {
			os.Exit(5)
		}
	}
	os.Exit(0)
}

// latencyRun runs `vigil latency` over the helper's pipe reads, as a user
// would: the real binary, real hooks, the given environment. It returns
// vigil's stdout.
func latencyRun(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	helper := exec.Command(os.Args[0], "-test.run=^TestLatencyPipeHelper$")
	helper.Env = append(os.Environ(), helperEnv+"=1")
	start, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()

	args = append([]string{"latency", "--hooks", "read", "--pid", strconv.Itoa(helper.Process.Pid)}, args...)
	vigil := exec.Command(buildVigil(t), args...)
	vigil.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	vigil.Stdout = &stdout
	errPipe, err := vigil.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := vigil.Start(); err != nil {
		t.Fatal(err)
	}
	waitAttached(t, errPipe, &stderr)
	start.Write([]byte{1})
	if err := helper.Wait(); err != nil {
		t.Fatalf("pipe workload: %v", err)
	}
	io.Copy(&stderr, errPipe)
	if err := vigil.Wait(); err != nil {
		t.Fatalf("vigil %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	t.Logf("vigil %s\nstderr:\n%s", strings.Join(args, " "), stderr.String())
	return stdout.Bytes()
}

// waitAttached reads vigil's log until the read hook is attached.
func waitAttached(t *testing.T, r io.Reader, copyTo *bytes.Buffer) {
	t.Helper()
	done := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			copyTo.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), `msg="hook attached"`) && strings.Contains(sc.Text(), "hook=read") {
				done <- true
				return
			}
		}
		done <- false
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatalf("vigil ended before attaching the read hook:\n%s", copyTo.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("read hook not attached after 30 s:\n%s", copyTo.String())
	}
}

// inducedBucket is the exponential bucket index holding 20 ms.
func inducedBucket(scale int32) int32 { return hist.IndexOf(scale, uint64(pipeDelay)) }

func TestLatencyExportsToCollector(t *testing.T) {
	requireRoot(t)
	cases := []struct{ name, proto, aggregation string }{
		{"grpc", "grpc", ""},
		{"http", "http/protobuf", ""},
		{"http_explicit", "http/protobuf", "explicit_bucket_histogram"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			col := backendtest.StartCollector(t)
			endpoint := col.HTTPEndpoint()
			if tc.proto == "grpc" {
				endpoint = col.GRPCEndpoint()
			}
			latencyRun(t, []string{
				"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL=" + tc.proto,
				"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=" + tc.aggregation,
				"OTEL_RESOURCE_ATTRIBUTES=test.case=" + tc.name,
			}, "--duration", "5s", "--interval", "1s", "--bpf-stats")
			mds := col.WaitMetrics(t, 15*time.Second, func(mds []pmetric.Metrics) bool {
				_, _, ok := lastMetric(mds, "vigil.read.duration")
				return ok
			})
			m, res, _ := lastMetric(mds, "vigil.read.duration")
			if tc.aggregation == "" {
				checkExponentialRead(t, m)
			} else {
				checkExplicitRead(t, m)
			}
			checkResource(t, res, tc.name)
			checkRunCount(t, mds)
		})
	}
}

// checkRunCount wants vigil's own run accounting (--bpf-stats) to have
// counted at least the induced reads: two program runs each.
func checkRunCount(t *testing.T, mds []pmetric.Metrics) {
	t.Helper()
	m, _, ok := lastMetric(mds, "vigil.bpf.run.count")
	if !ok {
		t.Fatal("vigil's own vigil.bpf.run.count was not exported")
	}
	var runs int64
	for i := 0; i < m.Sum().DataPoints().Len(); i++ {
		runs += m.Sum().DataPoints().At(i).IntValue()
	}
	if runs < 2*pipeReads {
		t.Errorf("vigil.bpf.run.count = %d, want at least %d with --bpf-stats", runs, 2*pipeReads)
	}
}

func checkExponentialRead(t *testing.T, m pmetric.Metric) {
	t.Helper()
	if m.Type() != pmetric.MetricTypeExponentialHistogram {
		t.Fatalf("vigil.read.duration is %v, want an exponential histogram", m.Type())
	}
	dp := m.ExponentialHistogram().DataPoints().At(0)
	lo := inducedBucket(dp.Scale())
	// A reader preempted between telling the writer and entering read() makes
	// that read a little shorter: count from 15 ms, as the power-of-two
	// views do from 15.6 ms.
	floor := hist.IndexOf(dp.Scale(), uint64(pipeDelay*3/4))
	// A read lasts the delay plus the reader's wake-up, which on a busy or
	// virtual machine can take it past the 20 ms bucket's upper edge
	// (20.26 ms at scale 3): the induced reads must be within 25 ms.
	hi := hist.IndexOf(dp.Scale(), uint64(pipeDelay*5/4))
	var at20, above uint64
	b := dp.Positive()
	for i := 0; i < b.BucketCounts().Len(); i++ {
		idx, c := b.Offset()+int32(i), b.BucketCounts().At(i)
		if idx >= lo && idx <= hi {
			at20 += c
		}
		if idx >= floor {
			above += c
		}
	}
	if at20 == 0 || above < pipeReads {
		t.Errorf("buckets %d-%d (20 to 25 ms) have %d reads, %d from 15 ms up; want some, and all %d induced reads",
			lo, hi, at20, above, pipeReads)
	}
	if v, ok := dp.Attributes().Get("vigil.hook"); !ok || v.Str() == "" {
		t.Error("no vigil.hook attribute")
	}
	if m.ExponentialHistogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative || dp.Sum() < float64(pipeReads)*0.02 {
		t.Errorf("temporality %v sum %g s, want cumulative with at least %g s", m.ExponentialHistogram().AggregationTemporality(), dp.Sum(), float64(pipeReads)*0.02)
	}
}

func checkExplicitRead(t *testing.T, m pmetric.Metric) {
	t.Helper()
	if m.Type() != pmetric.MetricTypeHistogram {
		t.Fatalf("vigil.read.duration is %v, want an explicit histogram", m.Type())
	}
	dp := m.Histogram().DataPoints().At(0)
	bounds, counts := dp.ExplicitBounds().AsRaw(), dp.BucketCounts().AsRaw()
	for i, b := range bounds {
		if b == 0.03125 { // (2^-6, 2^-5] s = (15.6, 31.25] ms holds 20 ms
			var above uint64
			for _, c := range counts[i:] {
				above += c
			}
			if counts[i] == 0 || above < pipeReads {
				t.Errorf("bucket le 0.03125 s has %d reads, it and those above %d; want some, and all %d", counts[i], above, pipeReads)
			}
			return
		}
	}
	t.Errorf("no bound at 0.03125 s in %v", bounds)
}

func checkResource(t *testing.T, res pcommon.Resource, testCase string) {
	t.Helper()
	host, _ := os.Hostname()
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	want := map[string]string{"service.name": "vigil", "host.name": host, "os.type": "linux",
		"os.description": strings.TrimSpace(string(rel)), "test.case": testCase}
	for k, v := range want {
		if got, ok := res.Attributes().Get(k); !ok || got.Str() != v {
			t.Errorf("resource %s = %q, want %q", k, got.Str(), v)
		}
	}
	for _, k := range []string{"service.version", "host.arch"} {
		if _, ok := res.Attributes().Get(k); !ok {
			t.Errorf("resource has no %s", k)
		}
	}
}

// lastMetric finds the most recent export of a metric.
func lastMetric(mds []pmetric.Metrics, name string) (pmetric.Metric, pcommon.Resource, bool) {
	for i := len(mds) - 1; i >= 0; i-- {
		rms := mds[i].ResourceMetrics()
		for j := 0; j < rms.Len(); j++ {
			sms := rms.At(j).ScopeMetrics()
			for k := 0; k < sms.Len(); k++ {
				ms := sms.At(k).Metrics()
				for l := 0; l < ms.Len(); l++ {
					if ms.At(l).Name() == name {
						return ms.At(l), rms.At(j).Resource(), true
					}
				}
			}
		}
	}
	return pmetric.Metric{}, pcommon.Resource{}, false
}

func TestLatencyExportsToVictoriaMetrics(t *testing.T) {
	requireRoot(t)
	vm := backendtest.StartVictoriaMetrics(t)
	latencyRun(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + vm.OTLPEndpoint(), "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"},
		"--duration", "5s", "--interval", "1s")
	// With -opentelemetry.usePrometheusNaming the histogram is
	// vigil_read_duration_seconds, its buckets labelled by vmrange.
	q := `histogram_quantile(0.5, sum(vigil_read_duration_seconds_bucket) by (vmrange, le))`
	res, err := vm.QueryEventually(context.Background(), q, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		names, _ := vm.Series(context.Background())
		t.Fatalf("%s: %d results, want 1; metric names: %v", q, len(res), names)
	}
	v, err := strconv.ParseFloat(res[0].Value, 64)
	if err != nil || v < 0.018 || v > 0.04 {
		t.Errorf("median read latency %s s, want near the induced 0.020 s", res[0].Value)
	}
	t.Logf("VictoriaMetrics median of the induced reads: %s s", res[0].Value)
}

var usecsRow = regexp.MustCompile(`(?m)^\s+(\d+) -> (\d+)\s+: (\d+)`)

func TestLatencyTextShowsInducedReads(t *testing.T) {
	requireRoot(t)
	out := latencyRun(t, nil, "--duration", "3s", "--interval", "1s")
	var in20, above int
	for _, m := range usecsRow.FindAllSubmatch(out, -1) {
		lo, _ := strconv.Atoi(string(m[1]))
		n, _ := strconv.Atoi(string(m[3]))
		if lo == 15625 { // row (15625, 31250] µs holds 20 ms
			in20 += n
		}
		if lo >= 15625 {
			above += n
		}
	}
	if in20 == 0 || above < pipeReads {
		t.Errorf("row 15625 -> 31250 usecs counted %d reads, it and the rows above %d; want some, and all %d:\n%s", in20, above, pipeReads, out)
	}
	if !strings.Contains(string(out), "usecs               : count     distribution") {
		t.Errorf("no BCC-style header:\n%s", out)
	}
}

func TestLatencyJSONLinePerInterval(t *testing.T) {
	requireRoot(t)
	out := latencyRun(t, nil, "--duration", "3s", "--interval", "1s", "--output", "json")
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Errorf("%d lines for 3 intervals of 1 s, want 3:\n%s", len(lines), out)
	}
	var in20, above uint64
	for _, l := range lines {
		var iv jsonInterval
		if err := json.Unmarshal([]byte(l), &iv); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, m := range iv.Metrics {
			for _, o := range m.Octaves {
				if m.Name == "vigil.read.duration" && o.LeSeconds == 0.03125 {
					in20 += o.Count
				}
				if m.Name == "vigil.read.duration" && o.LeSeconds >= 0.03125 {
					above += o.Count
				}
			}
		}
	}
	if in20 == 0 || above < pipeReads {
		t.Errorf("power-of-two bucket le 0.03125 s counted %d reads, it and those above %d; want some, and all %d", in20, above, pipeReads)
	}
}

func TestLatencyNoHookAttachesExitsOne(t *testing.T) {
	requireRoot(t)
	cmd := exec.Command(buildVigil(t), "latency", "--hooks", "read", "--skip", "fentry,kprobe,tp_btf,tracepoint")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitRuntime {
		t.Fatalf("no hook attached: %v, want exit %d; stderr %q", err, exitRuntime, stderr.String())
	}
	if !strings.Contains(stderr.String(), "no latency hook could attach") {
		t.Errorf("stderr %q does not say why", stderr.String())
	}
}

func TestLatencySIGINTStopsCleanlyWithFinalExport(t *testing.T) {
	requireRoot(t)
	col := backendtest.StartCollector(t)
	cmd := exec.Command(buildVigil(t), "latency", "--hooks", "read", "--duration", "0", "--interval", "1s")
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+col.HTTPEndpoint())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v, want exit 0; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "vigil.read.duration") {
		t.Errorf("no histogram printed before stopping:\n%s", stdout.String())
	}
	col.WaitMetrics(t, 10*time.Second, func(mds []pmetric.Metrics) bool {
		_, _, ok := lastMetric(mds, "vigil.read.duration")
		return ok
	})
}

var promURL = regexp.MustCompile(`msg="serving Prometheus metrics".*url=(http://\S+/metrics)`)

func TestLatencyServesPrometheusOnLoopback(t *testing.T) {
	requireRoot(t)
	cmd := exec.Command(buildVigil(t), "latency", "--hooks", "read", "--duration", "0", "--prometheus", ":0")
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=explicit_bucket_histogram")
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	url := ""
	sc := bufio.NewScanner(errPipe)
	for url == "" && sc.Scan() {
		if m := promURL.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
	}
	go io.Copy(io.Discard, errPipe)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("scrape URL %q: want the loopback address a bare :port binds", url)
	}
	time.Sleep(500 * time.Millisecond) // some reads happen meanwhile
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_read_duration_seconds_bucket{`, `le="0.03125"`, `target_info{`, `service_name="vigil"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q:\n%.3000s", want, body)
		}
	}
}

// Every hook is wired into the command: each metric appears in the JSON,
// and loopback connects made meanwhile are counted.
func TestLatencyAllHooksReport(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cmd := exec.Command(buildVigil(t), "latency", "--duration", "3s", "--interval", "3s", "--output", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // attach takes well under this
	const connects = 5
	for range connects {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("vigil: %v\n%s", err, stderr.String())
	}
	var iv jsonInterval
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &iv); err != nil {
		t.Fatalf("%v: %q", err, stdout.String())
	}
	counts := map[string]uint64{}
	for _, m := range iv.Metrics {
		var n uint64 // counters have no count; the name still shows the hook is there
		if m.Count != nil {
			n = *m.Count
		}
		counts[m.Name] += n
	}
	for _, name := range []string{"vigil.read.duration", "vigil.sched.runqueue.delay", "vigil.tcp.connect.duration", "vigil.tcp.rtt", "vigil.block.io.duration"} {
		if _, ok := counts[name]; !ok {
			t.Errorf("no %s in the output; stderr:\n%s", name, stderr.String())
		}
	}
	if counts["vigil.tcp.connect.duration"] < connects {
		t.Errorf("vigil.tcp.connect.duration counted %d connects, want at least %d", counts["vigil.tcp.connect.duration"], connects)
	}
	if counts["vigil.read.duration"] == 0 || counts["vigil.sched.runqueue.delay"] == 0 {
		t.Errorf("no reads or run-queue delays counted on a running machine: %v", counts)
	}
}
