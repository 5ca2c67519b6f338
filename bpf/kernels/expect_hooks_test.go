package kernels

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/hooks"
)

// expect.txt names every attach point of bpf/hooks for every release it
// covers, nothing else, and each chain keeps the list's order and leaves
// out strategies that kernel is too old for.
func TestExpectationsCoverEveryHook(t *testing.T) {
	for _, p := range coverageProblems(shippedExpectations(t)) {
		t.Error(p)
	}
}

// The check itself catches each kind of gap.
func TestCoverageCheckCatchesGaps(t *testing.T) {
	good := shippedExpectations(t)
	for name, edit := range map[string]func([]Expectation) []Expectation{
		"a hook missing": func(e []Expectation) []Expectation {
			return slices.DeleteFunc(e, func(x Expectation) bool { return x.Hook == "tcp_rtt" && x.Prefix == "6." })
		},
		"an unknown hook": func(e []Expectation) []Expectation {
			return append(e, Expectation{Prefix: "6.", Hook: "faults", Chain: []string{"tracepoint"}})
		},
		"out of order": func(e []Expectation) []Expectation {
			return append(e, Expectation{Prefix: "6.", Hook: "read", Chain: []string{"kprobe", "fentry"}})
		},
		"an unknown strategy": func(e []Expectation) []Expectation {
			return append(e, Expectation{Prefix: "6.", Hook: "block", Chain: []string{"kprobe"}})
		},
		"too old a kernel": func(e []Expectation) []Expectation {
			return append(e, Expectation{Prefix: "5.10.", Hook: "profile", Chain: []string{"perf_event_link"}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			if len(coverageProblems(edit(slices.Clone(good)))) == 0 {
				t.Errorf("coverage check passed with %s", name)
			}
		})
	}
}

func coverageProblems(exps []Expectation) []string {
	var out []string
	byPrefix := map[string]map[string]bool{}
	for _, e := range exps {
		if byPrefix[e.Prefix] == nil {
			byPrefix[e.Prefix] = map[string]bool{}
		}
		byPrefix[e.Prefix][e.Hook] = true
		p, ok := hooks.PointOf(e.Hook)
		if !ok {
			out = append(out, fmt.Sprintf("line %d: hook %s is not in bpf/hooks", e.Line, e.Hook))
			continue
		}
		out = append(out, chainProblems(e, p)...)
	}
	for prefix, have := range byPrefix {
		for _, p := range hooks.Points() {
			if !have[p.Name] {
				out = append(out, fmt.Sprintf("release %s: no expectation for hook %s", prefix, p.Name))
			}
		}
	}
	return out
}

// chainProblems: the expected chain is the point's strategies in their
// order, some left out, none its kernel is too old for.
func chainProblems(e Expectation, p hooks.Point) []string {
	order := p.StrategyNames()
	last := -1
	for _, name := range e.Chain {
		i := slices.Index(order, name)
		if i <= last {
			return []string{fmt.Sprintf("line %d: %s chain %q is not a part of bpf/hooks' order %q", e.Line, e.Hook, e.Chain, order)}
		}
		last = i
		s, _ := p.Strategy(name)
		if k, ok := prefixKernel(e.Prefix); ok && k.Before(s.MinKernel) {
			return []string{fmt.Sprintf("line %d: %s %s expected on %s, but bpf/hooks says it needs %s", e.Line, e.Hook, name, e.Prefix, s.MinKernel)}
		}
	}
	return nil
}

// prefixKernel reads "6." as 6.0 and "5.10." as 5.10.
func prefixKernel(prefix string) (hooks.Kernel, bool) {
	f := strings.Split(strings.TrimSuffix(prefix, "."), ".")
	major, err := strconv.Atoi(f[0])
	if err != nil {
		return hooks.Kernel{}, false
	}
	k := hooks.Kernel{Major: major}
	if len(f) > 1 {
		if k.Minor, err = strconv.Atoi(f[1]); err != nil {
			return hooks.Kernel{}, false
		}
	}
	return k, true
}

func shippedExpectations(t *testing.T) []Expectation {
	t.Helper()
	f, err := os.Open("expect.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exps, err := ParseExpectations(f)
	if err != nil {
		t.Fatal(err)
	}
	return exps
}
