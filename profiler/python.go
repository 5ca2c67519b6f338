package profiler

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/symbolizer/python"
)

// PythonSource tells which processes run CPython and shows their Python
// stacks before a drain takes them; *cpuprofile.Profiler satisfies it.
type PythonSource interface {
	PythonProcess(pid uint32) (cpuprofile.PythonProcess, bool)
	PeekPython(fn func(pid uint32, frames []cpuprofile.PyFrame)) error
}

// Unreadable Python frames are named so, and counted by reason.
const pyUnreadable = "[python frame unreadable]"

// pythonCodes bounds the code objects the namer keeps named, across all
// processes; a service has thousands, a host a few tens of thousands.
const pythonCodes = 1 << 16

// PythonNamer names Python frames from the memory of their processes. One
// namer serves every profile of a session: its cache of code objects is
// what keeps naming cheap, and it names the frames of a process while the
// process lives, before the drain that counts them.
type PythonNamer struct {
	src      PythonSource
	procRoot string

	mu         sync.Mutex
	res        *python.Resolver
	mem        map[uint32]*os.File // open /proc/<pid>/mem, closed when the pid is gone
	unreadable map[string]uint64   // frames that could not be named, by reason
	gone       map[uint32]bool     // pids found dead at the last Tidy
}

// NewPythonNamer returns a namer for the processes src finds; procRoot is
// where /proc is ("/proc" when empty).
func NewPythonNamer(src PythonSource, procRoot string) *PythonNamer {
	if procRoot == "" {
		procRoot = "/proc"
	}
	return &PythonNamer{src: src, procRoot: procRoot, res: python.NewResolver(pythonCodes),
		mem: map[uint32]*os.File{}, unreadable: map[string]uint64{}, gone: map[uint32]bool{}}
}

// Warm names the code objects of a stack now, while its process lives; the
// names are then served from the cache when the drain counts the stack.
func (n *PythonNamer) Warm() error {
	return n.src.PeekPython(func(pid uint32, frames []cpuprofile.PyFrame) {
		pp, ok := n.src.PythonProcess(pid)
		if !ok {
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, f := range frames {
			if f.Mark == "" {
				_, _ = n.frameLocked(pid, pp, f)
			}
		}
	})
}

// frame names one frame, or says why it can't.
func (n *PythonNamer) frame(pid uint32, pp cpuprofile.PythonProcess, f cpuprofile.PyFrame) (python.Frame, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fr, reason := n.frameLocked(pid, pp, f)
	if reason != "" {
		n.unreadable[reason]++
	}
	return fr, reason
}

func (n *PythonNamer) frameLocked(pid uint32, pp cpuprofile.PythonProcess, f cpuprofile.PyFrame) (python.Frame, string) {
	var mem io.ReaderAt = noMemory{} // a cached code object is still named
	if file, err := n.memLocked(pid); err == nil {
		mem = file
	}
	fr, err := n.res.Frame(pid, pp.Layout, mem, f.Code, f.Check, f.Offset)
	if err == nil {
		return fr, ""
	}
	var ue *python.UnreadableError
	if errors.As(err, &ue) {
		return fr, ue.Reason
	}
	return fr, "read_failed"
}

// noMemory stands for a process whose memory can no longer be opened.
type noMemory struct{}

func (noMemory) ReadAt([]byte, int64) (int, error) { return 0, os.ErrNotExist }

func (n *PythonNamer) memLocked(pid uint32) (*os.File, error) {
	if f := n.mem[pid]; f != nil {
		return f, nil
	}
	f, err := os.Open(n.procRoot + "/" + strconv.FormatUint(uint64(pid), 10) + "/mem")
	if err != nil {
		return nil, err
	}
	n.mem[pid] = f
	return f, nil
}

// Tidy forgets processes that exited: a pid found dead is forgotten at the
// next Tidy, so the drain that counts its last samples still finds its
// names. Called after each drain.
func (n *PythonNamer) Tidy() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for pid := range n.gone {
		n.forgetLocked(pid)
	}
	clear(n.gone)
	for pid := range n.mem {
		if _, err := os.Stat(n.procRoot + "/" + strconv.FormatUint(uint64(pid), 10)); errors.Is(err, os.ErrNotExist) {
			n.gone[pid] = true
		}
	}
}

// Forget drops what is known of pid (it exec'd: its addresses mean
// something else now).
func (n *PythonNamer) Forget(pid uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.forgetLocked(pid)
}

func (n *PythonNamer) forgetLocked(pid uint32) {
	if f := n.mem[pid]; f != nil {
		f.Close()
	}
	delete(n.mem, pid)
	n.res.Forget(pid)
}

func (n *PythonNamer) count(reason string) {
	n.mu.Lock()
	n.unreadable[reason]++
	n.mu.Unlock()
}

// Unreadable returns the frames that could not be named so far, by reason.
func (n *PythonNamer) Unreadable() map[string]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]uint64, len(n.unreadable))
	for k, v := range n.unreadable {
		out[k] = v
	}
	return out
}

// Close releases the open process memory files.
func (n *PythonNamer) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for pid, f := range n.mem {
		f.Close()
		delete(n.mem, pid)
	}
}

