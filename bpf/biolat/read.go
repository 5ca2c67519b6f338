package biolat

import (
	"errors"

	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
)

// MetricDuration is the metric name; AttrDirection its one attribute.
const (
	MetricDuration = "vigil.block.io.duration"
	AttrDirection  = "disk.io.direction"
)

// Series of block_hists (biolat.bpf.c), in order.
var directions = []string{"read", "write"}

// Read returns the latency histograms, one per direction, cumulative since
// attach.
func (p *Program) Read() ([]hist.Reading, error) {
	if p.Closed() {
		return nil, errors.New("reading biolat: program is closed")
	}
	r := hist.Reading{
		Name: MetricDuration, Unit: "s",
		Description: "Block I/O latency, from issue to the device driver to completion, of reads and writes.",
	}
	for i, dir := range directions {
		h, err := histmap.Lookup(p.maps.Hists, p.layout, uint32(i))
		if err != nil {
			return nil, err
		}
		r.Histograms = append(r.Histograms, hist.Series{Attrs: map[string]string{AttrDirection: dir}, Hist: h})
	}
	return []hist.Reading{r}, nil
}
