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
	name string
	try  func(spec *ebpf.CollectionSpec, shared map[string]*ebpf.Map) (*progset.Set, error)
}

type hook struct {
	name       string
	strategies []strategy
}

func hooks() []hook {
	return []hook{
		{HookConnect, []strategy{
			{StrategyFentry, load(
				progset.Prog{Name: "connect_v4_fentry", Kind: progset.Fentry},
				progset.Prog{Name: "connect_v6_fentry", Kind: progset.Fentry, Optional: true},
				progset.Prog{Name: "state_process_fentry", Kind: progset.Fentry})},
			{StrategyKprobe, kprobes(
				progset.Prog{Name: "connect_v4_kprobe", Kind: progset.Kprobe, Target: "tcp_v4_connect"},
				progset.Prog{Name: "connect_v6_kprobe", Kind: progset.Kprobe, Target: "tcp_v6_connect", Optional: true},
				progset.Prog{Name: "state_process_kprobe", Kind: progset.Kprobe, Target: "tcp_rcv_state_process"})},
			{StrategyTracepoint, withFormat(checkSetStateLayout, progset.Prog{
				Name: "set_state_tp", Kind: progset.Tracepoint, Target: "sock:inet_sock_set_state"})},
		}},
		{HookRTT, []strategy{
			{StrategyFentry, load(progset.Prog{Name: "rtt_fentry", Kind: progset.Fentry})},
			{StrategyKprobe, kprobes(progset.Prog{Name: "rtt_kprobe", Kind: progset.Kprobe, Target: "tcp_rcv_established"})},
			{StrategyTracepoint, withFormat(setProbeOffsets, progset.Prog{
				Name: "rtt_tp", Kind: progset.Tracepoint, Target: "tcp:tcp_probe"})},
		}},
		{HookRetransmit, []strategy{
			{StrategyTracepoint, withFormat(setRetransmitOffsets, progset.Prog{
				Name: "retransmit_tp", Kind: progset.Tracepoint, Target: "tcp:tcp_retransmit_skb"})},
		}},
	}
}

func load(progs ...progset.Prog) func(*ebpf.CollectionSpec, map[string]*ebpf.Map) (*progset.Set, error) {
	return func(spec *ebpf.CollectionSpec, shared map[string]*ebpf.Map) (*progset.Set, error) {
		return progset.Load(spec, progs, shared)
	}
}

// kprobes reads arguments from pt_regs through CO-RE flavors that exist for
// x86-64 and arm64 only (see kprobe_arg in tcplat.bpf.c).
func kprobes(progs ...progset.Prog) func(*ebpf.CollectionSpec, map[string]*ebpf.Map) (*progset.Set, error) {
	return func(spec *ebpf.CollectionSpec, shared map[string]*ebpf.Map) (*progset.Set, error) {
		if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
			return nil, fmt.Errorf("kprobe argument access is implemented for amd64 and arm64, not %s", runtime.GOARCH)
		}
		return progset.Load(spec, progs, shared)
	}
}

// withFormat reads the tracepoint's format file and lets set adapt the spec
// (or refuse the layout) before the program is loaded.
func withFormat(set func(*ebpf.CollectionSpec, *tracefs.Format) error, prog progset.Prog) func(*ebpf.CollectionSpec, map[string]*ebpf.Map) (*progset.Set, error) {
	return func(spec *ebpf.CollectionSpec, shared map[string]*ebpf.Map) (*progset.Set, error) {
		group, name, _ := strings.Cut(prog.Target, ":")
		f, err := tracefs.ReadFormat(group, name)
		if err != nil {
			return nil, err
		}
		if err := set(spec, f); err != nil {
			return nil, fmt.Errorf("tracepoint %s: %w", prog.Target, err)
		}
		return progset.Load(spec, []progset.Prog{prog}, shared)
	}
}
