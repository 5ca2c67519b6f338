package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/exporter/backendtest"
)

// waiterC blocks in named functions, built at -O2 like distribution code:
// one thread sleeps 10 ms at a time in wait_sleep, one reads a pipe that a
// third thread writes every 5 ms in wait_pipe, and one spins in spin_cpu
// without ever blocking.
const waiterC = `#include <pthread.h>
#include <time.h>
#include <unistd.h>

static int fds[2];
volatile unsigned long sink;

__attribute__((noinline)) void wait_sleep(void) {
	struct timespec ts = {0, 10 * 1000 * 1000};
	nanosleep(&ts, 0);
}
__attribute__((noinline)) void wait_pipe(void) {
	char c;
	if (read(fds[0], &c, 1) < 0) sink++;
}
__attribute__((noinline)) void spin_cpu(void) {
	for (unsigned long i = 0; i < 100000000UL; i++) sink += i;
}
static void *sleeper(void *a) { for (;;) wait_sleep(); return a; }
static void *reader(void *a) { for (;;) wait_pipe(); return a; }
static void *spinner(void *a) { for (;;) spin_cpu(); return a; }
static void *writer(void *a) {
	struct timespec ts = {0, 5 * 1000 * 1000};
	for (;;) { nanosleep(&ts, 0); if (write(fds[1], "x", 1) < 0) sink++; }
	return a;
}
int main(void) {
	pthread_t t[4];
	if (pipe(fds)) return 1;
	pthread_create(&t[0], 0, sleeper, 0);
	pthread_create(&t[1], 0, reader, 0);
	pthread_create(&t[2], 0, spinner, 0);
	pthread_create(&t[3], 0, writer, 0);
	pthread_join(t[0], 0);
	return 0;
}
`

func buildWaiter(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	c, bin := filepath.Join(dir, "waiter.c"), filepath.Join(dir, "waiter")
	if err := os.WriteFile(c, []byte(waiterC), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-O2", "-g", "-pthread", "-o", bin, c).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

// offCPUUnder sums the off-CPU time of the samples whose stack holds fn.
func offCPUUnder(p *profile.Profile, fn string) (ns int64) {
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "off_cpu" {
			vi = i
		}
	}
	for _, s := range p.Sample {
		if vi >= 0 && strings.Contains(";"+strings.Join(sampleNames(s), ";")+";", ";"+fn+";") {
			ns += s.Value[vi]
		}
	}
	return ns
}

// vigil profile --off-cpu, for real: the sleeping thread's time shows under
// wait_sleep, about all of the run; the pipe reader's under wait_pipe; the
// spinning thread adds none; go tool pprof reads the file by off_cpu.
func TestProfileOffCPUNamesWhereThreadsWait(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, buildWaiter(t))
	time.Sleep(200 * time.Millisecond)
	out := filepath.Join(t.TempDir(), "offcpu.pb.gz")
	var stdout, stderr bytes.Buffer
	const d = 3 * time.Second
	code := run([]string{"profile", "--off-cpu", "-o", out, "-d", d.String(), "--pid", strconv.Itoa(w.Process.Pid)}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultSampleType != "off_cpu" || p.PeriodType.Type != "off_cpu" {
		t.Fatalf("not an off-CPU profile: %v %v", p.DefaultSampleType, p.PeriodType)
	}
	// The sleeper is off the CPU nearly all the time (the rest is its own
	// few µs per wake-up); the profile spans the run.
	sleep := time.Duration(offCPUUnder(p, "wait_sleep"))
	if sleep < d*8/10 || sleep > d*11/10 {
		t.Errorf("wait_sleep blocked %v in a %v run, want about all of it\nsummary:\n%s", sleep, d, stderr.String())
	}
	if pipe := time.Duration(offCPUUnder(p, "wait_pipe")); pipe < d/2 {
		t.Errorf("wait_pipe blocked %v in a %v run", pipe, d)
	}
	if spin := time.Duration(offCPUUnder(p, "spin_cpu")); spin > d/10 {
		t.Errorf("the spinning thread shows %v off the CPU under spin_cpu", spin)
	}
	wants := []string{"vigil: off-CPU: ", "recorded with stacks", "below --min-block", "lost: "}
	if histmap.HaveTaskStorage() {
		wants = append(wants, "reused from their threads' caches") // the threads block in the same places again and again
	}
	for _, want := range wants {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr.String())
		}
	}
	if len(p.Comments) == 0 || !strings.HasPrefix(p.Comments[0], "vigil off-cpu: recorded ") {
		t.Errorf("comments %q", p.Comments)
	}
	b, err := exec.Command("go", "tool", "pprof", "-sample_index=off_cpu", "-top", out).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "Type: off_cpu") || !regexp.MustCompile(`(?m)\s(nanosleep|clock_nanosleep|__GI___clock_nanosleep|schedule)\b`).Match(b) {
		t.Errorf("go tool pprof -sample_index=off_cpu -top: %v\n%s", err, b)
	}
	if !strings.Contains(stdout.String(), "wait_sleep") && !strings.Contains(stdout.String(), "schedule") {
		t.Errorf("--top list:\n%s", stdout.String())
	}
}

