package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/otlptranslator"
	"go.yaml.in/yaml/v3"

	"github.com/vigil-ebpf/vigil/bpf/biolat"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/readlat"
	"github.com/vigil-ebpf/vigil/bpf/runqlat"
	"github.com/vigil-ebpf/vigil/bpf/tcplat"
	"github.com/vigil-ebpf/vigil/config"
	"github.com/vigil-ebpf/vigil/exporter"
	"github.com/vigil-ebpf/vigil/exporter/profilesink"
	"github.com/vigil-ebpf/vigil/profiler"
)

// otelMetric is a metric vigil exports, by its OpenTelemetry name (taken
// from the packages that emit it), unit and kind.
type otelMetric struct {
	name, unit string
	kind       otlptranslator.MetricType
}

// latencyHistograms are exported as exponential histograms (the default
// aggregation), which Prometheus stores as native histograms.
var latencyHistograms = []otelMetric{
	{runqlat.MetricDelay, "s", otlptranslator.MetricTypeExponentialHistogram},
	{readlat.MetricDuration, "s", otlptranslator.MetricTypeExponentialHistogram},
	{tcplat.MetricConnect, "s", otlptranslator.MetricTypeExponentialHistogram},
	{tcplat.MetricRTT, "s", otlptranslator.MetricTypeExponentialHistogram},
	{biolat.MetricDuration, "s", otlptranslator.MetricTypeExponentialHistogram},
}

var counters = []otelMetric{
	{tcplat.MetricRetransmits, "{segment}", otlptranslator.MetricTypeMonotonicCounter},
	{tcplat.MetricUnmeasured, "{connect}", otlptranslator.MetricTypeMonotonicCounter},
	{exporter.MetricRunDuration, "s", otlptranslator.MetricTypeMonotonicCounter},
	{exporter.MetricRunCount, "{run}", otlptranslator.MetricTypeMonotonicCounter},
	{exporter.MetricEventsLost, "{event}", otlptranslator.MetricTypeMonotonicCounter},
	{exporter.MetricExportFailures, "{export}", otlptranslator.MetricTypeMonotonicCounter},
	{profiler.MetricSamples, "{sample}", otlptranslator.MetricTypeMonotonicCounter},
	{profiler.MetricSamplesLost, "{sample}", otlptranslator.MetricTypeMonotonicCounter},
	{profiler.MetricUnnamedFrames, "{frame}", otlptranslator.MetricTypeMonotonicCounter},
	{profilesink.MetricExports, "{profile}", otlptranslator.MetricTypeMonotonicCounter},
	{profilesink.MetricExportFailures, "{attempt}", otlptranslator.MetricTypeMonotonicCounter},
	{profilesink.MetricDrops, "{profile}", otlptranslator.MetricTypeMonotonicCounter},
}

// promName is the name Prometheus's OTLP receiver gives a metric with its
// default translation (UnderscoreEscapingWithSuffixes).
func promName(t *testing.T, m otelMetric) string {
	t.Helper()
	namer := otlptranslator.NewMetricNamer("", otlptranslator.UnderscoreEscapingWithSuffixes)
	name, err := namer.Build(otlptranslator.Metric{Name: m.name, Unit: m.unit, Type: m.kind})
	if err != nil {
		t.Fatalf("translating %s: %v", m.name, err)
	}
	return name
}

func promLabel(t *testing.T, attr string) string {
	t.Helper()
	namer := otlptranslator.LabelNamer{}
	name, err := namer.Build(attr)
	if err != nil {
		t.Fatalf("translating %s: %v", attr, err)
	}
	return name
}

// knownLabels are the labels vigil's series can carry in Prometheus: the
// metric attributes, the resource attributes prometheus.yml promotes, and
// what Prometheus adds itself.
func knownLabels(t *testing.T) []string {
	t.Helper()
	var prom struct {
		OTLP struct {
			Promote []string `yaml:"promote_resource_attributes"`
		} `yaml:"otlp"`
	}
	readYAML(t, "compose/prometheus.yml", &prom)
	attrs := append([]string{hist.AttrHook, exporter.AttrProgram, hist.AttrReason, exporter.AttrExporter, profilesink.AttrSink}, prom.OTLP.Promote...)
	out := []string{"job", "instance", "le"}
	for _, a := range attrs {
		out = append(out, promLabel(t, a))
	}
	return out
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboardQuery is one PromQL expression of a provisioned dashboard.
type dashboardQuery struct {
	file, panel, panelType, expr string
}

type grafanaPanel struct {
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Links []struct {
		URL string `json:"url"`
	} `json:"links"`
}

func loadDashboards(t *testing.T) map[string]grafanaDashboard {
	t.Helper()
	files, err := filepath.Glob("compose/grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	out := map[string]grafanaDashboard{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

func dashboardQueries(t *testing.T) ([]dashboardQuery, []string) {
	t.Helper()
	var queries []dashboardQuery
	var legends []string
	var walk func(file string, ps []grafanaPanel)
	walk = func(file string, ps []grafanaPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					queries = append(queries, dashboardQuery{file, p.Title, p.Type, tg.Expr})
				}
				legends = append(legends, tg.LegendFormat)
			}
			walk(file, p.Panels)
		}
	}
	for f, d := range loadDashboards(t) {
		walk(f, d.Panels)
		for _, v := range d.Templating.List {
			queries = append(queries, dashboardQuery{f, "variable " + v.Name, "variable", v.Definition})
		}
	}
	if len(queries) == 0 {
		t.Fatal("no PromQL in the dashboards")
	}
	return queries, legends
}

