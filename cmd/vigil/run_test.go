package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/vigil-ebpf/vigil/exporter/backendtest"
)

func writeConfig(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunCheckConfigReportsEveryProblem(t *testing.T) {
	bad := writeConfig(t, "profiler:\n  frequency: 5000\n  intervall: 3s\nsinks:\n  otlp:\n    protocol: carrier-pigeon\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "--config", bad, "--check-config"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("bad config: exit %d, want %d; stderr %s", code, exitUsage, stderr.String())
	}
	for _, want := range []string{"intervall", "line 3"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	good := writeConfig(t, "profiler:\n  frequency: 49\n")
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"run", "--config", good, "--check-config", "--set", "latency.scale=2"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("good config: exit %d; stderr %s", code, stderr.String())
	}
	if code := run([]string{"run", "--config", good, "--check-config", "--set", "profiler.frequency=0", "--set", "sinks.queue.max_batches=0"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("bad --set: exit %d", code)
	}
	for _, want := range []string{"profiler.frequency", "sinks.queue.max_batches"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("all problems at once: stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if code := run([]string{"run", "--config", filepath.Join(t.TempDir(), "missing.yaml"), "--check-config"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("missing config file: exit %d, want %d", code, exitUsage)
	}
}

// agentProc is a `vigil run` started as a user would.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func startAgentProc(t *testing.T, bin, config string, env ...string) *agentProc {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", config)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{cmd: cmd, stderr: &stderr}
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Kill()
			a.cmd.Wait()
		}
	})
	return a
}

// stop sends SIGTERM and returns how long the agent took to exit.
func (a *agentProc) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vigil run exited with %v after SIGTERM; output:\n%s", err, a.stderr.String())
		}
	case <-time.After(15 * time.Second):
		a.cmd.Process.Kill()
		t.Fatalf("vigil run did not exit 15 s after SIGTERM; output:\n%s", a.stderr.String())
	}
	return time.Since(start)
}

// bpfObjects lists the BPF programs and maps a process holds open, from
// the prog_id and map_id lines of /proc/<pid>/fdinfo.
func bpfObjects(t *testing.T, pid int) (progs, maps []uint32) {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fdinfo"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if !ok || err != nil {
				continue
			}
			switch k {
			case "prog_id":
				progs = append(progs, uint32(id))
			case "map_id":
				maps = append(maps, uint32(id))
			}
		}
	}
	return progs, maps
}

