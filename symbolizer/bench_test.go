package symbolizer

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// libcAddrCount is how many libc addresses each benchmark names per round.
const libcAddrCount = 10000

// libcFixture is a live process using libc and a fixed set of addresses
// inside libc functions, both as sampled (absolute) and as ELF virtual
// addresses for tools that read the file directly.
type libcFixture struct {
	pid    int
	path   string
	addrs  []uint64
	vaddrs []uint64
}

// newLibcFixture starts `sleep` and picks libcAddrCount addresses inside
// sized function symbols of the libc it maps, with a fixed seed so every
// tool gets the same ones.
func newLibcFixture(tb testing.TB) *libcFixture {
	tb.Helper()
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	fx := &libcFixture{pid: cmd.Process.Pid}
	m := waitLibcMapping(tb, fx.pid)
	fx.path = m.Path
	f, err := elf.Open(m.Path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	funcs := sizedFuncs(tb, f)
	rng := rand.New(rand.NewSource(1))
	for len(fx.vaddrs) < libcAddrCount {
		s := funcs[rng.Intn(len(funcs))]
		v := s.Value + uint64(rng.Int63n(int64(s.Size)))
		a, ok := runtimeAddr(f, m, v)
		if !ok {
			continue
		}
		fx.vaddrs, fx.addrs = append(fx.vaddrs, v), append(fx.addrs, a)
	}
	return fx
}

// waitLibcMapping returns the executable libc mapping of pid once the
// dynamic loader has mapped it.
func waitLibcMapping(tb testing.TB, pid int) Mapping {
	tb.Helper()
	for i := 0; i < 200; i++ {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
		if err != nil {
			tb.Fatal(err)
		}
		ms, err := ParseMaps(bytes.NewReader(raw))
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range ms {
			if m.Executable() && strings.Contains(m.Path, "/libc.so") {
				return m
			}
		}
		exec.Command("true").Run() // let the child run its loader
	}
	tb.Skip("skipped: no libc mapped by sleep (a static build?)")
	return Mapping{}
}

func sizedFuncs(tb testing.TB, f *elf.File) []elf.Symbol {
	syms, err := f.DynamicSymbols()
	if err != nil {
		tb.Fatal(err)
	}
	var out []elf.Symbol
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 && s.Section != elf.SHN_UNDEF {
			out = append(out, s)
		}
	}
	return out
}

// runtimeAddr is where vaddr of f is mapped in m: the inverse of the
// symbolizer's conversion, computed here from the program headers.
func runtimeAddr(f *elf.File, m Mapping, vaddr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr-p.Vaddr < p.Filesz {
			off := vaddr - p.Vaddr + p.Off
			if off < m.Offset || off-m.Offset >= m.Limit-m.Start {
				return 0, false
			}
			return m.Start + off - m.Offset, true
		}
	}
	return 0, false
}

func reportRate(b *testing.B, n int) {
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "addrs/s")
}

// BenchmarkLibcWarm names the same libc addresses again and again with one
// Symbolizer: the cost of a sample once its files are parsed.
func BenchmarkLibcWarm(b *testing.B) {
	fx := newLibcFixture(b)
	byReader(b, func(b *testing.B) {
		s := New(Options{})
		defer s.Close()
		s.User(fx.pid, fx.addrs)
		b.ReportAllocs()
		for b.Loop() {
			s.User(fx.pid, fx.addrs)
		}
		reportRate(b, len(fx.addrs))
	})
}

// BenchmarkLibcCold starts from nothing each round: read maps, open and
// parse libc and its debug file, name every address once.
func BenchmarkLibcCold(b *testing.B) {
	fx := newLibcFixture(b)
	byReader(b, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := New(Options{})
			if err := s.Prepare(fx.pid); err != nil {
				b.Fatal(err)
			}
			s.User(fx.pid, fx.addrs)
			s.Close()
		}
		reportRate(b, len(fx.addrs))
	})
}

