package config

import (
	"reflect"
	"strings"
	"time"
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	switchType   = reflect.TypeFor[Switch]()
)

// key returns the YAML key of a struct field.
func key(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// field finds the struct field with YAML key k.
func field(v reflect.Value, k string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if key(t.Field(i)) == k {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// keys lists the YAML keys of a struct type, in declaration order.
func keys(t reflect.Type) []string {
	out := make([]string, t.NumField())
	for i := range out {
		out[i] = key(t.Field(i))
	}
	return out
}

// isSection reports whether a type is a mapping of fixed keys (a struct)
// rather than a value.
func isSection(t reflect.Type) bool { return t.Kind() == reflect.Struct }

// Paths lists the dotted path of every value key (not sections), in the
// order of the schema: profiler.enabled, profiler.frequency, ...
// Set accepts each of them.
func Paths() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			p := prefix + key(f)
			if isSection(f.Type) {
				walk(f.Type, p+".")
				continue
			}
			out = append(out, p)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// suggest returns the known key closest to an unknown one, when it is
// close enough to be a typo.
func suggest(unknown string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(unknown, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, with inputs capped so a hostile
// key can't make it quadratic in a large number.
func editDistance(a, b string) int {
	const maxLen = 64
	if len(a) > maxLen || len(b) > maxLen {
		return maxLen
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
