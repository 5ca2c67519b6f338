package profiler

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
)

// offCPUBatch is a drained batch as the sampler hands it out with OffCPU
// on: two blocked stacks of one process, one with a CPython frame list
// left unread, plus time below the threshold and time lost.
func offCPUBatch() *cpuprofile.Batch {
	return &cpuprofile.Batch{
		// CPU samples of the same drain must not leak into the off-CPU profile.
		Samples: []cpuprofile.Sample{{PID: 10, TID: 11, Comm: "hot", User: []uint64{0x1000}, Count: 50}},
		OffCPU: []cpuprofile.Sample{
			// Blocked in the kernel under main -> caller -> inlined_leaf.
			{PID: 10, TID: 11, Comm: "hot", Kernel: []uint64{0xffff0000, 0xffff0100}, User: []uint64{0x1000, 0x2000, 0x3000},
				Count: 4, OffCPUNanos: 40_000_000},
			{PID: 10, TID: 12, Comm: "hot-worker", Kernel: []uint64{0xffff0000}, User: []uint64{0x1000},
				UserTruncated: "bad_read", Count: 1, OffCPUNanos: 2_500_000_000},
		},
		OffCPUTotals: cpuprofile.OffCPUTotals{
			Seen: 4 + 1 + 300 + 2 + 1, SeenNanos: 40_000_000 + 2_500_000_000 + 150_000 + 7_000_000 + 1_000_000,
			Recorded: 5, RecordedNanos: 2_540_000_000,
			Below: 300, BelowNanos: 150_000,
			Lost:      map[string]uint64{"counts_map_full": 2, "stack_map_full": 1},
			LostNanos: map[string]uint64{"counts_map_full": 7_000_000, "stack_map_full": 1_000_000},
			StackLost: map[string]uint64{"user_stack_incomplete": 1},
		},
	}
}

