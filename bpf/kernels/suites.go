package kernels

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Suite is one Go package whose tests run in every kernel.
type Suite struct {
	Name string // the package's directory name, e.g. "readlat"
	Dir  string // relative to the module root, e.g. "bpf/readlat"
}

// The matrix's own suites, always part of the run: its hook, and the
// profiler's acceptance test in a form that needs no compiler in the guest.
var ownSuites = []Suite{
	{Name: "selftest", Dir: "bpf/kernels/selftest"},
	{Name: "proftest", Dir: "bpf/kernels/proftest"},
}

// DiscoverSuites finds every BPF program package under bpf/ that has tests
// (a directory with both a *.bpf.c and a *_test.go file), so packages join
// the matrix as they land.
func DiscoverSuites(root string) ([]Suite, error) {
	suites := append([]Suite(nil), ownSuites...)
	entries, err := os.ReadDir(filepath.Join(root, "bpf"))
	if err != nil {
		return nil, fmt.Errorf("listing bpf packages: %w", err)
	}
	for _, e := range entries {
		dir := filepath.Join("bpf", e.Name())
		if e.IsDir() && hasFile(root, dir, "*.bpf.c") && hasFile(root, dir, "*_test.go") {
			suites = append(suites, Suite{Name: e.Name(), Dir: dir})
		}
	}
	n := len(ownSuites)
	sort.SliceStable(suites[n:], func(i, j int) bool { return suites[n+i].Name < suites[n+j].Name })
	return suites, nil
}

func hasFile(root, dir, pattern string) bool {
	m, _ := filepath.Glob(filepath.Join(root, dir, pattern))
	return len(m) > 0
}

// FilterSuites keeps the suites named in only (all when only is empty).
func FilterSuites(suites []Suite, only []string) []Suite {
	if len(only) == 0 {
		return suites
	}
	var out []Suite
	for _, s := range suites {
		for _, n := range only {
			if s.Name == n {
				out = append(out, s)
			}
		}
	}
	return out
}

// BuildTest compiles a suite's tests into a static binary in outDir. The
// binary comes from the working tree as it is, so the guest runs exactly
// the code under review.
func BuildTest(ctx context.Context, root, outDir string, s Suite) (string, error) {
	out := filepath.Join(outDir, s.Name+".test")
	return out, goBuild(ctx, root, "test", "-c", "-o", out, "./"+s.Dir)
}

// BuildProgram compiles a static Go program into outDir.
func BuildProgram(ctx context.Context, root, outDir, name, pkg string) (string, error) {
	out := filepath.Join(outDir, name)
	return out, goBuild(ctx, root, "build", "-o", out, pkg)
}

func goBuild(ctx context.Context, root string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// TestJob is the guest job that runs a suite's test binary verbosely, with
// Go's own timeout a little inside the guest's so a hang prints stacks. It
// runs in src/<package dir>, the package's place in a copy of the tree, so
// relative paths to testdata (its own or a sibling's) resolve as they do
// under go test.
func TestJob(s Suite, binary string, timeout time.Duration) Job {
	return Job{
		Name:    s.Name,
		Binary:  binary,
		Args:    []string{"-test.v", "-test.count=1", fmt.Sprintf("-test.timeout=%ds", int((timeout-15*time.Second)/time.Second))},
		Dir:     path.Join(guestSrc, s.Dir),
		Timeout: timeout,
	}
}

// guestSrc is where the guest keeps its copy of the tree's test data.
const guestSrc = "src"

// TestData finds every testdata directory under bpf/ and maps it to its
// place under the guest's src/.
func TestData(root string) (map[string]string, error) {
	trees := map[string]string{}
	err := filepath.WalkDir(filepath.Join(root, "bpf"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() != "testdata" {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		trees[path.Join(guestSrc, filepath.ToSlash(rel))] = p
		return filepath.SkipDir
	})
	if err != nil {
		return nil, fmt.Errorf("finding test data: %w", err)
	}
	return trees, nil
}

// WorkloadCFlags are the gcc flags of a C workload: those on a first line
// "// vigil-cflags: ..." (a workload built as distributions build code,
// say), else -O0 with frame pointers.
func WorkloadCFlags(src string) []string {
	b, err := os.ReadFile(src)
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if f, ok := strings.CutPrefix(first, "// vigil-cflags:"); ok {
		return strings.Fields(f)
	}
	return []string{"-O0", "-g", "-fno-omit-frame-pointer"}
}

// BuildWorkloads compiles every testdata/*.c and testdata/*.go of a suite
// into a static executable (no compiler runs in the guest) and says where
// each goes in the guest: next to its source, without the extension, where
// the test looks first.
func BuildWorkloads(ctx context.Context, root, outDir string, s Suite) ([]HostFile, error) {
	cs, _ := filepath.Glob(filepath.Join(root, s.Dir, "testdata", "*.c"))
	gos, _ := filepath.Glob(filepath.Join(root, s.Dir, "testdata", "*.go"))
	var files []HostFile
	for _, src := range append(cs, gos...) {
		ext := filepath.Ext(src)
		name := strings.TrimSuffix(filepath.Base(src), ext)
		out := filepath.Join(outDir, s.Name+"-"+name)
		var cmd *exec.Cmd
		if ext == ".go" {
			cmd = exec.CommandContext(ctx, "go", "build", "-o", out, src)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static
		} else {
			args := append([]string{"-static"}, WorkloadCFlags(src)...)
			cmd = exec.CommandContext(ctx, "gcc", append(args, "-o", out, src)...)
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building workload %s: %w\n%s", src, err, b)
		}
		files = append(files, HostFile{Host: out, Guest: path.Join(guestSrc, s.Dir, "testdata", name)})
	}
	return files, nil
}
