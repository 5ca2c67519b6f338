package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

func TestLatencyUsageErrorsExitTwo(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--hooks", "read,disk"}, nil, `unknown hook "disk"`},
		{[]string{"--hooks", ""}, nil, `unknown hook ""`},
		{[]string{"--interval", "0s"}, nil, "--interval must be positive"},
		{[]string{"--interval", "-1s"}, nil, "--interval must be positive"},
		{[]string{"--duration", "-5s"}, nil, "--duration must not be negative"},
		{[]string{"--output", "yaml"}, nil, `--output must be text or json, got "yaml"`},
		{[]string{"--scale", "9"}, nil, "--scale must be between"},
		{[]string{"--skip", "uprobe"}, nil, `--skip: unknown strategy "uprobe"`},
		{[]string{"--max-series", "-1"}, nil, "--max-series must be between"},
		{[]string{"--pid", "-3"}, nil, "--pid must be a process id"},
		{[]string{"--prometheus", "9464"}, nil, "--prometheus"},
		{nil, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT="},
		{nil, map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://"}, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="},
		{nil, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL="},
		{nil, map[string]string{"OTEL_METRIC_EXPORT_INTERVAL": "1s"}, "OTEL_METRIC_EXPORT_INTERVAL="},
	}
	for _, tc := range cases {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"latency"}, tc.args...), &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("latency %v %v: exit %d, want %d (stderr %q)", tc.args, tc.env, code, exitUsage, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 0 {
			t.Errorf("latency %v %v: stderr %q, want one line naming %q", tc.args, tc.env, stderr.String(), tc.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("latency %v: wrote to stdout on a usage error: %q", tc.args, stdout.String())
		}
		for k := range tc.env {
			t.Setenv(k, "")
		}
	}
}

// twentyMs is a kernel histogram of 5 reads of 20 ms, 2 of 3 µs and 1 of 0 ns.
func twentyMs(t *testing.T) hist.Histogram {
	t.Helper()
	l, err := hist.NewLayout(3, 1000, 100e9)
	if err != nil {
		t.Fatal(err)
	}
	h := hist.Histogram{Scale: 3, Offset: l.MinIndex, Counts: make([]uint64, len(l.Bounds))}
	for _, v := range []uint64{20e6, 20e6, 20e6, 20e6, 20e6, 3000, 3000, 0} {
		h.Count++
		h.SumNs += v
		if v == 0 {
			h.ZeroCount++
			continue
		}
		s, _ := l.Bucket(v)
		h.Counts[s]++
	}
	return h
}

func readings(h hist.Histogram) []hist.Reading {
	return []hist.Reading{
		{Name: "vigil.read.duration", Unit: "s", Histograms: []hist.Series{{Attrs: map[string]string{"vigil.hook": "syscall"}, Hist: h}}},
		{Name: "vigil.tcp.retransmits", Unit: "{segment}", Counters: []hist.CounterSeries{{Value: 4}}},
	}
}

func TestTextHistogramRowsArePowersOfTwo(t *testing.T) {
	var b bytes.Buffer
	if err := writeText(&b, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), readings(twentyMs(t))); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"vigil.read.duration {vigil.hook=syscall}  count 8",
		"usecs               : count     distribution",
		"         0 -> 0          : 1         |********|",
		// 20 ms is in (2^-6, 2^-5] s = (15625, 31250] µs: the longest bar.
		"     15625 -> 31250      : 5         |****************************************|",
		// 3 µs is in (2^-19, 2^-18] s = (1.91, 3.81] µs.
		"      1.91 -> 3.81       : 2         |****************                        |",
		"vigil.tcp.retransmits: 4 segment",
	} {
		if !strings.Contains(out, strings.Replace(want, "|********|", "|********                                |", 1)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Empty octaves between the two groups are printed, so bars read as a distribution.
	if !strings.Contains(out, "       977 -> 1953       : 0         |") {
		t.Errorf("empty rows between populated ones are missing:\n%s", out)
	}
}

func TestJSONIntervalCarriesBucketsAndPowersOfTwo(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, time.Unix(0, 0), time.Second, readings(twentyMs(t))); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Fatalf("want one line per interval, got %q", b.String())
	}
	var line jsonInterval
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if len(line.Metrics) != 2 || line.IntervalSeconds != 1 {
		t.Fatalf("got %+v", line)
	}
	m := line.Metrics[0]
	var sum uint64
	for _, c := range m.Counts {
		sum += c
	}
	if *m.Count != 8 || *m.ZeroCount != 1 || sum != 7 || *m.Scale != 3 || m.Attributes["vigil.hook"] != "syscall" {
		t.Errorf("histogram %+v: want count 8, zero 1, 7 in buckets, scale 3", m)
	}
	if got := m.Octaves[len(m.Octaves)-1]; got.LeSeconds != 0.03125 || got.Count != 5 {
		t.Errorf("last power-of-two bucket %+v, want le 0.03125 s with 5", got)
	}
	if c := line.Metrics[1]; c.Name != "vigil.tcp.retransmits" || c.Value == nil || *c.Value != 4 {
		t.Errorf("counter %+v", c)
	}
}

