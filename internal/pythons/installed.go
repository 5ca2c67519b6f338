package pythons

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// debianPython is Debian's interpreter, libpython linked into the
// executable.
const debianPython = "/usr/bin/python3"

// Installed lists the interpreters already on the machine, fetching
// nothing: Debian's python3, then pyenv's builds (shared libpython) by
// version.
func Installed() []Interpreter {
	var out []Interpreter
	if py, ok := debian(); ok {
		out = append(out, py)
	}
	return append(out, pyenv()...)
}

func debian() (Interpreter, bool) {
	exe, err := filepath.EvalSymlinks(debianPython)
	if err != nil {
		return Interpreter{}, false
	}
	b, err := exec.Command(exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	v := strings.TrimSpace(string(b))
	if err != nil || !supported(v) {
		return Interpreter{}, false
	}
	return Interpreter{Name: "debian-" + v, Version: v, Exe: exe, argv: []string{exe}}, true
}

// pyenvRoot is where pyenv keeps its builds: $PYENV_ROOT, else ~/.pyenv.
func pyenvRoot() string {
	if r := os.Getenv("PYENV_ROOT"); r != "" {
		return r
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".pyenv")
}

// pyenv lists pyenv's builds of supported versions, each run through its
// own executable (not pyenv's shim, which picks a version by context).
func pyenv() []Interpreter {
	root := pyenvRoot()
	if root == "" {
		return nil
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "versions", "3.*"))
	var out []Interpreter
	for _, dir := range dirs {
		full := filepath.Base(dir)
		v := majorMinor(full)
		exe := filepath.Join(dir, "bin", "python"+v)
		if !supported(v) || !isExecutable(exe) {
			continue
		}
		out = append(out, Interpreter{Name: "pyenv-" + full, Version: v, Exe: exe, argv: []string{exe}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Minor() < out[j].Minor() })
	return out
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
