package unwind

import (
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// benchFiles are the libraries the lead sizes BPF maps from; missing ones
// are skipped.
var benchFiles = []string{
	"/lib/x86_64-linux-gnu/libc.so.6",
	"/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
	"/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0",
	"/usr/bin/python3.11",
	"/usr/bin/node",
	"/usr/lib/llvm-19/lib/libLLVM.so.19.1",
}

func BenchmarkBuild(b *testing.B) {
	for _, path := range benchFiles {
		f, err := elf.Open(path)
		if err != nil {
			continue
		}
		b.Run(filepath.Base(path), func(b *testing.B) {
			b.ReportAllocs()
			var tab *Table
			for b.Loop() {
				tab, err = Build(f)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(tab.Rows)), "rows")
			b.ReportMetric(float64(tab.SourceBytes()), "src-bytes")
		})
		f.Close()
	}
}

// TestTableSizes logs what the BPF side needs to size its maps.
func TestTableSizes(t *testing.T) {
	for _, path := range benchFiles {
		if _, err := os.Stat(path); err != nil {
			t.Logf("%s: skipped: %v", path, err)
			continue
		}
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		cpu0 := cpuTime()
		tab, err := Build(f)
		cpu := cpuTime() - cpu0
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		checkInvariants(t, tab)
		t.Logf("%s: rows=%d fdes=%d distinct_rules=%d source_bytes=%d cpu=%v sources=%v unsupported=%v",
			filepath.Base(path), len(tab.Rows), tab.FDEs, distinctRules(tab), tab.SourceBytes(), cpu, tab.Sources, tab.Unsupported)
	}
}

func distinctRules(t *Table) int {
	seen := make(map[Rule]struct{})
	for _, r := range t.Rows {
		seen[r.Rule] = struct{}{}
	}
	return len(seen)
}

// checkInvariants asserts the documented shape of Table.Rows.
func checkInvariants(t testing.TB, tab *Table) {
	t.Helper()
	rows := tab.Rows
	if len(rows) == 0 {
		return
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].PC <= rows[i-1].PC {
			t.Fatalf("row %d: pc %#x not above %#x", i, rows[i].PC, rows[i-1].PC)
		}
		if rows[i].Rule == rows[i-1].Rule {
			t.Fatalf("row %d at %#x repeats the previous rule %+v", i, rows[i].PC, rows[i].Rule)
		}
	}
	if last := rows[len(rows)-1]; last.Rule.CFA != CFANone {
		t.Fatalf("last row %+v is not CFANone", last)
	}
	if rows[0].Rule.CFA == CFANone {
		t.Fatalf("first row is CFANone")
	}
}

// TestWithoutSectionHeaders finds .eh_frame through PT_GNU_EH_FRAME and
// PT_LOAD alone, as for a file whose section headers were stripped.
func TestWithoutSectionHeaders(t *testing.T) {
	const path = "/lib/x86_64-linux-gnu/libc.so.6"
	f, err := elf.Open(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	defer f.Close()
	want, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	f.Sections = nil
	got, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Rows, want.Rows) {
		t.Errorf("without section headers: %d rows, with: %d", len(got.Rows), len(want.Rows))
	}
}

// cpuTime is the process's user+system CPU time, which (unlike wall time
// on a shared machine) is what the 0.5 CPU-second budget is about. It
// includes the garbage collector's background work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
