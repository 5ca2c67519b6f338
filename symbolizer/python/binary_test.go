package python

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLooksLikePython(t *testing.T) {
	for path, want := range map[string]bool{
		"/usr/bin/python3.11": true,
		"python3.9":           true,
		"/root/.pyenv/versions/3.9.18/bin/python3.9d": true,
		"python3.7m":  true,
		"python3.13t": true,
		"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0": true,
		"libpython3.12.so":              true,
		"libpython3.7m.so.1.0":          true,
		"/usr/bin/python3.11 (deleted)": true,
		"python3":                       false,
		"python":                        false,
		"python3.":                      false,
		"python3.11-config":             false,
		"python3.11.py":                 false,
		"python2.7":                     false,
		"libpython3.so":                 false,
		"libpython3.11.a":               false,
		"libpython3.11.sox":             false,
		"/usr/lib/python3.11/lib-dynload/_ssl.cpython.so": false,
		"mypython3.11": false,
		"python3.1111": false,
	} {
		if got := LooksLikePython(path); got != want {
			t.Errorf("LooksLikePython(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestInspectSynthetic(t *testing.T) {
	f := fakePython(12, 4).open(t)
	b, err := Inspect(f, "/opt/lib/libpython3.12.so.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != (Version{3, 12, 4}) || b.VersionSource != "Py_Version" || b.Layout.Minor != 12 {
		t.Fatalf("got %v from %s, layout 3.%d", b.Version, b.VersionSource, b.Layout.Minor)
	}
	if b.Runtime != 0x30000 || b.Eval != [2]uint64{0x10004, 0x1000c} || b.CodeType != 0x30008 {
		t.Fatalf("runtime %#x, eval %#x, code type %#x", b.Runtime, b.Eval, b.CodeType)
	}

	b, err = Inspect(fakePython(10, 0).open(t), "/usr/lib/libpython3.10.so.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != (Version{3, 10, -1}) || b.VersionSource != "file name" || b.Version.String() != "3.10" {
		t.Fatalf("got %v from %s", b.Version, b.VersionSource)
	}

	b, err = Inspect(fakePython(13, 1).open(t), "/usr/bin/python3.13")
	if err != nil || b.Version.String() != "3.13.1" {
		t.Fatalf("3.13 with its debug offsets: %v, %v", b, err)
	}
}

func TestInspectRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(fe *fakeELF)
		path    string
		want    error  // nil: any error
		mention string // what the error must name
	}{
		{"no eval", func(fe *fakeELF) { fe.syms[0].name = "_PyEval_EvalFrame" }, "python3.12", ErrNotPython, ""},
		{"runtime undefined", func(fe *fakeELF) { fe.syms[1].section = 0 }, "python3.12", ErrNotPython, ""},
		{"no version", func(fe *fakeELF) { fe.syms = fe.syms[:3] }, "libpython.so", ErrUnsupported, ""},
		{"3.8 by name", func(fe *fakeELF) { fe.syms = fe.syms[:3] }, "libpython3.8.so.1.0", ErrUnsupported, "3.8"},
		{"3.14", func(fe *fakeELF) { putVersion(fe, 0x030e00f0) }, "python3.14", ErrUnsupported, "3.14.0"},
		{"Python 4", func(fe *fakeELF) { putVersion(fe, 0x040000f0) }, "python3.12", ErrUnsupported, "0x40000f0"},
		{"arm64", func(fe *fakeELF) { fe.machine = elf.EM_AARCH64 }, "python3.12", ErrUnsupported, "AARCH64"},
		{"free-threaded name", func(*fakeELF) {}, "python3.13t", ErrUnsupported, "free-threaded"},
		{"Py_Version past its section", func(fe *fakeELF) { fe.syms[3].value = 0x2000e }, "python3.12", nil, "Py_Version"},
		{"Py_Version in no section", func(fe *fakeELF) { fe.syms[3].section = 99 }, "python3.12", nil, "Py_Version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := fakePython(12, 1)
			tc.edit(fe)
			b, err := Inspect(fe.open(t), tc.path)
			if err == nil || b != nil {
				t.Fatalf("got %+v, %v; want an error", b, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q does not name %q", err, tc.mention)
			}
		})
	}
}

func putVersion(fe *fakeELF, hex uint32) {
	binary.LittleEndian.PutUint64(fe.sections[1].data[8:], uint64(hex))
}

// TestDebugOffsetsRefuse: 3.13 builds whose own description disagrees
// with the layout are refused.
func TestDebugOffsetsRefuse(t *testing.T) {
	d := debugOffsets[13]
	if d == nil || len(d.fields) < 15 {
		t.Fatal("no debug offsets generated for 3.13")
	}
	for name, edit := range map[string]func(b []byte){
		"free-threaded": func(b []byte) { b[d.freeThreaded] = 1 },
		"no cookie":     func(b []byte) { b[0] = 'X' },
		"other version": func(b []byte) { binary.LittleEndian.PutUint64(b[d.version:], 0x030c00f0) },
		"moved field":   func(b []byte) { b[d.fields[4].at] += 8 },
	} {
		t.Run(name, func(t *testing.T) {
			fe := fakePython(13, 0)
			edit(fe.sections[2].data)
			if _, err := Inspect(fe.open(t), "python3.13"); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("got %v, want ErrUnsupported", err)
			}
		})
	}
	t.Run("runtime not in the file", func(t *testing.T) {
		fe := fakePython(13, 0)
		fe.sections[2].typ = elf.SHT_NOBITS
		if _, err := Inspect(fe.open(t), "python3.13"); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("got %v, want ErrUnsupported", err)
		}
	})
}

