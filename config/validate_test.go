package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validationProblems validates cfg and returns its problems.
func validationProblems(t *testing.T, cfg Config) Problems {
	t.Helper()
	err := cfg.Validate()
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Validate() = %T %v, want Problems", err, err)
	}
	return ps
}

func TestValidateRules(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		path   string
		msg    string
	}{
		{"frequency high", func(c *Config) { c.Profiler.Frequency = 5000 }, "profiler.frequency", "must be between 1 and 1000 (got 5000)"},
		{"frequency zero", func(c *Config) { c.Profiler.Frequency = 0 }, "profiler.frequency", "must be between 1 and 1000 (got 0)"},
		{"interval short", func(c *Config) { c.Profiler.Interval = 500 * time.Millisecond }, "profiler.interval", "must be between 1s and 10m0s (got 500ms)"},
		{"interval long", func(c *Config) { c.Profiler.Interval = 11 * time.Minute }, "profiler.interval", "must be between 1s and 10m0s (got 11m0s)"},
		{"pid zero", func(c *Config) { c.Profiler.PIDs = []int{0} }, "profiler.pids[0]", "must be a process id, at least 1 (got 0)"},
		{"pid twice", func(c *Config) { c.Profiler.PIDs = []int{5, 5} }, "profiler.pids[1]", "duplicate pid 5"},
		{"group_by", func(c *Config) { c.Profiler.GroupBy = "cgroup" }, "profiler.group_by", `must be auto, executable, container or pid (got "cgroup")`},
		{"min_block zero", func(c *Config) { c.Profiler.OffCPU.MinBlock = 0 }, "profiler.off_cpu.min_block", "must be between 1ns and 1m0s (got 0s)"},
		{"min_block long", func(c *Config) { c.Profiler.OffCPU.MinBlock = time.Hour }, "profiler.off_cpu.min_block", "must be between 1ns and 1m0s (got 1h0m0s)"},
		{"off_cpu stacks", func(c *Config) { c.Profiler.OffCPU.Stacks = "all" }, "profiler.off_cpu.stacks", `must be both, user or kernel (got "all")`},
		{"off_cpu without profiler", func(c *Config) { c.Profiler.Enabled, c.Profiler.OffCPU.Enabled = false, true }, "profiler.off_cpu.enabled", "needs profiler.enabled: true (off-CPU profiles come from the profiler)"},
		{"unknown hook", func(c *Config) { c.Latency.Hooks = []string{"read", "disk"} }, "latency.hooks[1]", `must be read, runqueue, tcp or block (got "disk")`},
		{"hook twice", func(c *Config) { c.Latency.Hooks = []string{"tcp", "tcp"} }, "latency.hooks[1]", `"tcp" is listed twice`},
		{"no hooks", func(c *Config) { c.Latency.Hooks = nil }, "latency.hooks", "must name at least one hook while latency.enabled is true"},
		{"scale", func(c *Config) { c.Latency.Scale = 5 }, "latency.scale", "must be between 0 and 4 (got 5)"},
		{"unknown strategy", func(c *Config) { c.Latency.SkipStrategies = []string{"uprobe"} }, "latency.skip_strategies[0]", `must be fentry, kprobe, tp_btf or tracepoint (got "uprobe")`},
		{"skip all", func(c *Config) { c.Latency.SkipStrategies = append([]string{}, Strategies...) }, "latency.skip_strategies", "skips every strategy, so no hook could attach"},
		{"max_series by process", func(c *Config) { c.Latency.ByProcess, c.Latency.MaxSeries = true, 0 }, "latency.max_series", "must be between 1 and 4096 (got 0)"},
		{"nothing to do", func(c *Config) { c.Profiler.Enabled, c.Latency.Enabled = false, false }, "latency.enabled", "profiler.enabled and latency.enabled are both false: vigil would have nothing to do"},
		{"metrics interval", func(c *Config) { c.Metrics.Interval = 0 }, "metrics.interval", "must be between 1s and 1h0m0s (got 0s)"},
		{"prometheus addr", func(c *Config) { c.Metrics.Prometheus = "9464" }, "metrics.prometheus", `must be host:port, such as 127.0.0.1:7070 (got "9464")`},
		{"max_files", func(c *Config) { c.Sinks.Directory.MaxFiles = 0 }, "sinks.directory.max_files", "must be at least 1 (got 0)"},
		{"dir max_bytes", func(c *Config) { c.Sinks.Directory.MaxBytes = 512 * KiB }, "sinks.directory.max_bytes", "must be at least 1MiB (got 512KiB)"},
		{"otlp no scheme", func(c *Config) { c.Sinks.OTLP.Endpoint = "collector:4317" }, "sinks.otlp.endpoint", `must be a URL with an http or https scheme and a host, such as http://127.0.0.1:4317 (got "collector:4317")`},
		{"otlp grpc scheme", func(c *Config) { c.Sinks.OTLP.Endpoint = "grpc://collector:4317" }, "sinks.otlp.endpoint", `must be a URL with an http or https scheme and a host, such as http://127.0.0.1:4317 (got "grpc://collector:4317")`},
		{"otlp no host", func(c *Config) { c.Sinks.OTLP.Endpoint = "http:///v1" }, "sinks.otlp.endpoint", `must be a URL with an http or https scheme and a host, such as http://127.0.0.1:4317 (got "http:///v1")`},
		{"otlp insecure https", func(c *Config) { c.Sinks.OTLP.Endpoint, c.Sinks.OTLP.Insecure = "https://c:4317", true }, "sinks.otlp.insecure", "true contradicts the https scheme of sinks.otlp.endpoint"},
		{"otlp protocol", func(c *Config) { c.Sinks.OTLP.Protocol = "http/json" }, "sinks.otlp.protocol", `must be grpc or http/protobuf (got "http/json")`},
		{"otlp header name", func(c *Config) { c.Sinks.OTLP.Headers = map[string]string{"bad header": "x"} }, "sinks.otlp.headers.bad header", "is not a valid HTTP header name"},
		{"otlp header value", func(c *Config) { c.Sinks.OTLP.Headers = map[string]string{"a": "x\ny"} }, "sinks.otlp.headers.a", "value must not contain line breaks or NUL"},
		{"otlp timeout", func(c *Config) { c.Sinks.OTLP.Timeout = 0 }, "sinks.otlp.timeout", "must be between 1ms and 5m0s (got 0s)"},
		{"pyroscope url", func(c *Config) { c.Sinks.Pyroscope.URL = "pyroscope:4040" }, "sinks.pyroscope.url", `must be a URL with an http or https scheme and a host, such as http://pyroscope:4040 (got "pyroscope:4040")`},
		{"pyroscope url query", func(c *Config) { c.Sinks.Pyroscope.URL = "http://p:4040/?x=1" }, "sinks.pyroscope.url", `must not have a query or fragment (got "http://p:4040/?x=1")`},
		{"pyroscope url user", func(c *Config) { c.Sinks.Pyroscope.URL = "http://u:secret@p:4040" }, "sinks.pyroscope.url", "must not carry credentials: use the sink's auth keys (got http://u:xxxxx@p:4040)"},
		{"pyroscope both auths", func(c *Config) {
			c.Sinks.Pyroscope.URL = "http://p:4040"
			c.Sinks.Pyroscope.BasicAuth = BasicAuth{Username: "u", Password: "p"}
			c.Sinks.Pyroscope.BearerToken = "t"
		}, "sinks.pyroscope.bearer_token", "set together with sinks.pyroscope.basic_auth: choose one"},
		{"pyroscope password alone", func(c *Config) {
			c.Sinks.Pyroscope.URL = "http://p:4040"
			c.Sinks.Pyroscope.BasicAuth.Password = "p"
		}, "sinks.pyroscope.basic_auth.username", "must be set when a password is"},
		{"pyroscope token newline", func(c *Config) {
			c.Sinks.Pyroscope.URL = "http://p:4040"
			c.Sinks.Pyroscope.BearerToken = "abc\n"
		}, "sinks.pyroscope.bearer_token", "must not contain spaces or line breaks (a trailing newline from a file?)"},
		{"pyroscope api", func(c *Config) { c.Sinks.Pyroscope.API = "connect" }, "sinks.pyroscope.api", `must be ingest or push (got "connect")`},
		{"pyroscope auth without url", func(c *Config) { c.Sinks.Pyroscope.TenantID = "t" }, "sinks.pyroscope.url", "is empty (sink off) but the sink's tenant, auth or labels are set"},
		{"pyroscope label", func(c *Config) {
			c.Sinks.Pyroscope.URL = "http://p:4040"
			c.Sinks.Pyroscope.Labels = map[string]string{"1env": "x"}
		}, "sinks.pyroscope.labels.1env", "is not a valid label name (letters, digits, _ and ., not starting with a digit or __)"},
		{"queue batches", func(c *Config) { c.Sinks.Queue.MaxBatches = 0 }, "sinks.queue.max_batches", "must be between 1 and 10000 (got 0)"},
		{"retry max", func(c *Config) { c.Sinks.Queue.RetryMax = 500 * time.Millisecond }, "sinks.queue.retry_max", "must be at least sinks.queue.retry_initial (1s) (got 500ms)"},
		{"retry initial", func(c *Config) { c.Sinks.Queue.RetryInitial = 0 }, "sinks.queue.retry_initial", "must be between 1ms and 1h0m0s (got 0s)"},
		{"max age", func(c *Config) { c.Sinks.Queue.MaxAge = 0 }, "sinks.queue.max_age", "must be positive and at least sinks.queue.retry_initial (1s) (got 0s)"},
		{"web enabled", func(c *Config) { c.Web.Enabled = "on" }, "web.enabled", `must be auto, true or false (got "on")`},
		{"web listen", func(c *Config) { c.Web.Listen = "localhost" }, "web.listen", `must be host:port, such as 127.0.0.1:7070 (got "localhost")`},
		{"web listen port", func(c *Config) { c.Web.Listen = "127.0.0.1:http" }, "web.listen", `port must be a number between 0 and 65535 (got "http")`},
		{"web listen port range", func(c *Config) { c.Web.Listen = "127.0.0.1:70000" }, "web.listen", `port must be a number between 0 and 65535 (got "70000")`},
		{"web listen implicit", func(c *Config) { c.Web.Listen = ":7070" }, "web.listen", `must name the host: 127.0.0.1:7070 for this machine only, or 0.0.0.0:7070 for every interface (got ":7070")`},
		{"web retention", func(c *Config) { c.Profiler.Interval, c.Web.Retention = 5*time.Minute, 2*time.Minute }, "web.retention", "must be at least profiler.interval (5m0s) to keep any profile (got 2m0s)"},
		{"web max_bytes", func(c *Config) { c.Web.MaxBytes = 0 }, "web.max_bytes", "must be at least 1MiB (got 0)"},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level", `must be debug, info, warn or error (got "trace")`},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" }, "log.format", `must be text or json (got "logfmt")`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.mutate(&cfg)
			ps := validationProblems(t, cfg)
			if len(ps) != 1 || ps[0].Path != c.path || ps[0].Msg != c.msg {
				t.Errorf("got %#v\nwant one problem %s: %s", ps, c.path, c.msg)
			}
		})
	}
}

