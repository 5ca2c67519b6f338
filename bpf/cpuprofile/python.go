package cpuprofile

import (
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hooks"
	"github.com/vigil-ebpf/vigil/symbolizer/python"
)

// PythonHook is the name vigil check and the kernel matrix give the
// Python frame walker.
const PythonHook = "python"

// Strategies of the "python" hook, in the order tried: walk the frame list
// of CPython processes, or leave them to their native frames.
const (
	StrategyPythonFrames = hooks.PythonFrames
	StrategyPythonOff    = hooks.PythonOff
)

// Markers in place of a code address (PY_MARK_* in python.bpf.h).
const (
	pyMarkUnreadable = 1
	pyMarkDepth      = 2
	pyMarkNotCode    = 3
	pyMarkLimit      = 4096
	pyEntry          = 0x80000000
	pyOffsetMask     = 0x7fffffff
)

// PyFrame is one Python frame as BPF recorded it: which code object ran
// and where in it. Frames are leaf first, like native ones.
type PyFrame struct {
	Code   uint64 // address of the code object in the process
	Check  uint32 // python.Check of the code object's identifying fields
	Offset uint32 // byte offset of the instruction; python.UnknownOffset when not known
	// Entry marks the first frame one call of the eval loop ran: the
	// native stack has one _PyEval_EvalFrameDefault frame per such group.
	Entry bool
	// Mark is "" for a real frame, else why there is none: "unreadable"
	// (the frame's memory could not be read), "not_code" (its code is not
	// a code object) or "depth_limit".
	Mark string
}

// pythonProc is what the registry found of a CPython process.
type pythonProc struct {
	bin  *python.Binary
	bias uint64 // address = file address + bias
	path string
}

// PythonProcess is a process found to run CPython.
type PythonProcess struct {
	Version python.Version
	Layout  *python.Layout
	// Eval is [start, end) in the process of _PyEval_EvalFrameDefault:
	// the native frames that Python frames stand in for.
	Eval [2]uint64
	// Path is the interpreter file (the executable or libpython).
	Path string
}

// PythonProcess says whether pid was found to run CPython, and which.
func (p *Profiler) PythonProcess(pid uint32) (PythonProcess, bool) {
	if p.reg == nil {
		return PythonProcess{}, false
	}
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	pp := p.reg.python[pid]
	if pp == nil {
		if g, ok := p.reg.pythonGone[pid]; ok {
			pp = g.proc
		}
	}
	if pp == nil {
		return PythonProcess{}, false
	}
	return pp.public(), true
}

// goneProcess is a CPython process that exited, kept for the drains that
// still count its last samples.
type goneProcess struct {
	proc   *pythonProc
	sweeps int // sweeps left before it is forgotten
}

// pythonGoneSweeps is how many sweeps an exited process is kept for: its
// last samples may land in the buffer after the one the sweep that found
// it dead drained.
const pythonGoneSweeps = 2

func (pp *pythonProc) public() PythonProcess {
	b := pp.bin
	return PythonProcess{Version: b.Version, Layout: b.Layout, Path: pp.path,
		Eval: [2]uint64{b.Eval[0] + pp.bias, b.Eval[1] + pp.bias}}
}

// PythonProcesses lists the CPython processes found so far, by pid.
func (p *Profiler) PythonProcesses() map[uint32]PythonProcess {
	out := map[uint32]PythonProcess{}
	if p.reg == nil {
		return out
	}
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	for pid, pp := range p.reg.python {
		out[pid] = pp.public()
	}
	return out
}

// PythonReport says whether Python frames are walked, and if not why.
func (p *Profiler) PythonReport() attach.Report {
	p.pyMu.Lock()
	defer p.pyMu.Unlock()
	return p.pythonReport
}

// loadPythonWalker loads the Python walker into its tail-call slot, on the
// first CPython process found (Options.PythonAtOpen unset). If the kernel
// refuses it, Python processes get native frames only, and PythonReport
// says why.
func (p *Profiler) loadPythonWalker() error {
	load := p.pyLoader
	if load == nil {
		load = func() (*ebpf.Program, error) {
			repl := mapsByName(&p.objs.cpuprofileMaps)
			repl[".bss"] = p.data
			return loadProgram(p.spec, "walk_python", repl)
		}
	}
	prog, err := load()
	if err == nil {
		if err = p.objs.UnwindProgs.Put(uint32(1), prog); err != nil {
			prog.Close()
			err = fmt.Errorf("installing the Python walker: %w", err)
		}
	}
	p.pyMu.Lock()
	defer p.pyMu.Unlock()
	if err != nil {
		p.pythonReport = attach.Report{Hook: PythonHook, Chosen: StrategyPythonOff, Attempts: []attach.Attempt{
			{Strategy: StrategyPythonFrames, Err: fmt.Errorf("loading walk_python: %w", err)},
			{Strategy: StrategyPythonOff}}}
		slog.Warn("Python frames are off: the kernel refused the Python walker", "err", err)
		return err
	}
	p.objs.WalkPython = prog
	return nil
}