// requireGone fails when any of the programs or maps still exists a few
// seconds after its owner exited (the kernel frees them after an RCU grace period).
func requireGone(t *testing.T, progs, maps []uint32) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var left []string
		for _, id := range progs {
			if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id)); err == nil {
				p.Close()
				left = append(left, fmt.Sprintf("program %d", id))
			}
		}
		for _, id := range maps {
			if m, err := ebpf.NewMapFromID(ebpf.MapID(id)); err == nil {
				m.Close()
				left = append(left, fmt.Sprintf("map %d", id))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still in the kernel after vigil exited: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The end-to-end test: `vigil run` pushes profiles and metrics to a
// real OpenTelemetry Collector; the Collector's output names a hot function
// of a workload the test started and holds the latency histograms; on
// SIGTERM vigil flushes, exits 0 within 5 s and leaves no program behind.
func TestRunPushesProfilesAndMetricsToCollector(t *testing.T) {
	requireRoot(t)
	col := backendtest.StartCollector(t)
	bin := buildVigil(t)
	w := startWorkload(t, buildC(t, "hot", hotC))
	cfg := writeConfig(t, `
profiler:
  frequency: 99
  interval: 2s
metrics:
  interval: 1s
  bpf_stats: true
sinks:
  otlp:
    endpoint: `+col.GRPCEndpoint()+`
    protocol: grpc
    insecure: true
`)
	a := startAgentProc(t, bin, cfg,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+col.HTTPEndpoint(), "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test")

	pid := strconv.Itoa(w.Process.Pid)
	var pds []pprofile.Profiles
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var err error
		if pds, err = col.Profiles(); err != nil {
			t.Fatal(err)
		}
		if profileNames(pds, "hot", "hot_alpha", pid) {
			break
		}
	}
	if !profileNames(pds, "hot", "hot_alpha", pid) {
		t.Fatalf("no profile of service hot naming hot_alpha; services: %v\nvigil output:\n%s", services(pds), a.stderr.String())
	}
	col.WaitMetrics(t, 30*time.Second, func(ms []pmetric.Metrics) bool {
		return hasMetric(ms, "vigil.sched.runqueue.delay") && hasMetric(ms, "vigil.profile.samples") &&
			hasMetric(ms, "vigil.read.duration") && sumMetric(ms, "vigil.bpf.run.count") > 0
	})
	progs, maps := bpfObjects(t, a.cmd.Process.Pid)
	if len(progs) < 5 || len(maps) < 5 {
		t.Errorf("vigil holds %d programs and %d maps; expected the sampler's and every hook's", len(progs), len(maps))
	}
	if took := a.stop(t); took > 5*time.Second {
		t.Errorf("vigil run took %v to stop after SIGTERM, want under 5 s", took)
	}
	if strings.Contains(a.stderr.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", a.stderr.String())
	}
	requireGone(t, progs, maps)
}

// Metrics also reach VictoriaMetrics over OTLP/HTTP, queryable with PromQL.
func TestRunMetricsReachVictoriaMetrics(t *testing.T) {
	requireRoot(t)
	vm := backendtest.StartVictoriaMetrics(t)
	bin := buildVigil(t)
	cfg := writeConfig(t, "profiler:\n  interval: 2s\nmetrics:\n  interval: 1s\nweb:\n  enabled: false\n")
	a := startAgentProc(t, bin, cfg,
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="+vm.OTLPEndpoint()+"/v1/metrics", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/protobuf")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for _, q := range []string{
		`sum(vigil_sched_runqueue_delay_seconds_count)`,
		`sum(vigil_profile_samples_total)`,
	} {
		got, err := vm.QueryEventually(ctx, q, 30*time.Second)
		if err != nil || len(got) == 0 {
			t.Errorf("PromQL %s: %v %v; vigil output:\n%s", q, got, err, a.stderr.String())
		}
	}
	a.stop(t)
}

// A web.listen port that is taken, or a profile sink whose host doesn't
// resolve: a clear error or a warning, never a crash.
func TestRunFailsClearlyOnATakenPort(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := writeConfig(t, "web:\n  enabled: true\n  listen: "+ln.Addr().String()+"\nlatency:\n  enabled: false\n")
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "--config", cfg}, &stdout, &stderr)
	if code != exitRuntime || !strings.Contains(stderr.String(), ln.Addr().String()) {
		t.Errorf("taken port: exit %d, stderr %q; want exit %d naming the address", code, stderr.String(), exitRuntime)
	}
}

func TestRunKeepsGoingWhenASinkDoesNotResolve(t *testing.T) {
	requireRoot(t)
	bin := buildVigil(t)
	cfg := writeConfig(t, `
profiler:
  interval: 1s
latency:
  enabled: false
sinks:
  pyroscope:
    url: http://no-such-host.invalid:4040
  queue:
    retry_initial: 100ms
    retry_max: 200ms
`)
	a := startAgentProc(t, bin, cfg, "VIGIL_DEBUG=1")
	time.Sleep(4 * time.Second)
	if a.cmd.ProcessState != nil {
		t.Fatalf("vigil run exited: %s", a.stderr.String())
	}
	a.stop(t)
	out := a.stderr.String()
	if !strings.Contains(out, "no-such-host.invalid") {
		t.Errorf("the failing sink is never named:\n%s", out)
	}
	if strings.Contains(out, "panic") {
		t.Errorf("panic:\n%s", out)
	}
}

func profileNames(pds []pprofile.Profiles, service, fn, pid string) bool {
	for _, pd := range pds {
		d := pd.Dictionary()
		for _, rp := range pd.ResourceProfiles().All() {
			attrs := rp.Resource().Attributes().AsRaw()
			if attrs["service.name"] != service {
				continue
			}
			if p, ok := attrs["process.pid"]; ok && fmt.Sprint(p) != pid {
				continue
			}
			for i := 0; i < d.FunctionTable().Len(); i++ {
				if d.StringTable().At(int(d.FunctionTable().At(i).NameStrindex())) == fn {
					return true
				}
			}
		}
	}
	return false
}

func services(pds []pprofile.Profiles) map[string]bool {
	out := map[string]bool{}
	for _, pd := range pds {
		for _, rp := range pd.ResourceProfiles().All() {
			a := rp.Resource().Attributes().AsRaw()
			out[fmt.Sprint(a["service.name"], "/", a["process.pid"])] = true
		}
	}
	return out
}

func hasMetric(ms []pmetric.Metrics, name string) bool {
	for _, m := range ms {
		for _, rm := range m.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, metric := range sm.Metrics().All() {
					if metric.Name() == name {
						return true
					}
				}
			}
		}
	}
	return false
}
