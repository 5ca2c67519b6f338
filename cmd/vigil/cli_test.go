package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestUsageErrorsExitTwoAndWriteNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cpu.pb.gz")
	cases := []struct {
		args []string
		want string // part of the one-line message, naming the bad thing
	}{
		{[]string{"profile", "--duration", "-1s"}, "--duration"},
		{[]string{"profile", "--frequency", "0"}, "--frequency 0"},
		{[]string{"profile", "--frequency", "5000"}, "--frequency 5000"},
		{[]string{"profile", "--format", "svg"}, `--format "svg"`},
		{[]string{"profile", "--pid", "abc"}, `"abc" is not a process id`},
		{[]string{"profile", "--no-such-flag"}, "no-such-flag"},
		{[]string{"profile", "extra"}, `unexpected argument "extra"`},
		{[]string{"profile", "-o", filepath.Join(dir, "missing", "x.pb.gz")}, "--output"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"profile", "--pid", "2147483646"}, "--pid 2147483646: no such process"},
		{[]string{"profile", "--off-cpu", "--min-block", "-1ms"}, "--min-block -1ms: must be positive"},
		{[]string{"profile", "--off-cpu", "--min-block", "0"}, "--min-block 0s: must be positive"},
		{[]string{"profile", "--off-cpu", "--min-block", "2m"}, "--min-block 2m0s"},
		{[]string{"profile", "--off-cpu", "--min-block", "soon"}, "min-block"},
		{[]string{"profile", "--min-block", "1ms"}, "--min-block: only applies with --off-cpu"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		args := tc.args
		if args[0] == "profile" && !contains(args, "-o") {
			args = append(args, "-o", out)
		}
		code := run(args, &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("vigil %v: exit %d, want %d (stderr %q)", tc.args, code, exitUsage, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("vigil %v: stderr %q does not name %q", tc.args, stderr.String(), tc.want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("usage errors left files behind: %v", entries)
	}
}

func TestHelpExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"profile", "-h"}, &stdout, &stderr); code != exitOK {
		t.Errorf("profile -h: exit %d", code)
	}
	if !strings.Contains(stderr.String(), "-frequency") {
		t.Errorf("profile -h does not list the flags: %q", stderr.String())
	}
}

// Without privileges vigil says what to do, exits 1 and writes no file. The
// test runs the real binary as an unprivileged user.
func TestUnprivilegedProfileExplainsAndExitsOne(t *testing.T) {
	requireRoot(t)
	bin := buildVigil(t)
	// Not t.TempDir(): its parent is private to root.
	dir, err := os.MkdirTemp("", "vigil-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "profile", "-d", "1s", "-o", filepath.Join(dir, "cpu.pb.gz"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitRuntime {
		t.Fatalf("unprivileged run: %v, want exit %d; stderr %q", err, exitRuntime, stderr.String())
	}
	if !strings.Contains(stderr.String(), "CAP_BPF") || !strings.Contains(stderr.String(), "sudo") {
		t.Errorf("message does not say what to do: %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "cpu.pb.gz")); !os.IsNotExist(err) {
		t.Errorf("a failed run left an output file")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
