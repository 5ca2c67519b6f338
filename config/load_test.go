package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseProblems parses src and returns its problems, failing when it
// parses cleanly or fails with another kind of error.
func parseProblems(t *testing.T, src string) Problems {
	t.Helper()
	_, err := Parse([]byte(src))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse(%q) = %v, want Problems", src, err)
	}
	return ps
}

func TestParseOverlaysDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
profiler:
  frequency: 99
  pids: [42, 7]
latency:
  hooks: [tcp]
sinks:
  otlp:
    headers: {x-token: abc}
  directory:
    max_bytes: 1GiB
web:
  enabled: false
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Profiler.Frequency = 99
	want.Profiler.PIDs = []int{42, 7}
	want.Latency.Hooks = []string{"tcp"} // lists replace, never append
	want.Sinks.OTLP.Headers = map[string]string{"x-token": "abc"}
	want.Sinks.Directory.MaxBytes = GiB
	want.Web.Enabled = SwitchOff
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestParseEmptyAndNullKeepDefaults(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "profiler:\n", "profiler:\n  frequency: ~\n", "---\n"} {
		cfg, err := Parse([]byte(src))
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("Parse(%q) changed the defaults: %+v", src, cfg)
		}
	}
}

func TestParseUnknownKeyWithLine(t *testing.T) {
	ps := parseProblems(t, "sinks:\n  otlp:\n    protocol: grpc\n    endpiont: http://x:4317\n")
	want := Problem{Line: 4, Msg: "unknown key sinks.otlp.endpiont (did you mean endpoint?)"}
	if len(ps) != 1 || ps[0] != want {
		t.Fatalf("got %#v, want %#v", ps, want)
	}
	if got := ps.Error(); got != "line 4: unknown key sinks.otlp.endpiont (did you mean endpoint?)" {
		t.Errorf("Error() = %q", got)
	}
	// Far from every key: list what is known instead of guessing.
	ps = parseProblems(t, "profiler:\n  zzzzzzzz: 1\n")
	if !strings.Contains(ps[0].Msg, "known: enabled, frequency, interval") {
		t.Errorf("got %q, want the known keys listed", ps[0].Msg)
	}
}

func TestParseWrongTypes(t *testing.T) {
	cases := []struct{ src, path, msg string }{
		{"profiler:\n  frequency: fast\n", "profiler.frequency", `must be an integer (got "fast")`},
		{"profiler:\n  frequency: 19.5\n", "profiler.frequency", `must be an integer (got "19.5")`},
		{"profiler:\n  frequency: 99999999999\n", "profiler.frequency", "integer out of range (got 99999999999)"},
		{"profiler:\n  enabled: yes\n", "profiler.enabled", `must be true or false (got "yes")`},
		{"profiler:\n  interval: 15\n", "profiler.interval", `must be a duration such as 15s or 1m30s (got "15")`},
		{"profiler:\n  interval: [1s]\n", "profiler.interval", "must be a duration such as 15s or 1m30s (got a list)"},
		{"profiler:\n  pids: 42\n", "profiler.pids", `must be a list (got "42")`},
		{"profiler:\n  pids: [1, x]\n", "profiler.pids[1]", `must be an integer (got "x")`},
		{"profiler:\n  pids: [1, ~]\n", "profiler.pids[1]", "must not be empty"},
		{"latency:\n  hooks: [[read]]\n", "latency.hooks[0]", "must be a single value (got a list)"},
		{"profiler: 5\n", "profiler", `must be a mapping of keys (got "5")`},
		{"sinks:\n  otlp:\n    headers: [a]\n", "sinks.otlp.headers", "must be a mapping of names to values (got a list)"},
		{"sinks:\n  otlp:\n    headers: {a: {b: c}}\n", "sinks.otlp.headers.a", "must be a single value (got a mapping)"},
		{"sinks:\n  directory:\n    max_bytes: 10MB\n", "sinks.directory.max_bytes", `"10MB": unit "MB" is ambiguous: use KiB, MiB or GiB (powers of 1024)`},
		{"web:\n  enabled: maybe\n", "web.enabled", `must be auto, true or false (got "maybe")`},
		{"- a\n- b\n", "", "must be a mapping of keys (got a list)"},
	}
	for _, c := range cases {
		ps := parseProblems(t, c.src)
		if len(ps) != 1 || ps[0].Path != c.path || ps[0].Msg != c.msg || ps[0].Line < 1 {
			t.Errorf("Parse(%q) = %#v\nwant path %q msg %q with a line", c.src, ps, c.path, c.msg)
		}
	}
}

func TestParseDuplicateKeys(t *testing.T) {
	ps := parseProblems(t, "log:\n  level: info\n  level: debug\nlog: {}\n")
	want := Problems{
		{Path: "log.level", Line: 3, Msg: "duplicate key (first set on line 2)"},
		{Path: "log", Line: 4, Msg: "duplicate key (first set on line 1)"},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Errorf("got %#v\nwant %#v", ps, want)
	}
	ps = parseProblems(t, "sinks:\n  pyroscope:\n    labels: {a: x, a: y}\n")
	if len(ps) != 1 || ps[0].Path != "sinks.pyroscope.labels.a" {
		t.Errorf("duplicate map key: %#v", ps)
	}
}

func TestParseReportsEveryDecodeProblem(t *testing.T) {
	ps := parseProblems(t, `
profiler:
  frequency: high
  intervall: 15s
latency:
  scale: big
web:
  listen: [x]
`)
	var lines []int
	for _, p := range ps {
		lines = append(lines, p.Line)
	}
	if want := []int{3, 4, 6, 8}; !slices.Equal(lines, want) {
		t.Errorf("problem lines %v, want %v:\n%v", lines, want, ps)
	}
}

func TestParseSyntaxAndDocuments(t *testing.T) {
	ps := parseProblems(t, "profiler:\n  frequency: 1\n bad indent: [\n")
	if !strings.Contains(ps.Error(), "line") {
		t.Errorf("syntax error without a line: %v", ps)
	}
	ps = parseProblems(t, "log: {level: info}\n---\nlog: {level: debug}\n")
	if ps[0].Msg != "more than one YAML document" {
		t.Errorf("two documents: %v", ps)
	}
}

func TestParseAliases(t *testing.T) {
	cfg, err := Parse([]byte("profiler:\n  interval: &i 30s\nmetrics:\n  interval: *i\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics.Interval != 30*time.Second {
		t.Errorf("metrics.interval through an alias = %v", cfg.Metrics.Interval)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte("log:\n  format: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil || cfg.Log.Format != "json" {
		t.Fatalf("Load = %+v, %v", cfg.Log, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("#"+strings.Repeat("x", MaxFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}
