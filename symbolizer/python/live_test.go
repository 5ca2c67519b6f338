package python

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// liveReport is the line testdata/live.py prints.
type liveReport struct {
	Codes []struct {
		Addr        uint64  `json:"addr"`
		Function    string  `json:"function"`
		File        string  `json:"file"`
		FirstLineNo int     `json:"firstlineno"`
		Lines       []int32 `json:"lines"`
		Calls       []int   `json:"calls"`
	} `json:"codes"`
	Main uint64 `json:"main"`
	BG   uint64 `json:"bg"`
}

// liveProcess is a running testdata/live.py.
type liveProcess struct {
	pid     int
	mem     *os.File
	report  liveReport
	script  string
	markers map[string]int // "walk:" marker -> line
}

// startLive runs live.py under in's interpreter, from a file whose name has
// a 4-byte character (so co_filename is a str of that kind), and waits for
// its report. It skips when this user may not read the process's memory.
func startLive(t *testing.T, in interp) *liveProcess {
	t.Helper()
	src, err := os.ReadFile("testdata/live.py")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "live_😀.py")
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(in.exe, script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &liveProcess{pid: cmd.Process.Pid, script: script, markers: markers(src)}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		t.Fatalf("%s: no report: %v", in.exe, err)
	}
	if err := json.Unmarshal(line, &p.report); err != nil {
		t.Fatal(err)
	}
	p.mem, err = os.Open(fmt.Sprintf("/proc/%d/mem", p.pid))
	if err == nil {
		_, err = p.mem.ReadAt(make([]byte, 8), int64(p.report.Codes[0].Addr))
	}
	if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
		t.Skipf("reading another process's memory needs root here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.mem.Close() })
	return p
}

// markers finds the "# walk:name" comments of a script.
func markers(src []byte) map[string]int {
	m := map[string]int{}
	for i, line := range strings.Split(string(src), "\n") {
		if _, name, ok := strings.Cut(line, "# walk:"); ok {
			m[name] = i + 1
		}
	}
	return m
}

// TestLiveFrames names code objects of running interpreters, at every
// instruction, with the checksum computed from their fields here.
func TestLiveFrames(t *testing.T) {
	ins := interpreters()
	if len(ins) == 0 {
		t.Skip("no CPython 3.9 to 3.13 installed (pyenv or " + debianPython + ")")
	}
	for _, in := range ins {
		t.Run(in.name, func(t *testing.T) {
			p := startLive(t, in)
			l, err := LayoutFor(Version{Major: 3, Minor: in.minor})
			if err != nil {
				t.Fatal(err)
			}
			r := NewResolver(0)
			for _, c := range p.report.Codes {
				check := readCheck(t, p.mem, l, c.Addr)
				for i, want := range c.Lines {
					f, err := r.Frame(uint32(p.pid), l, p.mem, c.Addr, check, uint32(2*i))
					if err != nil {
						t.Fatalf("%s: %v", c.Function, err)
					}
					line := int(want)
					if line <= 0 {
						line = c.FirstLineNo // a frame is always in its function
					}
					w := Frame{Function: c.Function, File: c.File, Line: line}
					if f != w {
						t.Fatalf("offset %d: %+v, want %+v", 2*i, f, w)
					}
				}
				f, err := r.Frame(uint32(p.pid), l, p.mem, c.Addr, check, UnknownOffset)
				if err != nil || f.Line != c.FirstLineNo {
					t.Fatalf("%s at an unknown offset: %+v, %v; want line %d", c.Function, f, err, c.FirstLineNo)
				}
				_, err = NewResolver(0).Frame(uint32(p.pid), l, p.mem, c.Addr, check+1, 0)
				wantReason(t, err, ReasonChecksumMismatch)
			}
			// Names of each str kind: Latin-1, 2-byte and 4-byte characters.
			c := p.report.Codes
			if !strings.HasSuffix(c[0].Function, "méthode") || !strings.HasSuffix(c[1].Function, "inner_δ") ||
				!strings.HasSuffix(c[0].File, "live_😀.py") {
				t.Fatalf("the script's names are not what this test is about: %+v", c[:2])
			}
		})
	}
}

