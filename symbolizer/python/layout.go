package python

import "fmt"

//go:generate go run ./internal/genlayout -o layouts_generated.go

// NoOffset marks a Layout field this version does not have.
const NoOffset = 0xffff

// FrameKind says how a version's frames are laid out and walked.
type FrameKind uint8

const (
	// FrameObject39: tstate->frame is a PyFrameObject chain (f_back);
	// f_lasti is an int, the byte offset of the last instruction, -1 before
	// the first.
	FrameObject39 FrameKind = 1
	// FrameObject310: as 3.9, but f_lasti counts code units (2 bytes).
	FrameObject310 FrameKind = 2
	// Interp311: tstate->cframe->current_frame, a chain of
	// _PyInterpreterFrame (previous), prev_instr a pointer into the code;
	// the bool is_entry marks the first frame of each C-level eval call.
	Interp311 FrameKind = 3
	// Interp312: as 3.11 but without is_entry: a frame whose owner is
	// FRAME_OWNED_BY_CSTACK (Layout.OwnedByCStack) is a shim each eval call
	// pushes, and names no code.
	Interp312 FrameKind = 4
	// Interp313: tstate->current_frame (no cframe), f_executable, instr_ptr
	// (the instruction being executed), owner as in 3.12.
	Interp313 FrameKind = 5
)

// Version is a CPython version.
type Version struct {
	Major, Minor int
	Patch        int // -1 when unknown
}

func (v Version) String() string {
	if v.Patch < 0 {
		return fmt.Sprintf("%d.%d", v.Major, v.Minor)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Layout holds the byte offsets vigil reads in one CPython minor version
// (x86-64). Offsets are NoOffset where the version has no such field. They
// are generated from each version's own headers (layouts_generated.go).
type Layout struct {
	Minor int
	Kind  FrameKind

	RuntimeInterpretersHead uint16 // _PyRuntimeState.interpreters.head
	InterpThreadsHead       uint16 // PyInterpreterState: tstate_head (3.9, 3.10), threads.head (3.11+)
	TstateNext              uint16 // PyThreadState.next
	TstateThreadID          uint16 // PyThreadState.thread_id: pthread_self() of the thread
	TstateFrame             uint16 // PyThreadState: frame (3.9, 3.10), cframe (3.11, 3.12), current_frame (3.13)
	CFrameCurrentFrame      uint16 // _PyCFrame.current_frame (3.11, 3.12)

	FramePrevious uint16 // f_back (3.9, 3.10), previous (3.11+)
	FrameCode     uint16 // f_code, f_executable (3.13)
	FrameInstr    uint16 // f_lasti (3.9, 3.10), prev_instr (3.11, 3.12), instr_ptr (3.13)
	FrameOwner    uint16 // is_entry (3.11), owner (3.12+)
	OwnedByCStack uint8  // FRAME_OWNED_BY_CSTACK (3.12+), 0 before

	CodeAdaptive    uint16 // PyCodeObject.co_code_adaptive (3.11+): the instructions
	CodeName        uint16 // co_name
	CodeQualname    uint16 // co_qualname (3.11+)
	CodeFilename    uint16 // co_filename
	CodeFirstLineNo uint16 // co_firstlineno (int)
	CodeLineTable   uint16 // co_lnotab (3.9), co_linetable (3.10+)
	CodeCode        uint16 // co_code, a bytes object (3.9, 3.10)

	ASCIISize     uint16 // sizeof(PyASCIIObject): ASCII characters follow it
	CompactSize   uint16 // sizeof(PyCompactUnicodeObject): other compact strings' characters follow it
	UnicodeLength uint16 // PyASCIIObject.length, in characters
	UnicodeState  uint16 // PyASCIIObject.state, the bit field holding kind, compact and ascii

	BytesSize uint16 // PyBytesObject.ob_size
	BytesData uint16 // PyBytesObject.ob_sval
}

// LayoutFor returns the layout of v's minor version.
func LayoutFor(v Version) (*Layout, error) {
	if v.Major == 3 {
		for _, l := range layouts {
			if l.Minor == v.Minor {
				return l, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: CPython %s (vigil names 3.9 to 3.13)", ErrUnsupported, v)
}

// Layouts returns the layout of every supported minor version, oldest first.
// The layouts are shared: callers must not change them.
func Layouts() []*Layout {
	return append([]*Layout(nil), layouts...)
}

// codeHeaderSize is how many bytes of a code object hold every field Frame
// reads, so that one read covers them.
func (l *Layout) codeHeaderSize() int {
	end := 0
	for _, f := range []struct {
		off  uint16
		size int
	}{
		{l.CodeName, 8}, {l.CodeQualname, 8}, {l.CodeFilename, 8},
		{l.CodeLineTable, 8}, {l.CodeFirstLineNo, 4},
	} {
		if f.off != NoOffset {
			end = max(end, int(f.off)+f.size)
		}
	}
	return end
}

// debugLayout says where _Py_DebugOffsets, which 3.13 and later keep at the
// start of _PyRuntime, records a version's offsets.
type debugLayout struct {
	version      int // PY_VERSION_HEX, as a uint64
	freeThreaded int // non-zero in free-threaded builds, whose objects differ
	fields       []debugField
}

// debugField is one offset both Layout and _Py_DebugOffsets hold.
type debugField struct {
	name string
	at   int // where in _Py_DebugOffsets, a uint64
	get  func(*Layout) uint16
}
