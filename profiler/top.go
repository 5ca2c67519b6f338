package profiler

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/google/pprof/profile"
)

// TopEntry is one function of a flat profile.
type TopEntry struct {
	Name      string
	Flat, Cum int64 // samples (CPU) or nanoseconds blocked (off-CPU)
}

// Top returns the n functions with the most samples of their own (the leaf
// frame, inlined leaves included), with their cumulative counts; in an
// off-CPU profile, the most time blocked.
func Top(p *profile.Profile, n int) (entries []TopEntry, total int64) {
	vi := weightIndex(p)
	flat, cum := map[string]int64{}, map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[vi]
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

// WriteTop prints the top n functions like `go tool pprof -top`: counts of
// samples for a CPU profile, times blocked for an off-CPU one.
func WriteTop(w io.Writer, p *profile.Profile, n int) error {
	entries, total := Top(p, n)
	if total == 0 {
		_, err := fmt.Fprintln(w, "no samples")
		return err
	}
	value := func(v int64) string { return strconv.FormatInt(v, 10) }
	if IsOffCPU(p) {
		value = func(v int64) string { return roundDuration(time.Duration(v)).String() }
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flat\tflat%\tcum\tcum%\t\tfunction")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%.1f%%\t%s\t%.1f%%\t\t%s\n", value(e.Flat), pct(e.Flat, total), value(e.Cum), pct(e.Cum, total), e.Name)
	}
	return tw.Flush()
}

// roundDuration keeps about four significant digits: 1.235s, 12.35ms.
func roundDuration(d time.Duration) time.Duration {
	for unit := time.Duration(1); unit < time.Hour; unit *= 10 {
		if d < 10000*unit {
			return d.Round(unit)
		}
	}
	return d.Round(time.Second)
}

func pct(v, total int64) float64 { return 100 * float64(v) / float64(total) }
