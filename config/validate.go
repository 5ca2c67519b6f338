package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hooks"
)

// Hooks are the latency hooks latency.hooks may name.
var Hooks = hooks.LatencyNames()

// Strategies are the attach strategies latency.skip_strategies may name.
var Strategies = hooks.LatencyStrategies()

// maxSeriesLimit matches the cap the latency programs accept.
const maxSeriesLimit = 4096

// checker collects validation problems.
type checker struct{ problems Problems }

func (c *checker) addf(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) intRange(path string, v, lo, hi int) {
	if v < lo || v > hi {
		c.addf(path, "must be between %d and %d (got %d)", lo, hi, v)
	}
}

func (c *checker) atLeast(path string, v, lo int) {
	if v < lo {
		c.addf(path, "must be at least %d (got %d)", lo, v)
	}
}

func (c *checker) durRange(path string, v, lo, hi time.Duration) {
	if v < lo || v > hi {
		c.addf(path, "must be between %v and %v (got %v)", lo, hi, v)
	}
}

func (c *checker) oneOf(path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.addf(path, "must be %s (got %q)", orList(allowed), v)
	}
}

func (c *checker) minBytes(path string, v, lo ByteSize) {
	if v < lo {
		c.addf(path, "must be at least %v (got %v)", lo, v)
	}
}

// Validate checks every value and every combination and reports all the
// problems at once as Problems (nil when there are none).
func (cfg *Config) Validate() error {
	var c checker
	c.profiler(cfg.Profiler)
	c.latency(cfg.Latency)
	if !cfg.Profiler.Enabled && !cfg.Latency.Enabled {
		c.addf("latency.enabled", "profiler.enabled and latency.enabled are both false: vigil would have nothing to do")
	}
	c.metrics(cfg.Metrics)
	c.directory(cfg.Sinks.Directory)
	c.otlp(cfg.Sinks.OTLP)
	c.pyroscope(cfg.Sinks.Pyroscope)
	c.queue(cfg.Sinks.Queue)
	c.web(cfg.Web, cfg.Profiler.Interval)
	c.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	c.oneOf("log.format", cfg.Log.Format, "text", "json")
	return c.problems.err()
}

func (c *checker) profiler(p Profiler) {
	c.intRange("profiler.frequency", p.Frequency, 1, 1000)
	c.durRange("profiler.interval", p.Interval, time.Second, 10*time.Minute)
	seen := map[int]bool{}
	for i, pid := range p.PIDs {
		path := fmt.Sprintf("profiler.pids[%d]", i)
		switch {
		case pid < 1:
			c.addf(path, "must be a process id, at least 1 (got %d)", pid)
		case seen[pid]:
			c.addf(path, "duplicate pid %d", pid)
		}
		seen[pid] = true
	}
	c.oneOf("profiler.group_by", p.GroupBy, GroupAuto, GroupExecutable, GroupContainer, GroupPID)
	c.oneOf("profiler.unwind", p.Unwind, UnwindAuto, UnwindFramePointer)
	c.minBytes("profiler.unwind_table_bytes", p.UnwindTableBytes, 2*MiB)
	if p.UnwindTableBytes > 1*GiB {
		c.addf("profiler.unwind_table_bytes", "must be at most 1GiB (got %d)", p.UnwindTableBytes)
	}
	c.durRange("profiler.off_cpu.min_block", p.OffCPU.MinBlock, time.Nanosecond, time.Minute)
	c.oneOf("profiler.off_cpu.stacks", p.OffCPU.Stacks, OffCPUStacksBoth, OffCPUStacksUser, OffCPUStacksKernel)
	if p.OffCPU.Enabled && !p.Enabled {
		c.addf("profiler.off_cpu.enabled", "needs profiler.enabled: true (off-CPU profiles come from the profiler)")
	}
}

func (c *checker) latency(l Latency) {
	c.names("latency.hooks", l.Hooks, Hooks)
	if l.Enabled && len(l.Hooks) == 0 {
		c.addf("latency.hooks", "must name at least one hook while latency.enabled is true")
	}
	c.intRange("latency.scale", l.Scale, 0, 4)
	c.names("latency.skip_strategies", l.SkipStrategies, Strategies)
	if skipsAll(l.SkipStrategies) {
		c.addf("latency.skip_strategies", "skips every strategy, so no hook could attach")
	}
	if l.ByProcess {
		c.intRange("latency.max_series", l.MaxSeries, 1, maxSeriesLimit)
	}
}

func skipsAll(skip []string) bool {
	for _, s := range Strategies {
		if !slices.Contains(skip, s) {
			return false
		}
	}
	return true
}

// names checks a list of names against the known ones, once each.
func (c *checker) names(path string, list, known []string) {
	seen := map[string]bool{}
	for i, n := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !slices.Contains(known, n):
			c.addf(p, "must be %s (got %q)", orList(known), n)
		case seen[n]:
			c.addf(p, "%q is listed twice", n)
		}
		seen[n] = true
	}
}

func (c *checker) metrics(m Metrics) {
	c.durRange("metrics.interval", m.Interval, time.Second, time.Hour)
	if m.Prometheus != "" {
		c.listenAddr("metrics.prometheus", m.Prometheus)
	}
}

func (c *checker) directory(d Directory) {
	c.atLeast("sinks.directory.max_files", d.MaxFiles, 1)
	// One profile of a busy host is hundreds of KiB compressed; less than
	// a MiB would rotate away every file as it is written.
	c.minBytes("sinks.directory.max_bytes", d.MaxBytes, MiB)
}

func (c *checker) queue(q Queue) {
	c.intRange("sinks.queue.max_batches", q.MaxBatches, 1, 10000)
	c.durRange("sinks.queue.retry_initial", q.RetryInitial, time.Millisecond, time.Hour)
	if q.RetryMax < q.RetryInitial {
		c.addf("sinks.queue.retry_max", "must be at least sinks.queue.retry_initial (%v) (got %v)", q.RetryInitial, q.RetryMax)
	}
	if q.MaxAge < q.RetryInitial || q.MaxAge <= 0 {
		c.addf("sinks.queue.max_age", "must be positive and at least sinks.queue.retry_initial (%v) (got %v)", q.RetryInitial, q.MaxAge)
	}
}

func (c *checker) web(w Web, profileInterval time.Duration) {
	if _, err := ParseSwitch(string(w.Enabled)); err != nil {
		c.addf("web.enabled", "%v", err)
	}
	c.listenAddr("web.listen", w.Listen)
	c.durRange("web.retention", w.Retention, time.Minute, 7*24*time.Hour)
	if w.Retention < profileInterval {
		c.addf("web.retention", "must be at least profiler.interval (%v) to keep any profile (got %v)", profileInterval, w.Retention)
	}
	c.minBytes("web.max_bytes", w.MaxBytes, MiB)
}

// orList formats allowed values as "a, b or c".
func orList(values []string) string {
	switch len(values) {
	case 0:
		return "nothing"
	case 1:
		return values[0]
	}
	out := ""
	for i, v := range values[:len(values)-1] {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out + " or " + values[len(values)-1]
}
