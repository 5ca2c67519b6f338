package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadComposeProject loads a compose file with the library Docker Compose
// itself uses: the Compose specification's schema (unknown keys are errors),
// interpolation and normalization.
func loadComposeProject(t *testing.T, path string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{abs}, cli.WithName("vigil"), cli.WithWorkingDirectory(filepath.Dir(abs)))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func TestComposeFileMatchesSpec(t *testing.T) {
	p, err := loadComposeProject(t, "compose/docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"grafana", "otel-collector", "prometheus", "pyroscope", "vigil"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Errorf("services %v, want %v", got, want)
	}
	v := p.Services["vigil"]
	if v.Build == nil || filepath.Join(v.Build.Context, v.Build.Dockerfile) != mustAbs(t, "Dockerfile") {
		t.Errorf("vigil builds %+v, want deploy/Dockerfile", v.Build)
	}
	for _, m := range v.Volumes {
		if m.Type == types.VolumeTypeBind && !m.ReadOnly {
			t.Errorf("bind mount %s -> %s is writable", m.Source, m.Target)
		}
	}
	if v.Pid != "host" || v.Uts != "host" || !v.ReadOnly {
		t.Errorf("vigil: pid %q uts %q read_only %v; want host, host, true", v.Pid, v.Uts, v.ReadOnly)
	}
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// The schema check is real: a misspelt key fails to load.
func TestComposeSpecRejectsTypos(t *testing.T) {
	data, err := os.ReadFile("compose/docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "docker-compose.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(data), "cap_add:", "cap_ad:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadComposeProject(t, bad); err == nil || !strings.Contains(err.Error(), "cap_ad") {
		t.Errorf("a misspelt key loaded: %v", err)
	}
}
