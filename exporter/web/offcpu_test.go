package web

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// offCPUProfile is stackProfile made an off-CPU profile as the profiler
// makes it: each stack blocked its count times 1 ms (off_cpu/nanoseconds,
// period 1), the count as samples/count.
func offCPUProfile(t testing.TB, start time.Time, stacks map[string]int64) *profile.Profile {
	t.Helper()
	p := stackProfile(t, start, stacks)
	p.SampleType[1] = &profile.ValueType{Type: "off_cpu", Unit: "nanoseconds"}
	p.PeriodType = &profile.ValueType{Type: "off_cpu", Unit: "nanoseconds"}
	p.Period = 1
	p.DefaultSampleType = profilesink.KindOffCPU
	for _, s := range p.Sample {
		s.Value[1] = s.Value[0] * int64(time.Millisecond)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return p
}

// mixedStore holds CPU profiles (fedStore's) and off-CPU profiles of api
// (blocked 300 ms in futex_wait, 100 ms in read_pipe) and db (50 ms).
func mixedStore(t *testing.T) *Store {
	t.Helper()
	s := fedStore(t)
	now := time.Now()
	sendAll(t, s,
		sinkProfile("api", now, offCPUProfile(t, now, map[string]int64{"main;lock;futex_wait": 300, "main;serve;read_pipe": 100})),
		sinkProfile("db", now, offCPUProfile(t, now, map[string]int64{"main;query;io_wait": 50})),
	)
	return s
}

func TestAPIServesEachKindApart(t *testing.T) {
	h := testHandler(mixedStore(t))
	var fl flameView
	decode(t, get(t, h, "/api/flamegraph"), &fl)
	if fl.Kind != "cpu" || fl.Unit != "samples" || fl.Root.Value != 150 || fl.Profiles != 3 || find(fl.Root, "api", "main", "lock") != nil {
		t.Errorf("CPU flame graph: kind %q unit %q, %d samples from %d profiles", fl.Kind, fl.Unit, fl.Root.Value, fl.Profiles)
	}
	decode(t, get(t, h, "/api/flamegraph?kind=off_cpu"), &fl)
	n := find(fl.Root, "api", "main", "lock", "futex_wait")
	if fl.Kind != "off_cpu" || fl.Unit != "nanoseconds" || fl.Root.Value != int64(450*time.Millisecond) || fl.Profiles != 2 ||
		n == nil || n.Value != int64(300*time.Millisecond) || find(fl.Root, "api", "main", "serve", "hot_alpha") != nil {
		t.Errorf("off-CPU flame graph: kind %q unit %q, root %d from %d profiles, futex_wait %+v", fl.Kind, fl.Unit, fl.Root.Value, fl.Profiles, n)
	}
	decode(t, get(t, h, "/api/flamegraph?kind=off_cpu&service=db"), &fl)
	if fl.Root.Value != int64(50*time.Millisecond) {
		t.Errorf("off-CPU of db: %d ns", fl.Root.Value)
	}
	var procs processesView
	decode(t, get(t, h, "/api/processes?kind=off_cpu"), &procs)
	if procs.Unit != "nanoseconds" || len(procs.Processes) != 2 || procs.Processes[0].Service != "api" ||
		procs.Processes[0].Value != int64(400*time.Millisecond) || procs.Processes[0].Profiles != 1 {
		t.Errorf("off-CPU processes %+v", procs)
	}
	decode(t, get(t, h, "/api/processes"), &procs)
	if procs.Unit != "samples" || procs.Processes[0].Samples != 120 || procs.Processes[0].Profiles != 2 {
		t.Errorf("CPU processes %+v", procs)
	}

	rec := get(t, h, "/api/profile.pb.gz?kind=off_cpu")
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Disposition"), "vigil-offcpu.pb.gz") {
		t.Fatalf("off-CPU download: %d %v", rec.Code, rec.Header())
	}
	p, err := profile.Parse(rec.Body)
	if err != nil || p.SampleType[1].Type != "off_cpu" || len(p.Sample) != 3 {
		t.Errorf("merged off-CPU download: %v, %v", err, p)
	}
	if rec := get(t, h, "/api/flamegraph?kind=wall"); rec.Code != 400 || !strings.Contains(rec.Body.String(), `bad kind "wall"`) {
		t.Errorf("bad kind: %d %s", rec.Code, rec.Body)
	}
	if rec := get(t, testHandler(fedStore(t)), "/api/profile.pb.gz?kind=off_cpu"); rec.Code != 404 || !strings.Contains(rec.Body.String(), "profiler.off_cpu.enabled") {
		t.Errorf("no off-CPU profiles: %d %s", rec.Code, rec.Body)
	}
}

// The CPU / off-CPU switch in a real browser: the page opened on the
// off-CPU view (as a bookmark or a click on the switch leaves it) draws
// the blocked time, and names it so.
func TestBrowserSwitchesToOffCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("headless Chromium takes seconds: skipped with -short")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	srv := startServer(t, mixedStore(t))
	url := "http://" + srv.Addr() + "/"

	dom := runChromium(t, bin, "--dump-dom", url+"#kind=off_cpu")
	if !regexp.MustCompile(`<svg class="flame-svg"[^>]*data-total="450000000"[^>]*data-kind="off_cpu"`).MatchString(dom) {
		t.Errorf("off-CPU flame graph not drawn with the 450 ms of blocked time:\n%s", excerpt(dom, "flame-card"))
	}
	if !regexp.MustCompile(`<g class="frame[^"]*"[^>]*data-name="futex_wait" data-value="300000000"`).MatchString(dom) || strings.Contains(dom, `data-name="hot_alpha"`) {
		t.Errorf("off-CPU frames wrong (futex_wait 300 ms, no CPU frame):\n%s", excerpt(dom, "flame"))
	}
	if !strings.Contains(dom, `<h2 id="flame-title">Off-CPU flame graph</h2>`) ||
		!regexp.MustCompile(`<button type="button" data-kind="off_cpu"[^>]*class="on"`).MatchString(dom) {
		t.Errorf("switch not on Off-CPU:\n%s", excerpt(dom, "flame-card"))
	}
	if !strings.Contains(dom, "450 ms blocked from all processes") || !strings.Contains(dom, "api — 400 ms blocked") {
		t.Errorf("summary and process list do not speak of blocked time:\n%s", excerpt(dom, "service"))
	}
	if !strings.Contains(dom, `kind=off_cpu`) || strings.Contains(dom, "cannot reach vigil") {
		t.Errorf("download link or API calls lack kind=off_cpu:\n%s", excerpt(dom, "download"))
	}

	// The default view stays the CPU one, with the switch on CPU.
	dom = runChromium(t, bin, "--dump-dom", url)
	if !strings.Contains(dom, `data-total="150"`) || !regexp.MustCompile(`<button type="button" data-kind="cpu"[^>]*class="on"`).MatchString(dom) ||
		strings.Contains(dom, `data-name="futex_wait"`) {
		t.Errorf("default view is not the CPU flame graph:\n%s", excerpt(dom, "flame-card"))
	}
}
