package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSetParsesLikeTheFile(t *testing.T) {
	cfg := Default()
	sets := [][2]string{
		{"profiler.frequency", "99"},
		{"profiler.interval", "1m30s"},
		{"profiler.include_idle", "true"},
		{"profiler.pids", "1,22"},
		{"profiler.off_cpu.enabled", "true"},
		{"profiler.off_cpu.min_block", "50us"},
		{"profiler.off_cpu.stacks", "user"},
		{"latency.hooks", "[read, tcp]"},
		{"latency.skip_strategies", ""},
		{"sinks.directory.max_bytes", "64MiB"},
		{"sinks.otlp.endpoint", "http://127.0.0.1:4317"},
		{"sinks.otlp.headers", "authorization=Bearer x,x-team=a"},
		{"sinks.pyroscope.labels", "{env: prod}"},
		{"sinks.pyroscope.labels.region", "eu"},
		{"sinks.pyroscope.tenant_id", "007"}, // text as written, not the number 7
		{"web.enabled", "auto"},
		{"web.enabled", "false"},
		{"log.level", "debug"},
	}
	for _, s := range sets {
		if err := cfg.Set(s[0], s[1]); err != nil {
			t.Fatalf("Set(%q, %q): %v", s[0], s[1], err)
		}
	}
	want := Default()
	want.Profiler.Frequency = 99
	want.Profiler.Interval = 90 * time.Second
	want.Profiler.IncludeIdle = true
	want.Profiler.PIDs = []int{1, 22}
	want.Profiler.OffCPU = OffCPU{Enabled: true, MinBlock: 50 * time.Microsecond, Stacks: OffCPUStacksUser}
	want.Latency.Hooks = []string{"read", "tcp"}
	want.Latency.SkipStrategies = []string{}
	want.Sinks.Directory.MaxBytes = 64 * MiB
	want.Sinks.OTLP.Endpoint = "http://127.0.0.1:4317"
	want.Sinks.OTLP.Headers = map[string]string{"authorization": "Bearer x", "x-team": "a"}
	want.Sinks.Pyroscope.Labels = map[string]string{"env": "prod", "region": "eu"}
	want.Sinks.Pyroscope.TenantID = "007"
	want.Web.Enabled = SwitchOff
	want.Log.Level = "debug"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestSetErrors(t *testing.T) {
	cases := []struct{ path, value, want string }{
		{"profiler.frequency", "fast", `profiler.frequency: must be an integer (got "fast")`},
		{"profiler.frequency", "", "profiler.frequency: needs a value"},
		{"profiler.interval", "15", `profiler.interval: must be a duration such as 15s or 1m30s (got "15")`},
		{"profiler.pids", "1,x", `profiler.pids[1]: must be an integer (got "x")`},
		{"profiler.frequncy", "1", "unknown key profiler.frequncy (did you mean frequency?)"},
		{"profiler", "1", "profiler: is a section: set one of its keys (enabled, frequency, interval, include_idle, pids, group_by, unwind, unwind_table_bytes, python, off_cpu)"},
		{"profiler.frequency.x", "1", "profiler.frequency.x: unknown key: profiler.frequency is a value, not a section"},
		{"profiler.off_cpu", "true", "profiler.off_cpu: is a section: set one of its keys (enabled, min_block, stacks)"},
		{"profiler.off_cpu.min_block", "1", `profiler.off_cpu.min_block: must be a duration such as 15s or 1m30s (got "1")`},
		{"sinks.otlp.headers", "novalue", `sinks.otlp.headers: want name=value pairs separated by commas (got "novalue")`},
		{"sinks.directory.max_bytes", "1.5GiB", `sinks.directory.max_bytes: "1.5GiB": must be a whole number of bytes`},
		{"web.enabled", "on", `web.enabled: must be auto, true or false (got "on")`},
		{"latency.hooks", "[read", `latency.hooks: cannot parse "[read"`},
	}
	for _, c := range cases {
		cfg := Default()
		err := cfg.Set(c.path, c.value)
		var ps Problems
		if !errors.As(err, &ps) || err.Error() != c.want {
			t.Errorf("Set(%q, %q) = %v\nwant %s", c.path, c.value, err, c.want)
		}
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("Set(%q, %q) failed but changed the config: %+v", c.path, c.value, cfg)
		}
	}
}

// Set accepts every key: writing each key's own default back as flag text
// changes nothing, and writing a different value changes exactly that key.
func TestSetEveryKey(t *testing.T) {
	for _, path := range Paths() {
		cfg := Default()
		v, _, err := lookup(reflect.ValueOf(&cfg).Elem(), path)
		if err != nil {
			t.Fatalf("lookup(%s): %v", path, err)
		}
		if err := cfg.Set(path, flagText(v.Interface())); err != nil {
			t.Errorf("Set(%s, its default): %v", path, err)
			continue
		}
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("Set(%s, %q) changed the config", path, flagText(v.Interface()))
		}
	}
}

// flagText formats a value as a user would write it after --set key=.
func flagText(v any) string {
	switch x := v.(type) {
	case []string:
		return strings.Join(x, ",")
	case []int:
		parts := make([]string, len(x))
		for i, n := range x {
			parts[i] = fmt.Sprint(n)
		}
		return strings.Join(parts, ",")
	case map[string]string:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, k+"="+x[k])
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

func TestSetMapEntryCopiesTheMap(t *testing.T) {
	a := Default()
	a.Sinks.Pyroscope.Labels = map[string]string{"env": "prod"}
	b := a // shares the map
	if err := b.Set("sinks.pyroscope.labels.team", "x"); err != nil {
		t.Fatal(err)
	}
	if len(a.Sinks.Pyroscope.Labels) != 1 || len(b.Sinks.Pyroscope.Labels) != 2 {
		t.Errorf("a=%v b=%v: Set wrote through the shared map", a.Sinks.Pyroscope.Labels, b.Sinks.Pyroscope.Labels)
	}
}
