package profiler

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// fakeSymbols names addresses from a table; an address missing from it is
// returned unnamed inside its mapping, as the real symbolizer does.
type fakeSymbols struct {
	user   map[uint64][]symbolizer.Frame
	kernel map[uint64]string
	exe    *symbolizer.Mapping
	kmap   *symbolizer.Mapping
	asked  []uint64
}

func newFake() *fakeSymbols {
	return &fakeSymbols{
		user: map[uint64][]symbolizer.Frame{
			0x1000: {{Function: "hot", File: "hot.c", Line: 3}},
			0x1fff: {{Function: "inlined_leaf", File: "hot.c", Line: 7}, {Function: "caller", File: "hot.c", Line: 12}},
			0x2fff: {{Function: "main", File: "hot.c", Line: 20}},
		},
		kernel: map[uint64]string{0xffff0000: "clear_page", 0xffff00ff: "do_syscall_64"},
		exe:    &symbolizer.Mapping{Start: 0x1000, Limit: 0x5000, Path: "/usr/bin/hot", BuildID: "abcd"},
		kmap:   &symbolizer.Mapping{Start: 0xffff0000, Limit: 0xffffffff, Path: "[kernel.kallsyms]", Kernel: true},
	}
}

func (f *fakeSymbols) User(pid int, addrs []uint64) []symbolizer.Location {
	out := make([]symbolizer.Location, len(addrs))
	for i, a := range addrs {
		f.asked = append(f.asked, a)
		out[i] = symbolizer.Location{Address: a, Mapping: f.exe, Frames: f.user[a]}
	}
	return out
}

func (f *fakeSymbols) Kernel(addrs []uint64) []symbolizer.Location {
	out := make([]symbolizer.Location, len(addrs))
	for i, a := range addrs {
		out[i] = symbolizer.Location{Address: a, Mapping: f.kmap}
		if n := f.kernel[a]; n != "" {
			out[i].Frames = []symbolizer.Frame{{Function: n}}
		}
	}
	return out
}

func testBatch() *cpuprofile.Batch {
	return &cpuprofile.Batch{
		Samples: []cpuprofile.Sample{
			// Return addresses: callers are symbolized one byte back.
			{PID: 10, TID: 11, Comm: "hot", User: []uint64{0x1000, 0x2000, 0x3000}, Count: 3},
			{PID: 10, TID: 11, Comm: "hot", Kernel: []uint64{0xffff0000, 0xffff0100}, User: []uint64{0x1000, 0x2000, 0x3000}, Count: 2},
			{PID: 10, TID: 12, Comm: "hot-worker", User: []uint64{0x4444}, KernelLost: true, Count: 1},
		},
		Lost: map[string]uint64{"counts_map_full": 4, "kernel_stack_collision": 1},
	}
}

