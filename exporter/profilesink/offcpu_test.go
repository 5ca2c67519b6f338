package profilesink

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/vigil-ebpf/vigil/exporter/backendtest"
)

// testOffCPUPprof is testPprof made an off-CPU profile as the profiler
// makes it: samples/count (blocked intervals) and off_cpu/nanoseconds,
// period type off_cpu/nanoseconds, period 1. hot blocked hotIntervals
// times for 25 ms each.
func testOffCPUPprof(t testing.TB, hot string, hotIntervals int64) *profile.Profile {
	t.Helper()
	p := testPprof(t, hot, hotIntervals, 0)
	p.SampleType[1] = &profile.ValueType{Type: "off_cpu", Unit: "nanoseconds"}
	p.PeriodType = &profile.ValueType{Type: "off_cpu", Unit: "nanoseconds"}
	p.Period = 1
	p.DefaultSampleType = KindOffCPU
	for _, s := range p.Sample {
		s.Value[1] = s.Value[0] * int64(25*time.Millisecond)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return p
}

func testOffCPUProfile(t testing.TB, service string, start time.Time) Profile {
	p := testProfile(t, service, start, 0)
	p.Pprof = testOffCPUPprof(t, "futex_wait", 8)
	return p
}

func TestProfileKind(t *testing.T) {
	cpu, off := testProfile(t, "a", testStart, 0), testOffCPUProfile(t, "a", testStart)
	if cpu.Kind() != KindCPU || off.Kind() != KindOffCPU || (&Profile{}).Kind() != KindCPU {
		t.Errorf("kinds %q %q", cpu.Kind(), off.Kind())
	}
}

// Off-CPU files are named apart from the CPU ones of the same group and
// interval, parse back, and count against the same bounds.
func TestDirectoryNamesOffCPUProfilesApart(t *testing.T) {
	d, dir := newTestDirectory(t, 3, 1<<20)
	cpu, off := testProfile(t, "api", testStart, 0), testOffCPUProfile(t, "api", testStart)
	cpu.Attrs["process.pid"], off.Attrs["process.pid"] = "4242", "4242"
	if err := d.Send(context.Background(), []Profile{cpu, off}); err != nil {
		t.Fatal(err)
	}
	want := []string{"api-20261125T120015Z-4242.pb.gz", "offcpu-api-20261125T120015Z-4242.pb.gz"}
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	f, err := os.Open(filepath.Join(dir, want[1]))
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(f)
	f.Close()
	if err != nil || p.DefaultSampleType != "off_cpu" || p.SampleType[1].Type != "off_cpu" || p.Sample[0].Value[1] != 8*int64(25*time.Millisecond) {
		t.Fatalf("off-CPU file: %v %v", err, p)
	}
	// A 64-character service name still makes a file rotation knows.
	long := testOffCPUProfile(t, strings.Repeat("s", 80), testStart.Add(15*time.Second))
	next := testOffCPUProfile(t, "db", testStart.Add(30*time.Second))
	if err := d.Send(context.Background(), []Profile{long}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // distinct modification times: rotation goes oldest first
	if err := d.Send(context.Background(), []Profile{next}); err != nil {
		t.Fatal(err)
	}
	got := ownNames(t, dir)
	if len(got) != 3 || slices.Contains(got, want[0]) || !slices.Contains(got, "offcpu-db-20261125T120045Z-s0.pb.gz") {
		t.Errorf("after rotation to 3 files: %v (the oldest, the CPU profile, goes first)", got)
	}
}

func TestPyroscopeIngestNamesOffCPUApart(t *testing.T) {
	srv := startIngestServer(t, "", "")
	py, err := NewPyroscope(PyroscopeConfig{URL: srv.url})
	if err != nil {
		t.Fatal(err)
	}
	defer py.Close()
	if err := py.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0), testOffCPUProfile(t, "api", testStart)}); err != nil {
		t.Fatal(err)
	}
	got := srv.got()
	if len(got) != 2 {
		t.Fatalf("server received %d profiles, want 2", len(got))
	}
	slices.SortFunc(got, func(a, b ingested) int { return strings.Compare(a.app, b.app) })
	if got[0].app != "api" || got[1].app != "api.off_cpu" || got[1].query["spyName"] != "ebpfspy" ||
		!strings.Contains(got[1].query["sample_type_config"], `"off_cpu":{`) || got[1].query["format"] != "" {
		t.Errorf("apps %q %q, query %v", got[0].app, got[1].app, got[1].query)
	}
	if p := got[1].prof; p.DefaultSampleType != "off_cpu" || p.Sample[0].Value[1] != 8*int64(25*time.Millisecond) {
		t.Errorf("off-CPU profile arrived changed: %v", p)
	}
}

