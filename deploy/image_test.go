package deploy

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerStage is one FROM ... AS name stage of a Dockerfile.
type dockerStage struct {
	from, name string
	lines      []string // instructions after FROM, continuation lines joined
}

func parseDockerfile(t *testing.T, path string) (args map[string]string, stages []dockerStage) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args = map[string]string{}
	sc := bufio.NewScanner(f)
	var cur strings.Builder
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		instr := cur.String()
		cur.Reset()
		fields := strings.Fields(instr)
		switch {
		case fields[0] == "FROM":
			st := dockerStage{from: fields[1]}
			if len(fields) == 4 && fields[2] == "AS" {
				st.name = fields[3]
			}
			stages = append(stages, st)
		case len(stages) == 0 && fields[0] == "ARG":
			k, v, _ := strings.Cut(fields[1], "=")
			args[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, instr)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return args, stages
}

func goDirective(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	return string(m[1])
}

func TestDockerfileStages(t *testing.T) {
	args, stages := parseDockerfile(t, "Dockerfile")
	if got, want := args["GO_VERSION"], goDirective(t); got != want {
		t.Errorf("GO_VERSION %q, go.mod says go %s", got, want)
	}
	if len(stages) != 2 || stages[0].name != "build" || !strings.HasPrefix(stages[0].from, "golang:") {
		t.Fatalf("stages %+v, want a golang build stage and a final image", stages)
	}
	final := stages[1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s: want distroless/static or scratch", final.from)
	}
	body := strings.Join(final.lines, "\n")
	for _, want := range []string{
		"COPY --from=build /src/bin/vigil /usr/local/bin/vigil",
		`ENTRYPOINT ["/usr/local/bin/vigil"]`,
		`CMD ["run", "--config", "/etc/vigil/vigil.yaml"]`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("final stage lacks %s", want)
		}
	}
	if got := buildCommand(t, stages[0]); got != "make build VERSION=${VERSION}" {
		t.Errorf("build stage builds with %q; keep it `make build` so the test below runs the same thing", got)
	}
}

// buildCommand is the last RUN of the build stage: the one producing the binary.
func buildCommand(t *testing.T, st dockerStage) string {
	t.Helper()
	run := ""
	for _, l := range st.lines {
		if cmd, ok := strings.CutPrefix(l, "RUN "); ok {
			run = cmd
		}
	}
	return run
}

// The image holds only the binary, so it must be static: no program
// interpreter and no shared libraries. This runs the build stage's own
// command (make build), writing to a temporary path instead of bin/.
func TestImageBinaryIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vigil")
	}
	_, stages := parseDockerfile(t, "Dockerfile")
	fields := strings.Fields(buildCommand(t, stages[0]))
	bin := filepath.Join(t.TempDir(), "vigil")
	for i, f := range fields {
		fields[i] = strings.ReplaceAll(f, "${VERSION}", "imagetest")
	}
	args := append([]string{"-s", "-C", ".."}, fields[1:]...)
	args = append(args, "BIN="+bin)
	cmd := exec.Command(fields[0], args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1") // the Makefile must force 0 itself
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not static", bin, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("links shared libraries %v", libs)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.Contains(string(out), "imagetest") {
		t.Errorf("vigil version = %q, %v; want the stamped version", out, err)
	}
}
