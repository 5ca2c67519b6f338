package profilesink

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

var testStart = time.Date(2026, 11, 25, 12, 0, 15, 0, time.UTC)

// testPprof builds a CPU profile like the profiler's: samples/count and
// cpu/nanoseconds at 19 Hz, a mapping with a build ID, a kernel frame, and
// pid/tid/comm labels. hot gets hotSamples samples; extra cold functions
// make the profile bigger.
func testPprof(t testing.TB, hot string, hotSamples int64, extra int) *profile.Profile {
	t.Helper()
	period := int64(time.Second) / 19
	exe := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x500000, Offset: 0, File: "/usr/bin/work", BuildID: "abcdef0123456789", HasFunctions: true}
	kern := &profile.Mapping{ID: 2, Start: 0xffffffff81000000, Limit: 0xffffffff82000000, File: "[kernel.kallsyms]", HasFunctions: true}
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:        &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:            period,
		TimeNanos:         testStart.UnixNano(),
		DurationNanos:     int64(15 * time.Second),
		DefaultSampleType: "cpu",
		Mapping:           []*profile.Mapping{exe, kern},
	}
	fn := func(name string) *profile.Function {
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name, Filename: "work.c"}
		p.Function = append(p.Function, f)
		return f
	}
	loc := func(m *profile.Mapping, addr uint64, f *profile.Function, line int64) *profile.Location {
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: m, Address: addr, Line: []profile.Line{{Function: f, Line: line}}}
		p.Location = append(p.Location, l)
		return l
	}
	main := loc(exe, 0x401000, fn("main"), 10)
	hotLoc := loc(exe, 0x402000, fn(hot), 42)
	sys := loc(kern, 0xffffffff81001000, fn("do_syscall_64"), 0)
	sample := func(n int64, pid, tid int64, locs ...*profile.Location) {
		p.Sample = append(p.Sample, &profile.Sample{
			Location: locs, Value: []int64{n, n * period},
			Label:    map[string][]string{"comm": {"work"}},
			NumLabel: map[string][]int64{"pid": {pid}, "tid": {tid}},
		})
	}
	sample(hotSamples, 4242, 4243, hotLoc, main)
	sample(1, 4242, 4242, sys, main)
	for i := range extra {
		sample(1, 4242, 4242, loc(exe, 0x410000+uint64(i)*16, fn(fmt.Sprintf("cold_%d_%x", i, i*7919)), int64(i)), main)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return p
}

func testProfile(t testing.TB, service string, start time.Time, extra int) Profile {
	return Profile{
		Service: service,
		Attrs:   map[string]string{"host.name": "node-1", "process.executable.name": "work"},
		Start:   start, End: start.Add(15 * time.Second),
		Pprof: testPprof(t, "hot_loop", 30, extra),
	}
}
