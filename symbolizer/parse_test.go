package symbolizer

import (
	"errors"
	"strings"
	"testing"
)

const mapsFixture = `55d0c5a00000-55d0c5a02000 r--p 00000000 fd:01 1311014                    /usr/bin/cat
55d0c5a02000-55d0c5a07000 r-xp 00002000 fd:01 1311014                    /usr/bin/cat
7f1c2a800000-7f1c2a828000 r--p 00000000 fd:01 1316432                    /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2a828000-7f1c2a9bd000 r-xp 00028000 fd:01 1316432                    /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2aa00000-7f1c2aa01000 r-xp 00000000 00:00 0
7f1c2ab00000-7f1c2ab01000 r-xp 00000000 fd:01 42                         /tmp/with space/lib (deleted)
7ffd1b5f2000-7ffd1b5f4000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
`

func TestParseMaps(t *testing.T) {
	ms, err := ParseMaps(strings.NewReader(mapsFixture))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("%d mappings, want 8", len(ms))
	}
	libc := ms[3]
	if libc.Start != 0x7f1c2a828000 || libc.Limit != 0x7f1c2a9bd000 || libc.Offset != 0x28000 ||
		libc.Path != "/usr/lib/x86_64-linux-gnu/libc.so.6" || libc.Inode != 1316432 || libc.Dev != "fd:01" || !libc.Executable() {
		t.Errorf("libc mapping parsed as %+v", libc)
	}
	if ms[0].Executable() {
		t.Error("r--p mapping reported executable")
	}
	if ms[4].Path != "" || isFileMapping(&ms[4]) {
		t.Errorf("anonymous mapping parsed as %+v", ms[4])
	}
	if ms[5].Path != "/tmp/with space/lib (deleted)" {
		t.Errorf("path with spaces parsed as %q", ms[5].Path)
	}
	if got := (Location{Address: 0x7f1c2ab00010, Mapping: &ms[5]}).String(); got != "lib+0x10" {
		t.Errorf("unnamed location in a deleted file prints %q", got)
	}
	if ms[6].Path != "[vdso]" || isFileMapping(&ms[6]) {
		t.Errorf("vdso parsed as %+v", ms[6])
	}
	if got := (Location{Address: 0x7f1c2a828010, Mapping: &libc}).String(); got != "libc.so.6+0x28010" {
		t.Errorf("unnamed location prints %q", got)
	}
}

func TestParseMapsErrors(t *testing.T) {
	for _, in := range []string{
		"zz-10 r-xp 0 fd:01 1 /x",
		"10-zz r-xp 0 fd:01 1 /x",
		"20-10 r-xp 0 fd:01 1 /x",
		"10-20 r-x 0 fd:01 1 /x",
		"10-20 r-xp zz fd:01 1 /x",
		"10-20 r-xp 0 fd:01 x /x",
		"10-20 r-xp 0",
		"1020 r-xp 0 fd:01 1 /x",
	} {
		if _, err := ParseMaps(strings.NewReader("10-20 r-xp 0 fd:01 1 /ok\n" + in + "\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: error %v, want one naming line 2", in, err)
		}
	}
}

const kallsymsFixture = `ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81001000 T do_one_initcall
ffffffff81002000 t vfs_read
ffffffff81002400 D some_data
ffffffff81003000 T vfs_write
ffffffffc0a00000 t ext4_read	[ext4]
ffffffffc0a00100 t ext4_write	[ext4]
ffffffffc0b00000 t nf_hook	[nf_tables]
`

