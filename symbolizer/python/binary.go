package python

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Binary is what a CPython interpreter file (python3.N or libpython3.N.so)
// says about itself. Addresses are link-time: add the load bias.
type Binary struct {
	Version       Version
	VersionSource string    // "Py_Version" or "file name"
	Runtime       uint64    // the _PyRuntime symbol, where the walk starts
	Eval          [2]uint64 // [start, end) of _PyEval_EvalFrameDefault
	// CodeType is the PyCode_Type symbol, the type of every code object
	// (0 if the file doesn't say): a frame whose code pointer's ob_type is
	// not this is not a code object.
	CodeType uint64
	Layout   *Layout
}

// Symbols Inspect looks for, in findSymbols order.
const (
	symRuntime = iota
	symEval
	symVersion
	symCodeType
)

var inspectSymbols = []string{"_PyRuntime", "_PyEval_EvalFrameDefault", "Py_Version", "PyCode_Type"}

// Inspect tells whether f, opened from path, is a CPython interpreter vigil
// can walk. It returns ErrNotPython when f lacks the interpreter's symbols
// (a python3.N executable linked to libpython3.N.so is such a file: the
// interpreter is in the library), and an error wrapping ErrUnsupported for
// an interpreter vigil can't walk. The version comes from the Py_Version
// symbol (3.11+), else from the file name. A malformed file gives an error,
// never a panic.
func Inspect(f *elf.File, path string) (b *Binary, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("inspecting %s: malformed ELF: %v", path, r)
		}
	}()
	syms, err := findSymbols(f, inspectSymbols...)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", path, err)
	}
	if !syms[symRuntime].found || !syms[symEval].found {
		return nil, fmt.Errorf("%s: %w", path, ErrNotPython)
	}
	b, err = describe(f, path, syms)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", path, err)
	}
	return b, nil
}

// InspectFile is Inspect of the file at path, opened and parsed here; a
// file that is not ELF is not Python.
func InspectFile(path string) (b *Binary, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("inspecting %s: malformed ELF: %v", path, r)
		}
	}()
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", path, ErrNotPython, err)
	}
	return Inspect(ef, path)
}

// describe fills a Binary from an interpreter file's symbols.
func describe(f *elf.File, path string, syms []elfSym) (*Binary, error) {
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("%w: %v %v", ErrUnsupported, f.Machine, f.Class)
	}
	if eval := syms[symEval]; eval.value+eval.size < eval.value {
		return nil, fmt.Errorf("%w: _PyEval_EvalFrameDefault of size %#x", errSymbols, eval.size)
	}
	b := &Binary{
		Runtime:  syms[symRuntime].value,
		Eval:     [2]uint64{syms[symEval].value, syms[symEval].value + syms[symEval].size},
		CodeType: syms[symCodeType].value,
	}
	var err error
	if b.Version, b.VersionSource, err = fileVersion(f, path, syms[symVersion]); err != nil {
		return nil, err
	}
	if b.Layout, err = LayoutFor(b.Version); err != nil {
		return nil, err
	}
	if err := checkDebugOffsets(f, syms[symRuntime], b.Version, b.Layout); err != nil {
		return nil, err
	}
	return b, nil
}

// fileVersion reads the version from the Py_Version symbol, else from the
// file name. A free-threaded build ("python3.13t") has other object
// layouts: unsupported.
func fileVersion(f *elf.File, path string, pyVersion elfSym) (Version, string, error) {
	minor, flags, named := nameVersion(filepath.Base(path))
	if named && strings.Contains(flags, "t") {
		return Version{}, "", fmt.Errorf("%w: free-threaded build", ErrUnsupported)
	}
	if pyVersion.found {
		raw, err := symbolBytes(f, pyVersion, 4)
		if err != nil {
			return Version{}, "", fmt.Errorf("reading Py_Version: %w", err)
		}
		hex := f.ByteOrder.Uint32(raw)
		v := Version{Major: int(hex >> 24), Minor: int(hex >> 16 & 0xff), Patch: int(hex >> 8 & 0xff)}
		if v.Major != 3 {
			return Version{}, "", fmt.Errorf("%w: Py_Version %#x", ErrUnsupported, hex)
		}
		return v, "Py_Version", nil
	}
	if !named {
		return Version{}, "", fmt.Errorf("%w: no Py_Version symbol and no version in the file name", ErrUnsupported)
	}
	return Version{Major: 3, Minor: minor, Patch: -1}, "file name", nil
}

