package symbolizer

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// requireTool skips when a build tool the test needs is not installed.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipped: %s is not installed (apt-get install gcc g++ binutils)", name)
	}
	return p
}

// run runs a command in dir and fails the test with its output on error.
func run(t testing.TB, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// srcPath returns the absolute path of a test source file.
func srcPath(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "src", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// buildC compiles C or C++ sources from testdata/src into dir/out.
func buildC(t testing.TB, dir, compiler, out string, args ...string) string {
	t.Helper()
	requireTool(t, compiler)
	bin := filepath.Join(dir, out)
	run(t, dir, compiler, append(append([]string{"-I", srcPath(t, "")}, args...), "-o", bin)...)
	return bin
}

// lineOf returns the 1-based line of the source line containing marker.
func lineOf(t testing.TB, src, marker string) int {
	t.Helper()
	b, err := os.ReadFile(srcPath(t, src))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	t.Fatalf("marker %s not in %s", marker, src)
	return 0
}

// liveProg is a started test program that reported its captured addresses.
type liveProg struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addrs []uint64 // captured return addresses, minus one so they fall inside the call
}

// start runs bin, reads "i 0xaddr" lines until "ready" and registers cleanup.
func start(t testing.TB, bin string, env ...string) *liveProg {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &liveProg{cmd: cmd, stdin: stdin}
	t.Cleanup(p.stop)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 1 && f[0] == "ready" {
			return p
		}
		if len(f) != 2 {
			t.Fatalf("unexpected output %q", sc.Text())
		}
		a, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
		if err != nil {
			t.Fatalf("bad address line %q: %v", sc.Text(), err)
		}
		p.addrs = append(p.addrs, a-1)
	}
	t.Fatalf("%s exited before reporting ready: %v", bin, sc.Err())
	return nil
}

func (p *liveProg) pid() int { return p.cmd.Process.Pid }

// stop ends the program and reaps it.
func (p *liveProg) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.stdin.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// newTest returns a Symbolizer closed at the end of the test.
func newTest(t testing.TB, opts Options) *Symbolizer {
	t.Helper()
	if opts.DebugDirs == nil {
		opts.DebugDirs = []string{t.TempDir()} // keep tests independent of the host's debug files
	}
	s := New(opts)
	t.Cleanup(func() { s.Close() })
	return s
}

// wantFrame asserts one frame's name, and file base name and line when given.
func wantFrame(t testing.TB, what string, f Frame, fn, file string, line int) {
	t.Helper()
	if f.Function != fn {
		t.Errorf("%s: function %q, want %q", what, f.Function, fn)
	}
	if file != "" && filepath.Base(f.File) != file {
		t.Errorf("%s: file %q, want base %q", what, f.File, file)
	}
	if line != 0 && f.Line != line {
		t.Errorf("%s: line %d, want %d", what, f.Line, line)
	}
}

func itoa(n int) string      { return strconv.Itoa(n) }
func hexStr(n uint64) string { return "0x" + strconv.FormatUint(n, 16) }