func TestParseKallsyms(t *testing.T) {
	k, err := ParseKallsyms(strings.NewReader(kallsymsFixture))
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 7 {
		t.Errorf("%d text symbols, want 7 (aliases and data dropped)", k.Len())
	}
	for _, c := range []struct {
		addr uint64
		fn   string
		mod  string
	}{
		{0xffffffff81000010, "_text", "[kernel.kallsyms]"},
		{0xffffffff81002450, "vfs_read", "[kernel.kallsyms]"},
		{0xffffffff81003010, "vfs_write", "[kernel.kallsyms]"},
		{0xffffffffc0a00050, "ext4_read", "[ext4]"},
		{0xffffffffc0a00150, "ext4_write", "[ext4]"},
		{0xffffffffc0b00004, "nf_hook", "[nf_tables]"},
	} {
		loc := k.Lookup(c.addr)
		if !loc.Named() || loc.Frames[0].Function != c.fn || loc.Mapping == nil || loc.Mapping.Path != c.mod || !loc.Mapping.Kernel {
			t.Errorf("%#x: %+v (mapping %+v), want %s in %s", c.addr, loc.Frames, loc.Mapping, c.fn, c.mod)
		}
	}
	for _, m := range k.Modules() {
		for _, a := range []uint64{0xffffffff81003010, 0xffffffffc0a00150, 0xffffffffc0b00004} {
			if loc := k.Lookup(a); loc.Mapping == m && (a < m.Start || a >= m.Limit) {
				t.Errorf("%#x attributed to %s outside its range [%#x, %#x)", a, m.Path, m.Start, m.Limit)
			}
		}
	}
	if m := k.Lookup(0xffffffffc0a00150).Mapping; m.Limit > 0xffffffffc0b00000 {
		t.Errorf("[ext4] limit %#x runs into [nf_tables]", m.Limit)
	}
	if loc := k.Lookup(0x1000); loc.Mapping != nil {
		t.Errorf("address below the kernel got %+v", loc)
	}
	if loc := k.Lookup(0xffffffffc0a00150 + 2*maxKernelSymbolSpan); loc.Named() {
		t.Errorf("address far past the last module symbol named %+v", loc.Frames)
	}
}

func TestParseKallsymsRestricted(t *testing.T) {
	// What a process without CAP_SYSLOG reads under kernel.kptr_restrict=1.
	in := "0000000000000000 T _text\n0000000000000000 t vfs_read\n0000000000000000 t ext4_read\t[ext4]\n"
	_, err := ParseKallsyms(strings.NewReader(in))
	if !errors.Is(err, ErrKallsymsRestricted) {
		t.Fatalf("error %v, want ErrKallsymsRestricted for all-zero addresses:\n%s", err, in)
	}
}

func TestParseKallsymsEmpty(t *testing.T) {
	if _, err := ParseKallsyms(strings.NewReader("garbage\n")); !errors.Is(err, ErrMalformed) {
		t.Errorf("error %v, want ErrMalformed", err)
	}
}

func TestParsePerfMap(t *testing.T) {
	in := "7f0000001000 40 LazyCompile:~foo /app.js:1\n" +
		"0x7f0000002000 0x20 java.lang.String::hashCode\n" +
		"not a line\n" +
		"7f0000001000 80 LazyCompile:*foo /app.js:1\n"
	syms, err := ParsePerfMap(strings.NewReader(in))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %v, want one naming the bad line 3", err)
	}
	if len(syms) != 3 || syms[1] != (Symbol{Addr: 0x7f0000002000, Size: 0x20, Name: "java.lang.String::hashCode"}) {
		t.Fatalf("symbols %+v", syms)
	}
	tab := symtabFromSymbols(syms)
	if f := tab.lookup(0x7f0000001070); len(f) != 1 || f[0].Function != "LazyCompile:*foo /app.js:1" {
		t.Errorf("recompiled function: %+v, want the later entry", f)
	}
	if f := tab.lookup(0x7f0000002020); f != nil {
		t.Errorf("address past the end named %+v", f)
	}
}

func TestDemangle(t *testing.T) {
	for in, want := range map[string]string{
		"_ZN2ns5Klass6methodEi":                          "ns::Klass::method(int)",
		"_ZN4core3fmt5write17h0123456789abcdefE":         "core::fmt::write",
		"_RNvCs1234_7mycrate4main":                       "mycrate::main",
		"main":                                           "main",
		"_Zgarbage":                                      "_Zgarbage",
		"_ZNK3std6vectorIiSaIiEE4sizeEv.cold":            "std::vector<int, std::allocator<int> >::size() const",
		"_ZN3foo3bar17h0123456789abcdefE.llvm.123456789": "foo::bar",
	} {
		if got := demangle(in); got != want {
			t.Errorf("demangle(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseKallsymsLongLine(t *testing.T) {
	in := "ffffffff81000000 T _text\nffffffff81001000 t " + strings.Repeat("x", maxKallsymsLineSize) + "\n"
	if _, err := ParseKallsyms(strings.NewReader(in)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("error %v, want ErrTooLarge for a line over %d bytes", err, maxKallsymsLineSize)
	}
}

func TestParseKallsymsLastLineUnterminated(t *testing.T) {
	k, err := ParseKallsyms(strings.NewReader("ffffffff81000000 T _text\nffffffff81001000 t vfs_read"))
	if err != nil || k.Len() != 2 {
		t.Fatalf("%v symbols, error %v; want 2", k, err)
	}
	if fn := k.Lookup(0xffffffff81001004).Frames[0].Function; fn != "vfs_read" {
		t.Errorf("named %q, want vfs_read", fn)
	}
}
