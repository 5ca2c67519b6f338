package histmap

import (
	"bytes"
	"fmt"
	"maps"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// Attributes of the optional breakdown by process name.
const (
	// AttrProcess carries the process name (the kernel's 15-character comm).
	AttrProcess = "process.executable.name"
	// AttrOverflow marks the series that collects the values of the
	// processes beyond the cardinality cap, as OpenTelemetry's SDKs do.
	AttrOverflow = "otel.metric.overflow"
	// DefaultMaxSeries is the cap when the caller sets none. Each series
	// costs sizeof(Value) (4 KiB) per possible CPU of kernel memory.
	DefaultMaxSeries = 64
	// MaxSeriesLimit bounds the cap a caller may ask for.
	MaxSeriesLimit = 4096
)

// CommKey is the key of a by-process map: struct comm_key in the BPF code.
type CommKey [16]byte

// String is the name up to its first NUL.
func (k CommKey) String() string {
	if i := bytes.IndexByte(k[:], 0); i >= 0 {
		return string(k[:i])
	}
	return string(k[:])
}

// CheckMaxSeries validates a cardinality cap (0 means DefaultMaxSeries).
func CheckMaxSeries(n int) error {
	if n < 0 || n > MaxSeriesLimit {
		return fmt.Errorf("max series %d: must be between 1 and %d (0 for the default, %d)", n, MaxSeriesLimit, DefaultMaxSeries)
	}
	return nil
}

// SetupByProcess prepares the breakdown in spec before load: byVar is the
// program's bool constant switching it on, mapName its per-CPU hash. With
// the breakdown off the hash is shrunk to one entry so it costs nothing.
func SetupByProcess(spec *ebpf.CollectionSpec, byVar, mapName string, on bool, maxSeries int) error {
	if err := CheckMaxSeries(maxSeries); err != nil {
		return err
	}
	if maxSeries == 0 {
		maxSeries = DefaultMaxSeries
	}
	m, ok := spec.Maps[mapName]
	if !ok {
		return fmt.Errorf("object has no map %s", mapName)
	}
	m.MaxEntries = 1
	if on {
		m.MaxEntries = uint32(maxSeries)
	}
	return setVar(spec, byVar, on)
}

// ReadByProcess reads a by-process map into one series per name, each
// carrying base plus AttrProcess, sorted by name. overflow holds the values
// of names beyond the cap; its series (base plus AttrOverflow=true) is
// added only when it has values.
func ReadByProcess(m *ebpf.Map, l *hist.Layout, overflow hist.Histogram, base map[string]string) ([]hist.Series, error) {
	all, err := ReadAll[CommKey](m, l)
	if err != nil {
		return nil, err
	}
	out := make([]hist.Series, 0, len(all)+1)
	for k, h := range all {
		attrs := maps.Clone(base)
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs[AttrProcess] = k.String()
		out = append(out, hist.Series{Attrs: attrs, Hist: h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attrs[AttrProcess] < out[j].Attrs[AttrProcess] })
	if overflow.Count > 0 {
		attrs := maps.Clone(base)
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs[AttrOverflow] = "true"
		out = append(out, hist.Series{Attrs: attrs, Hist: overflow})
	}
	return out, nil
}
