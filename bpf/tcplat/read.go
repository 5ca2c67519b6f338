package tcplat

import (
	"fmt"

	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
)

// Series of tcp_hists and slots of tcp_counters (tcplat.bpf.c).
const (
	histConnect uint32 = 0
	histRTT     uint32 = 1

	cntRetransmit       uint32 = 0
	cntConnectUntracked uint32 = 1
	cntConnectFailed    uint32 = 2
)

// Metric names.
const (
	MetricConnect     = "vigil.tcp.connect.duration"
	MetricRTT         = "vigil.tcp.rtt"
	MetricRetransmits = "vigil.tcp.retransmits"
	MetricUnmeasured  = "vigil.tcp.connect.unmeasured"
)

// Read returns the metrics of the attached hooks, cumulative since attach.
func (p *Program) Read() ([]hist.Reading, error) {
	var out []hist.Reading
	if p.Attached(HookConnect) {
		rs, err := p.readConnect()
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	if p.Attached(HookRTT) {
		h, err := histmap.Lookup(p.maps.Hists, p.layout, histRTT)
		if err != nil {
			return nil, err
		}
		out = append(out, hist.Reading{
			Name: MetricRTT, Unit: "s",
			Description: "Smoothed round-trip time of TCP connections, sampled on each received segment.",
			Histograms:  []hist.Series{{Attrs: map[string]string{}, Hist: h}},
		})
	}
	if p.Attached(HookRetransmit) {
		n, err := p.counter(cntRetransmit)
		if err != nil {
			return nil, err
		}
		out = append(out, hist.Reading{
			Name: MetricRetransmits, Unit: "{segment}",
			Description: "TCP segments retransmitted.",
			Counters:    []hist.CounterSeries{{Attrs: map[string]string{}, Value: n}},
		})
	}
	return out, nil
}

func (p *Program) readConnect() ([]hist.Reading, error) {
	h, err := histmap.Lookup(p.maps.Hists, p.layout, histConnect)
	if err != nil {
		return nil, err
	}
	untracked, err := p.counter(cntConnectUntracked)
	if err != nil {
		return nil, err
	}
	failed, err := p.counter(cntConnectFailed)
	if err != nil {
		return nil, err
	}
	return []hist.Reading{{
		Name: MetricConnect, Unit: "s",
		Description: "Active TCP connect latency, from connect to the SYN-ACK that establishes the connection.",
		Histograms:  []hist.Series{{Attrs: map[string]string{}, Hist: h}},
	}, {
		Name: MetricUnmeasured, Unit: "{connect}",
		Description: "Active TCP connects not in the latency histogram: failed (refused, reset or closed before established) or untracked (start not seen).",
		Counters: []hist.CounterSeries{
			{Attrs: map[string]string{hist.AttrReason: "failed"}, Value: failed},
			{Attrs: map[string]string{hist.AttrReason: "untracked"}, Value: untracked},
		},
	}}, nil
}

// counter sums one slot of the per-CPU counters.
func (p *Program) counter(slot uint32) (uint64, error) {
	var perCPU []uint64
	if err := p.maps.Counters.Lookup(slot, &perCPU); err != nil {
		return 0, fmt.Errorf("reading tcp counter %d: %w", slot, err)
	}
	var sum uint64
	for _, v := range perCPU {
		sum += v
	}
	return sum, nil
}
