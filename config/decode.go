package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder writes YAML nodes into a Config strictly, collecting every
// problem with its path and line instead of stopping at the first.
type decoder struct {
	problems Problems
}

func (d *decoder) addf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// decode writes n into v. A null node keeps v's current value (its default
// or what an earlier layer set), as an empty key does in YAML.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		return
	}
	switch t := v.Type(); {
	case t == durationType:
		d.duration(n, v, path)
	case t == byteSizeType:
		d.byteSize(n, v, path)
	case t == switchType:
		d.switchValue(n, v, path)
	case t.Kind() == reflect.Struct:
		d.section(n, v, path)
	case t.Kind() == reflect.Slice:
		d.list(n, v, path)
	case t.Kind() == reflect.Map:
		d.stringMap(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// section decodes a mapping of fixed keys into a struct.
func (d *decoder) section(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "must be a mapping of keys (got %s)", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name, ok := d.mapKey(k, seen, path)
		if !ok {
			continue
		}
		f, ok := field(v, name)
		if !ok {
			d.unknownKey(k, join(path, name), name, keys(v.Type()))
			continue
		}
		d.decode(val, f, join(path, name))
	}
}

// mapKey checks that a mapping key is a scalar and not a duplicate.
func (d *decoder) mapKey(k *yaml.Node, seen map[string]int, path string) (string, bool) {
	if k.Kind != yaml.ScalarNode {
		d.addf(k, path, "keys must be plain names (got %s)", describe(k))
		return "", false
	}
	if first, dup := seen[k.Value]; dup {
		d.addf(k, join(path, k.Value), "duplicate key (first set on line %d)", first)
		return "", false
	}
	seen[k.Value] = k.Line
	return k.Value, true
}

func (d *decoder) unknownKey(k *yaml.Node, path, name string, known []string) {
	if s := suggest(name, known); s != "" {
		d.addf(k, "", "unknown key %s (did you mean %s?)", path, s)
		return
	}
	d.addf(k, "", "unknown key %s (known: %s)", path, strings.Join(known, ", "))
}

// list decodes a sequence, replacing (not appending to) the current list.
func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.addf(n, path, "must be a list (got %s)", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if item.Kind == yaml.AliasNode {
			item = item.Alias
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		if isNull(item) {
			d.addf(item, p, "must not be empty")
			continue
		}
		d.scalar(item, out.Index(i), p)
	}
	v.Set(out)
}

// stringMap decodes a mapping of free-form names to strings (headers,
// labels), replacing the current map.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "must be a mapping of names to values (got %s)", describe(n))
		return
	}
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, ok := d.mapKey(n.Content[i], seen, path)
		if !ok {
			continue
		}
		val := reflect.New(v.Type().Elem()).Elem()
		d.scalar(n.Content[i+1], val, join(path, name))
		out.SetMapIndex(reflect.ValueOf(name), val)
	}
	v.Set(out)
}

// scalar decodes a bool, an integer or a string.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		d.addf(n, path, "must be a single value (got %s)", describe(n))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		d.boolValue(n, v, path)
	case reflect.Int:
		d.intValue(n, v, path)
	case reflect.String:
		// Any scalar is text: a label value of 1.2 or a tenant id of 42
		// means the text as written.
		if isNull(n) {
			d.addf(n, path, "must not be empty")
			return
		}
		v.SetString(n.Value)
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

func (d *decoder) boolValue(n *yaml.Node, v reflect.Value, path string) {
	var b bool
	if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		d.addf(n, path, "must be true or false (got %q)", n.Value)
		return
	}
	v.SetBool(b)
}

func (d *decoder) intValue(n *yaml.Node, v reflect.Value, path string) {
	var i int64
	if n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		d.addf(n, path, "must be an integer (got %q)", n.Value)
		return
	}
	if i < math.MinInt32 || i > math.MaxInt32 {
		// No key needs more; refusing here keeps later arithmetic safe.
		d.addf(n, path, "integer out of range (got %s)", n.Value)
		return
	}
	v.SetInt(i)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.addf(n, path, "must be a duration such as 15s or 1m30s (got %s)", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.addf(n, path, "must be a duration such as 15s or 1m30s (got %q)", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) byteSize(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.addf(n, path, "must be a byte size such as 1048576 or 64MiB (got %s)", describe(n))
		return
	}
	size, err := ParseByteSize(n.Value)
	if err != nil {
		d.addf(n, path, "%v", err)
		return
	}
	v.SetInt(int64(size))
}

func (d *decoder) switchValue(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.addf(n, path, "must be auto, true or false (got %s)", describe(n))
		return
	}
	value := n.Value
	if n.ShortTag() == "!!bool" {
		var b bool
		if n.Decode(&b) == nil {
			value = fmt.Sprint(b)
		}
	}
	s, err := ParseSwitch(value)
	if err != nil {
		d.addf(n, path, "%v", err)
		return
	}
	v.SetString(string(s))
}

// describe names a node's kind for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
