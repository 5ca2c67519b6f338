package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const exampleFile = "../deploy/vigil.yaml"

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default() is invalid:\n%v", err)
	}
}

// The example file and Default must never drift: loading it gives exactly
// the defaults, and it spells out every key.
func TestExampleFileIsDefault(t *testing.T) {
	cfg, err := Load(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("loading %s:\n got %+v\nwant %+v", exampleFile, cfg, want)
	}
}

func TestExampleFileNamesEveryKey(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	collectPaths(doc.Content[0], "", present)
	for _, p := range Paths() {
		if !present[p] {
			t.Errorf("%s: key %s of Default() is missing", exampleFile, p)
		}
	}
	if len(Paths()) < 40 {
		t.Errorf("Paths() lists %d keys; the schema has more than 40", len(Paths()))
	}
}

// collectPaths records the dotted path of every key in a YAML mapping tree.
func collectPaths(n *yaml.Node, prefix string, out map[string]bool) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p := join(prefix, n.Content[i].Value)
		out[p] = true
		collectPaths(n.Content[i+1], p, out)
	}
}

// Every leaf of the struct is reached by Paths, so the walk above covers
// the whole schema, including keys added later.
func TestPathsMatchStructLeaves(t *testing.T) {
	var leaves []string
	var walk func(t reflect.Type, prefix string)
	walk = func(typ reflect.Type, prefix string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "" || strings.Contains(tag, ",") {
				t.Errorf("field %s%s: yaml tag %q must be a plain key", prefix, f.Name, tag)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[ByteSize]() {
				walk(f.Type, prefix+tag+".")
				continue
			}
			leaves = append(leaves, prefix+tag)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if !reflect.DeepEqual(leaves, Paths()) {
		t.Errorf("Paths() = %v\nstruct leaves = %v", Paths(), leaves)
	}
}
