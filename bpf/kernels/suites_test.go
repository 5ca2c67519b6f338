package kernels

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mkfiles(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDiscoverSuitesTakesBPFPackagesWithTests(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root,
		"bpf/zlat/zlat.bpf.c", "bpf/zlat/zlat_test.go",
		"bpf/alat/alat.bpf.c", "bpf/alat/alat_test.go", "bpf/alat/testdata/a.format",
		"bpf/notests/notests.bpf.c",
		"bpf/hist/hist_test.go", // pure Go: stays on the host
	)
	suites, err := DiscoverSuites(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range suites {
		names = append(names, s.Name)
	}
	want := []string{"selftest", "proftest", "alat", "zlat"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("suites %v, want %v", names, want)
	}
	if got := FilterSuites(suites, []string{"zlat", "nope"}); len(got) != 1 || got[0].Dir != "bpf/zlat" {
		t.Errorf("FilterSuites = %+v", got)
	}
	trees, err := TestData(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"src/bpf/alat/testdata": filepath.Join(root, "bpf/alat/testdata")}; !reflect.DeepEqual(trees, want) {
		t.Errorf("TestData = %v, want %v", trees, want)
	}
}

func TestTestJobRunsInThePackagesPlace(t *testing.T) {
	j := TestJob(Suite{Name: "alat", Dir: "bpf/alat"}, "/b/alat.test", 90e9)
	if j.Dir != "src/bpf/alat" || !strings.Contains(strings.Join(j.Args, " "), "-test.timeout=75s") {
		t.Errorf("job %+v", j)
	}
}

func TestBuildWorkloadsIsStaticAndLandsNextToItsSource(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("skipped: needs gcc")
	}
	root, out := t.TempDir(), t.TempDir()
	mkfiles(t, root, "bpf/alat/testdata/spin.c")
	if err := os.WriteFile(filepath.Join(root, "bpf/alat/testdata/spin.c"), []byte("int main(void){return 0;}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := BuildWorkloads(context.Background(), root, out, Suite{Name: "alat", Dir: "bpf/alat"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Guest != "src/bpf/alat/testdata/spin" {
		t.Fatalf("workloads %+v", files)
	}
	if static, err := isStatic(files[0].Host); err != nil || !static {
		t.Errorf("workload static=%v err=%v; the guest has no libc", static, err)
	}
}

func TestHostToolsBringInterpreterAndLibraries(t *testing.T) {
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("skipped: no ls on this host")
	}
	if static, _ := isStatic(ls); static {
		t.Skip("skipped: ls is static here")
	}
	files, err := HostTools([]string{"ls"})
	if err != nil {
		t.Fatal(err)
	}
	guest := map[string]bool{}
	for _, f := range files {
		guest[f.Guest] = true
	}
	if !guest["usr/local/bin/ls"] {
		t.Errorf("ls itself missing: %+v", files)
	}
	var interp, libc bool
	for g := range guest {
		interp = interp || strings.Contains(g, "ld-linux")
		libc = libc || strings.HasSuffix(g, "/libc.so.6")
	}
	if !interp || !libc {
		t.Errorf("interpreter %v, libc %v in %+v", interp, libc, files)
	}
	if _, err := HostTools([]string{"no-such-tool-anywhere"}); err == nil {
		t.Error("a missing tool was accepted")
	}
}
