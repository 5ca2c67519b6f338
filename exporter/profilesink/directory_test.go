package profilesink

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func newTestDirectory(t *testing.T, maxFiles int, maxBytes int64) (*Directory, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "profiles")
	d, err := NewDirectory(DirectoryConfig{Path: dir, MaxFiles: maxFiles, MaxBytes: maxBytes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d, dir
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	sort.Strings(out)
	return out
}

func hasFunction(p *profile.Profile, name string) bool {
	for _, f := range p.Function {
		if f.Name == name {
			return true
		}
	}
	return false
}

func TestDirectoryWritesProfilesThatParseBack(t *testing.T) {
	d, dir := newTestDirectory(t, 10, 1<<20)
	one := testProfile(t, "api", testStart, 0)
	one.Attrs["process.pid"] = "4242"
	two := testProfile(t, "api", testStart, 0)
	if err := d.Send(context.Background(), []Profile{one, two}); err != nil {
		t.Fatal(err)
	}
	got := names(t, dir)
	want := []string{"api-20261125T120015Z-4242.pb.gz", "api-20261125T120015Z-s1.pb.gz"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", got, want)
	}
	for _, n := range got {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !hasFunction(p, "hot_loop") || p.Sample[0].Value[0] != 30 || p.Mapping[0].BuildID != "abcdef0123456789" {
			t.Errorf("%s: profile differs from what was sent", n)
		}
	}
	// A retry of the same batch replaces its files.
	if err := d.Send(context.Background(), []Profile{one, two}); err != nil {
		t.Fatal(err)
	}
	if n := len(names(t, dir)); n != 2 || d.Deleted() != 0 {
		t.Errorf("after a retry: %d files, %d deleted; want 2 and 0", n, d.Deleted())
	}
}

// foreign are files rotation must never delete.
var foreign = []string{"notes.txt", "api-20261125T120015Z-1.pb", "api.pb.gz", "x-20261125T120015Z-1.pb.gz.bak"}

func putForeign(t *testing.T, dir string) {
	t.Helper()
	for _, n := range foreign {
		if err := os.WriteFile(filepath.Join(dir, n), make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func ownNames(t *testing.T, dir string) []string {
	var out []string
	for _, n := range names(t, dir) {
		if ownFile.MatchString(n) {
			out = append(out, n)
		}
	}
	return out
}

func TestDirectoryRotatesByCountOldestFirst(t *testing.T) {
	d, dir := newTestDirectory(t, 3, 1<<30)
	putForeign(t, dir)
	for i := range 5 {
		p := testProfile(t, "svc", testStart.Add(time.Duration(i)*15*time.Second), 0)
		if err := d.Send(context.Background(), []Profile{p}); err != nil {
			t.Fatal(err)
		}
	}
	got := ownNames(t, dir)
	want := []string{"svc-20261125T120045Z-s0.pb.gz", "svc-20261125T120100Z-s0.pb.gz", "svc-20261125T120115Z-s0.pb.gz"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("kept %v, want the newest three %v", got, want)
	}
	if d.Deleted() != 2 {
		t.Errorf("deleted %d, want 2", d.Deleted())
	}
	if all := names(t, dir); len(all) != 3+len(foreign) {
		t.Errorf("directory holds %v: a foreign file was touched", all)
	}
}

func TestDirectoryRotatesByBytes(t *testing.T) {
	d, dir := newTestDirectory(t, 1000, 1<<30)
	p := testProfile(t, "svc", testStart, 200)
	if err := d.Send(context.Background(), []Profile{p}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, ownNames(t, dir)[0]))
	if err != nil {
		t.Fatal(err)
	}
	size := info.Size()
	d, dir = newTestDirectory(t, 1000, size*5/2) // room for two files, not three
	putForeign(t, dir)
	for i := range 6 {
		p.Start = testStart.Add(time.Duration(i) * 15 * time.Second)
		if err := d.Send(context.Background(), []Profile{p}); err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, n := range ownNames(t, dir) {
			info, err := os.Stat(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			total += info.Size()
		}
		if total > size*5/2 {
			t.Fatalf("after %d writes the directory holds %d bytes of profiles, over max_bytes %d", i+1, total, size*5/2)
		}
	}
	if got := ownNames(t, dir); len(got) != 2 || !strings.Contains(got[1], "T120130Z") {
		t.Errorf("kept %v, want the newest two", got)
	}
	if d.Deleted() != 4 {
		t.Errorf("deleted %d, want 4", d.Deleted())
	}
	if len(names(t, dir)) != 2+len(foreign) {
		t.Error("a foreign file was deleted")
	}
	// A profile that can never fit is refused for good, not retried.
	d.cfg.MaxBytes = size / 2
	if err := d.Send(context.Background(), []Profile{p}); !IsPermanent(err) || !strings.Contains(err.Error(), "max_bytes") {
		t.Errorf("oversized profile: %v, want a permanent max_bytes error", err)
	}
}

func TestDirectoryMakesUnsafeServiceNamesSafe(t *testing.T) {
	d, dir := newTestDirectory(t, 100, 1<<30)
	services := []string{"../../etc/passwd", "a/b\\c", "", ".hidden", "-rf", strings.Repeat("x", 300), "服务 name\x00\n", "docker://3f4e"}
	var batch []Profile
	for _, s := range services {
		batch = append(batch, testProfile(t, s, testStart, 0))
	}
	if err := d.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	got := names(t, dir)
	if len(got) != len(services) {
		t.Fatalf("wrote %v for %d services", got, len(services))
	}
	for _, n := range got {
		if !ownFile.MatchString(n) || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "-") || len(n) > 100 {
			t.Errorf("unsafe or unrecognised file name %q", n)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("something was written outside the directory: %v", entries)
	}
	if s := safeService("../../etc/passwd"); s != "_.._.._etc_passwd" {
		t.Errorf("safeService(../../etc/passwd) = %q", s)
	}
}

func TestDirectoryRejectsBadConfig(t *testing.T) {
	if _, err := NewDirectory(DirectoryConfig{Path: t.TempDir(), MaxFiles: 0, MaxBytes: 1}, nil); err == nil || !strings.Contains(err.Error(), "max_files") {
		t.Errorf("max_files 0: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := NewDirectory(DirectoryConfig{Path: filepath.Join(file, "sub"), MaxFiles: 1, MaxBytes: 1}, nil); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("path under a file: %v", err)
	}
}

func TestDirectoryRemovesStaleTempFilesOnly(t *testing.T) {
	dir := t.TempDir()
	stale := ".api-20261125T120015Z-s0.pb.gz.tmp12345"
	keep := []string{".bashrc", "api-20261125T120015Z-s0.pb.gz.tmp1", ".other.tmp1"}
	for _, n := range append([]string{stale}, keep...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewDirectory(DirectoryConfig{Path: dir, MaxFiles: 1, MaxBytes: 1 << 20}, nil); err != nil {
		t.Fatal(err)
	}
	got := names(t, dir)
	sort.Strings(keep)
	if strings.Join(got, " ") != strings.Join(keep, " ") {
		t.Errorf("left %v, want %v", got, keep)
	}
}
