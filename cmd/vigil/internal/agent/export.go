package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/config"
	"github.com/vigil-ebpf/vigil/exporter"
	"github.com/vigil-ebpf/vigil/exporter/profilesink"
	"github.com/vigil-ebpf/vigil/profiler"
)

// exportConfig is the OTEL_* environment with the configuration file on top:
// the file can turn OTLP metrics off and set the Prometheus endpoint, the
// console exporter and the interval (OTEL_METRIC_EXPORT_INTERVAL wins).
func exportConfig(m config.Metrics, getenv func(string) string) (exporter.Config, error) {
	ec, err := exporter.ConfigFromEnv(getenv)
	if err != nil {
		return ec, ConfigError{err}
	}
	if !m.OTLP {
		ec.OTLP = nil
	}
	if m.Prometheus != "" {
		addr, err := exporter.LoopbackAddr(m.Prometheus)
		if err != nil {
			return ec, ConfigError{fmt.Errorf("metrics.prometheus: %w", err)}
		}
		ec.Prometheus = addr
	}
	ec.Console = ec.Console || m.Console
	if getenv("OTEL_METRIC_EXPORT_INTERVAL") == "" && m.Interval > 0 {
		ec.Interval = m.Interval
	}
	return ec, nil
}

func (a *Agent) startExport(ctx context.Context) error {
	ec := a.export
	if ec.OTLP == nil && ec.Prometheus == "" && !ec.Console {
		return nil
	}
	sources := []exporter.Source{a.selfSource()}
	for _, h := range a.hooks {
		sources = append(sources, h)
	}
	prov, err := exporter.New(ctx, ec, sources, exporter.Options{Version: a.opts.Version, Console: a.opts.Stdout})
	if err != nil {
		return fmt.Errorf("starting metric export: %w", err)
	}
	a.provider = prov
	if ec.OTLP != nil {
		a.log.Info("exporting metrics over OTLP", "protocol", ec.OTLP.Protocol, "endpoint", ec.OTLP.Endpoint.Redacted(), "interval", ec.Interval)
	}
	if addr := prov.PrometheusAddr(); addr != "" {
		a.log.Info("serving Prometheus metrics", "url", "http://"+addr+"/metrics")
	}
	return nil
}

// selfSource reports the agent's own counters as an exporter source.
type selfSource struct{ a *Agent }

func (a *Agent) selfSource() selfSource { return selfSource{a} }

func (s selfSource) StartTime() time.Time { return s.a.start }

// Stats is the kernel's accounting of the sampler's programs.
func (s selfSource) Stats() []attach.RunStat {
	if s.a.sampler == nil {
		return nil
	}
	return s.a.sampler.Stats()
}

func (s selfSource) Read() ([]hist.Reading, error) {
	var out []hist.Reading
	if s.a.cont != nil {
		st := s.a.cont.Stats()
		out = append(out,
			counter(profiler.MetricSamples, "{sample}", "CPU samples recorded.", nil, st.Samples),
			counter(profiler.MetricUnnamedFrames, "{frame}", "Distinct stack frames that got no function name.", nil, st.Unnamed),
			lostReading(st.Lost),
		)
		if s.a.cfg.Profiler.OffCPU.Enabled {
			out = append(out, offCPUReadings(st.OffCPU)...)
		}
	}
	if s.a.sampler != nil && s.a.sampler.UnwindReport().Chosen == cpuprofile.StrategyTables {
		out = append(out, unwindReadings(s.a.sampler.UnwindStats())...)
	}
	if s.a.sampler != nil && s.a.sampler.PythonReport().Chosen == cpuprofile.StrategyPythonFrames {
		var unreadable map[string]uint64
		if s.a.cont != nil {
			unreadable = s.a.cont.PythonUnreadable()
		}
		out = append(out, pythonReadings(s.a.sampler.PythonStats(), unreadable)...)
	}
	if len(s.a.sinks) > 0 {
		sent := hist.Reading{Name: profilesink.MetricExports, Unit: "{profile}", Description: "Profiles delivered, by sink."}
		failed := hist.Reading{Name: profilesink.MetricExportFailures, Unit: "{attempt}", Description: "Profile deliveries that failed (each retry counts), by sink."}
		dropped := hist.Reading{Name: profilesink.MetricDrops, Unit: "{profile}", Description: "Profiles a sink never delivered, by sink and reason (full queue, expired, rejected by the backend, left at shutdown)."}
		for _, q := range s.a.sinks {
			c := q.Counters()
			attrs := map[string]string{profilesink.AttrSink: q.Name()}
			sent.Counters = append(sent.Counters, hist.CounterSeries{Attrs: attrs, Value: c.Sent})
			failed.Counters = append(failed.Counters, hist.CounterSeries{Attrs: attrs, Value: c.Failures})
			for reason, n := range map[string]uint64{
				"full": c.DroppedFull, "expired": c.DroppedExpired, "rejected": c.DroppedRejected, "shutdown": c.DroppedShutdown,
			} {
				dropped.Counters = append(dropped.Counters, hist.CounterSeries{
					Attrs: map[string]string{profilesink.AttrSink: q.Name(), hist.AttrReason: reason}, Value: n})
			}
		}
		out = append(out, sent, failed, dropped)
	}
	return out, nil
}

