package profilesink

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/exporter/backendtest"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

// otlpSample is one sample as read back from a Collector's output.
type otlpSample struct {
	service, sampleType string
	frames              []string // leaf first
	buildIDs            []string // of the frames' mappings
	value               int64
	attrs               map[string]any
	resource            map[string]any
	period              int64
	periodType          string
	time                time.Time
	duration            time.Duration
}

func readSamples(t *testing.T, pds []pprofile.Profiles) []otlpSample {
	t.Helper()
	var out []otlpSample
	for _, pd := range pds {
		d := pd.Dictionary()
		str := func(i int32) string { return d.StringTable().At(int(i)) }
		for _, rp := range pd.ResourceProfiles().All() {
			res := rp.Resource().Attributes().AsRaw()
			for _, sp := range rp.ScopeProfiles().All() {
				for _, p := range sp.Profiles().All() {
					for _, s := range p.Samples().All() {
						attrs, err := pprofile.FromAttributeIndices(d.AttributeTable(), s, d)
						if err != nil {
							t.Fatal(err)
						}
						os := otlpSample{
							service:    res["service.name"].(string),
							sampleType: str(p.SampleType().TypeStrindex()) + "/" + str(p.SampleType().UnitStrindex()),
							value:      s.Values().At(0), attrs: attrs.AsRaw(), resource: res,
							period: p.Period(), periodType: str(p.PeriodType().TypeStrindex()) + "/" + str(p.PeriodType().UnitStrindex()),
							time: p.Time().AsTime(), duration: time.Duration(p.DurationNano()),
						}
						for _, li := range d.StackTable().At(int(s.StackIndex())).LocationIndices().All() {
							loc := d.LocationTable().At(int(li))
							for _, ln := range loc.Lines().All() {
								os.frames = append(os.frames, str(d.FunctionTable().At(int(ln.FunctionIndex())).NameStrindex()))
							}
							m := d.MappingTable().At(int(loc.MappingIndex()))
							mattrs, err := pprofile.FromAttributeIndices(d.AttributeTable(), m, d)
							if err != nil {
								t.Fatal(err)
							}
							if v, ok := mattrs.Get("process.executable.build_id.gnu"); ok {
								os.buildIDs = append(os.buildIDs, v.Str())
							}
						}
						out = append(out, os)
					}
				}
			}
		}
	}
	return out
}

func findSample(samples []otlpSample, service, sampleType, leaf string) *otlpSample {
	for i, s := range samples {
		if s.service == service && s.sampleType == sampleType && len(s.frames) > 0 && s.frames[0] == leaf {
			return &samples[i]
		}
	}
	return nil
}