// labelValuesCall is Grafana's label_values(metric, label) variable query.
var labelValuesCall = regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)

func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	exported := map[string]bool{}
	for _, m := range slices.Concat(latencyHistograms, counters) {
		exported[promName(t, m)] = true
		t.Logf("%s -> %s", m.name, promName(t, m))
	}
	labels := knownLabels(t)
	queries, legends := dashboardQueries(t)
	for _, q := range queries {
		expr := q.expr
		var extraLabels []string
		if m := labelValuesCall.FindStringSubmatch(expr); m != nil {
			expr, extraLabels = m[1], []string{m[2]}
		}
		metrics, used, err := promqlNames(expr)
		if err != nil {
			t.Errorf("%s, %s: %v", q.file, q.panel, err)
			continue
		}
		if len(metrics) == 0 {
			t.Errorf("%s, %s: %q names no metric", q.file, q.panel, q.expr)
		}
		for _, m := range metrics {
			if !exported[m] {
				t.Errorf("%s, %s: %s is not a metric vigil exports (%q)", q.file, q.panel, m, q.expr)
			}
		}
		for _, l := range append(used, extraLabels...) {
			if !slices.Contains(labels, l) {
				t.Errorf("%s, %s: label %s is on no vigil series (%q)", q.file, q.panel, l, q.expr)
			}
		}
	}
	for _, lf := range legends {
		for _, m := range regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`).FindAllStringSubmatch(lf, -1) {
			if !slices.Contains(labels, m[1]) {
				t.Errorf("legend %q names label %s, which no vigil series has", lf, m[1])
			}
		}
	}
}

// Every latency histogram has a heatmap and percentiles; every self metric
// is on a panel.
func TestDashboardsCoverEveryMetric(t *testing.T) {
	queries, _ := dashboardQueries(t)
	uses := func(metric, panelType, fn string) bool {
		for _, q := range queries {
			metrics, _, _ := promqlNames(q.expr)
			if slices.Contains(metrics, metric) && (panelType == "" || q.panelType == panelType) && strings.Contains(q.expr, fn) {
				return true
			}
		}
		return false
	}
	for _, m := range latencyHistograms {
		name := promName(t, m)
		if !uses(name, "heatmap", "rate(") {
			t.Errorf("%s (%s) has no heatmap", name, m.name)
		}
		if !uses(name, "timeseries", "histogram_quantile(0.99") {
			t.Errorf("%s (%s) has no p99 panel", name, m.name)
		}
	}
	for _, m := range counters {
		if name := promName(t, m); !uses(name, "", "") {
			t.Errorf("%s (%s) is on no panel", name, m.name)
		}
	}
}

func TestDashboardsLinkFlameGraphs(t *testing.T) {
	var flame bool
	for f, d := range loadDashboards(t) {
		var linked bool
		for _, l := range d.Links {
			linked = linked || strings.Contains(l.URL, "pyroscope")
		}
		if !linked {
			t.Errorf("%s: no link to the flame graphs", f)
		}
		for _, p := range d.Panels {
			if p.Type == "flamegraph" && strings.Contains(string(p.Datasource), `"pyroscope"`) {
				flame = true
			}
		}
	}
	if !flame {
		t.Error("no flame graph panel on the Pyroscope data source")
	}
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       map[string]string `yaml:"build"`
	PID         string            `yaml:"pid"`
	Privileged  bool              `yaml:"privileged"`
	CapAdd      []string          `yaml:"cap_add"`
	CapDrop     []string          `yaml:"cap_drop"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
}

func loadCompose(t *testing.T) map[string]composeService {
	t.Helper()
	var c struct {
		Services map[string]composeService `yaml:"services"`
	}
	readYAML(t, "compose/docker-compose.yaml", &c)
	return c.Services
}