func counter(name, unit, desc string, attrs map[string]string, v uint64) hist.Reading {
	return hist.Reading{Name: name, Unit: unit, Description: desc,
		Counters: []hist.CounterSeries{{Attrs: attrs, Value: v}}}
}

// lostReading has one series per loss reason, each reason present from the
// start with zero so dashboards can rate() it.
func lostReading(lost map[string]uint64) hist.Reading {
	r := hist.Reading{Name: profiler.MetricSamplesLost, Unit: "{sample}",
		Description: "CPU samples, or parts of their stacks, that could not be recorded, by reason."}
	reasons := append([]string(nil), cpuprofileReasons()...)
	sort.Strings(reasons)
	for _, reason := range reasons {
		r.Counters = append(r.Counters, hist.CounterSeries{Attrs: map[string]string{hist.AttrReason: reason}, Value: lost[reason]})
	}
	return r
}

// selfCounters flattens the own metrics for the web view.
func (s selfSource) selfCounters() map[string]float64 {
	rs, _ := s.Read()
	out := flattenCounters(rs)
	for _, st := range s.Stats() {
		out[fmt.Sprintf("%s{%s}", exporter.MetricRunDuration, st.Program)] = float64(st.RunTimeNs) / 1e9
	}
	return out
}

// flattenCounters keys each counter series by its name and attributes, as
// the health table shows them.
func flattenCounters(rs []hist.Reading) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rs {
		for _, c := range r.Counters {
			out[selfKey(r.Name, c.Attrs)] = float64(c.Value)
		}
	}
	return out
}

// selfKey is hist.SeriesKey written for people: the attributes in sorted
// order, so the key, and the rate computed against the previous reading's
// key, stays the same from read to read.
func selfKey(name string, attrs map[string]string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		fmt.Fprintf(&b, "{%s=%s}", k, attrs[k])
	}
	return b.String()
}

func cpuprofileReasons() []string { return cpuprofile.LostReasons[:] }

// pythonReadings are the Python walker's processes and frames.
func pythonReadings(st cpuprofile.PythonStats, unreadable map[string]uint64) []hist.Reading {
	procs := hist.Reading{Name: profiler.MetricPythonProcesses, Unit: "{process}", Description: "CPython processes whose frames are walked, by version."}
	for _, v := range st.SortedVersions() {
		procs.Gauges = append(procs.Gauges, hist.CounterSeries{Attrs: map[string]string{"version": v}, Value: uint64(st.Versions[v])})
	}
	bad := hist.Reading{Name: profiler.MetricPythonUnreadable, Unit: "{frame}", Description: "Python frames that could not be named, by reason."}
	if len(unreadable) == 0 {
		unreadable = map[string]uint64{"none": 0}
	}
	for _, k := range slices.Sorted(maps.Keys(unreadable)) {
		bad.Counters = append(bad.Counters, hist.CounterSeries{Attrs: map[string]string{hist.AttrReason: k}, Value: unreadable[k]})
	}
	out := []hist.Reading{counter(profiler.MetricPythonFrames, "{frame}", "Python frames recorded.", nil, st.Frames), bad}
	if len(procs.Gauges) > 0 {
		out = append(out, procs)
	}
	return out
}