func buildTestProfile(t *testing.T) (*profile.Profile, *fakeSymbols, *Builder) {
	t.Helper()
	sym := newFake()
	start := time.Unix(1700000000, 0)
	b := NewBuilder(sym, 99, start)
	b.Add(testBatch())
	p, err := b.Profile(start.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return p, sym, b
}

func TestBuilderWritesValidCPUProfile(t *testing.T) {
	p, _, _ := buildTestProfile(t)
	if p.Period != int64(time.Second)/99 || p.PeriodType.Type != "cpu" || p.PeriodType.Unit != "nanoseconds" {
		t.Errorf("period %d %v", p.Period, p.PeriodType)
	}
	if len(p.SampleType) != 2 || p.SampleType[0].Type != "samples" || p.SampleType[1].Unit != "nanoseconds" {
		t.Errorf("sample types %v", p.SampleType)
	}
	if p.DurationNanos != int64(2*time.Second) || p.TimeNanos == 0 {
		t.Errorf("time %d duration %d", p.TimeNanos, p.DurationNanos)
	}
	var total int64
	for _, s := range p.Sample {
		total += s.Value[0]
		if s.Value[1] != s.Value[0]*p.Period {
			t.Errorf("cpu value %d != %d samples * period", s.Value[1], s.Value[0])
		}
	}
	// 3 + 2 + 1 recorded samples and 4 dropped whole: all accounted for.
	if total != 10 {
		t.Errorf("total samples %d, want 10 (6 recorded + 4 lost)", total)
	}
	// Round trip through the wire format.
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Parse(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestBuilderSymbolizesCallSitesAndLeaf(t *testing.T) {
	_, sym, _ := buildTestProfile(t)
	want := map[uint64]bool{0x1000: true, 0x1fff: true, 0x2fff: true, 0x4444: true}
	for _, a := range sym.asked {
		if !want[a] {
			t.Errorf("asked to symbolize %#x; the leaf is used as is and callers one byte back", a)
		}
	}
	if len(sym.asked) != len(want) {
		t.Errorf("asked %d addresses (%x), want each distinct address once", len(sym.asked), sym.asked)
	}
}

func TestBuilderStacksLabelsAndInlining(t *testing.T) {
	p, _, _ := buildTestProfile(t)
	var found bool
	for _, s := range p.Sample {
		names := stackNames(s)
		if strings.Join(names, ";") == "clear_page;do_syscall_64;hot;inlined_leaf;caller;main" {
			found = true
			if s.Value[0] != 2 || s.Label["comm"][0] != "hot" || s.NumLabel["pid"][0] != 10 || s.NumLabel["tid"][0] != 11 {
				t.Errorf("sample %v: value %d labels %v %v", names, s.Value[0], s.Label, s.NumLabel)
			}
		}
	}
	if !found {
		t.Errorf("no kernel+user sample with the inlined frames in order; samples:\n%s", p)
	}
}

func TestBuilderMarksLostAndUnnamed(t *testing.T) {
	p, _, b := buildTestProfile(t)
	var lostWhole, lostPart bool
	for _, s := range p.Sample {
		names := strings.Join(stackNames(s), ";")
		switch {
		case names == "[lost samples: counts_map_full]" && s.Value[0] == 4:
			lostWhole = true
		case names == "[kernel stack lost];hot+0x3444" && s.Value[0] == 1:
			lostPart = true
		}
	}
	if !lostWhole || !lostPart {
		t.Errorf("lost whole=%v part=%v; profile:\n%s", lostWhole, lostPart, p)
	}
	if len(p.Comments) != 1 || !strings.Contains(p.Comments[0], "counts_map_full=4") || !strings.Contains(p.Comments[0], "kernel_stack_collision=1") {
		t.Errorf("comments %q", p.Comments)
	}
	st := b.Stats()
	if st.Samples != 6 || st.Lost["counts_map_full"] != 4 || st.Processes != 1 || st.UnnamedFrame != 1 {
		t.Errorf("stats %+v", st)
	}
	for _, m := range p.Mapping {
		// The executable has an unnamed location, so it may not claim functions.
		if m.File == "/usr/bin/hot" && m.HasFunctions {
			t.Errorf("mapping %s claims HasFunctions with an unnamed location", m.File)
		}
	}
}

func TestBuilderHasFlagsWhenAllNamed(t *testing.T) {
	sym := newFake()
	b := NewBuilder(sym, 99, time.Now())
	b.Add(&cpuprofile.Batch{Samples: []cpuprofile.Sample{
		{PID: 1, TID: 1, Comm: "x", Kernel: []uint64{0xffff0000}, User: []uint64{0x1000, 0x3000}, Count: 1},
	}})
	p, err := b.Profile(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Mapping {
		switch m.File {
		case "/usr/bin/hot":
			if !m.HasFunctions || !m.HasFilenames || !m.HasLineNumbers || m.BuildID != "abcd" {
				t.Errorf("exe mapping %+v: all locations have names, files and lines", m)
			}
		case "[kernel.kallsyms]":
			if !m.HasFunctions || m.HasFilenames || m.HasLineNumbers {
				t.Errorf("kernel mapping %+v: names only", m)
			}
		}
	}
}

func TestForgetProcessResymbolizesAfterExec(t *testing.T) {
	sym := newFake()
	b := NewBuilder(sym, 99, time.Now())
	batch := &cpuprofile.Batch{Samples: []cpuprofile.Sample{{PID: 7, TID: 7, Comm: "a", User: []uint64{0x1000}, Count: 1}}}
	b.Add(batch)
	b.Add(batch)
	if len(sym.asked) != 1 {
		t.Fatalf("asked %d times for one address of one process", len(sym.asked))
	}
	b.ForgetProcess(7)
	b.Add(batch)
	if len(sym.asked) != 2 {
		t.Fatalf("after an exec the address must be symbolized again; asked %d times", len(sym.asked))
	}
}

func TestWriteFolded(t *testing.T) {
	p, _, _ := buildTestProfile(t)
	var buf bytes.Buffer
	if err := WriteFolded(&buf, p); err != nil {
		t.Fatal(err)
	}
	want := "hot;main;caller;inlined_leaf;hot;do_syscall_64;clear_page 2\n"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("folded output lacks %q:\n%s", want, buf.String())
	}
	if !strings.Contains(buf.String(), "hot;main;caller;inlined_leaf;hot 3\n") {
		t.Errorf("folded output:\n%s", buf.String())
	}
}

func TestTop(t *testing.T) {
	p, _, _ := buildTestProfile(t)
	entries, total := Top(p, 3)
	if total != 10 || len(entries) != 3 {
		t.Fatalf("total %d entries %v", total, entries)
	}
	if entries[0].Name != "[lost samples: counts_map_full]" || entries[0].Flat != 4 {
		t.Errorf("first %+v", entries[0])
	}
	if entries[1].Name != "hot" || entries[1].Flat != 3 || entries[1].Cum != 5 {
		t.Errorf("second %+v", entries[1])
	}
}

// go tool pprof itself must read what vigil writes.
func TestGoToolPprofReadsProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: runs go tool pprof")
	}
	p, _, _ := buildTestProfile(t)
	path := filepath.Join(t.TempDir(), "cpu.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, mode := range []string{"-top", "-traces", "-raw"} {
		out, err := exec.Command("go", "tool", "pprof", mode, path).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof %s: %v\n%s", mode, err, out)
		}
		if !strings.Contains(string(out), "inlined_leaf") {
			t.Errorf("go tool pprof %s output lacks inlined_leaf:\n%s", mode, out)
		}
	}
}

