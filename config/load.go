package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds what Load reads: a configuration is a few kilobytes,
// and a larger file is a mistake (or an attack on the parser).
const MaxFileSize = 1 << 20

// Load returns Default with the file at path on top. Unknown keys, wrong
// types and duplicate keys are reported together as Problems with their
// line numbers; a file that can't be read is a plain error. Load does not
// validate values: apply flags with Set, then call Validate.
func Load(path string) (Config, error) {
	data, err := readBounded(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(data)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("reading config %s: larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

// Parse returns Default with the YAML document data on top, like Load.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	root, err := parseDocument(data)
	if err != nil {
		return Config{}, err
	}
	if root == nil {
		return cfg, nil
	}
	var d decoder
	d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	if err := d.problems.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseDocument parses exactly one YAML document; an empty input is nil.
func parseDocument(data []byte) (*yaml.Node, error) {
	if len(data) > MaxFileSize {
		return nil, Problems{{Msg: fmt.Sprintf("config larger than %d bytes", MaxFileSize)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Problems{{Msg: err.Error()}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, Problems{{Line: extra.Line, Msg: "more than one YAML document"}}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}