// unwindReadings are the table unwinder's counters and its memory.
func unwindReadings(st cpuprofile.UnwindStats) []hist.Reading {
	by := func(name, unit, desc, key string, m map[string]uint64) hist.Reading {
		r := hist.Reading{Name: name, Unit: unit, Description: desc}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			r.Counters = append(r.Counters, hist.CounterSeries{Attrs: map[string]string{key: k}, Value: m[k]})
		}
		return r
	}
	tables := map[string]uint64{"built": st.TablesBuilt, "no_cfi": st.TablesNoCFI, "no_room": st.TablesNoRoom, "too_large": st.TablesTooLarge, "failed": st.TablesFailed}
	unsupported := st.Unsupported
	if len(unsupported) == 0 {
		unsupported = map[string]uint64{"none": 0}
	}
	return []hist.Reading{
		by(profiler.MetricUnwindFrames, "{frame}", "User stack frames walked, by method: table rule or frame pointer (and why a frame fell back to it).", "method", st.Frames),
		by(profiler.MetricUnwindTruncated, "{stack}", "User stacks that ended before their outermost frame, by reason.", hist.AttrReason, st.Truncated),
		by(profiler.MetricUnwindUnsupported, "{row}", "Unwind table rows vigil can't execute, by reason; a walk that reaches one stops there.", hist.AttrReason, unsupported),
		by(profiler.MetricUnwindTables, "{file}", "Files whose unwind tables were built, had none (frame pointers), did not fit the budget, or failed.", "result", tables),
		{Name: profiler.MetricUnwindTableBytes, Unit: "By", Description: "BPF memory of the unwind tables: in use and reserved (profiler.unwind_table_bytes).",
			Gauges: []hist.CounterSeries{{Attrs: map[string]string{"use": "used"}, Value: st.TableBytes}, {Attrs: map[string]string{"use": "reserved"}, Value: st.TableCapacity},
				{Attrs: map[string]string{"use": "user_space"}, Value: st.UserBytes}}},
	}
}

// offCPUReadings account for the blocked time the sampler saw: recorded
// with stacks, below profiler.off_cpu.min_block, and lost (also by reason),
// so recorded + below + lost is all of it.
func offCPUReadings(t cpuprofile.OffCPUTotals) []hist.Reading {
	var lost uint64
	for _, n := range t.Lost {
		lost += n
	}
	byResult := func(name, unit, desc string, recorded, below, lost uint64) hist.Reading {
		r := hist.Reading{Name: name, Unit: unit, Description: desc}
		for _, res := range []struct {
			name string
			v    uint64
		}{{"below_min_block", below}, {"lost", lost}, {"recorded", recorded}} {
			r.Counters = append(r.Counters, hist.CounterSeries{Attrs: map[string]string{"result": res.name}, Value: res.v})
		}
		return r
	}
	// Every reason from the start, with zero, so dashboards can rate() it.
	byReason := hist.Reading{Name: profiler.MetricOffCPULost, Unit: "ns",
		Description: "Blocked time the off-CPU profiler saw but could not record, by reason (record_evicted intervals have no known time)."}
	for _, k := range slices.Sorted(slices.Values(cpuprofile.OffCPULostReasons[:])) {
		byReason.Counters = append(byReason.Counters, hist.CounterSeries{Attrs: map[string]string{hist.AttrReason: k}, Value: t.LostNanos[k]})
	}
	return []hist.Reading{
		byResult(profiler.MetricOffCPUIntervals, "{interval}", "Blocked intervals seen by the off-CPU profiler: recorded with stacks, below min_block (counted only), lost.",
			t.Recorded, t.Below, lost),
		byResult(profiler.MetricOffCPUTime, "ns", "Blocked time seen by the off-CPU profiler: recorded with stacks, below min_block (counted only), lost.",
			t.RecordedNanos, t.BelowNanos, profiler.LostNanos(t)),
		byReason,
		{Name: profiler.MetricOffCPUStacksReused, Unit: "{stack}",
			Description: "Blocked switches whose kernel or user stack came from the thread's cache of stacks it blocked with before, not from a walk (compare with the intervals).",
			Counters: []hist.CounterSeries{{Attrs: map[string]string{"part": "kernel"}, Value: t.KernelStacksReused},
				{Attrs: map[string]string{"part": "user"}, Value: t.UserStacksReused}}},
	}
}
