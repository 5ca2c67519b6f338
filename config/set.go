package config

import (
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Set writes one key by its dotted path (profiler.frequency) from text, as
// a flag such as --set profiler.frequency=99 gives it, with the same
// parsing and messages as the file:
//
//   - strings take the text as it is (empty included);
//   - numbers, booleans, durations (15s), byte sizes (64MiB) and auto switches
//     are parsed as in YAML;
//   - lists take a YAML flow list ([read, tcp]) or comma-separated items
//     (read,tcp); an empty value is the empty list;
//   - maps take a YAML flow mapping ({env: prod}) or k=v pairs separated by
//     commas (env=prod,team=infra), or one entry is set by its path
//     (sinks.pyroscope.labels.env=prod).
//
// The list or map replaces the previous one.
func (c *Config) Set(path, value string) error {
	v, rest, err := lookup(reflect.ValueOf(c).Elem(), path)
	if err != nil {
		return err
	}
	if rest != "" {
		setMapEntry(v, rest, value)
		return nil
	}
	n, err := valueNode(v.Type(), path, value)
	if err != nil {
		return err
	}
	// Decode into a copy so a failed Set leaves the config as it was.
	tmp := reflect.New(v.Type()).Elem()
	tmp.Set(v)
	var d decoder
	d.decode(n, tmp, path)
	for i := range d.problems {
		d.problems[i].Line = 0 // lines of the flag text, not of a file
	}
	if len(d.problems) > 0 {
		return d.problems
	}
	v.Set(tmp)
	return nil
}

// lookup walks path through the sections. When it reaches a map before
// the end, rest is the map key that remains.
func lookup(v reflect.Value, path string) (target reflect.Value, rest string, err error) {
	parts := strings.Split(path, ".")
	for i, name := range parts {
		if !isSection(v.Type()) {
			if v.Kind() == reflect.Map {
				return v, strings.Join(parts[i:], "."), nil
			}
			return v, "", Problems{{Path: path, Msg: "unknown key: " + strings.Join(parts[:i], ".") + " is a value, not a section"}}
		}
		f, ok := field(v, name)
		if !ok {
			var d decoder
			d.unknownKey(nil, path, name, keys(v.Type()))
			return v, "", d.problems
		}
		v = f
	}
	if isSection(v.Type()) {
		return v, "", Problems{{Path: path, Msg: "is a section: set one of its keys (" + strings.Join(keys(v.Type()), ", ") + ")"}}
	}
	return v, "", nil
}

// valueNode turns flag text into the YAML node the file would hold.
func valueNode(t reflect.Type, path, value string) (*yaml.Node, error) {
	if t.Kind() == reflect.String && t != switchType {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}, nil
	}
	text := value
	switch {
	case t.Kind() == reflect.Slice && !strings.HasPrefix(strings.TrimSpace(value), "["):
		text = "[" + value + "]"
	case t.Kind() == reflect.Map && !strings.HasPrefix(strings.TrimSpace(value), "{"):
		return pairsNode(path, value)
	}
	n, err := parseDocument([]byte(text))
	if err != nil {
		return nil, Problems{{Path: path, Msg: "cannot parse " + quote(value)}}
	}
	if n == nil || isNull(n) {
		return nil, Problems{{Path: path, Msg: "needs a value"}}
	}
	return n, nil
}

// pairsNode parses k=v,k2=v2 (the OTEL_EXPORTER_OTLP_HEADERS form) into a
// mapping node of strings.
func pairsNode(path, value string) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if strings.TrimSpace(value) == "" {
		return n, nil
	}
	for pair := range strings.SplitSeq(value, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, Problems{{Path: path, Msg: "want name=value pairs separated by commas (got " + quote(pair) + ")"}}
		}
		n.Content = append(n.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.TrimSpace(v)})
	}
	return n, nil
}

// setMapEntry sets one entry of a map of strings, keeping the others. It
// writes a copy, so a Config copied before Set keeps its own map.
func setMapEntry(m reflect.Value, name, value string) {
	out := reflect.MakeMapWithSize(m.Type(), m.Len()+1)
	for it := m.MapRange(); it.Next(); {
		out.SetMapIndex(it.Key(), it.Value())
	}
	out.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(value))
	m.Set(out)
}

func quote(s string) string { return strconv.Quote(s) }