type pyLocKey struct {
	pid    uint32
	code   uint64
	check  uint32
	offset uint32
	mark   string
}

// pythonLocation returns the location of one Python frame of pid.
func (b *Builder) pythonLocation(pid uint32, pp cpuprofile.PythonProcess, f cpuprofile.PyFrame) *profile.Location {
	key := pyLocKey{pid: pid, code: f.Code, check: f.Check, offset: f.Offset, mark: f.Mark}
	if f.Mark != "" {
		key = pyLocKey{mark: f.Mark}
	}
	if loc, ok := b.pyLocs[key]; ok {
		return loc
	}
	m := b.pythonMapping(pp)
	var line profile.Line
	switch f.Mark {
	case "":
		fr, reason := b.py.frame(pid, pp, f)
		if reason != "" {
			b.stats.PythonUnreadable++
			line = profile.Line{Function: b.function(pyUnreadable, "")}
		} else {
			line = profile.Line{Function: b.pythonFunction(fr.Function, fr.File), Line: int64(fr.Line)}
		}
	case "depth_limit":
		line = profile.Line{Function: b.function("[python stack truncated: depth_limit]", "")}
	default: // the walker could not read the frame or its code
		b.stats.PythonUnreadable++
		b.py.count(f.Mark)
		line = profile.Line{Function: b.function(pyUnreadable, "")}
	}
	// Offsets on the same line are one location, as pprof shows them.
	byLine := locKey{mapping: m, name: line.Function.Name + "\x00" + line.Function.Filename + "\x00" + strconv.FormatInt(line.Line, 10)}
	if loc, ok := b.locs[byLine]; ok {
		b.pyLocs[key] = loc
		return loc
	}
	loc := &profile.Location{ID: uint64(len(b.prof.Location) + 1), Mapping: m, Line: []profile.Line{line}}
	b.locs[byLine] = loc
	b.pyLocs[key] = loc
	b.prof.Location = append(b.prof.Location, loc)
	return loc
}

// pythonFunction is a Python function. Its system name is file-qualified,
// so it differs from the name: pprof takes a function whose two names are
// equal for one not demangled yet, and would cut "<module>" (or
// "<lambda>", "<listcomp>") down to nothing as if it were a C++ template.
func (b *Builder) pythonFunction(name, file string) *profile.Function {
	key := funcKey{name, file}
	if f, ok := b.funcs[key]; ok {
		return f
	}
	f := b.function(name, file)
	f.SystemName = file + ":" + name
	return f
}

// pythonUnknown is an unreadable frame of a process no longer known.
func (b *Builder) pythonUnknown() *profile.Location {
	b.stats.PythonUnreadable++
	b.py.count("process_unknown")
	return b.synthetic(pyUnreadable)
}

// pythonMapping is the one mapping of a CPython version's frames, named
// "[python3.11]", so a Python frame is told from a native one.
func (b *Builder) pythonMapping(pp cpuprofile.PythonProcess) *profile.Mapping {
	name := fmt.Sprintf("[python%d.%d]", pp.Version.Major, pp.Version.Minor)
	key := mappingKey{path: name}
	if m, ok := b.mappings[key]; ok {
		return m
	}
	m := &profile.Mapping{ID: uint64(len(b.prof.Mapping) + 1), File: name,
		HasFunctions: true, HasFilenames: true, HasLineNumbers: true}
	b.mappings[key] = m
	b.prof.Mapping = append(b.prof.Mapping, m)
	return m
}

// userWithPython appends s's user part to stack, with its Python frames
// in place of the eval-loop frames that ran them: each native
// _PyEval_EvalFrameDefault frame stands for one group of Python frames
// (up to and including a frame marked Entry). Groups left over (the native
// walk stopped early, or the eval frames were not recognised) go rootward
// of the native frames.
func (b *Builder) userWithPython(stack []*profile.Location, s *cpuprofile.Sample) []*profile.Location {
	pp, ok := b.py.src.PythonProcess(s.PID)
	if !ok {
		// Recorded, but what the process ran is no longer known: its
		// frames can't be named, and say so.
		for j := range s.User {
			stack = appendLoc(stack, b.userLocs[s.PID][callSite(s.User, j)])
		}
		for range s.Python {
			stack = append(stack, b.pythonUnknown())
		}
		return stack
	}
	py := s.Python
	nextGroup := func() []cpuprofile.PyFrame {
		end := 0
		for end < len(py) && !py[end].Entry {
			end++
		}
		end = min(end+1, len(py))
		g := py[:end]
		py = py[end:]
		return g
	}
	for j := range s.User {
		a := callSite(s.User, j)
		if len(py) > 0 && a >= pp.Eval[0] && a < pp.Eval[1] {
			for _, f := range nextGroup() {
				stack = append(stack, b.pythonLocation(s.PID, pp, f))
			}
			continue
		}
		stack = appendLoc(stack, b.userLocs[s.PID][a])
	}
	for _, f := range py {
		stack = append(stack, b.pythonLocation(s.PID, pp, f))
	}
	return stack
}