// LooksLikePython says whether a file's base name is a CPython 3
// interpreter's: python3.N with optional ABI flags (python3.9d, python3.7m,
// python3.13t) or libpython3.N*.so*. It never opens the file; it is the
// cheap filter before Inspect.
func LooksLikePython(path string) bool {
	_, _, ok := nameVersion(filepath.Base(path))
	return ok
}

// nameVersion parses an interpreter's file name: the minor version and ABI
// flags (lower-case letters after it). A mapping of a deleted file is named
// "... (deleted)" in /proc/<pid>/maps.
func nameVersion(base string) (minor int, flags string, ok bool) {
	base = strings.TrimSuffix(base, " (deleted)")
	lib := strings.HasPrefix(base, "lib")
	rest, found := strings.CutPrefix(strings.TrimPrefix(base, "lib"), "python3.")
	if !found {
		return 0, "", false
	}
	n := 0
	for n < len(rest) && n < 3 && rest[n] >= '0' && rest[n] <= '9' {
		minor = minor*10 + int(rest[n]-'0')
		n++
	}
	f := n
	for f < len(rest) && rest[f] >= 'a' && rest[f] <= 'z' {
		f++
	}
	flags, rest = rest[n:f], rest[f:]
	if n == 0 {
		return 0, "", false
	}
	if lib {
		// libpython3.N.so, libpython3.N.so.1.0
		return minor, flags, rest == ".so" || strings.HasPrefix(rest, ".so.")
	}
	return minor, flags, rest == ""
}

// debugCookie starts _Py_DebugOffsets, at the start of _PyRuntime (3.13+).
var debugCookie = []byte("xdebugpy")

// checkDebugOffsets compares the offsets a 3.13+ interpreter records about
// itself at the start of _PyRuntime with l. A build whose objects differ
// from the headers vigil's layouts come from (free-threaded, or patched) is
// refused rather than walked wrongly.
func checkDebugOffsets(f *elf.File, runtime elfSym, v Version, l *Layout) error {
	d := debugOffsets[l.Minor]
	if d == nil {
		return nil
	}
	size := d.freeThreaded + 8
	for _, fd := range d.fields {
		size = max(size, fd.at+8)
	}
	raw, err := symbolBytes(f, runtime, size)
	if err != nil {
		return fmt.Errorf("%w: reading _Py_DebugOffsets: %w", ErrUnsupported, err)
	}
	u64 := func(at int) uint64 { return binary.LittleEndian.Uint64(raw[at:]) }
	switch {
	case !bytes.Equal(raw[:len(debugCookie)], debugCookie):
		return fmt.Errorf("%w: _PyRuntime does not start with _Py_DebugOffsets", ErrUnsupported)
	case u64(d.version)>>16 != uint64(v.Major<<8|v.Minor):
		return fmt.Errorf("%w: _Py_DebugOffsets of version %#x in %s", ErrUnsupported, u64(d.version), v)
	case u64(d.freeThreaded) != 0:
		return fmt.Errorf("%w: free-threaded build", ErrUnsupported)
	}
	for _, fd := range d.fields {
		if got := u64(fd.at); got != uint64(fd.get(l)) {
			return fmt.Errorf("%w: the interpreter has %s at %d, vigil's 3.%d layout at %d",
				ErrUnsupported, fd.name, got, l.Minor, fd.get(l))
		}
	}
	return nil
}
