package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The vigil binary the end-to-end tests run, built once per test run into
// a directory every user can read (one test runs it unprivileged) and
// removed by TestMain.
var testBinary struct {
	once      sync.Once
	dir, path string
	err       error
	out       []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testBinary.dir != "" {
		os.RemoveAll(testBinary.dir)
	}
	os.Exit(code)
}

// buildVigil returns the path of the vigil binary built from this tree.
func buildVigil(tb testing.TB) string {
	tb.Helper()
	b := &testBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "vigil-test-"); b.err != nil {
			return
		}
		if b.err = os.Chmod(b.dir, 0o755); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "vigil")
		b.out, b.err = exec.Command("go", "build", "-o", b.path, ".").CombinedOutput()
	})
	if b.err != nil {
		tb.Fatalf("building vigil: %v\n%s", b.err, b.out)
	}
	return b.path
}
