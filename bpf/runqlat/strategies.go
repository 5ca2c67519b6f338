package runqlat

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
)

// rqMaps are the maps every strategy writes.
type rqMaps struct {
	Hist   *ebpf.Map `ebpf:"rq_hist"`      // everything, or the overflow series when by process
	ByComm *ebpf.Map `ebpf:"rq_hist_comm"` // the series by process name
}

// The programs of each strategy.
type (
	btfProgs struct {
		Wakeup    *ebpf.Program `ebpf:"rq_wakeup"`
		WakeupNew *ebpf.Program `ebpf:"rq_wakeup_new"`
		Switch    *ebpf.Program `ebpf:"rq_switch"`
	}
	tpProgs struct {
		Wakeup    *ebpf.Program `ebpf:"rq_tp_wakeup"`
		WakeupNew *ebpf.Program `ebpf:"rq_tp_wakeup_new"`
		Switch    *ebpf.Program `ebpf:"rq_tp_switch"`
	}
)

// strategy is one way to see scheduling events.
type strategy struct {
	name string
	// loadAttach loads and attaches the strategy's programs through b.
	loadAttach func(b *latency.Base, spec *ebpf.CollectionSpec) error
}

// strategies, best first: tp_btf hands the programs typed task pointers
// (per-task storage, no pid hash); classic tracepoints need no BTF.
var strategies = []strategy{
	{"tp_btf", func(b *latency.Base, spec *ebpf.CollectionSpec) error {
		objs := new(btfProgs)
		return b.LoadAttach(spec, hookName, objs, func() ([]link.Link, error) { return latency.AttachTracing(objs) })
	}},
	{"tracepoint", func(b *latency.Base, spec *ebpf.CollectionSpec) error {
		objs := new(tpProgs)
		return b.LoadAttach(spec, hookName, objs, func() ([]link.Link, error) { return attachTracepoints(objs) })
	}},
}

func attachTracepoints(o *tpProgs) ([]link.Link, error) {
	return latency.AttachTracepoints(
		latency.Tracepoint{Group: "sched", Name: "sched_wakeup", Prog: o.Wakeup},
		latency.Tracepoint{Group: "sched", Name: "sched_wakeup_new", Prog: o.WakeupNew},
		latency.Tracepoint{Group: "sched", Name: "sched_switch", Prog: o.Switch})
}