// BenchmarkLibcCold100 is the cold start of a typical profile: a hundred
// distinct libc addresses, so only the functions they hit are read.
func BenchmarkLibcCold100(b *testing.B) {
	fx := newLibcFixture(b)
	addrs := fx.addrs[:100]
	byReader(b, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := New(Options{})
			s.User(fx.pid, addrs)
			s.Close()
		}
		reportRate(b, len(addrs))
	})
}

// BenchmarkLibcFirst is the first look at libc: a fresh Symbolizer names
// one address, which opens libc and its debug file and reads the DWARF of
// the one unit holding it.
// Sub-benchmarks: "units" reads DWARF unit by unit (the default), "whole"
// reads all of it at once (the reader before), for a figure side by side.
func BenchmarkLibcFirst(b *testing.B) {
	fx := newLibcFixture(b)
	// Ten addresses spread over libc, each the first of its own round.
	var addrs []uint64
	for i := 0; i < 10; i++ {
		addrs = append(addrs, fx.addrs[i*len(fx.addrs)/10])
	}
	byReader(b, func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := New(Options{})
			s.User(fx.pid, addrs[i%len(addrs):i%len(addrs)+1])
			s.Close()
			i++
		}
	})
}

// byReader runs f with DWARF read unit by unit, then whole.
func byReader(b *testing.B, f func(b *testing.B)) {
	for _, whole := range []bool{false, true} {
		name := "units"
		if whole {
			name = "whole"
		}
		b.Run(name, func(b *testing.B) {
			defer func(old bool) { readWholeDWARF = old }(readWholeDWARF)
			readWholeDWARF = whole
			f(b)
		})
	}
}

// BenchmarkLibcAddr2line runs `addr2line -f -e libc` on the same addresses.
func BenchmarkLibcAddr2line(b *testing.B) {
	fx := newLibcFixture(b)
	tool := requireTool(b, "addr2line")
	in := addrInput(fx.vaddrs)
	for b.Loop() {
		runTool(b, in, tool, "-f", "-e", fx.path)
	}
	reportRate(b, len(fx.addrs))
}

// BenchmarkLibcLLVMSymbolizer runs llvm-symbolizer-19 on the same addresses.
func BenchmarkLibcLLVMSymbolizer(b *testing.B) {
	fx := newLibcFixture(b)
	tool := llvmSymbolizer(b)
	in := addrInput(fx.vaddrs)
	for b.Loop() {
		runTool(b, in, tool, "--obj="+fx.path)
	}
	reportRate(b, len(fx.addrs))
}