// TestInspectInstalled inspects the interpreters installed here.
func TestInspectInstalled(t *testing.T) {
	ins := interpreters()
	if len(ins) == 0 {
		t.Skip("no CPython 3.9 to 3.13 installed (pyenv or " + debianPython + ")")
	}
	for _, in := range ins {
		t.Run(in.name, func(t *testing.T) {
			if !LooksLikePython(in.lib) || !LooksLikePython(in.exe) {
				t.Fatalf("%s or %s not taken for an interpreter by name", in.lib, in.exe)
			}
			b := inspectFile(t, in.lib)
			checkInstalled(t, in, b)
			if in.lib != in.exe {
				// The executable links libpython: the interpreter is there.
				f, err := elf.Open(in.exe)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := Inspect(f, in.exe); !errors.Is(err, ErrNotPython) {
					t.Fatalf("%s: %v, want ErrNotPython", in.exe, err)
				}
			}
		})
	}
}

func inspectFile(t *testing.T, path string) *Binary {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := Inspect(f, path)
	if err != nil {
		t.Fatal(err)
	}
	// The standard library's symbol reader, independently.
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		switch s.Name {
		case "_PyRuntime":
			if s.Value != b.Runtime {
				t.Errorf("runtime %#x, .dynsym says %#x", b.Runtime, s.Value)
			}
		case "_PyEval_EvalFrameDefault":
			if s.Value != b.Eval[0] || s.Value+s.Size != b.Eval[1] {
				t.Errorf("eval %#x, .dynsym says %#x+%#x", b.Eval, s.Value, s.Size)
			}
		}
	}
	return b
}

// checkInstalled compares what Inspect says with what the install is.
func checkInstalled(t *testing.T, in interp, b *Binary) {
	t.Helper()
	if b.Version.Major != 3 || b.Version.Minor != in.minor || b.Layout.Minor != in.minor {
		t.Fatalf("version %v, layout 3.%d; want 3.%d", b.Version, b.Layout.Minor, in.minor)
	}
	if b.Runtime == 0 || b.Eval[0] == 0 || b.Eval[1] <= b.Eval[0] || b.CodeType == 0 {
		t.Fatalf("runtime %#x, eval %#x, code type %#x", b.Runtime, b.Eval, b.CodeType)
	}
	wantPatch := -1
	if in.minor >= 11 {
		wantPatch = installedPatch(in)
	}
	wantSource := map[bool]string{true: "Py_Version", false: "file name"}[in.minor >= 11]
	if b.Version.Patch != wantPatch || b.VersionSource != wantSource {
		t.Fatalf("version %v from %s, want patch %d from %s", b.Version, b.VersionSource, wantPatch, wantSource)
	}
}

// installedPatch is the patch version the install says it is: pyenv's
// directory name, or Debian's 3.11.2.
func installedPatch(in interp) int {
	if !in.pyenv {
		return 2
	}
	base := filepath.Base(filepath.Dir(filepath.Dir(in.exe)))
	p, _ := strconv.Atoi(base[strings.LastIndex(base, ".")+1:])
	return p
}

func TestInspectNotPython(t *testing.T) {
	for _, path := range []string{"/bin/ls", "/bin/sh"} {
		f, err := elf.Open(path)
		if err != nil {
			t.Skipf("%s: %v", path, err)
		}
		_, err = Inspect(f, path)
		f.Close()
		if !errors.Is(err, ErrNotPython) {
			t.Fatalf("%s: %v, want ErrNotPython", path, err)
		}
	}
}
