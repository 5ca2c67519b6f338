package tcplat

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// Strategy names, for Options.Skip.
const (
	StrategyFentry     = "fentry"
	StrategyKprobe     = "kprobe"
	StrategyTracepoint = "tracepoint"
)

// tcpMaps are the maps every hook's strategies write.
type tcpMaps struct {
	Hists    *ebpf.Map `ebpf:"tcp_hists"`    // per-CPU hist_value, series HIST_CONNECT and HIST_RTT
	Counters *ebpf.Map `ebpf:"tcp_counters"` // per-CPU counters, CNT_* slots
}

// The programs of each strategy. A connect is timed from tcp_v4_connect (or
// tcp_v6_connect) to the state change that establishes it; the IPv4 program
// and the state program share connect_start, which the IPv6 program, loaded
// on its own because a kernel without IPv6 lacks its target, reuses.
type (
	connectFentryProgs struct {
		V4    *ebpf.Program `ebpf:"connect_v4_fentry"`
		State *ebpf.Program `ebpf:"state_process_fentry"`
		Start *ebpf.Map     `ebpf:"connect_start"`
	}
	connectV6FentryProgs struct {
		V6 *ebpf.Program `ebpf:"connect_v6_fentry"`
	}
	connectKprobeProgs struct {
		V4    *ebpf.Program `ebpf:"connect_v4_kprobe"`
		State *ebpf.Program `ebpf:"state_process_kprobe"`
		Start *ebpf.Map     `ebpf:"connect_start"`
	}
	connectV6KprobeProgs struct {
		V6 *ebpf.Program `ebpf:"connect_v6_kprobe"`
	}
	setStateTPProgs struct {
		SetState *ebpf.Program `ebpf:"set_state_tp"`
	}
	rttFentryProgs struct {
		RTT *ebpf.Program `ebpf:"rtt_fentry"`
	}
	rttKprobeProgs struct {
		RTT *ebpf.Program `ebpf:"rtt_kprobe"`
	}
	rttTPProgs struct {
		RTT *ebpf.Program `ebpf:"rtt_tp"`
	}
	retransmitTPProgs struct {
		Retransmit *ebpf.Program `ebpf:"retransmit_tp"`
	}
)

type strategy struct {
	name string
	// tracepoint (group:name), when set, is the record whose layout format
	// checks or adapts the spec to, read from tracefs before loading.
	tracepoint string
	format     func(*ebpf.CollectionSpec, *tracefs.Format) error
	// try loads and attaches the strategy's programs through b.
	try func(b *latency.Base, spec *ebpf.CollectionSpec) error
}

type hook struct {
	name       string
	strategies []strategy
}

func hooks() []hook {
	return []hook{
		{HookConnect, []strategy{
			{name: StrategyFentry, try: connectFentry},
			{name: StrategyKprobe, try: connectKprobe},
			{name: StrategyTracepoint, tracepoint: "sock:inet_sock_set_state", format: checkSetStateLayout,
				try: tracepoint(HookConnect, "sock:inet_sock_set_state", func() any { return new(setStateTPProgs) })},
		}},
		{HookRTT, []strategy{
			{name: StrategyFentry, try: tracing(HookRTT, func() any { return new(rttFentryProgs) })},
			{name: StrategyKprobe, try: kprobe(HookRTT, "tcp_rcv_established", func() any { return new(rttKprobeProgs) })},
			{name: StrategyTracepoint, tracepoint: "tcp:tcp_probe", format: setProbeOffsets,
				try: tracepoint(HookRTT, "tcp:tcp_probe", func() any { return new(rttTPProgs) })},
		}},
		{HookRetransmit, []strategy{
			{name: StrategyTracepoint, tracepoint: "tcp:tcp_retransmit_skb", format: setRetransmitOffsets,
				try: tracepoint(HookRetransmit, "tcp:tcp_retransmit_skb", func() any { return new(retransmitTPProgs) })},
		}},
	}
}

func (s strategy) load(b *latency.Base, spec *ebpf.CollectionSpec) error {
	// kprobe_arg in tcplat.bpf.c knows the pt_regs of these two only.
	if s.name == StrategyKprobe && runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return fmt.Errorf("kprobe argument access is implemented for amd64 and arm64, not %s", runtime.GOARCH)
	}
	if s.format != nil {
		group, name, _ := strings.Cut(s.tracepoint, ":")
		f, err := tracefs.ReadFormat(group, name)
		if err != nil {
			return err
		}
		if err := s.format(spec, f); err != nil {
			return fmt.Errorf("tracepoint %s: %w", s.tracepoint, err)
		}
	}
	return s.try(b, spec)
}

// tracing loads the fentry programs of objs and attaches them.
func tracing(point string, objs func() any) func(*latency.Base, *ebpf.CollectionSpec) error {
	return func(b *latency.Base, spec *ebpf.CollectionSpec) error {
		o := objs()
		return b.LoadAttach(spec, point, o, func() ([]link.Link, error) { return latency.AttachTracing(o) })
	}
}

// kprobe loads the one program of objs and attaches it to fn's entry.
func kprobe(point, fn string, objs func() any) func(*latency.Base, *ebpf.CollectionSpec) error {
	return func(b *latency.Base, spec *ebpf.CollectionSpec) error {
		o := objs()
		return b.LoadAttach(spec, point, o, func() ([]link.Link, error) {
			return latency.AttachKprobes(latency.Kprobe{Fn: fn, Prog: latency.Programs(o)[0].Prog})
		})
	}
}

// tracepoint loads the one program of objs and attaches it to target
// (group:name).
func tracepoint(point, target string, objs func() any) func(*latency.Base, *ebpf.CollectionSpec) error {
	group, name, _ := strings.Cut(target, ":")
	return func(b *latency.Base, spec *ebpf.CollectionSpec) error {
		o := objs()
		return b.LoadAttach(spec, point, o, func() ([]link.Link, error) {
			return latency.AttachTracepoints(latency.Tracepoint{Group: group, Name: name, Prog: latency.Programs(o)[0].Prog})
		})
	}
}

func connectFentry(b *latency.Base, spec *ebpf.CollectionSpec) error {
	objs, v6 := new(connectFentryProgs), new(connectV6FentryProgs)
	if err := b.LoadAttach(spec, HookConnect, objs, func() ([]link.Link, error) { return latency.AttachTracing(objs) }); err != nil {
		return err
	}
	partly(StrategyFentry, b.LoadAttach(spec, HookConnect, v6, func() ([]link.Link, error) { return latency.AttachTracing(v6) }, objs))
	return nil
}

func connectKprobe(b *latency.Base, spec *ebpf.CollectionSpec) error {
	objs, v6 := new(connectKprobeProgs), new(connectV6KprobeProgs)
	err := b.LoadAttach(spec, HookConnect, objs, func() ([]link.Link, error) {
		return latency.AttachKprobes(
			latency.Kprobe{Fn: "tcp_v4_connect", Prog: objs.V4},
			latency.Kprobe{Fn: "tcp_rcv_state_process", Prog: objs.State})
	})
	if err != nil {
		return err
	}
	partly(StrategyKprobe, b.LoadAttach(spec, HookConnect, v6, func() ([]link.Link, error) {
		return latency.AttachKprobes(latency.Kprobe{Fn: "tcp_v6_connect", Prog: v6.V6})
	}, objs))
	return nil
}

// partly logs the failure of the IPv6 half of a connect strategy: the
// strategy still times IPv4 connects.
func partly(strategy string, err error) {
	if err != nil {
		logger().Info("tcp hook attached partly", "hook", HookConnect, "strategy", strategy, "reason", err)
	}
}
