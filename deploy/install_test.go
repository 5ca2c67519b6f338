package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runInstall runs deploy/install.mk's install target into destdir, with
// the top-level build replaced by an existing file as the binary.
func runInstall(t *testing.T, destdir string, vars ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "Makefile")
	mk := "build:\n\t@:\ninclude " + filepath.Join(root, "deploy/install.mk") + "\n"
	if err := os.WriteFile(wrapper, []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-s", "-C", root, "-f", wrapper, "install", "DESTDIR=" + destdir, "BIN=" + bin}, vars...)
	out, err := exec.Command("make", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	return string(out)
}

func TestInstall(t *testing.T) {
	dest := t.TempDir()
	runInstall(t, dest)
	modes := map[string]os.FileMode{
		"usr/local/bin/vigil":                 0o755,
		"etc/systemd/system/vigil.service":    0o644,
		"etc/vigil/vigil.yaml":                0o640,
		"usr/local/share/doc/vigil/deploy.md": 0o644,
	}
	for path, mode := range modes {
		st, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "etc/systemd/system/vigil.service"))
	src, _ := os.ReadFile(unitFile)
	if string(unit) != string(src) {
		t.Error("with the default prefix the installed unit must be the file in the tree")
	}

	// A second install keeps the operator's configuration.
	conf := filepath.Join(dest, "etc/vigil/vigil.yaml")
	if err := os.WriteFile(conf, []byte("log: {level: debug}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	out := runInstall(t, dest)
	if got, _ := os.ReadFile(conf); string(got) != "log: {level: debug}\n" {
		t.Errorf("make install overwrote vigil.yaml: %q", got)
	}
	if _, err := os.Stat(conf + ".example"); err != nil || !strings.Contains(out, "kept") {
		t.Errorf("second install: no vigil.yaml.example beside the kept file (%v), output %q", err, out)
	}
}

func TestInstallPrefixRewritesUnit(t *testing.T) {
	dest := t.TempDir()
	runInstall(t, dest, "PREFIX=/opt/vigil", "CONFDIR=/etc/opt/vigil")
	unit := filepath.Join(dest, "etc/systemd/system/vigil.service")
	s := unitSettings(t, unit)
	if got := s["Service.ExecStart"]; len(got) != 1 || got[0] != "/opt/vigil/bin/vigil run --config /etc/opt/vigil/vigil.yaml" {
		t.Errorf("ExecStart = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dest, "opt/vigil/bin/vigil")); err != nil {
		t.Error(err)
	}
}