func buildOffCPU(t *testing.T, batches ...*cpuprofile.Batch) (*profile.Profile, *Builder) {
	t.Helper()
	start := time.Unix(1700000000, 0)
	b := NewOffCPUBuilder(newFake(), time.Microsecond, start)
	for _, batch := range batches {
		b.Add(batch)
	}
	p, err := b.Profile(start.Add(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestOffCPUProfileTypesAndValues(t *testing.T) {
	p, _ := buildOffCPU(t, offCPUBatch())
	if len(p.SampleType) != 2 || p.SampleType[0].Type != "samples" || p.SampleType[0].Unit != "count" ||
		p.SampleType[1].Type != "off_cpu" || p.SampleType[1].Unit != "nanoseconds" {
		t.Errorf("sample types %v", p.SampleType)
	}
	if p.PeriodType == nil || p.PeriodType.Type != "off_cpu" || p.PeriodType.Unit != "nanoseconds" || p.Period != 1 {
		t.Errorf("period %d %v", p.Period, p.PeriodType)
	}
	if p.DefaultSampleType != "off_cpu" || !IsOffCPU(p) || p.DurationNanos != int64(3*time.Second) {
		t.Errorf("default %q, duration %d", p.DefaultSampleType, p.DurationNanos)
	}
	got := map[string][2]int64{}
	for _, s := range p.Sample {
		got[strings.Join(stackNames(s), ";")] = [2]int64{s.Value[0], s.Value[1]}
	}
	want := map[string][2]int64{
		"clear_page;do_syscall_64;hot;inlined_leaf;caller;main": {4, 40_000_000},
		"clear_page;hot;[user stack truncated: bad_read]":       {1, 2_500_000_000},
		"[off-cpu below min-block]":                             {300, 150_000},
		"[lost off-cpu time: counts_map_full]":                  {2, 7_000_000},
		"[lost off-cpu time: stack_map_full]":                   {1, 1_000_000},
	}
	for stack, v := range want {
		if got[stack] != v {
			t.Errorf("stack %s: %v, want %v", stack, got[stack], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("stacks %v, want exactly %v (no CPU sample)", got, want)
	}
}

func TestOffCPUTotalsAddUp(t *testing.T) {
	batch := offCPUBatch()
	p, b := buildOffCPU(t, batch, offCPUBatch())
	var intervals, nanos int64
	for _, s := range p.Sample {
		intervals += s.Value[0]
		nanos += s.Value[1]
	}
	seen := batch.OffCPUTotals
	if intervals != 2*int64(seen.Seen) || nanos != 2*int64(seen.SeenNanos) {
		t.Errorf("profile totals %d intervals, %d ns; the kernel saw %d, %d", intervals, nanos, 2*seen.Seen, 2*seen.SeenNanos)
	}
	st := b.Stats()
	o := st.OffCPU
	if o.Recorded != 10 || o.RecordedNanos != 2*2_540_000_000 || o.Below != 600 || o.BelowNanos != 300_000 ||
		o.Lost["counts_map_full"] != 4 || o.LostNanos["stack_map_full"] != 2_000_000 || o.Seen != 2*seen.Seen {
		t.Errorf("off-CPU stats %+v", o)
	}
	if o.RecordedNanos+o.BelowNanos+LostNanos(o) != o.SeenNanos {
		t.Errorf("recorded + below + lost = %d ns, seen %d", o.RecordedNanos+o.BelowNanos+LostNanos(o), o.SeenNanos)
	}
	if st.Samples != 10 || st.Processes != 1 || st.Lost["counts_map_full"] != 4 {
		t.Errorf("stats %+v", st)
	}
	want := "vigil off-cpu: recorded 5.08s in 10 intervals; below min-block 1µs: 300µs in 600 intervals (counted, no stacks); " +
		"lost: counts_map_full 14ms in 4 intervals stack_map_full 2ms in 2 intervals; " +
		"recorded with part of the stack lost: user_stack_incomplete=2"
	if len(p.Comments) != 1 || p.Comments[0] != want {
		t.Errorf("comments %q\nwant %q", p.Comments, want)
	}
}

func TestOffCPULabelsAndMappings(t *testing.T) {
	p, _ := buildOffCPU(t, offCPUBatch())
	for _, s := range p.Sample {
		names := stackNames(s)
		if names[0] == "[off-cpu below min-block]" || strings.HasPrefix(names[0], "[lost") {
			if s.Label != nil || s.NumLabel != nil {
				t.Errorf("synthetic stack %v carries labels %v %v", names, s.Label, s.NumLabel)
			}
			continue
		}
		if s.Label["comm"] == nil || s.NumLabel["pid"][0] != 10 || s.NumLabel["tid"] == nil {
			t.Errorf("stack %v: labels %v %v", names, s.Label, s.NumLabel)
		}
	}
	files := map[string]bool{}
	for _, m := range p.Mapping {
		files[m.File] = true
	}
	if !files["/usr/bin/hot"] || !files["[kernel.kallsyms]"] {
		t.Errorf("mappings %v", files)
	}
}

func TestOffCPUFoldedAndTopWeighNanoseconds(t *testing.T) {
	p, _ := buildOffCPU(t, offCPUBatch())
	var buf bytes.Buffer
	if err := WriteFolded(&buf, p); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"hot;main;caller;inlined_leaf;hot;do_syscall_64;clear_page 40000000\n",
		"hot-worker;[user stack truncated: bad_read];hot;clear_page 2500000000\n",
		"[off-cpu below min-block] 150000\n",
	} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("folded output lacks %q:\n%s", line, buf.String())
		}
	}
	entries, total := Top(p, 2)
	if total != 2_548_150_000 || entries[0].Name != "clear_page" || entries[0].Flat != 2_540_000_000 {
		t.Errorf("top: total %d, %+v", total, entries)
	}
	buf.Reset()
	if err := WriteTop(&buf, p, 3); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "2.54s") || !strings.Contains(buf.String(), "clear_page") {
		t.Errorf("top prints durations:\n%s", buf.String())
	}
}

// The real go tool pprof reads an off-CPU profile and weighs it by time
// with -sample_index=off_cpu.
func TestGoToolPprofReadsOffCPUProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: runs go tool pprof")
	}
	p, _ := buildOffCPU(t, offCPUBatch())
	path := filepath.Join(t.TempDir(), "offcpu.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("go", "tool", "pprof", "-sample_index=off_cpu", "-top", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	s := string(out)
	// 2.54s under clear_page of the 2.548s total, in pprof's time units.
	if !strings.Contains(s, "Type: off_cpu") || !strings.Contains(s, "of 2548.15ms total") ||
		!strings.Contains(s, "2540ms 99.68% 99.68%     2540ms 99.68%  clear_page") {
		t.Errorf("go tool pprof -sample_index=off_cpu -top:\n%s", s)
	}
}

