package agent

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/config"
	"github.com/vigil-ebpf/vigil/profiler"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// config cannot import the sampler (it stays free of cilium/ebpf), so its
// default threshold is written twice; this keeps the two equal.
func TestOffCPUMinBlockDefaultIsTheSamplers(t *testing.T) {
	if got := config.Default().Profiler.OffCPU.MinBlock; got != cpuprofile.DefaultMinBlock {
		t.Errorf("profiler.off_cpu.min_block defaults to %v, the sampler to %v", got, cpuprofile.DefaultMinBlock)
	}
}

// noSymbols names nothing: the stacks keep module and offset.
type noSymbols struct{}

func (noSymbols) User(pid int, addrs []uint64) []symbolizer.Location {
	return make([]symbolizer.Location, len(addrs))
}
func (noSymbols) Kernel(addrs []uint64) []symbolizer.Location {
	out := make([]symbolizer.Location, len(addrs))
	for i, a := range addrs {
		out[i] = symbolizer.Location{Address: a, Frames: []symbolizer.Frame{{Function: "schedule"}}}
	}
	return out
}

func groupOf(t *testing.T, kind string, start time.Time) profiler.Group {
	t.Helper()
	var b *profiler.Builder
	batch := &cpuprofile.Batch{}
	s := cpuprofile.Sample{PID: 7, TID: 7, Comm: "waiter", Kernel: []uint64{0xffffffff81000000}, Count: 2, OffCPUNanos: 3e8}
	if kind == profiler.KindOffCPU {
		b = profiler.NewOffCPUBuilder(noSymbols{}, time.Microsecond, start)
		batch.OffCPU = []cpuprofile.Sample{s}
	} else {
		b = profiler.NewBuilder(noSymbols{}, 19, start)
		batch.Samples = []cpuprofile.Sample{s}
	}
	b.Add(batch)
	p, err := b.Profile(start.Add(15 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return profiler.Group{Service: "waiter", Attrs: map[string]string{"process.pid": "7"}, Start: start, End: start.Add(15 * time.Second), Kind: kind, Profile: p}
}

// The agent hands off-CPU profiles to every sink beside the CPU ones (the
// web view too, whose own tests show its switch): the directory writes
// them under their own names.
func TestAgentEmitsOffCPUProfilesToEverySink(t *testing.T) {
	cfg := config.Default()
	cfg.Profiler.OffCPU.Enabled = true
	cfg.Sinks.Directory.Path = t.TempDir()
	cfg.Web.Enabled = config.SwitchOn
	cfg.Web.Listen = "127.0.0.1:0"
	a := newAgent(cfg, Options{})
	if err := a.openSinks(); err != nil {
		t.Fatal(err)
	}
	if err := a.openWeb(); err != nil {
		a.closeAll()
		t.Fatal(err)
	}
	start := time.Now().Add(-15 * time.Second)
	a.emit([]profiler.Group{groupOf(t, profiler.KindCPU, start), groupOf(t, profiler.KindOffCPU, start)})
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(cfg.Sinks.Directory.Path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	if len(names) != 2 || !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "offcpu-waiter-") }) ||
		!slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "waiter-") }) {
		t.Fatalf("directory holds %v, want waiter-* and offcpu-waiter-*", names)
	}
	for _, n := range names {
		f, err := os.Open(cfg.Sinks.Directory.Path + "/" + n)
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if off := strings.HasPrefix(n, "offcpu-"); off != (p.DefaultSampleType == "off_cpu") || (off && p.Sample[0].Value[1] != 3e8) {
			t.Errorf("%s holds a %s profile, values %v", n, p.DefaultSampleType, p.Sample[0].Value)
		}
	}
}

// The agent's own metrics account for blocked time when off-CPU profiles
// are on.
func TestOffCPUReadings(t *testing.T) {
	rs := offCPUReadings(cpuprofile.OffCPUTotals{
		Recorded: 5, RecordedNanos: 500, Below: 7, BelowNanos: 70,
		Lost: map[string]uint64{"counts_map_full": 1}, LostNanos: map[string]uint64{"counts_map_full": 9},
		KernelStacksReused: 4, UserStacksReused: 3,
	})
	got := flattenCounters(rs)
	want := map[string]float64{
		"vigil.profile.off_cpu.time{result=recorded}": 500, "vigil.profile.off_cpu.time{result=below_min_block}": 70,
		"vigil.profile.off_cpu.time{result=lost}": 9, "vigil.profile.off_cpu.intervals{result=lost}": 1,
		"vigil.profile.off_cpu.intervals{result=recorded}": 5, "vigil.profile.off_cpu.lost{reason=counts_map_full}": 9,
		"vigil.profile.off_cpu.stacks.reused{part=kernel}": 4, "vigil.profile.off_cpu.stacks.reused{part=user}": 3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
