package profiler

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/google/pprof/profile"
)

// TopEntry is one function of a flat profile.
type TopEntry struct {
	Name      string
	Flat, Cum int64 // samples
}

// Top returns the n functions with the most samples of their own (the leaf
// frame, inlined leaves included), with their cumulative counts.
func Top(p *profile.Profile, n int) (entries []TopEntry, total int64) {
	flat, cum := map[string]int64{}, map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[0]
		total += v
		seen := map[string]bool{}
		for i, loc := range s.Location {
			for j, ln := range loc.Line {
				name := ln.Function.Name
				if i == 0 && j == 0 {
					flat[name] += v
				}
				if !seen[name] {
					cum[name] += v
					seen[name] = true
				}
			}
		}
	}
	for name, c := range cum {
		entries = append(entries, TopEntry{Name: name, Flat: flat[name], Cum: c})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Flat != entries[j].Flat {
			return entries[i].Flat > entries[j].Flat
		}
		return entries[i].Name < entries[j].Name
	})
	if len(entries) > n {
		entries = entries[:n]
	}
	return entries, total
}

// WriteTop prints the top n functions like `go tool pprof -top`.
func WriteTop(w io.Writer, p *profile.Profile, n int) error {
	entries, total := Top(p, n)
	if total == 0 {
		_, err := fmt.Fprintln(w, "no samples")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flat\tflat%\tcum\tcum%\t\tfunction")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%.1f%%\t%d\t%.1f%%\t\t%s\n", e.Flat, pct(e.Flat, total), e.Cum, pct(e.Cum, total), e.Name)
	}
	return tw.Flush()
}

func pct(v, total int64) float64 { return 100 * float64(v) / float64(total) }
