package profilesink

import (
	"sort"
	"strings"
	"unicode/utf8"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// Pyroscope's label limits (its defaults): a series with more labels, or
// longer ones, is refused whole, so vigil trims rather than lose the profile.
const (
	maxLabels     = 30
	maxLabelName  = 1024
	maxLabelValue = 2048
)

// seriesLabels are the group's attributes, then the configured extra
// labels, then the fixed ones (the profile type's name typeName among them),
// later ones winning; sorted by name.
func seriesLabels(p *Profile, extra []*typesv1.LabelPair, typeName string) []*typesv1.LabelPair {
	m := map[string]string{}
	for k, v := range p.Attrs {
		if name := labelName(k); name != "" {
			m[name] = labelValue(v)
		}
	}
	for _, l := range extra {
		m[l.Name] = l.Value
	}
	fixed := map[string]string{
		"__name__":     typeName,
		"__delta__":    "false",
		"service_name": labelValue(serviceName(p)),
	}
	names := make([]string, 0, len(m))
	for k := range m {
		if _, ok := fixed[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	names = names[:min(len(names), maxLabels-len(fixed))]
	for k, v := range fixed {
		m[k] = v
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]*typesv1.LabelPair, 0, len(names))
	for _, k := range names {
		out = append(out, &typesv1.LabelPair{Name: k, Value: m[k]})
	}
	return out
}

func sanitizeLabels(labels map[string]string) []*typesv1.LabelPair {
	var out []*typesv1.LabelPair
	for k, v := range labels {
		if name := labelName(k); name != "" {
			out = append(out, &typesv1.LabelPair{Name: name, Value: labelValue(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// labelName maps a name (an OTel attribute such as host.name, or a user's
// label) to Pyroscope's rules, [a-zA-Z_][a-zA-Z0-9_]*, without the "__"
// prefix it reserves for itself. "" means there is nothing left to use.
func labelName(s string) string {
	b := make([]byte, 0, min(len(s), maxLabelName))
	for _, r := range s {
		if len(b) >= maxLabelName-1 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r >= '0' && r <= '9' && len(b) > 0:
			b = append(b, byte(r))
		case r >= '0' && r <= '9':
			b = append(b, '_', byte(r))
		default:
			b = append(b, '_')
		}
	}
	out := string(b)
	for strings.HasPrefix(out, "__") {
		out = out[1:]
	}
	if strings.Trim(out, "_") == "" {
		return ""
	}
	return out
}

// labelValue keeps a value valid UTF-8 and within the length limit.
func labelValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxLabelValue {
		return s
	}
	s = s[:maxLabelValue]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
