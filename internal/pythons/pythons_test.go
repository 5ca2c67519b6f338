package pythons

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// probe reports the interpreter's version, the modules the workloads use,
// and the files mapped into it.
const probe = `
import hashlib, json, sys, threading, time, zlib
zlib.compress(b"x" * 1000)
hashlib.sha256(b"x").hexdigest()
maps = sorted({l.split()[-1] for l in open("/proc/self/maps") if "/" in l.split()[-1]})
print(json.dumps({"version": "%d.%d" % sys.version_info[:2], "prefix": sys.prefix, "maps": maps}))
`

type probed struct {
	Version string
	Prefix  string
	Maps    []string
}

// Every interpreter runs, is the version it claims, imports what the
// workloads import, and an archived one loads nothing of the host's but
// locale data.
func TestEveryInterpreterRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: downloads interpreters the first time")
	}
	script := filepath.Join(t.TempDir(), "probe.py")
	if err := os.WriteFile(script, []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	minors := map[int]bool{}
	Each(t, func(t *testing.T, py Interpreter) {
		out, err := py.Command(script).Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", py, err, stderrOf(err))
		}
		var got probed
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v printed %q: %v", py, out, err)
		}
		if got.Version != py.Version {
			t.Errorf("%s runs Python %s", py.Name, got.Version)
		}
		minors[py.Minor()] = true
		if !mapped(got.Maps, py.Exe) {
			t.Errorf("%s does not map %s: %v", py.Name, py.Exe, got.Maps)
		}
		if len(py.env) > 0 {
			checkHermetic(t, py, got)
		}
	})
	for m := MinMinor; m <= MaxMinor; m++ {
		if !minors[m] {
			t.Logf("no interpreter of 3.%d on this machine", m)
		}
	}
}

// checkHermetic: an archived interpreter's files all come from its tree.
func checkHermetic(t *testing.T, py Interpreter, got probed) {
	t.Helper()
	root := filepath.Dir(filepath.Dir(filepath.Dir(py.Exe)))
	if !strings.HasPrefix(got.Prefix, root) {
		t.Errorf("%s has sys.prefix %s, outside %s", py.Name, got.Prefix, root)
	}
	for _, m := range got.Maps {
		if !strings.HasPrefix(m, root) && !strings.HasPrefix(m, "/usr/lib/locale/") && !strings.Contains(m, "/gconv/") {
			t.Errorf("%s maps the host's %s", py.Name, m)
		}
	}
}

func mapped(maps []string, exe string) bool {
	for _, m := range maps {
		if m == exe {
			return true
		}
	}
	return false
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

func TestSupportedVersions(t *testing.T) {
	for v, want := range map[string]bool{"3.9": true, "3.13": true, "3.8": false, "3.14": false, "2.7": false, "3": false, "3.x": false} {
		if got := supported(v); got != want {
			t.Errorf("supported(%q) = %v", v, got)
		}
	}
	if got := majorMinor("3.10.13"); got != "3.10" {
		t.Errorf("majorMinor(3.10.13) = %q", got)
	}
}
