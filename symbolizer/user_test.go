package symbolizer

import (
	"strings"
	"testing"
)

func TestNonPIEAndPIE(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"nopie", []string{"-no-pie", "-fno-pie"}},
		{"pie", []string{"-pie", "-fPIE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := buildC(t, dir, "gcc", tc.name, append(tc.flags, "-O1", "-g", srcPath(t, "prog.c"))...)
			p := start(t, bin)
			s := newTest(t, Options{})
			if err := s.Prepare(p.pid()); err != nil {
				t.Fatal(err)
			}
			locs := s.User(p.pid(), p.addrs)
			wantFrame(t, "slot 0", only(t, locs[0]), "hot_alpha", "prog.c", lineOf(t, "prog.c", "LINE_ALPHA"))
			wantFrame(t, "slot 1", only(t, locs[1]), "static_beta", "prog.c", lineOf(t, "prog.c", "LINE_BETA"))
			if locs[0].Mapping == nil || locs[0].Mapping.Path != bin || locs[0].Mapping.BuildID == "" {
				t.Errorf("mapping %+v, want path %s with a build ID", locs[0].Mapping, bin)
			}
			if pie := p.addrs[0] > 0x10000000; pie != (tc.name == "pie") {
				t.Errorf("address %#x does not look %s", p.addrs[0], tc.name)
			}
		})
	}
}

// only returns the single frame of a location, failing when there is not exactly one.
func only(t testing.TB, l Location) Frame {
	t.Helper()
	if len(l.Frames) != 1 {
		t.Fatalf("address %#x: %d frames %+v, want 1 (mapping %+v)", l.Address, len(l.Frames), l.Frames, l.Mapping)
	}
	return l.Frames[0]
}

func TestSharedLibrary(t *testing.T) {
	dir := t.TempDir()
	buildC(t, dir, "gcc", "libvigiltest.so", "-shared", "-fPIC", "-O1", srcPath(t, "lib.c"))
	bin := buildC(t, dir, "gcc", "main", "-O1", srcPath(t, "libmain.c"), "-L"+dir, "-lvigiltest", "-Wl,-rpath,"+dir)
	p := start(t, bin)
	s := newTest(t, Options{})
	loc := s.User(p.pid(), p.addrs)[0] // no Prepare: User prepares an unknown pid itself
	wantFrame(t, "lib_work", only(t, loc), "lib_work", "", 0)
	if loc.Mapping == nil || !strings.HasSuffix(loc.Mapping.Path, "libvigiltest.so") {
		t.Errorf("mapping %+v, want libvigiltest.so", loc.Mapping)
	}
}

func TestDWARFInlinedFrames(t *testing.T) {
	bin := buildC(t, t.TempDir(), "gcc", "inline", "-O2", "-g", srcPath(t, "inline.c"))
	p := start(t, bin)
	s := newTest(t, Options{})
	loc := s.User(p.pid(), p.addrs)[0]
	if len(loc.Frames) != 2 {
		t.Fatalf("frames %+v, want the inlined leaf and its caller", loc.Frames)
	}
	wantFrame(t, "inlined", loc.Frames[0], "inlined_leaf", "inline.c", lineOf(t, "inline.c", "LINE_LEAF"))
	wantFrame(t, "outer", loc.Frames[1], "outer_fn", "inline.c", lineOf(t, "inline.c", "LINE_OUTER"))
}

func TestCXXDemangled(t *testing.T) {
	bin := buildC(t, t.TempDir(), "g++", "klass", "-O1", srcPath(t, "klass.cc"))
	p := start(t, bin)
	s := newTest(t, Options{})
	wantFrame(t, "method", only(t, s.User(p.pid(), p.addrs)[0]), "ns::Klass::method(int)", "", 0)
}

func TestCXXDemangledWithDWARF(t *testing.T) {
	bin := buildC(t, t.TempDir(), "g++", "klass", "-O1", "-g", srcPath(t, "klass.cc"))
	p := start(t, bin)
	s := newTest(t, Options{})
	f := only(t, s.User(p.pid(), p.addrs)[0])
	wantFrame(t, "method", f, "ns::Klass::method(int)", "klass.cc", lineOf(t, "klass.cc", "LINE_METHOD"))
}