func TestPyroscopePushesOffCPUProfileType(t *testing.T) {
	srv := startPushServer(t, "", "")
	py, err := NewPyroscope(PyroscopeConfig{URL: srv.url, API: PyroscopePush})
	if err != nil {
		t.Fatal(err)
	}
	defer py.Close()
	if err := py.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0), testOffCPUProfile(t, "api", testStart)}); err != nil {
		t.Fatal(err)
	}
	got := srv.series()
	if len(got) != 2 || got[0].labels["__name__"] != "process_cpu" || got[1].labels["__name__"] != "off_cpu" ||
		got[1].labels["service_name"] != "api" || got[1].prof.PeriodType.Type != "off_cpu" {
		t.Fatalf("series %+v", got)
	}
}

// An OTLP profile carries one sample type: an off-CPU pprof becomes
// samples/count and off_cpu/nanoseconds profiles with period type
// off_cpu/nanoseconds, beside the CPU ones of the same request.
func TestOTLPConvertsOffCPUProfiles(t *testing.T) {
	pd, err := toOTLP([]Profile{testProfile(t, "api", testStart, 0), testOffCPUProfile(t, "api", testStart)})
	if err != nil {
		t.Fatal(err)
	}
	samples := readSamples(t, []pprofile.Profiles{pd})
	s := findSample(samples, "api", "off_cpu/nanoseconds", "futex_wait")
	if s == nil || s.value != 8*int64(25*time.Millisecond) || s.periodType != "off_cpu/nanoseconds" || s.period != 1 {
		t.Fatalf("off-CPU sample %+v", s)
	}
	if c := findSample(samples, "api", "samples/count", "futex_wait"); c == nil || c.value != 8 || c.periodType != "off_cpu/nanoseconds" {
		t.Errorf("off-CPU count sample %+v", c)
	}
	if cpu := findSample(samples, "api", "cpu/nanoseconds", "hot_loop"); cpu == nil {
		t.Error("the CPU profile of the same batch is missing")
	}
}

// The real Collector takes off-CPU profiles beside CPU ones.
func TestOTLPDeliversOffCPUProfilesToACollector(t *testing.T) {
	c := backendtest.StartCollector(t)
	o, err := NewOTLP(OTLPConfig{Endpoint: c.GRPCEndpoint(), Protocol: ProtocolGRPC})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Send(context.Background(), []Profile{testProfile(t, "waiter", testStart, 0), testOffCPUProfile(t, "waiter", testStart)}); err != nil {
		t.Fatal(err)
	}
	pds := c.WaitProfiles(t, 10*time.Second, func(pds []pprofile.Profiles) bool {
		return findSample(readSamples(t, pds), "waiter", "off_cpu/nanoseconds", "futex_wait") != nil
	})
	samples := readSamples(t, pds)
	s := findSample(samples, "waiter", "off_cpu/nanoseconds", "futex_wait")
	if s.value != 8*int64(25*time.Millisecond) || s.periodType != "off_cpu/nanoseconds" || s.attrs["process.pid"] == nil {
		t.Errorf("off-CPU sample at the Collector %+v", s)
	}
	if findSample(samples, "waiter", "cpu/nanoseconds", "hot_loop") == nil {
		t.Error("the CPU profile did not arrive beside it")
	}
}

// The real Pyroscope (0.x, /ingest) stores an off-CPU profile as an
// application of its own, with the blocked time as its values.
func TestPyroscopeServerStoresOffCPUProfiles(t *testing.T) {
	srv := backendtest.StartPyroscope(t)
	py, err := NewPyroscope(PyroscopeConfig{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer py.Close()
	now := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := py.Send(context.Background(), []Profile{testProfile(t, "waiter", now, 0), testOffCPUProfile(t, "waiter", now)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var apps []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		// The server lists each application once it has stored it: wait
		// for both, not for whichever comes first.
		if apps, err = srv.Apps(ctx); err == nil && slices.Contains(apps, "waiter.cpu") &&
			slices.ContainsFunc(apps, func(a string) bool { return strings.HasPrefix(a, "waiter.off_cpu") }) {
			break
		}
	}
	t.Logf("apps %v", apps)
	var offApp string
	for _, a := range apps {
		if strings.HasPrefix(a, "waiter.off_cpu.") && strings.HasSuffix(a, "off_cpu") {
			offApp = a
		}
	}
	if offApp == "" || !slices.Contains(apps, "waiter.cpu") {
		t.Fatalf("apps %v: want waiter.cpu and an off_cpu application of waiter.off_cpu", apps)
	}
	fl, err := srv.Render(ctx, offApp+"{}", now.Add(-time.Minute), now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// The server rescales values through floating point: a nanosecond off
	// is its rounding, not a lost sample.
	want := 8 * int64(25*time.Millisecond)
	if self := fl.Self(); self["futex_wait"] < want-10 || self["futex_wait"] > want+10 {
		t.Errorf("%s: futex_wait self %d, want %d ns (units %q, ticks %d)", offApp, self["futex_wait"], want, fl.Units, fl.NumTicks)
	}
}
