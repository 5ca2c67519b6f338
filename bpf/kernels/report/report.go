// Package report prints attach outcomes in the one-line form the kernel
// matrix reads back from its guests:
//
//	vigil-strategy: hook=read skip=fentry,kprobe chosen=tp_btf why=<reasons>
//
// Tests that want their hook's choice to appear in the matrix table print
// Line(...) (t.Log is fine: the matrix finds the tag anywhere in a line).
package report

import (
	"sort"
	"strings"

	"github.com/vigil-ebpf/vigil/bpf/attach"
)

// Tag starts every line.
const Tag = "vigil-strategy: "

// Line renders r, attached with the strategies in skip turned off. chosen is
// "none" when nothing attached; why lists the strategies that were tried
// and failed, with the kernel's reason.
func Line(r attach.Report, skip map[string]bool) string {
	chosen := r.Chosen
	if chosen == "" {
		chosen = "none"
	}
	s := Tag + "hook=" + r.Hook + " skip=" + skipList(skip) + " chosen=" + chosen
	if why := failures(r, skip); why != "" {
		s += " why=" + why
	}
	return s
}

func skipList(skip map[string]bool) string {
	names := make([]string, 0, len(skip))
	for n, on := range skip {
		if on {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "-"
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func failures(r attach.Report, skip map[string]bool) string {
	var parts []string
	for _, a := range r.Attempts {
		if a.Err != nil && !skip[a.Strategy] {
			msg := strings.ReplaceAll(a.Err.Error(), "\n", " ")
			parts = append(parts, a.Strategy+": "+msg)
		}
	}
	return strings.Join(parts, "; ")
}