// inspectPython says what a newly seen file is, when its name says it may
// be a CPython interpreter. Errors other than "not Python" are logged by
// the caller's counters, not fatal: the file is still unwound natively.
func inspectPython(ef *elf.File, path string) (*python.Binary, error) {
	if !python.LooksLikePython(path) {
		return nil, nil
	}
	b, err := python.Inspect(ef, path)
	if errors.Is(err, python.ErrNotPython) {
		return nil, nil
	}
	return b, err
}

// pyProcValue is the py_procs entry for a CPython process.
func pyProcValue(b *python.Binary, bias uint64) (cpuprofilePyProc, error) {
	l := b.Layout
	if l == nil {
		return cpuprofilePyProc{}, fmt.Errorf("CPython %s: no layout", b.Version)
	}
	v := cpuprofilePyProc{
		InterpHead:         b.Runtime + bias + uint64(l.RuntimeInterpretersHead),
		Kind:               uint16(l.Kind),
		InterpThreadsHead:  l.InterpThreadsHead,
		TstateNext:         l.TstateNext,
		TstateThreadId:     l.TstateThreadID,
		TstateFrame:        l.TstateFrame,
		CframeCurrentFrame: l.CFrameCurrentFrame,
		FramePrevious:      l.FramePrevious,
		FrameCode:          l.FrameCode,
		FrameInstr:         l.FrameInstr,
		FrameOwner:         l.FrameOwner,
		CodeAdaptive:       l.CodeAdaptive,
		CodeName:           l.CodeName,
		CodeFilename:       l.CodeFilename,
		CodeFirstlineno:    l.CodeFirstLineNo,
		CodeLinetable:      l.CodeLineTable,
		OwnedByCstack:      l.OwnedByCStack,
	}
	v.FrameSize = windowFor(8, l.FramePrevious, l.FrameCode, l.FrameInstr) // pointers (f_lasti is smaller)
	if l.FrameOwner != python.NoOffset {
		v.FrameSize = max(v.FrameSize, l.FrameOwner+1)
	}
	if b.CodeType != 0 {
		v.CodeType = b.CodeType + bias
	}
	v.CodeSize = windowFor(8, 8, l.CodeName, l.CodeFilename, l.CodeLineTable, l.CodeFirstLineNo) // 8: ob_type
	if v.FrameSize > pyWindow || v.CodeSize > pyWindow {
		return v, fmt.Errorf("CPython %s: fields past the %d bytes BPF reads", b.Version, pyWindow)
	}
	return v, nil
}

// pyWindow is PY_WINDOW in python.bpf.h.
const pyWindow = 256

// windowFor is the bytes to read to cover every field of size n at offs.
func windowFor(n uint16, offs ...uint16) uint16 {
	var w uint16
	for _, o := range offs {
		if o != python.NoOffset {
			w = max(w, o+n)
		}
	}
	return w
}

// registerPython writes or clears pid's py_procs entry after its mappings
// were registered: the first mapping of an interpreter file says where
// its _PyRuntime is.
func (r *registry) registerPython(pid uint32, found *pythonProc) {
	if r.pyProcs == nil || found != nil && !r.pythonWalker() {
		return
	}
	r.mu.Lock()
	old := r.python[pid]
	r.mu.Unlock()
	if found == nil {
		if old != nil {
			_ = r.pyProcs.Delete(pid)
			r.mu.Lock()
			delete(r.python, pid)
			r.mu.Unlock()
		}
		return
	}
	v, err := pyProcValue(found.bin, found.bias)
	if err == nil {
		err = r.pyProcs.Put(pid, &v)
	}
	if err != nil {
		r.count(func(c *unwindCounters) { c.pythonFailed++ })
		return
	}
	r.mu.Lock()
	r.python[pid] = found
	delete(r.pythonGone, pid)
	if old == nil {
		r.stats.pythonProcesses++
		r.pythonFound[versionKey(found.bin.Version)]++
	}
	r.mu.Unlock()
}

