package kernels

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// buildModinfo compiles an object whose .modinfo section holds entries the
// way the kernel build writes them: NUL-separated key=value strings.
func buildModinfo(t *testing.T, entries string) []byte {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("skipped: needs gcc to build a test ELF object")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "m.c")
	code := `__attribute__((section(".modinfo"), used)) static const char info[] = "` + entries + `";`
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(dir, "m.o")
	if out, err := exec.Command("gcc", "-c", "-o", obj, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModuleDepends(t *testing.T) {
	cases := map[string][]string{
		`license=GPL\0depends=configfs,crc32c\0name=null_blk`: {"configfs", "crc32c"},
		`depends=\0name=loop`: nil,
		`name=veth`:           nil,
	}
	for entries, want := range cases {
		got, err := moduleDepends(buildModinfo(t, entries))
		if err != nil {
			t.Fatalf("%s: %v", entries, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: depends %v, want %v", entries, got, want)
		}
	}
}

func TestModuleDependsRejectsNonELF(t *testing.T) {
	if _, err := moduleDepends([]byte("not an ELF file")); err == nil {
		t.Fatal("accepted a non-ELF module")
	}
}

func TestCanonModule(t *testing.T) {
	if got := canonModule("sch-netem"); got != "sch_netem" {
		t.Errorf("canonModule = %q", got)
	}
}
