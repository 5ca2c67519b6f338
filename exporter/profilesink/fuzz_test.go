package profilesink

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// Service names and attribute values come from other people's processes
// (executable names, container ids, OTEL_SERVICE_NAME from their environ).

func FuzzSafeService(f *testing.F) {
	for _, s := range []string{"api", "../../etc/passwd", "", ".x", "-rf", "a/b", "服务", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name := fileName(s, testStart, "s1")
		if !ownFile.MatchString(name) || strings.ContainsAny(name, "/\x00") || len(name) > maxServiceName+40 {
			t.Fatalf("service %q gives unsafe or unrecognised file name %q", s, name)
		}
	})
}

var validLabel = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func FuzzLabel(f *testing.F) {
	for _, s := range []string{"host.name", "__name__", "9", "", "ünï", "a-b"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		n := labelName(name)
		if n != "" && (!validLabel.MatchString(n) || strings.HasPrefix(n, "__") || len(n) > maxLabelName) {
			t.Fatalf("labelName(%q) = %q breaks the rules", name, n)
		}
		v := labelValue(value)
		if !utf8.ValidString(v) || len(v) > maxLabelValue {
			t.Fatalf("labelValue(%q) = %q", value, v)
		}
	})
}