func TestComposeVigilService(t *testing.T) {
	svcs := loadCompose(t)
	v, ok := svcs["vigil"]
	if !ok {
		t.Fatal("no vigil service")
	}
	if v.PID != "host" || v.Privileged {
		t.Errorf("pid %q privileged %v: want the host pid namespace and capabilities, not privileged", v.PID, v.Privileged)
	}
	caps := slices.Clone(v.CapAdd)
	slices.Sort(caps)
	if !slices.Equal(caps, sortedCaps()) || !slices.Equal(v.CapDrop, []string{"ALL"}) {
		t.Errorf("cap_add %v cap_drop %v, want exactly %v after dropping ALL", v.CapAdd, v.CapDrop, sortedCaps())
	}
	if v.Build["dockerfile"] != "deploy/Dockerfile" || v.Build["context"] != "../.." {
		t.Errorf("build %v: want deploy/Dockerfile from the repository root", v.Build)
	}
	for path := range hostMounts {
		if !slices.Contains(v.Volumes, path+":"+path+":ro") {
			t.Errorf("host path %s is not mounted read-only at the same path", path)
		}
	}
	if !slices.Contains(v.Volumes, "./vigil.yaml:/etc/vigil/vigil.yaml:ro") {
		t.Error("compose/vigil.yaml is not mounted at /etc/vigil/vigil.yaml (the image's CMD reads it)")
	}
	for _, p := range slices.Concat(v.Ports, svcs["grafana"].Ports, svcs["prometheus"].Ports) {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("port %s is published on every interface", p)
		}
	}
	cfg, err := config.Load("compose/vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.Sinks.OTLP.Endpoint, "http://otel-collector:") || !strings.HasPrefix(v.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://otel-collector:") {
		t.Errorf("profiles (%s) and metrics (%s) must go to the otel-collector service", cfg.Sinks.OTLP.Endpoint, v.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
	}
	if !slices.Contains(svcs["prometheus"].Command, "--web.enable-otlp-receiver") {
		t.Error("Prometheus lacks --web.enable-otlp-receiver: the Collector's metrics would be refused")
	}
	if !slices.Contains(svcs["otel-collector"].Command, "--feature-gates=service.profilesSupport") {
		t.Error("the Collector lacks the profiles feature gate")
	}
}

// The Collector config's exporters and Grafana's data sources point at
// services of the compose file.
func TestComposeEndpointsNameServices(t *testing.T) {
	svcs := loadCompose(t)
	hostOf := regexp.MustCompile(`^(?:https?://)?([a-z0-9-]+):\d+`)
	check := func(where, endpoint string) {
		m := hostOf.FindStringSubmatch(endpoint)
		if m == nil {
			t.Errorf("%s: endpoint %q has no host:port", where, endpoint)
			return
		}
		if _, ok := svcs[m[1]]; !ok {
			t.Errorf("%s: %q names no compose service", where, endpoint)
		}
	}
	var col struct {
		Exporters map[string]map[string]any `yaml:"exporters"`
	}
	readYAML(t, "compose/otelcol.yaml", &col)
	for name, e := range col.Exporters {
		for _, k := range []string{"endpoint", "metrics_endpoint"} {
			if ep, ok := e[k].(string); ok {
				check("otelcol exporter "+name, ep)
			}
		}
	}
	var ds struct {
		Datasources []struct {
			UID, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, "compose/grafana/provisioning/datasources/datasources.yaml", &ds)
	for _, d := range ds.Datasources {
		check("grafana data source "+d.UID, d.URL)
	}
}

// The Collector config is validated by the real Collector the end-to-end
// tests use (make backends builds it; VIGIL_OTELCOL_BIN names it).
func TestCollectorConfigValidates(t *testing.T) {
	bin := os.Getenv("VIGIL_OTELCOL_BIN")
	if bin == "" {
		t.Skip("VIGIL_OTELCOL_BIN is not set (make backends builds the Collector; make test sets it)")
	}
	validate := func(path string) ([]byte, error) {
		return exec.Command(bin, "validate", "--config="+path, "--feature-gates=service.profilesSupport").CombinedOutput()
	}
	if out, err := validate("compose/otelcol.yaml"); err != nil {
		t.Fatalf("%s validate: %v\n%s", bin, err, out)
	}
	// The same file with one exporter misspelt must fail, or the check
	// above proves nothing.
	data, err := os.ReadFile("compose/otelcol.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "otelcol.yaml")
	broken := strings.ReplaceAll(string(data), "otlp_grpc/pyroscope", "otlp_grpcc/pyroscope")
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := validate(bad); err == nil || !strings.Contains(string(out), "otlp_grpcc") {
		t.Errorf("a config with an unknown exporter validated: %v\n%s", err, out)
	}
}
