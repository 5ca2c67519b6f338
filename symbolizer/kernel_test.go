package symbolizer

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestKernelFromFixture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(path, []byte(kallsymsFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	sys := t.TempDir()
	note := []byte("\x04\x00\x00\x00\x04\x00\x00\x00\x03\x00\x00\x00GNU\x00\xde\xad\xbe\xef")
	if err := os.MkdirAll(filepath.Join(sys, "module", "ext4", "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sys, "module", "ext4", "notes", ".note.gnu.build-id"), note, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newTest(t, Options{KallsymsPath: path, SysRoot: sys})
	locs := s.Kernel([]uint64{0xffffffff81002010, 0xffffffffc0a00110, 0x10})
	if locs[0].String() != "vfs_read" || locs[1].String() != "ext4_write" || locs[1].Mapping.Path != "[ext4]" {
		t.Errorf("got %v and %v", locs[0], locs[1])
	}
	if locs[1].Mapping.BuildID != "deadbeef" || locs[0].Mapping.BuildID != "" {
		t.Errorf("build IDs: module %q, kernel %q", locs[1].Mapping.BuildID, locs[0].Mapping.BuildID)
	}
	if locs[2].Named() || locs[2].Mapping == nil || locs[2].String() != "[kernel.kallsyms]+0x10" {
		t.Errorf("unknown kernel address: %+v prints %q", locs[2], locs[2].String())
	}
	if st := s.Stats(); st.KernelSymbols != 7 || st.KernelErr != nil || st.Hits != 2 || st.Misses != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestKernelRestrictedReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(path, []byte("0000000000000000 T _text\n0000000000000000 t vfs_read\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newTest(t, Options{KallsymsPath: path})
	if err := s.LoadKernel(); !errors.Is(err, ErrKallsymsRestricted) {
		t.Errorf("LoadKernel: %v, want ErrKallsymsRestricted", err)
	}
	if loc := s.Kernel([]uint64{0xffffffff81002010})[0]; loc.Named() || loc.Mapping == nil {
		t.Errorf("restricted kernel address: %+v", loc)
	}
	if st := s.Stats(); !errors.Is(st.KernelErr, ErrKallsymsRestricted) {
		t.Errorf("Stats().KernelErr = %v", st.KernelErr)
	}
}

// TestKernelLive names a real kernel function of this machine.
func TestKernelLive(t *testing.T) {
	requireRoot(t)
	addr := kallsymsAddr(t, "vfs_read")
	s := newTest(t, Options{})
	if err := s.LoadKernel(); err != nil {
		t.Fatal(err)
	}
	loc := s.Kernel([]uint64{addr + 4})[0]
	if loc.String() != "vfs_read" || loc.Mapping.Path != "[kernel.kallsyms]" {
		t.Errorf("vfs_read+4 named %q in %+v", loc.String(), loc.Mapping)
	}
	if _, err := os.Stat("/sys/kernel/notes"); err == nil && len(loc.Mapping.BuildID) < 16 {
		t.Errorf("kernel mapping has no build ID although /sys/kernel/notes exists: %+v", loc.Mapping)
	}
}

// TestParseKallsymsLive checks the parser against a plain reading of this
// machine's kallsyms: every text symbol's address is named by a symbol at
// that address, in its module.
func TestParseKallsymsLive(t *testing.T) {
	requireRoot(t)
	raw, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKallsyms(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	names, mods := map[uint64][]string{}, map[uint64][]string{}
	var lines [][]string
	for _, line := range strings.Split(string(raw), "\n") {
		fl := strings.Fields(line)
		if len(fl) < 3 || !strings.Contains("tTwW", fl[1]) {
			continue
		}
		a, _ := strconv.ParseUint(fl[0], 16, 64)
		names[a] = append(names[a], fl[2])
		mods[a] = append(mods[a], moduleOf(fl))
		lines = append(lines, fl)
	}
	if k.Len() > len(lines) || k.Len() < len(names)*9/10 {
		t.Errorf("%d symbols parsed from %d text lines at %d addresses", k.Len(), len(lines), len(names))
	}
	for _, fl := range lines {
		a, _ := strconv.ParseUint(fl[0], 16, 64)
		loc := k.Lookup(a)
		if !loc.Named() || !slices.Contains(names[a], loc.Frames[0].Function) || !slices.Contains(mods[a], loc.Mapping.Path) {
			t.Fatalf("%s (%s %s) named %+v in %+v", fl[0], fl[2], moduleOf(fl), loc.Frames, loc.Mapping)
		}
	}
}

// moduleOf is the module of a kallsyms line split into fields.
func moduleOf(fl []string) string {
	if len(fl) == 4 {
		return fl[3]
	}
	return "[kernel.kallsyms]"
}

func kallsymsAddr(t *testing.T, name string) uint64 {
	t.Helper()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fl := strings.Fields(sc.Text()); len(fl) == 3 && fl[2] == name {
			a, _ := strconv.ParseUint(fl[0], 16, 64)
			return a
		}
	}
	t.Fatalf("%s not in /proc/kallsyms", name)
	return 0
}

// TestPerfMapThroughUser uses a fixture /proc: an anonymous executable
// mapping is named from the JIT's perf map, which is re-read as it grows.
func TestPerfMapThroughUser(t *testing.T) {
	proc, tmp := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "4242"), 0o755); err != nil {
		t.Fatal(err)
	}
	maps := "7f0000000000-7f0000100000 rwxp 00000000 00:00 0\n"
	if err := os.WriteFile(filepath.Join(proc, "4242", "maps"), []byte(maps), 0o644); err != nil {
		t.Fatal(err)
	}
	perf := filepath.Join(tmp, "perf-4242.map")
	if err := os.WriteFile(perf, []byte("7f0000001000 100 jitted_one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newTest(t, Options{ProcRoot: proc, PerfMapDir: tmp})
	locs := s.User(4242, []uint64{0x7f0000001010, 0x7f0000002010, 0x9000})
	if locs[0].String() != "jitted_one" {
		t.Errorf("jitted code named %q", locs[0].String())
	}
	if locs[1].Named() || locs[1].Mapping == nil || locs[1].String() != "[anon]+0x2010" {
		t.Errorf("unnamed anonymous code: %+v prints %q", locs[1], locs[1].String())
	}
	if locs[2].Mapping != nil || locs[2].String() != "0x9000" {
		t.Errorf("address in no mapping: %+v", locs[2])
	}
	if err := os.WriteFile(perf, []byte("7f0000001000 100 jitted_one\n7f0000002000 100 jitted_two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.User(4242, []uint64{0x7f0000002010})[0].String(); got != "jitted_two" {
		t.Errorf("after the perf map grew: %q", got)
	}
}

// TestPerfMapInContainer: a process in its own pid namespace writes its perf
// map under its own pid inside its root.
func TestPerfMapInContainer(t *testing.T) {
	proc := t.TempDir()
	dir := filepath.Join(proc, "4242")
	if err := os.MkdirAll(filepath.Join(dir, "root", "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"maps":                "7f0000000000-7f0000100000 r-xp 00000000 00:00 0\n",
		"status":              "Name:\tnode\nNSpid:\t4242\t7\n",
		"root/tmp/perf-7.map": "7f0000001000 100 container_jit\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newTest(t, Options{ProcRoot: proc, PerfMapDir: t.TempDir()})
	if got := s.User(4242, []uint64{0x7f0000001010})[0].String(); got != "container_jit" {
		t.Errorf("named %q, want container_jit from the container's perf map", got)
	}
}
