package kernels

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

func parseFile(t *testing.T, path string) Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := ParseResults(f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestParseResults(t *testing.T) {
	res := parseFile(t, "testdata/results.log")
	if res.Kernel != "6.1.0-56-cloud-amd64" || res.Done {
		t.Fatalf("kernel %q done %v, want 6.1.0-56-cloud-amd64 and not done", res.Kernel, res.Done)
	}
	wantMods := []ModuleLoad{{"null_blk", ""}, {"sch_netem", "insmod: can't insert 'sch_netem.ko': unknown symbol in module"}}
	if !reflect.DeepEqual(res.Modules, wantMods) {
		t.Errorf("modules = %+v, want %+v", res.Modules, wantMods)
	}
	if res.Suites["read"] != "readlat" {
		t.Errorf("suite of read = %q, want readlat", res.Suites["read"])
	}
	if len(res.Jobs) != 3 {
		t.Fatalf("%d jobs, want 3", len(res.Jobs))
	}
	probe, readlat, runqlat := res.Jobs[0], res.Jobs[1], res.Jobs[2]
	if !probe.Passed() || probe.Seconds != 3 || len(probe.Strategies) != 4 {
		t.Errorf("probe = %+v", probe)
	}
	if s := probe.Strategies[1]; s.Chosen != "kprobe" || !reflect.DeepEqual(s.Skip, []string{"fentry"}) || s.Why != "fentry: disabled" {
		t.Errorf("second strategy line = %+v", s)
	}
	if readlat.Passed() || readlat.ExitCode != 1 {
		t.Errorf("readlat exit %d, want 1", readlat.ExitCode)
	}
	wantTests := []TestResult{
		{"TestAttach", "PASS", ""}, // report lines are strategies, not messages
		{"TestKprobe", "SKIP", "readlat_test.go:60: skipped: this kernel does not support kprobe"},
		{"TestHistogram/edges", "FAIL", "readlat_test.go:80: bucket 3 = 0, want 1"},
		{"TestHistogram", "FAIL", ""},
	}
	if !reflect.DeepEqual(readlat.Tests, wantTests) {
		t.Errorf("tests =\n%+v\nwant\n%+v", readlat.Tests, wantTests)
	}
	if runqlat.ExitCode != -1 || runqlat.Passed() {
		t.Errorf("unfinished job = %+v, want exit -1", runqlat)
	}
}

func TestParseResultsCutsLongLinesAndKeepsATail(t *testing.T) {
	var b strings.Builder
	b.WriteString("vigil-begin: flood\r\n")
	b.WriteString(strings.Repeat("x", 3*maxLineBytes) + "\n")
	for range 2 * maxOutputLines {
		b.WriteString("line\r\n")
	}
	b.WriteString("vigil-end: flood rc=0 seconds=1\nvigil-done\r\n")
	res, err := ParseResults(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Done || len(res.Jobs) != 1 {
		t.Fatalf("done %v, %d jobs; want done and 1 job", res.Done, len(res.Jobs))
	}
	j := res.Jobs[0]
	if len(j.Tail) != maxOutputLines || j.Tail[0] != "line" || !j.Passed() {
		t.Fatalf("tail has %d lines starting %q, exit %d", len(j.Tail), j.Tail[0], j.ExitCode)
	}
}

func FuzzParseResults(f *testing.F) {
	seed, err := os.ReadFile("testdata/results.log")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("vigil-end: x rc=\nvigil-strategy: why=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseResults(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range res.Jobs {
			if len(j.Tail) > maxOutputLines {
				t.Fatalf("tail of %d lines", len(j.Tail))
			}
		}
		PrintTable(&bytes.Buffer{}, []Run{{Kernel: "k", Result: res}})
	})
}

func TestTailLines(t *testing.T) {
	long := strings.Repeat("x", 2*maxLineBytes)
	got, err := TailLines(strings.NewReader("a\r\n\nb\nc\n"+long), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "c" || len(got[1]) != maxLineBytes || len(got[2]) != maxLineBytes {
		t.Fatalf("TailLines = %d lines: %.12q", len(got), got)
	}
}