// readCheck computes a code object's checksum from its fields, read here
// with the layout, as the BPF program does.
func readCheck(t *testing.T, mem io.ReaderAt, l *Layout, code uint64) uint32 {
	t.Helper()
	rd := reader{t: t, mem: mem}
	return Check(rd.u64(code+uint64(l.CodeName)), rd.u64(code+uint64(l.CodeFilename)),
		rd.u64(code+uint64(l.CodeLineTable)), uint32(rd.u64(code+uint64(l.CodeFirstLineNo))))
}

// reader reads another process's memory for a test, failing it on error.
type reader struct {
	t   *testing.T
	mem io.ReaderAt
}

func (r reader) u64(addr uint64) uint64 {
	r.t.Helper()
	var b [8]byte
	if _, err := r.mem.ReadAt(b[:], int64(addr)); err != nil {
		r.t.Fatalf("reading %#x: %v", addr, err)
	}
	return binary.LittleEndian.Uint64(b[:])
}

// TestLiveWalk walks a running interpreter's threads and frames from
// _PyRuntime as the BPF program does, with Inspect's addresses and the
// Layout's offsets, and names the frames: this checks every offset the
// walk uses, not only the code object's.
func TestLiveWalk(t *testing.T) {
	ins := interpreters()
	if len(ins) == 0 {
		t.Skip("no CPython 3.9 to 3.13 installed (pyenv or " + debianPython + ")")
	}
	for _, in := range ins {
		t.Run(in.name, func(t *testing.T) {
			p := startLive(t, in)
			b := inspectFile(t, in.lib)
			w := walker{rd: reader{t: t, mem: p.mem}, l: b.Layout, r: NewResolver(0), pid: uint32(p.pid)}
			runtime := b.Runtime + loadBias(t, p.pid, in.lib)
			base := filepath.Base(p.script)
			waitAsleep(t, p.pid, 2)
			want := []string{
				fmt.Sprintf("sleeper %s:%d", base, p.markers["sleeper"]),
				fmt.Sprintf("outer %s:%d", base, p.markers["outer"]),
				fmt.Sprintf("<module> %s:%d", base, p.markers["module"]),
			}
			got := w.stack(runtime, p.report.Main)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("main thread:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// The sleeping frame is in a call to C: its instruction is that
			// call (the line alone would hide an offset a few bytes off).
			if call := lastCallOn(p, 2, p.markers["sleeper"]); w.offsets[0] != uint32(call) {
				t.Fatalf("sleeping frame at offset %d, want the call at %d", w.offsets[0], call)
			}
			if b.Layout.Kind == Interp311 && fmt.Sprint(w.entries) != "[false false true]" {
				// Only the module's frame starts a C-level eval call.
				t.Fatalf("is_entry of the main thread's frames: %v", w.entries)
			}
			// The other thread: reached through TstateNext and told apart
			// by TstateThreadID. Below bg_sleep are threading's frames.
			bg := fmt.Sprintf("bg_sleep %s:%d", base, p.markers["bg"])
			if got := w.stack(runtime, p.report.BG); len(got) < 2 || got[0] != bg {
				t.Fatalf("background thread: %q, want %q first", got, bg)
			}
		})
	}
}

// sleepCalls are the system calls time.sleep makes: select (3.9, 3.10),
// clock_nanosleep (3.11+), and what a C library may use for them.
var sleepCalls = map[string]bool{"23": true, "35": true, "230": true, "270": true}

// waitAsleep waits until the process's threads, n of them, are all in
// time.sleep, so that their frames hold still while the test reads them.
func waitAsleep(t *testing.T, pid, n int) {
	t.Helper()
	var states []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		states = states[:0]
		asleep := 0
		for _, task := range tasks {
			b, err := os.ReadFile(task)
			if err != nil {
				t.Skipf("can't tell what the threads do: %v", err)
			}
			call, _, _ := strings.Cut(string(b), " ")
			states = append(states, call)
			if sleepCalls[call] {
				asleep++
			}
		}
		if len(tasks) == n && asleep == n {
			return
		}
	}
	t.Fatalf("threads not all asleep: system calls %q", states)
}

// walker walks one process's Python stacks.
type walker struct {
	rd      reader
	l       *Layout
	r       *Resolver
	pid     uint32
	entries []bool   // 3.11's is_entry of each frame of the last stack
	offsets []uint32 // the instruction offset of each frame of the last stack
}

