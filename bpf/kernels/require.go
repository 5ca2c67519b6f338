package kernels

import (
	"fmt"
	"strings"
)

// Requirement is a strategy a hook must be able to use on every kernel of
// the matrix: the probe must have attached with it at some point of the
// fallback chain. It is how the matrix insists that the paths the host
// kernel cannot run (fentry, kprobe) are really exercised somewhere.
type Requirement struct {
	Hook, Strategy string
}

// ParseRequirements reads "hook=strategy,hook=strategy".
func ParseRequirements(s string) ([]Requirement, error) {
	var reqs []Requirement
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		h, st, ok := strings.Cut(f, "=")
		if !ok || h == "" || st == "" {
			return nil, fmt.Errorf("requirement %q: want hook=strategy", f)
		}
		reqs = append(reqs, Requirement{Hook: h, Strategy: st})
	}
	return reqs, nil
}

// Missing lists the requirements a run did not meet.
func Missing(r Run, reqs []Requirement) []Requirement {
	c := chains(r.Result)
	var out []Requirement
	for _, q := range reqs {
		if !contains(c[q.Hook], q.Strategy) {
			out = append(out, q)
		}
	}
	return out
}
