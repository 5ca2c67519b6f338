package cpuprofile

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"github.com/vigil-ebpf/vigil/internal/pythons"
	"github.com/vigil-ebpf/vigil/symbolizer/python"
)

// The walker must record every Python frame of a known stack, group them
// by eval-loop call as each version does, and compute the same checksum
// of each code object as user space does from the process's memory.
func TestPythonWalkerRecordsEveryFrame(t *testing.T) {
	testenv.RequireRoot(t)
	pys := pythons.Installed()
	if len(pys) == 0 {
		t.Skip("skipped: no CPython 3.9-3.13 on this machine (apt-get install python3)")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "deep.py")
	const depth = 10 // leaf, f8..f1 and <module>
	if err := os.WriteFile(script, []byte(pyDeep(depth)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, py := range pys {
		t.Run(py.Name, func(t *testing.T) {
			cmd := py.Command(script)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			pid := uint32(cmd.Process.Pid)
			time.Sleep(300 * time.Millisecond)
			p, err := Open(Options{Frequency: 199, PIDs: []uint32{pid}})
			testenv.SkipIfNotSupported(t, "perf_event BPF programs", err)
			defer p.Close()
			if p.PythonReport().Chosen != StrategyPythonFrames {
				t.Fatalf("Python walker not loaded: %v", p.PythonReport())
			}
			time.Sleep(time.Second)
			b, err := p.Drain()
			if err != nil {
				t.Fatal(err)
			}
			pp, ok := p.PythonProcess(pid)
			if !ok {
				t.Fatalf("%s not found to run CPython", py.Exe)
			}
			mem, err := os.Open("/proc/" + strconv.Itoa(int(pid)) + "/mem")
			if err != nil {
				t.Fatal(err)
			}
			defer mem.Close()
			var total, whole uint64
			for _, s := range b.Samples {
				total += s.Count
				if len(s.Python) != depth {
					continue
				}
				whole += s.Count
				checkPythonStack(t, pp, mem, s.Python)
			}
			// A sample can land while f's frame is being pushed or popped.
			if total == 0 || whole*10 < total*9 {
				t.Fatalf("%d of %d samples have the %d Python frames of the workload", whole, total, depth)
			}
		})
	}
}

func checkPythonStack(t *testing.T, pp PythonProcess, mem *os.File, st []PyFrame) {
	t.Helper()
	f, module := st[0], st[len(st)-1]
	codes := map[uint64]bool{}
	for i, fr := range st {
		if fr.Mark != "" {
			t.Fatalf("frame %d: marked %q", i, fr.Mark)
		}
		if codes[fr.Code] {
			t.Fatalf("frame %d: code %#x twice; every function has its own: %+v", i, fr.Code, st)
		}
		codes[fr.Code] = true
		// Before 3.11 every Python call is a call of the eval loop; from
		// 3.11 Python calls Python inside one, started for <module>.
		wantEntry := pp.Version.Minor < 11 || i == len(st)-1
		if fr.Entry != wantEntry {
			t.Fatalf("CPython %s frame %d: entry %v, want %v: %+v", pp.Version, i, fr.Entry, wantEntry, st)
		}
		if fr.Offset == python.UnknownOffset {
			t.Fatalf("frame %d: no instruction offset", i)
		}
	}
	for _, fr := range []PyFrame{f, module} {
		if want := codeCheck(t, pp.Layout, mem, fr.Code); fr.Check != want {
			t.Fatalf("code %#x: check %#x, user space computes %#x", fr.Code, fr.Check, want)
		}
	}
}

// codeCheck computes python.Check of a code object from process memory.
func codeCheck(t *testing.T, l *python.Layout, mem *os.File, code uint64) uint32 {
	t.Helper()
	buf := make([]byte, pyWindow)
	if _, err := mem.ReadAt(buf, int64(code)); err != nil {
		t.Fatal(err)
	}
	u64 := func(off uint16) uint64 { return binary.LittleEndian.Uint64(buf[off:]) }
	return python.Check(u64(l.CodeName), u64(l.CodeFilename), u64(l.CodeLineTable), binary.LittleEndian.Uint32(buf[l.CodeFirstLineNo:]))
}

// Without Options.PythonAtOpen the Python walker is loaded on the first
// CPython process registered, not before; if the kernel refuses it then,
// Python processes keep native frames and the report says why.
func TestPythonWalkerLoadedOnFirstCPython(t *testing.T) {
	testenv.RequireRoot(t)
	pys := pythons.Installed()
	if len(pys) == 0 {
		t.Skip("skipped: no CPython 3.9-3.13 on this machine (apt-get install python3)")
	}
	start := func(t *testing.T, name string, args ...string) uint32 {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		time.Sleep(300 * time.Millisecond) // its interpreter mapped
		return uint32(cmd.Process.Pid)
	}
	for _, refuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "loaded", true: "refused"}[refuse], func(t *testing.T) {
			native := start(t, "sleep", "30")
			p, err := Open(Options{Frequency: 19, PIDs: []uint32{native}})
			testenv.SkipIfNotSupported(t, "perf_event BPF programs", err)
			defer p.Close()
			if refuse {
				p.pyLoader = func() (*ebpf.Program, error) { return nil, errors.New("refused by the test") }
			}
			p.WaitTables()
			if p.objs.WalkPython != nil || p.PythonReport().Chosen != StrategyPythonFrames {
				t.Fatalf("with only a native process: walker loaded %v, report %v", p.objs.WalkPython != nil, p.PythonReport())
			}
			pid := start(t, pys[0].Exe, "-c", "import time; time.sleep(30)")
			p.Register(pid)
			p.WaitTables()
			_, found := p.PythonProcess(pid)
			r := p.PythonReport()
			if !refuse && (p.objs.WalkPython == nil || !found || r.Chosen != StrategyPythonFrames) {
				t.Errorf("after a CPython process: walker loaded %v, process found %v, report %v", p.objs.WalkPython != nil, found, r)
			}
			if refuse && (p.objs.WalkPython != nil || found || r.Chosen != StrategyPythonOff || !strings.Contains(r.String(), "refused by the test")) {
				t.Errorf("walker refused: loaded %v, process found %v, report %v", p.objs.WalkPython != nil, found, r)
			}
		})
	}
}