func TestOTLPDeliversProfilesToACollector(t *testing.T) {
	c := backendtest.StartCollector(t)
	for _, tc := range []struct{ protocol, endpoint string }{
		{ProtocolGRPC, c.GRPCEndpoint()},
		{ProtocolHTTPProtobuf, c.HTTPEndpoint()},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			o, err := NewOTLP(OTLPConfig{Endpoint: tc.endpoint, Protocol: tc.protocol, Headers: map[string]string{"x-vigil-test": "1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			service := "api-" + strings.ReplaceAll(tc.protocol, "/", "-")
			api := testProfile(t, service, testStart, 3)
			api.Attrs["process.pid"] = "4242"
			other := testProfile(t, "db-"+tc.protocol, testStart, 0)
			other.Pprof = testPprof(t, "other_hot", 7, 0)
			if err := o.Send(context.Background(), []Profile{api, other}); err != nil {
				t.Fatal(err)
			}
			pds := c.WaitProfiles(t, 10*time.Second, func(pds []pprofile.Profiles) bool {
				return findSample(readSamples(t, pds), service, "cpu/nanoseconds", "hot_loop") != nil
			})
			samples := readSamples(t, pds)
			checkHotSample(t, samples, service)
			if s := findSample(samples, "db-"+tc.protocol, "samples/count", "other_hot"); s == nil || s.value != 7 {
				t.Errorf("second group's hot sample: %+v", s)
			}
		})
	}
	checkAcceptedSamples(t, c)
}

func checkHotSample(t *testing.T, samples []otlpSample, service string) {
	t.Helper()
	period := int64(time.Second) / 19
	cpu := findSample(samples, service, "cpu/nanoseconds", "hot_loop")
	count := findSample(samples, service, "samples/count", "hot_loop")
	if cpu == nil || count == nil {
		t.Fatalf("no hot_loop sample of %s in both sample types", service)
	}
	if count.value != 30 || cpu.value != 30*period {
		t.Errorf("values %d samples, %d ns; want 30 and %d", count.value, cpu.value, 30*period)
	}
	if strings.Join(cpu.frames, ",") != "hot_loop,main" || strings.Join(cpu.buildIDs, ",") != "abcdef0123456789,abcdef0123456789" {
		t.Errorf("frames %v with build IDs %v", cpu.frames, cpu.buildIDs)
	}
	if cpu.attrs["thread.name"] != "work" || cpu.attrs["process.pid"] != int64(4242) || cpu.attrs["thread.id"] != int64(4243) {
		t.Errorf("sample attributes %v", cpu.attrs)
	}
	r := cpu.resource
	if r["host.name"] != "node-1" || r["process.executable.name"] != "work" || r["process.pid"] != int64(4242) {
		t.Errorf("resource attributes %v", r)
	}
	if cpu.period != period || cpu.periodType != "cpu/nanoseconds" || !cpu.time.Equal(testStart) || cpu.duration != 15*time.Second {
		t.Errorf("period %d %s, time %v, duration %v", cpu.period, cpu.periodType, cpu.time, cpu.duration)
	}
	var kernel bool
	for _, s := range samples {
		kernel = kernel || s.service == service && len(s.frames) > 0 && s.frames[0] == "do_syscall_64"
	}
	if !kernel {
		t.Error("the kernel frame did not arrive")
	}
}

// checkAcceptedSamples reads the receiver's own count: both protocols sent
// 2 groups x 2 sample types x (2 + extra) samples.
func checkAcceptedSamples(t *testing.T, c *backendtest.Collector) {
	t.Helper()
	text, err := c.SelfMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^otelcol_receiver_accepted_profile_samples[^{ ]*\{[^}]*transport="(\w+)"[^}]*\} (\S+)`)
	got := map[string]float64{}
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		got[m[1]] += v
	}
	if len(got) == 0 {
		t.Logf("the Collector does not expose otelcol_receiver_accepted_profile_samples; output:\n%s", grepLines(text, "profile"))
		return
	}
	want := float64(2*(2+3) + 2*2) // api: 2 types x 5 samples; db: 2 types x 2 samples
	t.Logf("otelcol_receiver_accepted_profile_samples by transport: %v", got)
	if got["grpc"] != want || got["http"] != want {
		t.Errorf("accepted profile samples %v, want %v per transport", got, want)
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestOTLPConvertsFaithfully(t *testing.T) {
	p := testProfile(t, "api", testStart, 2)
	p.Attrs["process.pid"] = "4242"
	pd, err := toOTLP([]Profile{p, p})
	if err != nil {
		t.Fatal(err)
	}
	d := pd.Dictionary()
	if d.StringTable().At(0) != "" || d.MappingTable().At(0).FilenameStrindex() != 0 || d.StackTable().At(0).LocationIndices().Len() != 0 {
		t.Error("dictionary tables do not start with their zero value")
	}
	// Two identical groups share every dictionary entry.
	if got, want := d.FunctionTable().Len(), 1+len(p.Pprof.Function); got != want {
		t.Errorf("%d functions for 2 copies of %d: not deduplicated", got-1, want-1)
	}
	if got, want := d.StackTable().Len(), 1+len(p.Pprof.Sample); got != want {
		t.Errorf("%d stacks for %d distinct ones", got-1, want-1)
	}
	if n := pd.SampleCount(); n != 2*2*len(p.Pprof.Sample) {
		t.Errorf("%d samples, want %d", n, 2*2*len(p.Pprof.Sample))
	}
	checkHotSample(t, readSamples(t, []pprofile.Profiles{pd}), "api")
	if _, err := toOTLP([]Profile{{Service: "x"}}); err == nil {
		t.Error("a profile without pprof converted")
	}
}

func TestOTLPEndpoints(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		plain    bool
		target   string
		tls      bool
	}{
		{"http://127.0.0.1:4317", false, "127.0.0.1:4317", false},
		{"https://collector:4317", false, "collector:4317", true},
		{"collector:4317", true, "collector:4317", false},
		{"collector", false, "collector:4317", true},
	} {
		target, tlsOn, err := grpcTarget(tc.endpoint, tc.plain)
		if err != nil || target != tc.target || tlsOn != tc.tls {
			t.Errorf("grpcTarget(%q) = %q, %v, %v", tc.endpoint, target, tlsOn, err)
		}
	}
	for _, tc := range []struct{ endpoint, want string }{
		{"http://127.0.0.1:4318", "http://127.0.0.1:4318/v1development/profiles"},
		{"http://gw:4318/otlp/", "http://gw:4318/otlp/v1development/profiles"},
		{"https://gw/v1development/profiles", "https://gw/v1development/profiles"},
	} {
		if got, err := profilesURL(tc.endpoint, false); err != nil || got != tc.want {
			t.Errorf("profilesURL(%q) = %q, %v", tc.endpoint, got, err)
		}
	}
	for _, cfg := range []OTLPConfig{{Endpoint: ""}, {Endpoint: "ftp://x:1"}, {Endpoint: "x:1", Protocol: "udp"}, {Endpoint: "ftp://x", Protocol: ProtocolHTTPProtobuf}} {
		if _, err := NewOTLP(cfg); err == nil {
			t.Errorf("NewOTLP(%+v) accepted", cfg)
		}
	}
}

// refusedAddr is a loopback port nobody listens on.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr accepts connections and never answers.
func silentAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestOTLPFailuresNameTheSinkAndAreRetried(t *testing.T) {
	cases := []struct{ name, endpoint string }{
		{"unresolvable", "http://vigil-no-such-host.invalid:4317"},
		{"refused", "http://" + refusedAddr(t)},
		{"timeout", "http://" + silentAddr(t)},
	}
	for _, protocol := range []string{ProtocolGRPC, ProtocolHTTPProtobuf} {
		for _, tc := range cases {
			t.Run(protocol+"/"+tc.name, func(t *testing.T) {
				o, err := NewOTLP(OTLPConfig{Endpoint: tc.endpoint, Protocol: protocol, Timeout: 300 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				defer o.Close()
				err = o.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0)})
				host := strings.TrimPrefix(tc.endpoint, "http://")
				if err == nil || !strings.Contains(err.Error(), "sink otlp") || !strings.Contains(err.Error(), host) {
					t.Fatalf("error %v does not name the sink and %s", err, host)
				}
				if IsPermanent(err) {
					t.Errorf("%v is marked permanent; the queue must retry it", err)
				}
				t.Log(err)
			})
		}
	}
}