// forgetPython drops the py_procs entry of a process that exited; what
// user space knows of it stays for pythonGoneSweeps more sweeps.
func (r *registry) forgetPython(pid uint32) {
	if r.pyProcs == nil {
		return
	}
	r.mu.Lock()
	pp, ok := r.python[pid]
	delete(r.python, pid)
	if ok {
		r.pythonGone[pid] = &goneProcess{proc: pp, sweeps: pythonGoneSweeps}
	}
	r.mu.Unlock()
	if ok {
		_ = r.pyProcs.Delete(pid)
	}
}

// ageGonePython forgets exited processes whose last samples have been
// drained; called with r.mu held, once per sweep.
func (r *registry) ageGonePython() {
	for pid, g := range r.pythonGone {
		if g.sweeps--; g.sweeps <= 0 {
			delete(r.pythonGone, pid)
		}
	}
}

// takePyStacks reads every Python stack of the idle buffer in one pass and
// empties the map.
func takePyStacks(m *ebpf.Map) (map[uint64][]PyFrame, error) {
	out := map[uint64][]PyFrame{}
	err := takeAll(m, "Python stacks", func(key *uint64, raw *cpuprofilePystack) {
		out[*key] = decodePyStack(raw)
	})
	return out, err
}

func decodePyStack(raw *cpuprofilePystack) []PyFrame {
	n := min(int(raw.Len), len(raw.Frames))
	out := make([]PyFrame, n)
	for i := range out {
		f := raw.Frames[i]
		out[i] = PyFrame{Code: f.Code, Check: f.Check, Offset: f.Offset & pyOffsetMask, Entry: f.Offset&pyEntry != 0}
		switch {
		case f.Code == pyMarkUnreadable:
			out[i].Mark = "unreadable"
		case f.Code == pyMarkDepth:
			out[i].Mark = "depth_limit"
		case f.Code == pyMarkNotCode:
			out[i].Mark = "not_code"
		case f.Code < pyMarkLimit:
			out[i].Mark = "unknown"
		}
	}
	return out
}

func versionKey(v python.Version) string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// PythonStats is what the Python walker did so far.
type PythonStats struct {
	// Versions counts the CPython processes walked now, by version
	// ("3.11"); Found those found since the start, exited ones included.
	// Failed counts interpreters found but not usable (an unsupported
	// version).
	Versions, Found map[string]int
	Failed          uint64
	// Frames recorded; samples of CPython processes taken in a thread
	// without a thread state; Python stacks that could not be stored.
	Frames, NoThreadState, StacksLost, TailCallFailed uint64
}

// PythonStats returns the Python walker's counters.
func (p *Profiler) PythonStats() PythonStats {
	s := PythonStats{Versions: map[string]int{}, Found: map[string]int{}}
	if p.reg == nil {
		return s
	}
	p.reg.mu.Lock()
	for _, pp := range p.reg.python {
		s.Versions[versionKey(pp.bin.Version)]++
	}
	for v, n := range p.reg.pythonFound {
		s.Found[v] = n
	}
	s.Failed = p.reg.stats.pythonFailed
	p.reg.mu.Unlock()
	s.Frames = p.counterSum(counterPyFrames)
	s.NoThreadState = p.counterSum(counterPyNoThreadState)
	s.StacksLost = p.counterSum(counterPyStackLost)
	s.TailCallFailed = p.counterSum(counterPyTailCallFailed)
	return s
}

// SortedVersions lists Versions' keys in order.
func (s PythonStats) SortedVersions() []string { return sortedKeys(s.Versions) }

// SortedFound lists Found's keys in order.
func (s PythonStats) SortedFound() []string { return sortedKeys(s.Found) }

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// PeekPython calls fn with each Python stack recorded since the last drain
// that it has not been shown yet, without taking it: the caller can name
// code objects while their process still lives (a process that runs for
// 300 ms is gone by the next drain). Stacks are shown once per drain.
func (p *Profiler) PeekPython(fn func(pid uint32, frames []PyFrame)) error {
	if p.PythonReport().Chosen != StrategyPythonFrames {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peeked == nil {
		p.peeked = map[uint64]bool{}
	}
	m := p.objs.PystacksA
	if p.active&1 == 1 {
		m = p.objs.PystacksB
	}
	var (
		key uint64
		raw cpuprofilePystack
	)
	it := m.Iterate()
	for it.Next(&key, &raw) {
		if p.peeked[key] {
			continue
		}
		p.peeked[key] = true
		fn(raw.Pid, decodePyStack(&raw))
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading Python stacks: %w", err)
	}
	return nil
}

// pythonWalker reports whether the Python walker is in place, loading it
// the first time it is needed.
func (r *registry) pythonWalker() bool {
	r.pyOnce.Do(func() {
		if r.loadPython != nil {
			r.pyErr = r.loadPython()
		}
	})
	return r.pyErr == nil
}
