package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/exporter"
)

const barWidth = 40

// writeText prints every reading BCC-style: one row per power of two of a
// second, labelled in microseconds. The rows are exact merges of the
// kernel's exponential buckets (exporter.Octaves); a row "a -> b" holds the
// values v with a < v <= b.
func writeText(w io.Writer, now time.Time, readings []hist.Reading) error {
	fmt.Fprintf(w, "%s\n", now.Format("15:04:05"))
	for _, r := range readings {
		for _, s := range r.Histograms {
			if err := writeHistogram(w, r.Name, s); err != nil {
				return err
			}
		}
		for _, c := range r.Counters {
			fmt.Fprintf(w, "%s%s: %d %s\n", r.Name, attrText(c.Attrs), c.Value, strings.Trim(r.Unit, "{}"))
		}
	}
	fmt.Fprintln(w)
	return nil
}

func writeHistogram(w io.Writer, name string, s hist.Series) error {
	h := s.Hist
	fmt.Fprintf(w, "\n%s%s  count %d", name, attrText(s.Attrs), h.Count)
	if h.Count > 0 {
		fmt.Fprintf(w, "  avg %s", formatSeconds(float64(h.SumNs)/float64(h.Count)/1e9))
	}
	fmt.Fprintln(w)
	octaves, err := exporter.Octaves(h)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if h.Count == 0 {
		return nil
	}
	max := h.ZeroCount
	for _, o := range octaves {
		max = maxU(max, o.Count)
	}
	fmt.Fprintf(w, "%10s%14s : %-9s distribution\n", "usecs", "", "count")
	if h.ZeroCount > 0 {
		writeRow(w, "0", "0", h.ZeroCount, max)
	}
	for _, o := range fill(octaves) {
		lo, hi := octaveUsecs(o.Exp)
		writeRow(w, lo, hi, o.Count, max)
	}
	if h.Overflow > 0 {
		fmt.Fprintf(w, "%d values beyond the histogram's range counted in its last bucket\n", h.Overflow)
	}
	return nil
}

// fill adds the empty octaves between the first and last non-empty ones, so
// the bars read as a continuous distribution.
func fill(o []exporter.Octave) []exporter.Octave {
	if len(o) == 0 {
		return nil
	}
	out := make([]exporter.Octave, 0, int(o[len(o)-1].Exp-o[0].Exp)+1)
	j := 0
	for e := o[0].Exp; e <= o[len(o)-1].Exp; e++ {
		c := uint64(0)
		if o[j].Exp == e {
			c = o[j].Count
			j++
		}
		out = append(out, exporter.Octave{Exp: e, Count: c})
	}
	return out
}

func writeRow(w io.Writer, lo, hi string, count, max uint64) {
	stars := 0
	if max > 0 {
		stars = int(math.Round(float64(count) * barWidth / float64(max)))
	}
	if count > 0 && stars == 0 {
		stars = 1 // a non-empty row never looks empty
	}
	fmt.Fprintf(w, "%10s -> %-10s : %-9d |%-*s|\n", lo, hi, count, barWidth, strings.Repeat("*", stars))
}

// octaveUsecs labels (2^(exp-1), 2^exp] seconds in microseconds.
func octaveUsecs(exp int32) (string, string) {
	return formatUsecs(math.Ldexp(1e6, int(exp)-1)), formatUsecs(math.Ldexp(1e6, int(exp)))
}

// formatUsecs keeps about four significant digits: 0.954, 1.91, 977, 15625.
func formatUsecs(us float64) string {
	switch {
	case us >= 100:
		return strconv.FormatFloat(math.Round(us), 'f', -1, 64)
	case us >= 10:
		return strconv.FormatFloat(us, 'f', 1, 64)
	case us >= 1:
		return strconv.FormatFloat(us, 'f', 2, 64)
	}
	return strconv.FormatFloat(us, 'f', 3, 64)
}

func formatSeconds(s float64) string {
	return time.Duration(s * 1e9).Round(time.Microsecond / 10).String()
}

func attrText(attrs map[string]string) string {
	if len(attrs) == 0 {
		return ""
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + attrs[k]
	}
	return " {" + strings.Join(parts, ", ") + "}"
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
