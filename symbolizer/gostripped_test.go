package symbolizer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildGo builds testdata/src/goprog.go stripped (-s -w).
func buildGo(t *testing.T) string {
	return buildGoFlags(t, "-ldflags=-s -w")
}

func buildGoFlags(t *testing.T, flags ...string) string {
	return buildGoSrc(t, "goprog.go", flags...)
}

// buildGoSrc builds one Go program of testdata/src with the given flags.
func buildGoSrc(t *testing.T, src string, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, strings.TrimSuffix(src, ".go"))
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, srcPath(t, src))...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestStrippedGoBinary(t *testing.T) {
	bin := buildGo(t)
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	img, err := openELF(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if img.f.Section(".symtab") != nil || img.hasDWARF() {
		t.Fatal("binary still has .symtab or DWARF: -s -w did not strip it")
	}
	f.Close()

	p := start(t, bin)
	s := newTest(t, Options{})
	fr := only(t, s.User(p.pid(), p.addrs)[0])
	if fr.Function != "main.hotGoFunction" {
		t.Errorf("function %q, want main.hotGoFunction", fr.Function)
	}
	if !strings.HasSuffix(fr.File, "goprog.go") || fr.Line == 0 {
		t.Errorf("file:line %s:%d, want goprog.go with a line", fr.File, fr.Line)
	}
}

// TestGoBinaryWithDWARF names a Go binary that keeps its DWARF through the
// Go table alone: its DWARF is left unread (read whole, it was most of the
// cost of a first look), yet the reader still names the same function
// from it, for Go binaries whose table can't be read.
func TestGoBinaryWithDWARF(t *testing.T) {
	bin := buildGoFlags(t)
	p := start(t, bin)
	s := newTest(t, Options{})
	fr := only(t, s.User(p.pid(), p.addrs)[0])
	if fr.Function != "main.hotGoFunction" || !strings.HasSuffix(fr.File, "goprog.go") || fr.Line == 0 {
		t.Errorf("frame %+v, want main.hotGoFunction in goprog.go with a line", fr)
	}
	s.mu.Lock()
	for _, o := range s.files {
		if o.path == bin && o.dw != nil {
			t.Error("DWARF of the Go binary was read though its Go table names it")
		}
	}
	s.mu.Unlock()

	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	img, err := openELF(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	info := img.dwarfInfo(maxDWARFSize)
	if info == nil {
		t.Fatal("the Go binary's DWARF did not load")
	}
	// Go binaries are not position-independent here: the address is the
	// ELF virtual address.
	dfr, err := info.frames(p.addrs[0], symName{})
	if err != nil || len(dfr) == 0 {
		t.Fatalf("DWARF frames: %v, %v", dfr, err)
	}
	if got := dfr[0]; got.Function != fr.Function || got.File != fr.File || got.Line != fr.Line {
		t.Errorf("DWARF names %+v, the Go table %+v", got, fr)
	}
}
