package symbolizer

import (
	"debug/elf"
	"os"
	"strings"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to open /proc/<pid>/map_files of an exited, deleted binary; run the tests with sudo")
	}
}

// TestExitedProcessWithDeletedBinary is the short-lived process case: the
// handles Prepare took keep the binary readable after it exits and is
// deleted, so its frames still get named.
func TestExitedProcessWithDeletedBinary(t *testing.T) {
	requireRoot(t)
	bin := buildC(t, t.TempDir(), "gcc", "shortlived", "-O1", srcPath(t, "prog.c"))
	p := start(t, bin)
	s := newTest(t, Options{})
	if err := s.Prepare(p.pid()); err != nil {
		t.Fatal(err)
	}
	p.stop()
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + itoa(p.pid())); err == nil {
		t.Fatalf("pid %d still exists after stop", p.pid())
	}
	locs := s.User(p.pid(), p.addrs)
	wantFrame(t, "hot_alpha", only(t, locs[0]), "hot_alpha", "", 0)
	wantFrame(t, "static_beta", only(t, locs[1]), "static_beta", "", 0)

	s.Forget(p.pid())
	if st := s.Stats(); st.Processes != 0 {
		t.Errorf("%d processes remembered after Forget", st.Processes)
	}
	if loc := s.User(p.pid(), p.addrs[:1])[0]; loc.Named() || loc.Mapping != nil {
		t.Errorf("forgotten exited pid still named: %+v", loc)
	}
}

func TestUnnamedKeepsModuleOffset(t *testing.T) {
	bin := buildC(t, t.TempDir(), "gcc", "nosyms", "-O1", "-s", srcPath(t, "prog.c"))
	p := start(t, bin)
	s := newTest(t, Options{})
	loc := s.User(p.pid(), p.addrs[1:2])[0]
	if loc.Named() {
		t.Fatalf("static function named %+v in a stripped binary", loc.Frames)
	}
	want := "nosyms+0x" + strings.TrimPrefix(hexStr(loc.Mapping.FileOffset(loc.Address)), "0x")
	if loc.String() != want || !strings.HasPrefix(loc.String(), "nosyms+0x") {
		t.Errorf("String() = %q, want %q", loc.String(), want)
	}
	if st := s.Stats(); st.Misses != 1 || st.Hits != 0 {
		t.Errorf("stats %+v, want one miss", st)
	}
}

func TestVDSO(t *testing.T) {
	requireRoot(t) // reads /proc/<pid>/mem
	p := start(t, buildC(t, t.TempDir(), "gcc", "vdso", "-O1", srcPath(t, "prog.c")))
	s := newTest(t, Options{})
	if err := s.Prepare(p.pid()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	pr := s.procs[p.pid()]
	s.mu.Unlock()
	var vdso *Mapping
	for _, pm := range pr.maps {
		if pm.m.Path == "[vdso]" {
			vdso = pm.m
		}
	}
	if vdso == nil {
		t.Skip("skipped: this process has no [vdso] mapping")
	}
	var addrs []uint64
	for a := vdso.Start; a < vdso.Limit; a += 8 {
		addrs = append(addrs, a)
	}
	named := map[string]bool{}
	for _, l := range s.User(p.pid(), addrs) {
		if l.Named() {
			named[l.Frames[0].Function] = true
		}
	}
	if !named["__vdso_clock_gettime"] && !named["clock_gettime"] {
		t.Errorf("no clock_gettime among vDSO names %v", named)
	}
}

// TestGoPclntabWithoutSectionHeaders removes the section headers of a
// stripped Go binary: the Go table is then found by its magic number.
func TestGoPclntabWithoutSectionHeaders(t *testing.T) {
	bin := buildGo(t)
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	want := f.Section(".gopclntab")
	text := f.Section(".text")
	if want == nil || text == nil {
		t.Fatal("no .gopclntab or .text")
	}
	// e_shoff (0x28, 8 bytes), e_shnum (0x3c) and e_shstrndx (0x3e) of ELF64.
	for i := 0x28; i < 0x30; i++ {
		b[i] = 0
	}
	b[0x3c], b[0x3d], b[0x3e], b[0x3f] = 0, 0, 0, 0
	img, err := openELF(strings.NewReader(string(b)), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(img.f.Sections) != 0 {
		t.Fatalf("%d sections left", len(img.f.Sections))
	}
	tab, err := img.goTable()
	if err != nil || tab == nil {
		t.Fatalf("no Go table found by magic: %v", err)
	}
	fn := refGoTable(t, f).LookupFunc("main.hotGoFunction")
	if fn == nil {
		t.Fatal("main.hotGoFunction not in the table")
	}
	if fr := tab.frames(fn.Entry + 4); len(fr) != 1 || fr[0].Function != "main.hotGoFunction" {
		t.Errorf("frames %+v at %#x", fr, fn.Entry+4)
	}
	if fn.Entry < text.Addr || fn.Entry >= text.Addr+text.Size {
		t.Errorf("entry %#x outside .text [%#x,%#x)", fn.Entry, text.Addr, text.Addr+text.Size)
	}
}
