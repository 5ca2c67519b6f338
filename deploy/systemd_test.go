package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const unitFile = "systemd/vigil.service"

// unitSettings parses a systemd unit into section.Key -> values (a key may
// repeat).
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not key=value: %q", path, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSystemdUnitSettings(t *testing.T) {
	s := unitSettings(t, unitFile)
	want := map[string]string{
		"Service.ExecStart":                "/usr/local/bin/vigil run --config /etc/vigil/vigil.yaml",
		"Service.Restart":                  "on-failure",
		"Service.RestartPreventExitStatus": "2",
		"Service.NoNewPrivileges":          "yes",
		"Service.ProtectSystem":            "strict",
		"Service.ProtectHome":              "read-only", // binaries under /home are symbolized
		"Service.PrivateTmp":               "no",        // JIT perf maps are in the host's /tmp
		"Service.LimitMEMLOCK":             "infinity",  // instead of CAP_SYS_RESOURCE
		"Install.WantedBy":                 "multi-user.target",
	}
	for k, v := range want {
		if got := s[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Service.CapabilityBoundingSet", "Service.AmbientCapabilities"} {
		if got := unitCaps(s[k]); !slices.Equal(got, sortedCaps()) {
			t.Errorf("%s = %v, want %v", k, got, sortedCaps())
		}
	}
	// ProtectKernelLogs drops CAP_SYSLOG; PrivateUsers and DynamicUser
	// would take the capabilities or the host /tmp away.
	for _, k := range []string{"ProtectKernelLogs", "PrivateUsers", "DynamicUser", "User"} {
		if v, ok := s["Service."+k]; ok {
			t.Errorf("Service.%s=%v is set; it breaks symbolization or BPF", k, v)
		}
	}
}

// unitCaps turns "CAP_BPF CAP_PERFMON" lines into sorted names without CAP_.
func unitCaps(lines []string) []string {
	var out []string
	for _, l := range lines {
		for c := range strings.FieldsSeq(l) {
			out = append(out, strings.TrimPrefix(c, "CAP_"))
		}
	}
	slices.Sort(out)
	return out
}

func sortedCaps() []string {
	out := slices.Clone(requiredCaps)
	slices.Sort(out)
	return out
}

// verifiableUnit copies the unit with ExecStart pointing at an executable
// that exists here (verify refuses a missing binary), keeping all else.
func verifiableUnit(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vigil.service")
	unit := strings.ReplaceAll(string(data), "/usr/local/bin/vigil", self)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func requireSystemdAnalyze(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd)")
	}
	return bin
}

// systemd-analyze verify exits 0 on unknown keys and only warns, so any
// output naming the unit fails the test too.
func TestSystemdUnitVerifies(t *testing.T) {
	bin := requireSystemdAnalyze(t)
	path := verifiableUnit(t)
	out, err := exec.Command(bin, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "vigil.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The hardening is measured by systemd's own exposure score (0 best, 10
// worst); a removed protection raises it past the bound.
func TestSystemdUnitExposure(t *testing.T) {
	bin := requireSystemdAnalyze(t)
	path := verifiableUnit(t)
	out, err := exec.Command(bin, "security", "--offline=yes", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for vigil\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure level %.1f", score)
	// Root uid with six capabilities can't go much lower; 5.0 leaves no
	// room for a dropped Protect* setting.
	if score > 5.0 {
		t.Errorf("exposure level %.1f, want at most 5.0:\n%s", score, out)
	}
}