// The continuous profiler emits, per group, an off-CPU profile beside the
// CPU one, and one for a group that only waited.
func TestContinuousEmitsOffCPUBesideCPU(t *testing.T) {
	root := fakeProc(t, map[int][2]string{10: {"hot", "/system.slice/hot.service"}, 30: {"sleeper", "/user.slice"}})
	batch := offCPUBatch()
	batch.OffCPU = append(batch.OffCPU, cpuprofile.Sample{PID: 30, TID: 30, Comm: "sleeper", Kernel: []uint64{0xffff0000}, Count: 1, OffCPUNanos: 1e9})
	s := &fakeSampler{batches: []*cpuprofile.Batch{batch}}
	c := NewContinuous(s, fakePrep{newFake()}, ContinuousOptions{
		Frequency: 19, Interval: time.Hour, DrainInterval: 10 * time.Millisecond, Proc: ProcReader{Root: root}, MinBlock: time.Microsecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var got []Group
	if err := c.Run(ctx, func(g []Group) { got = append(got, g...) }); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, g := range got {
		kinds = append(kinds, g.Service+"/"+g.Kind)
		if g.Profile.DefaultSampleType != g.Kind {
			t.Errorf("group %s kind %s holds a %s profile", g.Service, g.Kind, g.Profile.DefaultSampleType)
		}
	}
	if strings.Join(kinds, " ") != "hot/cpu hot/off_cpu sleeper/off_cpu" {
		t.Fatalf("groups %v, want hot's CPU and off-CPU profiles and sleeper's off-CPU one", kinds)
	}
	if got[1].Attrs["process.pid"] != "10" || got[1].Attrs["process.executable.name"] != "hot" {
		t.Errorf("off-CPU group attrs %v", got[1].Attrs)
	}
	var ns int64
	for _, smp := range got[1].Profile.Sample {
		ns += smp.Value[1]
	}
	if ns != 2_540_000_000 || total(got[0]) != 50 {
		t.Errorf("hot: %d ns off-CPU, %d CPU samples", ns, total(got[0]))
	}
	st := c.Stats()
	if st.Profiles != 3 || st.OffCPU.BelowNanos != 150_000 || st.OffCPU.Lost["counts_map_full"] != 2 || st.Samples != 50 {
		t.Errorf("stats %+v", st)
	}
}

// A kernel stack taken from the switch's tracepoint starts with the BPF
// program and the tracepoint's own frames: they are not where the thread
// waited, and go.
func TestOffCPUStacksStartAtTheScheduler(t *testing.T) {
	sym := newFake()
	sym.kernel[0xffff0010] = "bpf_prog_91f7_offcpu_switch"
	sym.kernel[0xffff0020] = "bpf_trace_run4"
	sym.kernel[0xffff0030] = "__traceiter_sched_switch"
	sym.kernel[0xffff0040] = "__schedule"
	b := NewOffCPUBuilder(sym, time.Microsecond, time.Now())
	b.Add(&cpuprofile.Batch{OffCPU: []cpuprofile.Sample{{PID: 1, TID: 1, Comm: "x",
		Kernel: []uint64{0xffff0010, 0xffff0021, 0xffff0031, 0xffff0041, 0xffff0100}, User: []uint64{0x1000}, Count: 1, OffCPUNanos: 5}}})
	p, err := b.Profile(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(stackNames(p.Sample[0]), ";"); got != "__schedule;do_syscall_64;hot" {
		t.Errorf("stack %s, want it to start at __schedule", got)
	}
}
