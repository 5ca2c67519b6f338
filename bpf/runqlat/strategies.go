package runqlat

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// strategy is one way to see scheduling events.
type strategy struct {
	name   string
	progs  []string
	attach func(map[string]*ebpf.Program) ([]link.Link, error)
}

// strategies, best first: tp_btf hands the programs typed task pointers
// (per-task storage, no pid hash); classic tracepoints need no BTF.
var strategies = []strategy{
	{"tp_btf", []string{"rq_wakeup", "rq_wakeup_new", "rq_switch"}, attachTracing},
	{"tracepoint", []string{"rq_tp_wakeup", "rq_tp_wakeup_new", "rq_tp_switch"}, attachTracepoints},
}

func attachTracing(progs map[string]*ebpf.Program) ([]link.Link, error) {
	var links []link.Link
	for _, n := range []string{"rq_wakeup", "rq_wakeup_new", "rq_switch"} {
		l, err := link.AttachTracing(link.TracingOptions{Program: progs[n]})
		if err != nil {
			closeLinks(links)
			return nil, fmt.Errorf("attaching %s: %w", n, err)
		}
		links = append(links, l)
	}
	return links, nil
}

func attachTracepoints(progs map[string]*ebpf.Program) ([]link.Link, error) {
	if _, err := tracefs.Ensure(); err != nil {
		return nil, err
	}
	var links []link.Link
	for _, t := range []struct{ event, prog string }{
		{"sched_wakeup", "rq_tp_wakeup"}, {"sched_wakeup_new", "rq_tp_wakeup_new"}, {"sched_switch", "rq_tp_switch"},
	} {
		l, err := link.Tracepoint("sched", t.event, progs[t.prog], nil)
		if err != nil {
			closeLinks(links)
			return nil, fmt.Errorf("attaching tracepoint sched:%s: %w", t.event, err)
		}
		links = append(links, l)
	}
	return links, nil
}

func closeLinks(links []link.Link) {
	for _, l := range links {
		_ = l.Close()
	}
}