func llvmSymbolizer(tb testing.TB) string {
	for _, p := range []string{"llvm-symbolizer-19", "/usr/lib/llvm-19/bin/llvm-symbolizer"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	tb.Skip("skipped: llvm-symbolizer-19 is not installed (apt-get install llvm-19)")
	return ""
}

func addrInput(vaddrs []uint64) []byte {
	var buf bytes.Buffer
	for _, v := range vaddrs {
		fmt.Fprintf(&buf, "%#x\n", v)
	}
	return buf.Bytes()
}

func runTool(tb testing.TB, stdin []byte, name string, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return out
}

// TestAgreesWithLLVMSymbolizer checks vigil's answers on libc against
// llvm-symbolizer's: innermost function, file and line, and the number of
// inlined frames.
func TestAgreesWithLLVMSymbolizer(t *testing.T) {
	fx := newLibcFixture(t)
	tool := llvmSymbolizer(t)
	n := 2000
	out := runTool(t, addrInput(fx.vaddrs[:n]), tool, "--obj="+fx.path, "--output-style=JSON")
	want := parseLLVMJSON(t, out)
	if len(want) != n {
		t.Fatalf("llvm-symbolizer answered %d of %d addresses", len(want), n)
	}
	s := newTest(t, Options{DebugDirs: []string{"/usr/lib/debug"}})
	got := s.User(fx.pid, fx.addrs[:n])
	aliases := libcAliases(t, fx.path)
	agreeFn, agreeLine, agreeDepth, withLines := 0, 0, 0, 0
	for i, w := range want {
		g := got[i].Frames
		if len(g) == 0 || len(w) == 0 {
			continue
		}
		if g[0].Function == w[0].FunctionName || aliases.same(g[0].Function, w[0].FunctionName) {
			agreeFn++
		} else if os.Getenv("VIGIL_DEBUG_AGREE") != "" {
			t.Logf("%#x: vigil %q llvm %q", fx.vaddrs[i], g[0].Function, w[0].FunctionName)
		}
		if w[0].Line > 0 {
			withLines++
			if g[0].Line == w[0].Line && strings.HasSuffix(w[0].FileName, strings.TrimPrefix(g[0].File, ".")) {
				agreeLine++
			}
		}
		if len(g) == len(w) {
			agreeDepth++
		}
	}
	t.Logf("of %d libc addresses: function %d, file:line %d of %d, inline depth %d agree", n, agreeFn, agreeLine, withLines, agreeDepth)
	if agreeFn < n*95/100 {
		t.Errorf("innermost function agrees on %d of %d addresses, want 95%%", agreeFn, n)
	}
	if withLines > 0 && agreeLine < withLines*95/100 {
		t.Errorf("file:line agrees on %d of %d addresses, want 95%%", agreeLine, withLines)
	}
	if withLines > 0 && agreeDepth < n*95/100 {
		t.Errorf("inline depth agrees on %d of %d addresses, want 95%%", agreeDepth, n)
	}
}

type llvmFrame struct {
	FunctionName string
	FileName     string
	Line         int
}

func parseLLVMJSON(t *testing.T, out []byte) [][]llvmFrame {
	var res [][]llvmFrame
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ Symbol []llvmFrame }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("llvm-symbolizer JSON %q: %v", sc.Text(), err)
		}
		res = append(res, rec.Symbol)
	}
	return res
}

// aliasSet maps function names to their addresses in libc and its debug
// file, so two names of one function (readdir_r, readdir64_r) agree.
type aliasSet map[string]uint64

func (a aliasSet) same(x, y string) bool {
	ax, ok1 := a[x]
	ay, ok2 := a[y]
	return ok1 && ok2 && ax == ay
}

func libcAliases(t *testing.T, path string) aliasSet {
	set := aliasSet{}
	add := func(p string) {
		f, err := elf.Open(p)
		if err != nil {
			return
		}
		defer f.Close()
		syms, _ := f.Symbols()
		dyn, _ := f.DynamicSymbols()
		for _, s := range append(syms, dyn...) {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
				set[unversioned(s.Name)] = s.Value
			}
		}
	}
	add(path)
	if f, err := os.Open(path); err == nil {
		st, _ := f.Stat()
		if img, err := openELF(f, st.Size()); err == nil && img.buildID != "" {
			add(buildIDPath("/usr/lib/debug", img.buildID))
		}
		f.Close()
	}
	return set
}

// BenchmarkPrepareUnchanged is the cost of calling Prepare again on a
// process whose maps did not change (one read of /proc/<pid>/maps).
func BenchmarkPrepareUnchanged(b *testing.B) {
	fx := newLibcFixture(b)
	s := New(Options{})
	defer s.Close()
	if err := s.Prepare(fx.pid); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s.Prepare(fx.pid)
	}
}

// BenchmarkPrepareNewProcess is the cost of capturing a process whose files
// are already cached: read maps, open each mapped file, stat it.
func BenchmarkPrepareNewProcess(b *testing.B) {
	fx := newLibcFixture(b)
	s := New(Options{})
	defer s.Close()
	for b.Loop() {
		if err := s.Prepare(fx.pid); err != nil {
			b.Fatal(err)
		}
		s.Forget(fx.pid)
	}
}
