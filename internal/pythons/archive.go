package pythons

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/internal/debarchive"
)

// fromArchive is an interpreter taken from a Debian release: its packages
// are the interpreter, its standard library and every library these load
// (apt-cache depends of python3.X-minimal, libpython3.X-minimal and the
// C extensions the workloads use; libgcc-s1 because glibc loads it when a
// thread exits), so that nothing comes from the host.
type fromArchive struct {
	suite, version string
	packages       []string
}

// The releases around the host's Debian 12 (3.11): Debian 11's 3.9, the
// oldest supported version, and Debian 13's 3.13, the newest.
var archive = []fromArchive{
	{suite: "bullseye", version: "3.9", packages: []string{
		"python3.9-minimal", "libpython3.9-minimal", "libpython3.9-stdlib",
		"libc6", "libgcc-s1", "zlib1g", "libexpat1", "libssl1.1",
	}},
	{suite: "trixie", version: "3.13", packages: []string{
		"python3.13-minimal", "libpython3.13-minimal", "libpython3.13-stdlib",
		"libc6", "libgcc-s1", "zlib1g", "libexpat1", "libssl3t64", "libzstd1",
	}},
}

// fetchTimeout bounds the first download (some 20 MB and the suites' apt
// lists); later runs find everything in the cache.
const fetchTimeout = 5 * time.Minute

// archived returns the interpreters from Debian's archive, fetching and
// unpacking the ones not in the cache yet.
func archived(tb testing.TB) []Interpreter {
	tb.Helper()
	cache, err := cacheDir()
	if err == nil {
		err = os.MkdirAll(cache, 0o755)
	}
	out := make([]Interpreter, 0, len(archive))
	if err != nil {
		for _, a := range archive {
			out = append(out, Interpreter{Name: a.name(), Version: a.version, Missing: err.Error()})
		}
		return out
	}
	unlock, lockErr := lockCache(cache)
	if lockErr == nil {
		defer unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	for _, a := range archive {
		py, err := a.fetch(ctx, cache)
		if err != nil {
			py = Interpreter{Name: a.name(), Version: a.version, Missing: errors.Join(err, lockErr).Error()}
		}
		out = append(out, py)
	}
	return out
}

func (a fromArchive) name() string { return a.suite + "-" + a.version }

// fetch unpacks the packages into cache/<suite>-<version> the first time
// and returns the interpreter found there.
func (a fromArchive) fetch(ctx context.Context, cache string) (Interpreter, error) {
	root := filepath.Join(cache, a.name())
	stamp := filepath.Join(root, packagesStamp)
	if b, err := os.ReadFile(stamp); err == nil && string(b) == a.stamp() {
		if py, err := a.interpreter(root); err == nil {
			return py, nil
		}
	}
	apt, err := debarchive.Suite(ctx, cache, a.suite)
	if err != nil {
		return Interpreter{}, err
	}
	// Each suite its own directory: both have a libc6_*.deb.
	debs, err := apt.Download(ctx, filepath.Join(cache, "debs", a.suite), a.packages...)
	if err != nil {
		return Interpreter{}, err
	}
	_ = os.RemoveAll(root)
	if err := debarchive.Unpack(ctx, root, debs...); err != nil {
		return Interpreter{}, err
	}
	if err := os.WriteFile(stamp, []byte(a.stamp()), 0o644); err != nil {
		return Interpreter{}, err
	}
	return a.interpreter(root)
}

// packagesStamp, in an unpacked tree, lists the packages it was unpacked
// from: a tree from another list is unpacked again.
const packagesStamp = ".vigil-packages"

func (a fromArchive) stamp() string { return strings.Join(a.packages, "\n") + "\n" }

// interpreter describes the unpacked tree at root: the release's own
// dynamic loader starts the interpreter with the release's libraries
// first, and PYTHONHOME points it at the unpacked standard library.
func (a fromArchive) interpreter(root string) (Interpreter, error) {
	exe := filepath.Join(root, "usr", "bin", "python"+a.version)
	if !isExecutable(exe) {
		return Interpreter{}, fmt.Errorf("no %s", exe)
	}
	loader, err := findLoader(root)
	if err != nil {
		return Interpreter{}, err
	}
	libs := filepath.Join(root, "lib", "x86_64-linux-gnu") + ":" + filepath.Join(root, "usr", "lib", "x86_64-linux-gnu")
	return Interpreter{
		Name: a.name(), Version: a.version, Exe: exe,
		argv: []string{loader, "--library-path", libs, exe},
		env:  []string{"PYTHONHOME=" + filepath.Join(root, "usr")},
	}, nil
}

// findLoader returns the release's ld.so. Not lib64/: before the /usr
// merge (bullseye) that is an absolute link to /lib, which would be the
// host's.
func findLoader(root string) (string, error) {
	for _, dir := range []string{"lib", "usr/lib"} {
		p := filepath.Join(root, dir, "x86_64-linux-gnu", "ld-linux-x86-64.so.2")
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no ld-linux-x86-64.so.2 under %s", root)
}

// cacheDir is $VIGIL_PYTHONS_CACHE, else .cache/pythons at the root of the
// module the test runs in.
func cacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return filepath.Abs(d)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".cache", "pythons"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory; set %s", EnvCache)
		}
		dir = parent
	}
}

// lockCache serializes fetches of test processes that run at once (go
// test runs packages in parallel).
func lockCache(cache string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
