package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// promqlNames lists the metric names and label names a PromQL expression
// uses. It is a lexer, not a parser: enough to check dashboard queries
// against what vigil exports without depending on the Prometheus server
// module. Function and aggregation names (an identifier followed by "(")
// and keywords are not metric names; identifiers in by/without/on/ignoring
// lists and in {} matchers are label names.
func promqlNames(expr string) (metrics, labels []string, err error) {
	l := &promLexer{s: expr}
	for l.i < len(l.s) {
		if err := l.next(); err != nil {
			return nil, nil, fmt.Errorf("%q at %d: %w", expr, l.i, err)
		}
	}
	return l.metrics, l.labels, nil
}

type promLexer struct {
	s               string
	i               int
	metrics, labels []string
}

var promKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "start", "end", "atan2"}

// promAggregations may be followed by "by (...)" before their "(".
var promAggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}

var promGrouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

func (l *promLexer) next() error {
	c := l.s[l.i]
	switch {
	case c == ' ' || c == '\t' || c == '\n':
		l.i++
	case c == '"' || c == '\'' || c == '`':
		_, err := l.str()
		return err
	case c == '{':
		return l.matchers()
	case c == '[':
		end := strings.IndexByte(l.s[l.i:], ']')
		if end < 0 {
			return fmt.Errorf("unclosed [")
		}
		l.i += end + 1
	case c >= '0' && c <= '9' || c == '.':
		for l.i < len(l.s) && (isIdentChar(l.s[l.i]) || l.s[l.i] == '.') {
			l.i++
		}
	case c == '$':
		l.i++
		l.ident()
	case isIdentStart(c):
		return l.word()
	default:
		l.i++
	}
	return nil
}

func (l *promLexer) word() error {
	id := l.ident()
	l.skipSpace()
	followedByParen := l.i < len(l.s) && l.s[l.i] == '('
	switch {
	case slices.Contains(promGrouping, id):
		if followedByParen {
			return l.labelList()
		}
	case followedByParen, slices.Contains(promKeywords, strings.ToLower(id)), slices.Contains(promAggregations, id):
	default:
		l.metrics = append(l.metrics, id)
	}
	return nil
}

// labelList reads "(a, b)" after by, without, on, ignoring.
func (l *promLexer) labelList() error {
	end := strings.IndexByte(l.s[l.i:], ')')
	if end < 0 {
		return fmt.Errorf("unclosed label list")
	}
	for name := range strings.SplitSeq(l.s[l.i+1:l.i+end], ",") {
		if name = strings.TrimSpace(name); name != "" {
			l.labels = append(l.labels, name)
		}
	}
	l.i += end + 1
	return nil
}

// matchers reads {name op "value", ...}.
func (l *promLexer) matchers() error {
	l.i++ // {
	for {
		l.skipSpace()
		if l.i >= len(l.s) {
			return fmt.Errorf("unclosed {")
		}
		switch l.s[l.i] {
		case '}':
			l.i++
			return nil
		case ',':
			l.i++
			continue
		}
		name := l.ident()
		if name == "" {
			return fmt.Errorf("want a label name")
		}
		l.skipSpace()
		for l.i < len(l.s) && strings.IndexByte("=!~", l.s[l.i]) >= 0 {
			l.i++
		}
		l.skipSpace()
		value, err := l.str()
		if err != nil {
			return err
		}
		if name == "__name__" {
			l.metrics = append(l.metrics, value)
		} else {
			l.labels = append(l.labels, name)
		}
	}
}

func (l *promLexer) str() (string, error) {
	if l.i >= len(l.s) {
		return "", fmt.Errorf("want a string")
	}
	q := l.s[l.i]
	if q != '"' && q != '\'' && q != '`' {
		return "", fmt.Errorf("want a string")
	}
	var b strings.Builder
	for j := l.i + 1; j < len(l.s); j++ {
		switch {
		case l.s[j] == '\\' && q != '`' && j+1 < len(l.s):
			j++
			b.WriteByte(l.s[j])
		case l.s[j] == q:
			l.i = j + 1
			return b.String(), nil
		default:
			b.WriteByte(l.s[j])
		}
	}
	return "", fmt.Errorf("unclosed string")
}

func (l *promLexer) ident() string {
	start := l.i
	for l.i < len(l.s) && isIdentChar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

func (l *promLexer) skipSpace() {
	for l.i < len(l.s) && strings.IndexByte(" \t\n", l.s[l.i]) >= 0 {
		l.i++
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func TestPromQLNames(t *testing.T) {
	cases := []struct {
		expr            string
		metrics, labels []string
	}{
		{`up`, []string{"up"}, nil},
		{`histogram_quantile(0.99, sum(rate(a_seconds{host_name=~"$host", x!="}"}[$__rate_interval])))`, []string{"a_seconds"}, []string{"host_name", "x"}},
		{`sum by (vigil_hook, reason) (rate(b_total[5m])) / on(job) group_left(instance) c`, []string{"b_total", "c"}, []string{"vigil_hook", "reason", "job", "instance"}},
		{`sum(rate(x[1m])) by (le) > bool 1e3 offset 5m or {__name__="d"}`, []string{"x", "d"}, []string{"le"}},
		{`label_values(m, host_name)`, []string{"m", "host_name"}, nil}, // a Grafana function: both look like metrics
	}
	for _, c := range cases {
		m, l, err := promqlNames(c.expr)
		if err != nil || !slices.Equal(m, c.metrics) || !slices.Equal(l, c.labels) {
			t.Errorf("promqlNames(%q) = %v, %v, %v; want %v, %v", c.expr, m, l, err, c.metrics, c.labels)
		}
	}
	for _, bad := range []string{`a{b="c"`, `a{b="c}`, `rate(a[5m)`} {
		if _, _, err := promqlNames(bad); err == nil {
			t.Errorf("promqlNames(%q) accepted a broken expression", bad)
		}
	}
}