func TestValidateAcceptsExplicitChoices(t *testing.T) {
	cfg := Default()
	cfg.Web.Listen = "0.0.0.0:7070" // non-loopback is allowed when written out
	cfg.Metrics.Prometheus = "[::1]:9464"
	cfg.Latency.MaxSeries = 0 // unused while by_process is off
	cfg.Sinks.OTLP.Endpoint = "https://collector.example:4318/otlp"
	cfg.Sinks.OTLP.Protocol = ProtocolHTTPProtobuf
	cfg.Sinks.Pyroscope = Pyroscope{
		URL:         "http://pyroscope:4040",
		API:         PyroscopePush,
		TenantID:    "team-a",
		BearerToken: "tok",
		Labels:      map[string]string{"env": "prod", "k8s.node": "n1"},
	}
	cfg.Latency.SkipStrategies = []string{"fentry", "kprobe", "tp_btf"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Default()
	cfg.Profiler.Frequency = 5000
	cfg.Sinks.Directory.MaxFiles = 0
	cfg.Sinks.OTLP.Protocol = "udp"
	cfg.Web.Listen = "nowhere"
	cfg.Log.Format = "xml"
	err := cfg.Validate()
	want := strings.Join([]string{
		"profiler.frequency: must be between 1 and 1000 (got 5000)",
		"sinks.directory.max_files: must be at least 1 (got 0)",
		`sinks.otlp.protocol: must be grpc or http/protobuf (got "udp")`,
		`web.listen: must be host:port, such as 127.0.0.1:7070 (got "nowhere")`,
		`log.format: must be text or json (got "xml")`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestWebLoopback(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:7070": true, "[::1]:7070": true, "localhost:7070": true, "127.1.2.3:80": true,
		"0.0.0.0:7070": false, "[::]:7070": false, "10.0.0.1:7070": false, "myhost:7070": false, "junk": false,
	} {
		if got := (Web{Listen: listen}).Loopback(); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", listen, got, want)
		}
	}
}

func TestSwitchOn(t *testing.T) {
	for _, c := range []struct {
		s          Switch
		auto, want bool
	}{{SwitchAuto, true, true}, {SwitchAuto, false, false}, {SwitchOn, false, true}, {SwitchOff, true, false}} {
		if got := c.s.On(c.auto); got != c.want {
			t.Errorf("%s.On(%v) = %v", c.s, c.auto, got)
		}
	}
}
