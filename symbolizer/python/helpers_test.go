package python

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/lines/*.json from the installed interpreters")

// interp is a CPython installed on this machine.
type interp struct {
	name  string // for subtest names
	minor int
	exe   string // the python3.N executable
	lib   string // the file holding the interpreter: libpython3.N.so.1.0, or exe when linked in
	pyenv bool
}

// debianPython is the distribution's interpreter, linked into the
// executable rather than a shared library.
const debianPython = "/usr/bin/python3.11"

// interpreters lists the newest pyenv CPython of each supported minor
// version, then the distribution's python3.11, whichever are installed.
func interpreters() []interp {
	var out []interp
	for _, l := range layouts {
		if in, ok := pyenvInterp(l.Minor); ok {
			out = append(out, in)
		}
	}
	if _, err := os.Stat(debianPython); err == nil {
		out = append(out, interp{name: "debian-3.11", minor: 11, exe: debianPython, lib: debianPython})
	}
	return out
}

func pyenvRoot() string {
	if r := os.Getenv("PYENV_ROOT"); r != "" {
		return r
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".pyenv")
}

// pyenvInterp finds the newest pyenv install of 3.<minor>.
func pyenvInterp(minor int) (interp, bool) {
	dirs, _ := filepath.Glob(filepath.Join(pyenvRoot(), "versions", "3."+strconv.Itoa(minor)+".*"))
	re := regexp.MustCompile(`/3\.\d+\.(\d+)$`)
	sort.Slice(dirs, func(i, j int) bool { return patchOf(re, dirs[i]) > patchOf(re, dirs[j]) })
	for _, d := range dirs {
		if !re.MatchString(d) {
			continue
		}
		v := "3." + strconv.Itoa(minor)
		in := interp{name: filepath.Base(d), minor: minor, pyenv: true,
			exe: filepath.Join(d, "bin", "python"+v), lib: filepath.Join(d, "lib", "libpython"+v+".so.1.0")}
		if exists(in.exe) && exists(in.lib) {
			return in, true
		}
	}
	return interp{}, false
}

func patchOf(re *regexp.Regexp, dir string) int {
	m := re.FindStringSubmatch(dir)
	if m == nil {
		return -1
	}
	p, _ := strconv.Atoi(m[1])
	return p
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// wantReason fails unless err is an *UnreadableError with the reason.
func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var ue *UnreadableError
	if !errors.As(err, &ue) {
		t.Fatalf("got error %v, want an UnreadableError %q", err, reason)
	}
	if ue.Reason != reason {
		t.Fatalf("got reason %q (%v), want %q", ue.Reason, err, reason)
	}
}
