package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/exporter"
)

// jsonInterval is one line of --output json: what happened in one interval.
type jsonInterval struct {
	Time            time.Time    `json:"time"`
	IntervalSeconds float64      `json:"interval_seconds"`
	Metrics         []jsonMetric `json:"metrics"`
}

// jsonMetric is one series. Histograms carry the kernel's exponential
// buckets (scale, offset, counts: bucket offset+i holds the values in
// (2^((offset+i)/2^scale), 2^((offset+i+1)/2^scale)] seconds) and the same
// data merged into powers of two; counters carry value.
type jsonMetric struct {
	Name       string            `json:"name"`
	Unit       string            `json:"unit"`
	Attributes map[string]string `json:"attributes"`
	Value      *uint64           `json:"value,omitempty"`
	Count      *uint64           `json:"count,omitempty"`
	SumSeconds *float64          `json:"sum_seconds,omitempty"`
	ZeroCount  *uint64           `json:"zero_count,omitempty"`
	Scale      *int32            `json:"scale,omitempty"`
	Offset     *int32            `json:"offset,omitempty"`
	Counts     []uint64          `json:"counts,omitempty"`
	Octaves    []jsonOctave      `json:"power_of_two_buckets,omitempty"`
}

// jsonOctave counts the values in (le_seconds/2, le_seconds].
type jsonOctave struct {
	LeSeconds float64 `json:"le_seconds"`
	Count     uint64  `json:"count"`
}

func writeJSON(w io.Writer, now time.Time, interval time.Duration, readings []hist.Reading) error {
	line := jsonInterval{Time: now.UTC(), IntervalSeconds: interval.Seconds(), Metrics: []jsonMetric{}}
	for _, r := range readings {
		for _, s := range r.Histograms {
			m, err := jsonHistogram(r, s)
			if err != nil {
				return err
			}
			line.Metrics = append(line.Metrics, m)
		}
		for _, c := range r.Counters {
			v := c.Value
			line.Metrics = append(line.Metrics, jsonMetric{Name: r.Name, Unit: r.Unit, Attributes: nonNil(c.Attrs), Value: &v})
		}
	}
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("encoding json: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func jsonHistogram(r hist.Reading, s hist.Series) (jsonMetric, error) {
	h := s.Hist
	octaves, err := exporter.Octaves(h)
	if err != nil {
		return jsonMetric{}, fmt.Errorf("%s: %w", r.Name, err)
	}
	lo, hi := hist.NonEmpty(h.Counts)
	count, zero, scale, offset := h.Count, h.ZeroCount, h.Scale, h.Offset+int32(lo)
	sum := float64(h.SumNs) / 1e9
	m := jsonMetric{Name: r.Name, Unit: r.Unit, Attributes: nonNil(s.Attrs), Count: &count, SumSeconds: &sum,
		ZeroCount: &zero, Scale: &scale, Offset: &offset, Counts: h.Counts[lo:hi]}
	for _, o := range octaves {
		m.Octaves = append(m.Octaves, jsonOctave{LeSeconds: math.Ldexp(1, int(o.Exp)), Count: o.Count})
	}
	return m, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