func stackNames(s *profile.Sample) []string {
	var names []string
	for _, l := range s.Location {
		for _, ln := range l.Line {
			names = append(names, ln.Function.Name)
		}
	}
	return names
}

// outsideFake knows no mapping for 0x9000 until a library appears there.
type outsideFake struct {
	*fakeSymbols
	loaded bool
}

func (f *outsideFake) User(pid int, addrs []uint64) []symbolizer.Location {
	out := f.fakeSymbols.User(pid, addrs)
	for i := range out {
		if out[i].Address == 0x9000 {
			out[i] = symbolizer.Location{Address: 0x9000}
			if f.loaded {
				out[i].Mapping = &symbolizer.Mapping{Start: 0x9000, Limit: 0xa000, Path: "/usr/lib/libplugin.so"}
				out[i].Frames = []symbolizer.Frame{{Function: "plugin_work"}}
			}
		}
	}
	return out
}

// An address outside every known mapping (a library opened with dlopen
// after the process was prepared) is asked again in the next batch rather
// than left unnamed for the rest of the profile.
func TestUnmappedAddressIsAskedAgain(t *testing.T) {
	f := &outsideFake{fakeSymbols: newFake()}
	b := NewBuilder(f, 99, time.Now())
	batch := &cpuprofile.Batch{Samples: []cpuprofile.Sample{{PID: 7, TID: 7, Comm: "host", User: []uint64{0x9000, 0x2fff + 1}, Count: 1}}}
	b.Add(batch)
	f.loaded = true
	b.Add(batch)
	p, err := b.Profile(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, s := range p.Sample {
		if names := sampleNamesOf(s); len(names) > 0 && names[0] == "plugin_work" {
			named = true
		}
	}
	if !named {
		t.Fatal("the address was not named once its library appeared")
	}
}

func sampleNamesOf(s *profile.Sample) []string {
	var out []string
	for _, l := range s.Location {
		for _, ln := range l.Line {
			out = append(out, ln.Function.Name)
		}
	}
	return out
}
