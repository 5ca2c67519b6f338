// Package pythons supplies the CPython interpreters that the Python
// profiling tests run their workloads under: Debian's own python3, every
// pyenv build of a supported version, and interpreters of older and newer
// Debian releases taken from Debian's archive the way the kernel matrix
// takes kernels (bpf/kernels), unpacked into a cache and run with their own
// dynamic loader and libraries. Together they cover each supported minor
// version, statically and dynamically linked libpython, and several
// distributions' builds of one version.
package pythons

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The CPython versions vigil walks: 3.MinMinor to 3.MaxMinor.
const (
	MinMinor = 9
	MaxMinor = 13
)

// EnvCache overrides where archived interpreters are kept (by default
// .cache/pythons at the module root, next to the kernel matrix's kernels).
const EnvCache = "VIGIL_PYTHONS_CACHE"

// Interpreter is one CPython that can run a script.
type Interpreter struct {
	Name    string // where it comes from and its version: "debian-3.11", "pyenv-3.10.13", "bullseye-3.9"
	Version string // major.minor, "3.11"
	Exe     string // the interpreter's executable (not the loader that starts it)
	// Missing says why the interpreter could not be provided (its
	// download failed); Command must not be used then.
	Missing string
	argv    []string // what runs the script: the executable, or a loader and its options
	env     []string // set on top of the test's environment
}

// Minor returns the minor version: 11 for 3.11.
func (py Interpreter) Minor() int {
	_, m, _ := strings.Cut(py.Version, ".")
	n, _ := strconv.Atoi(m)
	return n
}

// Command runs script with args under the interpreter. The test's own
// PYTHON* variables are dropped so that none changes which standard
// library or site packages the interpreter finds.
func (py Interpreter) Command(script string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), py.argv...), script), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PYTHON") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, py.env...)
	return cmd
}

var all struct {
	once sync.Once
	list []Interpreter
	err  error
}

// All lists every supported CPython this machine can run, fetching the
// archived ones the first time (once per test process; the download and
// the unpacked trees are kept in the cache). An archived interpreter that
// could not be fetched is listed with Missing set.
func All(tb testing.TB) []Interpreter {
	tb.Helper()
	all.once.Do(func() {
		all.list = append(Installed(), archived(tb)...)
	})
	return all.list
}

// Each runs fn in a subtest per interpreter, named after it. An interpreter
// that is missing skips its subtest with the reason, except under CI=true,
// where everything is fetched and a missing one fails.
func Each(t *testing.T, fn func(t *testing.T, py Interpreter)) {
	t.Helper()
	list := All(t)
	if len(list) == 0 {
		unavailable(t, "no CPython 3.%d to 3.%d found (Debian's python3, pyenv, Debian's archive)", MinMinor, MaxMinor)
	}
	for _, py := range list {
		t.Run(py.Name, func(t *testing.T) {
			if py.Missing != "" {
				unavailable(t, "%s: %s", py.Name, py.Missing)
			}
			fn(t, py)
		})
	}
}

func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and an interpreter is missing: "+format, args...)
	}
	t.Skipf("skipped: "+format, args...)
}

// supported reports whether a "3.N" version is one vigil walks.
func supported(version string) bool {
	major, minor, ok := strings.Cut(version, ".")
	n, err := strconv.Atoi(minor)
	return ok && major == "3" && err == nil && n >= MinMinor && n <= MaxMinor
}

// majorMinor cuts a full version ("3.10.13") to "3.10".
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func (py Interpreter) String() string {
	if py.Missing != "" {
		return fmt.Sprintf("%s (missing: %s)", py.Name, py.Missing)
	}
	return fmt.Sprintf("%s (%s)", py.Name, strings.Join(py.argv, " "))
}
