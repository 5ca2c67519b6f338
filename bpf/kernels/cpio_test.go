package kernels

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

type cpioEntry struct {
	name string
	mode uint32
	data string
}

// readNewc is a minimal newc reader: enough to check what the writer wrote,
// including the 4-byte alignment the kernel's unpacker insists on.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	align := func() { off = (off + 3) &^ 3 }
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at offset %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("header field %d at %d: %v", i, off, err)
			}
			return int(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		off += 110
		name := string(b[off : off+namesize-1])
		off += namesize
		align()
		data := string(b[off : off+size])
		off += size
		align()
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name, uint32(mode), data})
	}
}

func TestCPIORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	steps := []error{
		c.Dir("/bin"),
		c.File("bin/busybox", 0o755, []byte("12345")), // odd size: needs padding
		c.Symlink("bin/sh", "busybox"),
		c.File("init", 0o700, nil),
		c.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []cpioEntry{
		{"bin", modeDir | 0o755, ""},
		{"bin/busybox", modeFile | 0o755, "12345"},
		{"bin/sh", modeLink | 0o777, "busybox"},
		{"init", modeFile | 0o700, ""},
	}
	got := readNewc(t, buf.Bytes())
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestCPIORejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "/", "a\x00b"} {
		c := newCPIOWriter(&bytes.Buffer{})
		if err := c.File(name, 0o644, nil); err == nil {
			t.Errorf("File(%q) accepted", name)
		}
	}
}

func TestInitramfsHoldsInitJobsAndModules(t *testing.T) {
	dir := t.TempDir()
	bin := writeTemp(t, dir, "x.test", "ELF")
	bb := writeTemp(t, dir, "busybox", "BB")
	img := Image{
		Busybox: bb,
		Jobs:    []Job{{Name: "x", Binary: bin, Args: []string{"-test.v"}, Dir: "src/bpf/x", Timeout: 90e9}},
		Trees:   map[string]string{"src/bpf/x/testdata": dir},
		Files:   []HostFile{{Host: bb, Guest: "usr/local/bin/tool"}},
		Modules: []Module{{Name: "null_blk", Data: []byte("ko")}},
	}
	out := filepath.Join(dir, "initramfs.cpio")
	if err := WriteInitramfs(out, img); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range readNewc(t, b) {
		if e.mode&modeDir != 0 {
			if files[e.name] == "dir" {
				t.Errorf("directory %s added twice", e.name)
			}
			files[e.name] = "dir"
			continue
		}
		files[e.name] = e.data
	}
	checks := map[string]string{
		"bin/busybox":               "BB",
		"src/bpf/x/x.test":          "ELF",
		"src/bpf/x/testdata/x.test": "ELF",
		"usr/local/bin/tool":        "BB",
		"modules/null_blk.ko":       "ko",
		"modules.order":             "null_blk\n",
		"jobs.txt":                  "x\t90\t/src/bpf/x\t./x.test -test.v\n",
		"init":                      string(initScript),
	}
	for _, d := range []string{"src", "src/bpf", "src/bpf/x", "usr", "usr/local", "usr/local/bin"} {
		checks[d] = "dir"
	}
	for name, want := range checks {
		if got, ok := files[name]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %q", name, got, ok, want)
		}
	}
}
