package debarchive

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSourcesListNamesSuiteAndSecurity(t *testing.T) {
	got := sourcesList("bullseye")
	for _, want := range []string{"debian bullseye main", "debian-security bullseye-security main", "signed-by="} {
		if !strings.Contains(got, want) {
			t.Errorf("sources list lacks %q:\n%s", want, got)
		}
	}
}

func TestSuiteRejectsBadNames(t *testing.T) {
	for _, suite := range []string{"", "/bad", "two words"} {
		if _, err := Suite(context.Background(), t.TempDir(), suite); err == nil {
			t.Errorf("Suite(%q) accepted", suite)
		}
	}
}

func TestFindDebTakesTheLastVersion(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"zlib1g_1%3a1.2.11_amd64.deb", "zlib1g_1%3a1.2.13_amd64.deb", "zlib1g-dev_1%3a1.2.13_amd64.deb"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := FindDeb(dir, "zlib1g")
	if err != nil || filepath.Base(got) != "zlib1g_1%3a1.2.13_amd64.deb" {
		t.Errorf("FindDeb = %q, %v", got, err)
	}
	if _, err := FindDeb(dir, "libc6"); err == nil {
		t.Error("FindDeb found a package that is not there")
	}
}
