package kernels

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Expectation is the fallback chain a hook must show on kernels whose
// release starts with Prefix: every strategy in it attached and worked, in
// this order, and no other did. It catches both a lost strategy (a
// regression on that kernel) and a gained one (the support table in the
// README is out of date).
type Expectation struct {
	Prefix string   // e.g. "6.", "5.10."
	Hook   string   // e.g. "read"
	Chain  []string // e.g. fentry, kprobe, tp_btf, tracepoint; empty: the hook attaches nowhere
	Line   int      // in the expectations file
}

// Bounds for the expectations file, which is small and hand-written.
const (
	maxExpectLines = 1000
	maxChainLen    = 16
)

// ParseExpectations reads lines "<release prefix> <hook> <chain>", where the
// chain is strategy names separated by " > " (or "none"); # starts a comment.
func ParseExpectations(r io.Reader) ([]Expectation, error) {
	var out []Expectation
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		if n > maxExpectLines {
			return nil, fmt.Errorf("expectations: more than %d lines", maxExpectLines)
		}
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(strings.ReplaceAll(line, ">", " "))
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 || len(f) > 2+maxChainLen {
			return nil, fmt.Errorf("expectations line %d: want <release prefix> <hook> <strategy> [> <strategy>...] or none", n)
		}
		e := Expectation{Prefix: f[0], Hook: f[1], Chain: f[2:], Line: n}
		if len(e.Chain) == 1 && e.Chain[0] == "none" {
			e.Chain = nil
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// Mismatch is one expectation a run did not meet.
type Mismatch struct {
	Expectation
	Got []string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("hook %s: fallback order %s, expected %s (expectations line %d)",
		m.Hook, chainString(m.Got), chainString(m.Chain), m.Line)
}

func chainString(c []string) string {
	if len(c) == 0 {
		return "none"
	}
	return strings.Join(c, " > ")
}

// Check compares a run's chains with the expectations for its kernel. The
// longest matching prefix wins per hook, so "6.12." can refine "6.". It
// returns whether any expectation applied at all.
func Check(r Run, exps []Expectation) (mismatches []Mismatch, applied bool) {
	best := map[string]Expectation{}
	for _, e := range exps {
		if strings.HasPrefix(r.Kernel, e.Prefix) && len(e.Prefix) >= len(best[e.Hook].Prefix) {
			best[e.Hook] = e
		}
	}
	got := chains(r.Result)
	for _, hook := range slices.Sorted(maps.Keys(toChains(best))) {
		e := best[hook]
		if !slices.Equal(got[hook], e.Chain) && !(len(got[hook]) == 0 && len(e.Chain) == 0) {
			mismatches = append(mismatches, Mismatch{Expectation: e, Got: got[hook]})
		}
	}
	return mismatches, len(best) > 0
}

func toChains(m map[string]Expectation) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, e := range m {
		out[k] = e.Chain
	}
	return out
}
