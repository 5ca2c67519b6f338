package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/vigil-ebpf/vigil/exporter/backendtest"
)

// The Collector crashes mid-run and comes back: vigil keeps sampling with
// bounded memory, counts what it could not deliver, and data flows again.
func TestRunSurvivesCollectorRestart(t *testing.T) {
	requireRoot(t)
	col := backendtest.StartCollector(t)
	bin := buildVigil(t)
	// Only the workload is profiled, so what the RSS shows is the queue and
	// the agent, not symbol tables of whatever else the machine runs.
	w := startWorkload(t, buildC(t, "hot", hotC))
	cfg := writeConfig(t, `
profiler:
  interval: 1s
  frequency: 499
  pids: [`+strconv.Itoa(w.Process.Pid)+`]
latency:
  hooks: [runqueue]
metrics:
  interval: 1s
sinks:
  otlp:
    endpoint: `+col.GRPCEndpoint()+`
    insecure: true
    timeout: 1s
  queue:
    max_batches: 3
    retry_initial: 200ms
    retry_max: 1s
`)
	a := startAgentProc(t, bin, cfg, "OTEL_EXPORTER_OTLP_ENDPOINT="+col.GRPCEndpoint(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_EXPORTER_OTLP_TIMEOUT=1000")
	col.WaitProfiles(t, 20*time.Second, func(p []pprofile.Profiles) bool { return len(p) > 0 })

	rssBefore := rssKiB(t, a.cmd.Process.Pid)
	if err := col.Kill(); err != nil {
		t.Fatal(err)
	}
	outage := time.Now()
	time.Sleep(8 * time.Second) // eight intervals for a queue of three
	if a.cmd.ProcessState != nil {
		t.Fatalf("vigil exited while the Collector was down:\n%s", a.stderr.String())
	}
	rssDuring := rssKiB(t, a.cmd.Process.Pid)
	col.Restart(t)
	back := time.Now()

	// Profiles made after the restart arrive.
	col.WaitProfiles(t, 20*time.Second, func(pds []pprofile.Profiles) bool { return newestProfile(pds).After(back) })
	// vigil's own metrics tell what was dropped during the outage.
	var dropped float64
	col.WaitMetrics(t, 20*time.Second, func(ms []pmetric.Metrics) bool {
		dropped = sumMetric(ms, "vigil.profile.drops")
		return dropped > 0
	})
	t.Logf("outage %v: %v profiles dropped, RSS %d KiB before, %d KiB during", back.Sub(outage).Round(time.Second), dropped, rssBefore, rssDuring)
	if grow := rssDuring - rssBefore; grow > 64<<10 {
		t.Errorf("RSS grew by %d KiB while the Collector was down", grow)
	}
	a.stop(t)
}

func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	return parseVmRSS(t, string(b))
}

// parseVmRSS reads the VmRSS line of /proc/<pid>/status, in KiB.
func parseVmRSS(tb testing.TB, status string) int64 {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	tb.Fatal("no VmRSS line")
	return 0
}

func newestProfile(pds []pprofile.Profiles) time.Time {
	var newest time.Time
	for _, pd := range pds {
		for _, rp := range pd.ResourceProfiles().All() {
			for _, sp := range rp.ScopeProfiles().All() {
				for _, p := range sp.Profiles().All() {
					if t := p.Time().AsTime(); t.After(newest) {
						newest = t
					}
				}
			}
		}
	}
	return newest
}

// sumMetric adds the latest value of every series of a cumulative sum.
func sumMetric(ms []pmetric.Metrics, name string) float64 {
	latest := map[string]float64{}
	for _, m := range ms {
		for _, rm := range m.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, metric := range sm.Metrics().All() {
					if metric.Name() != name || metric.Type() != pmetric.MetricTypeSum {
						continue
					}
					for _, dp := range metric.Sum().DataPoints().All() {
						v := dp.DoubleValue()
						if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
							v = float64(dp.IntValue())
						}
						latest[attrKey(dp.Attributes().AsRaw())] = v
					}
				}
			}
		}
	}
	var total float64
	for _, v := range latest {
		total += v
	}
	return total
}

// attrKey identifies a series; fmt prints maps with sorted keys.
func attrKey(m map[string]any) string { return fmt.Sprint(m) }
