// Command probe runs inside each kernel of the matrix. For every hook it
// attaches with nothing forced off, then turns off the strategy just chosen
// and attaches again, until no strategy is left. Each attach prints one
// report line, so the matrix sees the whole fallback order a kernel offers.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/kernels/report"
)

// opener attaches one hook with some strategies turned off.
type opener func(skip map[string]bool) (attach.Report, io.Closer, error)

// maxSteps bounds the chain should a hook keep choosing strategies the skip
// set already holds.
const maxSteps = 8

func main() {
	// Packages warn when a hook is disabled; here that is the expected end
	// of every chain, so only errors are worth printing.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	failed := false
	for _, h := range hooks() {
		fmt.Printf("vigil-suite: hook=%s suite=%s\n", h.name, h.suite)
		if !walk(os.Stdout, h.name, h.open) {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// walk prints the fallback chain of one hook and reports whether at least
// the unforced attach worked.
func walk(w io.Writer, hook string, open opener) bool {
	skip := map[string]bool{}
	for step := 0; step < maxSteps; step++ {
		r, c, err := open(skip)
		if r.Hook == "" {
			r.Hook = hook
		}
		fmt.Fprintln(w, report.Line(r, skip))
		if c != nil {
			if cerr := c.Close(); cerr != nil {
				fmt.Fprintf(w, "probe: closing %s (%s): %v\n", hook, r.Chosen, cerr)
			}
		}
		// The chain ends when nothing attaches, whether Open failed or (for
		// packages with several hooks) succeeded without this one.
		if err != nil || r.Chosen == "" {
			return step > 0
		}
		if skip[r.Chosen] {
			return false // chose a strategy it was told to skip
		}
		skip[r.Chosen] = true
	}
	return false
}
