// Package mk holds the tests of the build's own scripts: mk/setup.sh, the
// set-up `make test` and .ci/run run first. The scripts only see the fake
// dpkg-query, id and apt-get these tests put on PATH, so they run the same
// with or without root, on any machine, and never install anything.
package mk

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost is a PATH directory holding only bash and the fakes a case asks
// for; every fake appends its arguments to calls.log.
type fakeHost struct {
	dir string
	log string
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	if err := os.Symlink(bash, filepath.Join(dir, "bash")); err != nil {
		t.Fatal(err)
	}
	return &fakeHost{dir: dir, log: filepath.Join(t.TempDir(), "calls.log")}
}

// add writes a fake command whose body is shell using only builtins (PATH
// holds nothing else).
func (h *fakeHost) add(t *testing.T, name, body string) {
	h.write(t, name, "echo \""+name+" $*\" >>"+h.log+"\n"+body)
}

func (h *fakeHost) write(t *testing.T, name, body string) {
	t.Helper()
	script := "#!/bin/sh\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// dpkg lists the given "name status" lines, as dpkg-query -W -f does.
func (h *fakeHost) dpkg(t *testing.T, lines ...string) {
	body := ""
	for _, l := range lines {
		body += "echo '" + l + "'\n"
	}
	// Its format argument holds a newline: log the name alone.
	h.write(t, "dpkg-query", "echo dpkg-query >>"+h.log+"\n"+body+"exit 1")
}

func (h *fakeHost) uid(t *testing.T, uid string) { h.add(t, "id", "echo "+uid) }

func (h *fakeHost) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(h.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (h *fakeHost) called(t *testing.T, prefix string) bool {
	for _, c := range h.calls(t) {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func (h *fakeHost) env() []string {
	return []string{"PATH=" + h.dir, "HOME=" + h.dir, "LANG=C"}
}

// run runs mk/setup.sh on a list of two packages.
func (h *fakeHost) run(t *testing.T) (stderr string, code int) {
	t.Helper()
	list := filepath.Join(t.TempDir(), "packages.txt")
	text := "# comment\nlinux-perf   # the reference profiler\n\n  bpftrace\n"
	if err := os.WriteFile(list, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, list)
	cmd.Env = h.env()
	return runCmd(t, cmd)
}

func runCmd(t *testing.T, cmd *exec.Cmd) (stderr string, code int) {
	t.Helper()
	var errb bytes.Buffer
	cmd.Stdin = nil
	cmd.Stderr = &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return errb.String(), 0
	case errors.As(err, &exit):
		return errb.String(), exit.ExitCode()
	default:
		t.Fatalf("running %s: %v", cmd.Path, err)
		return "", -1
	}
}

// oneSentence checks that the output is a single line, one sentence, naming
// every wanted word.
func oneSentence(t *testing.T, out string, want ...string) {
	t.Helper()
	out = strings.TrimSpace(out)
	if strings.Contains(out, "\n") || !strings.HasPrefix(out, "make test: ") || !strings.HasSuffix(out, ".") {
		t.Fatalf("want one line 'make test: ... .', got:\n%s", out)
	}
	if strings.Count(out, ". ") > 0 {
		t.Errorf("more than one sentence: %s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("message lacks %q: %s", w, out)
		}
	}
}

func TestSetupAllInstalledDoesNothing(t *testing.T) {
	h := newFakeHost(t)
	h.dpkg(t, "linux-perf installed", "bpftrace installed")
	h.uid(t, "1000")
	h.add(t, "apt-get", "exit 0")
	out, code := h.run(t)
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and silence", code, out)
	}
	if h.called(t, "apt-get") {
		t.Errorf("apt-get ran although nothing is missing: %q", h.calls(t))
	}
}

func TestSetupNotRootSaysWhatToInstall(t *testing.T) {
	h := newFakeHost(t)
	// bpftrace was removed but its configuration files are still there.
	h.dpkg(t, "linux-perf installed", "bpftrace config-files")
	h.uid(t, "1000")
	h.add(t, "apt-get", "exit 0")
	out, code := h.run(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, out)
	}
	oneSentence(t, out, "apt-get install bpftrace", "as root")
	if strings.Contains(out, "linux-perf") {
		t.Errorf("names an installed package: %s", out)
	}
	if h.called(t, "apt-get") {
		t.Errorf("apt-get ran without root: %q", h.calls(t))
	}
}

func TestSetupNotDebian(t *testing.T) {
	h := newFakeHost(t) // an empty PATH: no dpkg-query, no apt-get
	out, code := h.run(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, out)
	}
	oneSentence(t, out, "not Debian", "linux-perf bpftrace", "SETUP=")
}

func TestSetupNoAptGet(t *testing.T) {
	h := newFakeHost(t)
	h.dpkg(t)
	h.uid(t, "0")
	out, code := h.run(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, out)
	}
	oneSentence(t, out, "linux-perf bpftrace")
}

func TestSetupNoArchiveAccess(t *testing.T) {
	h := newFakeHost(t)
	h.dpkg(t)
	h.uid(t, "0")
	h.add(t, "apt-get", `if [ "$1" = update ]; then exit 100; fi; exit 0`)
	out, code := h.run(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, out)
	}
	// The progress line comes first; the sentence is the last line.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	oneSentence(t, lines[len(lines)-1], "apt-get update failed", "apt-get install linux-perf bpftrace")
	if h.called(t, "apt-get install") {
		t.Errorf("apt-get install ran after update failed: %q", h.calls(t))
	}
}

func TestSetupInstallsMissingAsRoot(t *testing.T) {
	h := newFakeHost(t)
	h.dpkg(t, "bpftrace installed")
	h.uid(t, "0")
	h.add(t, "apt-get", "exit 0")
	out, code := h.run(t)
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr %q", code, out)
	}
	calls := h.calls(t)
	want := []string{"apt-get update -qq", "apt-get install -y -qq linux-perf"}
	var got []string
	for _, c := range calls {
		if strings.HasPrefix(c, "apt-get") {
			got = append(got, c)
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("apt-get calls %q, want %q", got, want)
	}
}

// TestMakeTestStopsBeforeAnything runs the README's command itself on a host
// where nothing is installed and the user is not root: make must stop at the
// set-up with its one sentence, building no server and running no test.
func TestMakeTestStopsBeforeAnything(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	h := newFakeHost(t)
	h.dpkg(t)
	h.uid(t, "1000")
	h.add(t, "apt-get", "exit 0")
	h.add(t, "go", "exit 0")
	backends := t.TempDir()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(makeBin, "-C", root, "--no-print-directory", "test",
		"GO="+filepath.Join(h.dir, "go"), "BACKENDS_BIN="+backends)
	cmd.Env = h.env()
	out, code := runCmd(t, cmd)
	if code == 0 {
		t.Fatalf("make test succeeded with nothing installed; stderr:\n%s", out)
	}
	// make adds its own "recipe failed" line after the script's sentence.
	first := strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]
	oneSentence(t, first, "linux-perf", "clang-19", "prometheus", "apt-get install")
	for _, c := range h.calls(t) {
		if !strings.HasPrefix(c, "dpkg-query") && !strings.HasPrefix(c, "id") {
			t.Errorf("ran after the set-up failed: %s", c)
		}
	}
	if entries, _ := os.ReadDir(backends); len(entries) > 0 {
		t.Errorf("built test servers after the set-up failed: %v", entries)
	}
}