func TestIntervalsShowOnlyWhatChanged(t *testing.T) {
	h1 := twentyMs(t)
	h2 := h1
	h2.Counts = append([]uint64(nil), h1.Counts...)
	slot := 0
	for i, c := range h2.Counts {
		if c == 5 {
			slot = i
		}
	}
	h2.Counts[slot] += 3
	h2.Count += 3
	h2.SumNs += 60e6
	s := newSnapshot()
	s.since(readings(h1))
	d := s.since(readings(h2))
	dh := d[0].Histograms[0].Hist
	// The delta keeps only its non-empty buckets: find the slot by index.
	got := dh.Counts[int(h1.Offset)+slot-int(dh.Offset)]
	if dh.Count != 3 || got != 3 || dh.SumNs != 60e6 || dh.ZeroCount != 0 {
		t.Errorf("delta count %d slot %d sum %d zero %d, want 3, 3, 60e6, 0", dh.Count, got, dh.SumNs, dh.ZeroCount)
	}
	if d[1].Counters[0].Value != 0 {
		t.Errorf("unchanged counter shows %d", d[1].Counters[0].Value)
	}
}

// After a reset (the program reloaded between two intervals) the interval
// shows the whole new reading, histogram and counter alike, as the web view
// does: both use hist.Sub.
func TestIntervalAfterAResetShowsTheNewReading(t *testing.T) {
	before := twentyMs(t)
	before.Count, before.SumNs = before.Count*10, before.SumNs*10
	before.Overflow = 7
	after := twentyMs(t)
	withCounter := func(h hist.Histogram, v uint64) []hist.Reading {
		r := readings(h)
		r[1].Counters[0].Value = v
		return r
	}
	s := newSnapshot()
	s.since(withCounter(before, 10))
	d := s.since(withCounter(after, 3))
	dh := d[0].Histograms[0].Hist
	if dh.Count != after.Count || dh.SumNs != after.SumNs || dh.Overflow != after.Overflow {
		t.Errorf("after a reset: count %d sum %d overflow %d, want the new reading's %d %d %d",
			dh.Count, dh.SumNs, dh.Overflow, after.Count, after.SumNs, after.Overflow)
	}
	// Field by field, buckets that did not go down would read as empty
	// while the count says otherwise.
	var inBuckets uint64
	for _, c := range dh.Counts {
		inBuckets += c
	}
	if inBuckets+dh.ZeroCount != after.Count {
		t.Errorf("after a reset the buckets hold %d values, the count says %d", inBuckets+dh.ZeroCount, after.Count)
	}
	if got, want := d[1].Counters[0].Value, uint64(3); got != want {
		t.Errorf("counter after a reset shows %d, want the new value %d", got, want)
	}
}
