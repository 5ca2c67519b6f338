package symbolizer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type fakeFunc struct {
	start, size uint64
	name, mod   string
}

// fakeNamer names the functions of a table and counts what it is asked.
type fakeNamer struct {
	funcs []fakeFunc
	asked int
	err   error
	short bool // answers one address fewer
}

func (f *fakeNamer) name(addrs []uint64) ([]KernelSymbol, error) {
	f.asked += len(addrs)
	if f.err != nil {
		return nil, f.err
	}
	out := make([]KernelSymbol, 0, len(addrs))
	for _, a := range addrs {
		var s KernelSymbol
		for _, fn := range f.funcs {
			if a >= fn.start && a < fn.start+fn.size {
				s = KernelSymbol{Name: fn.name, Offset: a - fn.start, Size: fn.size, Module: fn.mod}
				if fn.mod == "" {
					s.ModuleStart, s.ModuleLimit = 0xffffffff81000000, 0xffffffff82000000
				}
			}
		}
		out = append(out, s)
	}
	if f.short {
		out = out[:len(out)-1]
	}
	return out, nil
}

func newFakeNamer() *fakeNamer {
	return &fakeNamer{funcs: []fakeFunc{
		{0xffffffff81002000, 0x400, "vfs_read", ""},
		{0xffffffffc0a00100, 0x80, "ext4_write", "ext4"},
		{0xffffffffc0c00000, 0x40, "bpf_prog_0123456789abcdef_f", "bpf"},
	}}
}

// kallsymsFile writes the fixture and returns its path.
func kallsymsFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(path, []byte(kallsymsFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// With a KernelNamer, kernel addresses are named through it, each function
// asked once, and kallsyms is never read while it names everything.
func TestKernelNamerNamesWithoutKallsyms(t *testing.T) {
	f := newFakeNamer()
	s := newTest(t, Options{KallsymsPath: "/nonexistent/kallsyms", SysRoot: t.TempDir(), KernelNamer: f.name})
	locs := s.Kernel([]uint64{0xffffffff81002010, 0xffffffffc0a00110, 0xffffffffc0c00004})
	if locs[0].String() != "vfs_read" || locs[0].Mapping.Path != "[kernel.kallsyms]" || locs[0].Mapping.Start != 0xffffffff81000000 {
		t.Errorf("kernel: %+v %+v", locs[0], locs[0].Mapping)
	}
	if locs[1].String() != "ext4_write" || locs[1].Mapping.Path != "[ext4]" || locs[1].Mapping.Limit != ^uint64(0) {
		t.Errorf("module: %+v %+v", locs[1], locs[1].Mapping)
	}
	if locs[2].String() != "bpf_prog_0123456789abcdef_f" || locs[2].Mapping.Path != "[bpf]" {
		t.Errorf("BPF: %+v %+v", locs[2], locs[2].Mapping)
	}
	// Other addresses in functions already named need no question.
	// BPF programs, which come and go, are asked again.
	again := s.Kernel([]uint64{0xffffffff81002000, 0xffffffff810023ff, 0xffffffffc0a00101, 0xffffffffc0c00008})
	if f.asked != 4 {
		t.Errorf("asked %d addresses, want 4: known functions asked again, or BPF programs not", f.asked)
	}
	if again[1].String() != "vfs_read" || again[1].Mapping != locs[0].Mapping || again[2].Mapping != locs[1].Mapping {
		t.Errorf("from the cache: %+v", again)
	}
	if st := s.Stats(); st.KernelSymbols != 0 || st.KernelErr != nil || st.KernelNamed != 2 || st.Hits != 7 {
		t.Errorf("stats %+v", st)
	}
}

// Addresses the namer can't name go to kallsyms, read only then.
func TestKernelNamerFallsBackToKallsyms(t *testing.T) {
	f := newFakeNamer()
	s := newTest(t, Options{KallsymsPath: kallsymsFile(t), SysRoot: t.TempDir(), KernelNamer: f.name})
	locs := s.Kernel([]uint64{0xffffffff81002010, 0xffffffff81003010, 0x10})
	if locs[0].String() != "vfs_read" || locs[1].String() != "vfs_write" || locs[2].Named() || locs[2].Mapping == nil {
		t.Errorf("got %v, %v, %+v", locs[0], locs[1], locs[2])
	}
	if st := s.Stats(); st.KernelSymbols == 0 || st.KernelNamerErr != nil {
		t.Errorf("stats %+v: kallsyms not read for what the namer left", st)
	}
}

// A namer that fails, or answers for the wrong number of addresses, is no
// longer asked: kallsyms names everything, and Stats says why.
func TestKernelNamerFailureTurnsToKallsyms(t *testing.T) {
	for name, f := range map[string]*fakeNamer{
		"error": {err: errors.New("no BPF here")},
		"short": func() *fakeNamer { f := newFakeNamer(); f.short = true; return f }(),
	} {
		t.Run(name, func(t *testing.T) {
			s := newTest(t, Options{KallsymsPath: kallsymsFile(t), SysRoot: t.TempDir(), KernelNamer: f.name})
			for range 2 {
				locs := s.Kernel([]uint64{0xffffffff81002010, 0xffffffffc0a00110})
				if locs[0].String() != "vfs_read" || locs[1].String() != "ext4_write" {
					t.Errorf("got %v and %v", locs[0], locs[1])
				}
			}
			if f.asked != 2 {
				t.Errorf("asked %d addresses, want 2 (once)", f.asked)
			}
			if st := s.Stats(); st.KernelNamerErr == nil || st.KernelSymbols == 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// Nonsense from a namer (an offset past the function or the address) is
// not believed.
func TestKernelNamerNonsenseIsUnnamed(t *testing.T) {
	bad := func(addrs []uint64) ([]KernelSymbol, error) {
		return []KernelSymbol{{Name: "past_size", Offset: 0x20, Size: 0x10}, {Name: "past_addr", Offset: 0x100}}, nil
	}
	s := newTest(t, Options{KallsymsPath: "/nonexistent/kallsyms", KernelNamer: bad})
	for _, l := range s.Kernel([]uint64{0xffffffff81002010, 0x10}) {
		if l.Named() || l.Mapping == nil {
			t.Errorf("%+v", l)
		}
	}
}