// lastCallOn returns the offset of the last call instruction on line in the
// report's code i.
func lastCallOn(p *liveProcess, i, line int) int {
	c := p.report.Codes[i]
	last := -1
	for _, off := range c.Calls {
		if int(c.Lines[off/2]) == line {
			last = off
		}
	}
	return last
}

// stack names the frames of the thread whose thread_id is tid, innermost
// first, as "function file:line" (the file's base name).
func (w *walker) stack(runtime, tid uint64) []string {
	l, rd := w.l, w.rd
	interp := rd.u64(runtime + uint64(l.RuntimeInterpretersHead))
	ts := rd.u64(interp + uint64(l.InterpThreadsHead))
	for n := 0; ts != 0 && rd.u64(ts+uint64(l.TstateThreadID)) != tid; n++ {
		if n > 100 {
			rd.t.Fatal("no end to the thread list")
		}
		ts = rd.u64(ts + uint64(l.TstateNext))
	}
	if ts == 0 {
		rd.t.Fatalf("thread %#x not found", tid)
	}
	var out []string
	w.entries, w.offsets = nil, nil
	for frame, n := w.firstFrame(ts), 0; frame != 0; frame, n = rd.u64(frame+uint64(l.FramePrevious)), n+1 {
		if n > 100 {
			rd.t.Fatal("no end to the frame list")
		}
		if name, ok := w.frame(frame); ok {
			out = append(out, name)
		}
	}
	return out
}

func (w *walker) firstFrame(ts uint64) uint64 {
	l, rd := w.l, w.rd
	frame := rd.u64(ts + uint64(l.TstateFrame))
	if l.CFrameCurrentFrame != NoOffset {
		frame = rd.u64(frame + uint64(l.CFrameCurrentFrame))
	}
	return frame
}

// frame names one frame; shim frames (3.12+) give false.
func (w *walker) frame(frame uint64) (string, bool) {
	l, rd := w.l, w.rd
	if l.Kind >= Interp312 && byte(rd.u64(frame+uint64(l.FrameOwner))) == l.OwnedByCStack {
		return "", false
	}
	code := rd.u64(frame + uint64(l.FrameCode))
	off := w.offset(frame, code)
	w.offsets = append(w.offsets, off)
	f, err := w.r.Frame(w.pid, l, rd.mem, code, readCheck(rd.t, rd.mem, l, code), off)
	if err != nil {
		rd.t.Fatalf("frame at %#x: %v", frame, err)
	}
	name := fmt.Sprintf("%s %s:%d", f.Function, filepath.Base(f.File), f.Line)
	if l.Kind == Interp311 {
		entry := byte(rd.u64(frame + uint64(l.FrameOwner)))
		if entry > 1 {
			rd.t.Fatalf("%s: is_entry %d", name, entry)
		}
		w.entries = append(w.entries, entry == 1)
	}
	return name, true
}

// offset is the byte offset of the frame's current instruction.
func (w *walker) offset(frame, code uint64) uint32 {
	l, rd := w.l, w.rd
	raw := rd.u64(frame + uint64(l.FrameInstr))
	switch l.Kind {
	case FrameObject39, FrameObject310:
		lasti := int32(uint32(raw))
		if lasti < 0 {
			return UnknownOffset
		}
		if l.Kind == FrameObject310 {
			lasti *= 2
		}
		return uint32(lasti)
	default:
		start := code + uint64(l.CodeAdaptive)
		if raw < start {
			return UnknownOffset
		}
		return uint32(raw - start)
	}
}

// loadBias is where the process mapped path, less its link-time address:
// the mapping of file offset 0 less the first PT_LOAD's page.
func loadBias(t *testing.T, pid int, path string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vaddr uint64
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Off == 0 {
			vaddr = p.Vaddr &^ 0xfff
			break
		}
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(maps, []byte("\n")) {
		fields := strings.Fields(string(line))
		if len(fields) < 6 || fields[5] != real || fields[2] != "00000000" {
			continue
		}
		start, _ := strconv.ParseUint(strings.Split(fields[0], "-")[0], 16, 64)
		return start - vaddr
	}
	t.Fatalf("%s not mapped in process %d", real, pid)
	return 0
}