// The agent with profiler.off_cpu.enabled pushes off-CPU profiles to a real
// Collector beside the CPU ones.
func TestRunPushesOffCPUProfilesToCollector(t *testing.T) {
	requireRoot(t)
	col := backendtest.StartCollector(t)
	bin := buildVigil(t)
	w := startWorkload(t, buildWaiter(t))
	cfg := writeConfig(t, `
profiler:
  frequency: 99
  interval: 2s
  off_cpu:
    enabled: true
latency:
  enabled: false
sinks:
  otlp:
    endpoint: `+col.GRPCEndpoint()+`
    protocol: grpc
    insecure: true
`)
	a := startAgentProc(t, bin, cfg)
	pid := strconv.Itoa(w.Process.Pid)
	var pds []pprofile.Profiles
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var err error
		if pds, err = col.Profiles(); err != nil {
			t.Fatal(err)
		}
		if offCPUSampleUnder(pds, "waiter", pid, "wait_sleep") > 0 {
			break
		}
	}
	if offCPUSampleUnder(pds, "waiter", pid, "wait_sleep") <= 0 {
		t.Fatalf("no off_cpu/nanoseconds sample of service waiter under wait_sleep; services %v\nvigil output:\n%s", services(pds), a.stderr.String())
	}
	if !profileNames(pds, "waiter", "spin_cpu", pid) {
		t.Errorf("the CPU profile of waiter (spin_cpu) did not arrive beside it")
	}
	if took := a.stop(t); took > 5*time.Second {
		t.Errorf("vigil run took %v to stop after SIGTERM", took)
	}
}

// offCPUSampleUnder sums the off_cpu/nanoseconds values of the samples of
// service (and pid, when its group is one process) whose stack names fn.
func offCPUSampleUnder(pds []pprofile.Profiles, service, pid, fn string) int64 {
	var ns int64
	for _, pd := range pds {
		d := pd.Dictionary()
		str := func(i int32) string { return d.StringTable().At(int(i)) }
		for _, rp := range pd.ResourceProfiles().All() {
			attrs := rp.Resource().Attributes().AsRaw()
			if attrs["service.name"] != service {
				continue
			}
			if p, ok := attrs["process.pid"]; ok && fmt.Sprint(p) != pid {
				continue
			}
			for _, sp := range rp.ScopeProfiles().All() {
				for _, p := range sp.Profiles().All() {
					if str(p.SampleType().TypeStrindex()) != "off_cpu" {
						continue
					}
					for _, s := range p.Samples().All() {
						for _, li := range d.StackTable().At(int(s.StackIndex())).LocationIndices().All() {
							for _, ln := range d.LocationTable().At(int(li)).Lines().All() {
								if str(d.FunctionTable().At(int(ln.FunctionIndex())).NameStrindex()) == fn {
									ns += s.Values().At(0)
								}
							}
						}
					}
				}
			}
		}
	}
	return ns
}
