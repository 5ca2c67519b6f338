package tcplat

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/internal/progset"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// Strategy names, for Options.Skip.
const (
	StrategyFentry     = "fentry"
	StrategyKprobe     = "kprobe"
	StrategyTracepoint = "tracepoint"
)

type strategy struct {
	name  string
	progs []progset.Prog
	// format checks or adapts the spec to the record layout of the
	// tracepoint of progs[0], read from tracefs before loading.
	format func(*ebpf.CollectionSpec, *tracefs.Format) error
}

type hook struct {
	name       string
	strategies []strategy
}

func hooks() []hook {
	return []hook{
		{HookConnect, []strategy{
			{name: StrategyFentry, progs: []progset.Prog{
				{Name: "connect_v4_fentry", Kind: progset.Fentry},
				{Name: "connect_v6_fentry", Kind: progset.Fentry, Optional: true},
				{Name: "state_process_fentry", Kind: progset.Fentry}}},
			{name: StrategyKprobe, progs: []progset.Prog{
				{Name: "connect_v4_kprobe", Kind: progset.Kprobe, Target: "tcp_v4_connect"},
				{Name: "connect_v6_kprobe", Kind: progset.Kprobe, Target: "tcp_v6_connect", Optional: true},
				{Name: "state_process_kprobe", Kind: progset.Kprobe, Target: "tcp_rcv_state_process"}}},
			{name: StrategyTracepoint, format: checkSetStateLayout, progs: []progset.Prog{
				{Name: "set_state_tp", Kind: progset.Tracepoint, Target: "sock:inet_sock_set_state"}}},
		}},
		{HookRTT, []strategy{
			{name: StrategyFentry, progs: []progset.Prog{{Name: "rtt_fentry", Kind: progset.Fentry}}},
			{name: StrategyKprobe, progs: []progset.Prog{
				{Name: "rtt_kprobe", Kind: progset.Kprobe, Target: "tcp_rcv_established"}}},
			{name: StrategyTracepoint, format: setProbeOffsets, progs: []progset.Prog{
				{Name: "rtt_tp", Kind: progset.Tracepoint, Target: "tcp:tcp_probe"}}},
		}},
		{HookRetransmit, []strategy{
			{name: StrategyTracepoint, format: setRetransmitOffsets, progs: []progset.Prog{
				{Name: "retransmit_tp", Kind: progset.Tracepoint, Target: "tcp:tcp_retransmit_skb"}}},
		}},
	}
}

func (s strategy) try(spec *ebpf.CollectionSpec, shared map[string]*ebpf.Map) (*progset.Set, error) {
	// kprobe_arg in tcplat.bpf.c knows the pt_regs of these two only.
	if s.name == StrategyKprobe && runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return nil, fmt.Errorf("kprobe argument access is implemented for amd64 and arm64, not %s", runtime.GOARCH)
	}
	if s.format != nil {
		target := s.progs[0].Target
		group, name, _ := strings.Cut(target, ":")
		f, err := tracefs.ReadFormat(group, name)
		if err != nil {
			return nil, err
		}
		if err := s.format(spec, f); err != nil {
			return nil, fmt.Errorf("tracepoint %s: %w", target, err)
		}
	}
	return progset.Load(spec, s.progs, shared)
}
