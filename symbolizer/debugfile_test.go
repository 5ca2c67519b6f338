package symbolizer

import (
	"os"
	"path/filepath"
	"testing"
)

// buildStrippedWithDebug builds prog.c with DWARF, moves the debug info to
// bin.debug and strips every symbol from bin, so names can only come from
// the separate file.
func buildStrippedWithDebug(t *testing.T, dir string, link bool) (bin, dbg, id string) {
	t.Helper()
	requireTool(t, "objcopy")
	bin = buildC(t, dir, "gcc", "stripped", "-O1", "-g", "-Wl,--build-id", srcPath(t, "prog.c"))
	dbg = bin + ".debug"
	run(t, dir, "objcopy", "--only-keep-debug", bin, dbg)
	run(t, dir, "objcopy", "--strip-all", bin)
	if link {
		run(t, dir, "objcopy", "--add-gnu-debuglink="+dbg, bin)
	}
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	img, err := openELF(f, st.Size())
	if err != nil || img.buildID == "" {
		t.Fatalf("no build ID in %s: %v", bin, err)
	}
	if img.f.Section(".symtab") != nil || img.hasDWARF() {
		t.Fatalf("%s still has symbols or DWARF", bin)
	}
	return bin, dbg, img.buildID
}

func TestDebugFileByBuildID(t *testing.T) {
	dir, debugDir := t.TempDir(), t.TempDir()
	bin, dbg, id := buildStrippedWithDebug(t, dir, false)
	p := start(t, bin)

	bare := newTest(t, Options{})
	if loc := bare.User(p.pid(), p.addrs[1:2])[0]; loc.Named() {
		t.Fatalf("static function named %+v without the debug file: the test proves nothing", loc.Frames)
	}

	dst := buildIDPath(debugDir, id)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dbg, dst); err != nil {
		t.Fatal(err)
	}
	s := newTest(t, Options{DebugDirs: []string{debugDir}})
	locs := s.User(p.pid(), p.addrs)
	wantFrame(t, "hot_alpha", only(t, locs[0]), "hot_alpha", "prog.c", lineOf(t, "prog.c", "LINE_ALPHA"))
	wantFrame(t, "static_beta", only(t, locs[1]), "static_beta", "prog.c", lineOf(t, "prog.c", "LINE_BETA"))
}

func TestDebugFileByDebugLink(t *testing.T) {
	dir := t.TempDir()
	bin, dbg, _ := buildStrippedWithDebug(t, dir, true)
	p := start(t, bin)
	s := newTest(t, Options{})
	wantFrame(t, "static_beta", only(t, s.User(p.pid(), p.addrs[1:2])[0]), "static_beta", "prog.c", lineOf(t, "prog.c", "LINE_BETA"))

	// A debug file whose CRC does not match the link must be refused.
	b, err := os.ReadFile(dbg)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0)
	if err := os.WriteFile(dbg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := newTest(t, Options{})
	if loc := s2.User(p.pid(), p.addrs[1:2])[0]; loc.Named() {
		t.Errorf("named %+v from a debug file with the wrong CRC", loc.Frames)
	}
}
