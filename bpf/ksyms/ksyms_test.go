package ksyms

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"github.com/vigil-ebpf/vigil/bpf/kernels/report"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

func TestParseSymbol(t *testing.T) {
	for in, want := range map[string]symbolizer.KernelSymbol{
		"vfs_read+0x12/0x1a0":                  {Name: "vfs_read", Offset: 0x12, Size: 0x1a0},
		"ext4_file_write_iter+0x0/0x90 [ext4]": {Name: "ext4_file_write_iter", Size: 0x90, Module: "ext4"},
		"nvme_irq+0x4/0x20 [nvme 0123abcd]":    {Name: "nvme_irq", Offset: 4, Size: 0x20, Module: "nvme"},
		"throttle_active_work.cold+0x1/0x63":   {Name: "throttle_active_work.cold", Offset: 1, Size: 0x63},
		"0xffffffffc0201003":                   {},
		"":                                     {},
		"x+0x1":                                {},
		"x+1/2":                                {},
		"+0x1/0x2":                             {},
		"x+0x1/0x2 [":                          {},
		"x+0x1/0x2 []":                         {},
	} {
		if got := parseSymbol(in); got != want {
			t.Errorf("parseSymbol(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestStrategyOrderIsTheRegistrys(t *testing.T) {
	testenv.RequireOrder(t, Hook, []string{StrategySnprintf, StrategyKallsyms})
}

// openBPF opens the namer and skips when this kernel can't name in BPF
// (before 5.16), which the kernel matrix checks against its expectation.
func openBPF(t *testing.T) *Namer {
	t.Helper()
	testenv.RequireRoot(t)
	n, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	t.Log(report.Line(n.Report(), nil))
	if !n.BPF() {
		t.Skipf("skipped: kernel addresses are named from kallsyms here: %s", n.Report())
	}
	return n
}

type kallsymsEntry struct {
	addr   uint64
	name   string
	module string // "" for the kernel image
}

// readKallsyms returns the text symbols of /proc/kallsyms.
func readKallsyms(t *testing.T) []kallsymsEntry {
	t.Helper()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []kallsymsEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || !strings.Contains("tTwW", fs[1]) || len(fs[1]) != 1 {
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		e := kallsymsEntry{addr: a, name: fs[2]}
		if len(fs) > 3 {
			e.module = strings.Trim(fs[3], "[]")
		}
		out = append(out, e)
	}
	return out
}

// The BPF namer agrees with /proc/kallsyms on a few hundred functions of
// the kernel image and, when any are loaded, of modules and BPF programs:
// the name (or an alias at the same address), the module and the offset.
func TestAgreesWithKallsyms(t *testing.T) {
	n := openBPF(t)
	all := readKallsyms(t)
	namesAt := map[uint64][]string{}
	for _, e := range all {
		namesAt[e.addr] = append(namesAt[e.addr], e.name)
	}
	var pick []kallsymsEntry
	step := max(1, len(all)/300)
	perModule := map[string]int{}
	for i, e := range all {
		if e.module == "bpf" && !strings.HasSuffix(e.name, "_name_addrs") {
			continue // other programs may be gone by the time they are named; the namer's own stays
		}
		if e.module == "" && i%step == 0 || e.module != "" && perModule[e.module] < 5 {
			pick = append(pick, e)
			perModule[e.module]++
		}
	}
	addrs := make([]uint64, len(pick))
	for i, e := range pick {
		addrs[i] = e.addr + uint64(i%2) // the start and one byte in
	}
	syms, err := n.Name(addrs)
	if err != nil {
		t.Fatal(err)
	}
	if len(syms) != len(addrs) {
		t.Fatalf("%d answers for %d addresses", len(syms), len(addrs))
	}
	bad := 0
	for i, s := range syms {
		e := pick[i]
		module := e.module
		ok := s.Name != "" && addrs[i]-s.Offset == e.addr && s.Module == module
		if ok && s.Name != e.name {
			ok = strings.Contains(" "+strings.Join(namesAt[e.addr], " ")+" ", " "+s.Name+" ")
		}
		if !ok && e.module == "__builtin__ftrace" || !ok && e.module == "__builtin__kprobes" {
			continue // trampolines kallsyms lists but the kernel's lookup does not name
		}
		if !ok {
			bad++
			t.Errorf("%#x: got %+v, kallsyms has %s [%s] at %#x", addrs[i], s, e.name, e.module, e.addr)
		}
		// Past the init text only built-in __exit functions, never run.
		if ok && s.Module == "" && (s.ModuleStart > addrs[i] || s.ModuleLimit <= addrs[i] && !strings.Contains(s.Name, "exit")) {
			t.Errorf("%#x (%s) outside the kernel's text [%#x, %#x)", addrs[i], s.Name, s.ModuleStart, s.ModuleLimit)
		}
	}
	t.Logf("%d addresses (%d modules), %d disagree", len(addrs), len(perModule)-1, bad)
}

// Addresses no symbol covers get an empty answer in their place, whatever
// their number.
func TestUnknownAddresses(t *testing.T) {
	n := openBPF(t)
	text := readKallsyms(t)[0].addr
	var addrs []uint64
	for i := range 150 {
		switch i % 5 {
		case 0:
			addrs = append(addrs, 0)
		case 1:
			addrs = append(addrs, ^uint64(0))
		case 2:
			addrs = append(addrs, 0x400000+uint64(i)) // user space
		case 3:
			addrs = append(addrs, 0xffff888000000000) // the direct map, not text
		case 4:
			addrs = append(addrs, text)
		}
	}
	syms, err := n.Name(addrs)
	if err != nil {
		t.Fatal(err)
	}
	if len(syms) != len(addrs) {
		t.Fatalf("%d answers for %d addresses", len(syms), len(addrs))
	}
	for i, s := range syms {
		if named := s.Name != ""; named != (i%5 == 4) {
			t.Errorf("%#x: %+v", addrs[i], s)
		}
	}
	if syms, err := n.Name(nil); err != nil || len(syms) != 0 {
		t.Errorf("no addresses: %v, %v", syms, err)
	}
	n.Close()
	if _, err := n.Name(addrs[:1]); err == nil {
		t.Error("a closed namer named")
	}
}

// Forced off, snprintf gives way to kallsyms, whose namer asks the
// symbolizer to read kallsyms itself.
func TestSkipTakesKallsyms(t *testing.T) {
	testenv.RequireRoot(t)
	skip := map[string]bool{StrategySnprintf: true}
	n, err := Open(Options{Skip: skip})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	t.Log(report.Line(n.Report(), skip))
	if r := n.Report(); r.Chosen != StrategyKallsyms || n.BPF() {
		t.Fatalf("report %s", r)
	}
	if _, err := n.Name([]uint64{1}); !errors.Is(err, ErrKallsyms) {
		t.Errorf("Name: %v, want ErrKallsyms", err)
	}
}

// The kallsyms strategy judges by the first text symbol: per-CPU symbols
// at zero come first in a kallsyms that shows addresses, and a hidden one
// shows zero everywhere.
func TestKallsymsStrategyReadsTheFirstTextSymbol(t *testing.T) {
	for text, wantErr := range map[string]string{
		"0000000000000000 A fixed_percpu_data\n0000000000001000 A cpu_number\nffffffff81000000 T _text\n": "",
		"0000000000000000 A fixed_percpu_data\n0000000000000000 T _text\n0000000000000000 T _stext\n":     "hides addresses",
		"0000000000000000 A fixed_percpu_data\n":                                                          "no text symbol",
	} {
		path := t.TempDir() + "/kallsyms"
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := Open(Options{Skip: map[string]bool{StrategySnprintf: true}, KallsymsPath: path})
		switch {
		case wantErr == "" && (err != nil || n.Report().Chosen != StrategyKallsyms):
			t.Errorf("%q: %v", text, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%q: error %v, want %q", text, err, wantErr)
		}
	}
}

// The symbolizer names kernel frames through the namer without reading
// kallsyms (its path here does not exist), and agrees with it.
func TestSymbolizerNamesWithoutKallsyms(t *testing.T) {
	n := openBPF(t)
	all := readKallsyms(t)
	var addrs []uint64
	want := map[uint64]string{}
	for i := 0; i < len(all) && len(addrs) < 200; i += max(1, len(all)/200) {
		if all[i].module == "" {
			addrs = append(addrs, all[i].addr+1)
			want[all[i].addr+1] = all[i].name
		}
	}
	l := NewLazy(Options{})
	defer l.Close()
	s := symbolizer.New(symbolizer.Options{KallsymsPath: "/nonexistent", KernelNamer: l.Name})
	defer s.Close()
	for round := range 2 { // the second from the symbolizer's cache
		for i, loc := range s.Kernel(addrs) {
			if !loc.Named() || loc.Mapping == nil || loc.Mapping.Path != "[kernel.kallsyms]" {
				t.Fatalf("round %d: %#x: %+v", round, addrs[i], loc)
			}
			if got := loc.String(); got != want[addrs[i]] {
				syms, _ := n.Name(addrs[i : i+1])
				t.Logf("%#x: %s, kallsyms %s (an alias?) %+v", addrs[i], got, want[addrs[i]], syms)
			}
		}
	}
	st := s.Stats()
	if st.KernelSymbols != 0 || st.KernelErr != nil || st.KernelNamerErr != nil || st.KernelNamed == 0 {
		t.Errorf("stats %+v: kallsyms read, or the namer not used", st)
	}
	// An address the namer can't name falls back to kallsyms, which is
	// missing here: an unnamed kernel location, no panic.
	loc := s.Kernel([]uint64{1})[0]
	if loc.Named() || loc.Mapping == nil || !loc.Mapping.Kernel {
		t.Errorf("unknown address: %+v", loc)
	}
}

// Each strategy of the hook, forced in turn (the kernel matrix counts
// these subtests by strategy): snprintf names vfs_read as kallsyms does;
// kallsyms hands the naming to the symbolizer's own reading of it.
func TestEachStrategy(t *testing.T) {
	testenv.RequireRoot(t)
	var fn kallsymsEntry
	for _, e := range readKallsyms(t) {
		if e.module == "" && e.name == "vfs_read" {
			fn = e
			break
		}
	}
	if fn.addr == 0 {
		t.Skip("skipped: /proc/kallsyms shows no vfs_read address")
	}
	for _, c := range []struct{ strategy, other string }{
		{StrategySnprintf, StrategyKallsyms},
		{StrategyKallsyms, StrategySnprintf},
	} {
		t.Run(c.strategy, func(t *testing.T) {
			skip := map[string]bool{c.other: true}
			n, err := Open(Options{Skip: skip})
			testenv.RequireStrategy(t, Hook, c.strategy, err)
			defer n.Close()
			t.Log(report.Line(n.Report(), skip))
			if r := n.Report(); r.Chosen != c.strategy {
				t.Fatalf("chose %q, want %q: %s", r.Chosen, c.strategy, r)
			}
			syms, err := n.Name([]uint64{fn.addr + 1})
			if c.strategy == StrategyKallsyms {
				if !errors.Is(err, ErrKallsyms) {
					t.Errorf("Name: %v, want ErrKallsyms", err)
				}
				return
			}
			if err != nil || len(syms) != 1 || syms[0].Name != "vfs_read" || syms[0].Offset != 1 || syms[0].Module != "" {
				t.Errorf("vfs_read+1 at %#x: got %+v, %v", fn.addr+1, syms, err)
			}
		})
	}
}
