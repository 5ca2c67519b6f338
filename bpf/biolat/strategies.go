package biolat

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// Strategy names, for Options.Skip.
const (
	StrategyTPBTF      = "tp_btf"
	StrategyTracepoint = "tracepoint"
)

// blockMaps are the maps both strategies write.
type blockMaps struct {
	Hists *ebpf.Map `ebpf:"block_hists"` // per-CPU hist_value, series DIR_READ and DIR_WRITE
}

// The programs of each strategy. block_rq_issue's tp_btf program comes in
// two forms, for the kernels with and without the request queue argument.
type (
	btfProgs struct {
		Issue    *ebpf.Program `ebpf:"issue_btf"`
		Complete *ebpf.Program `ebpf:"complete_btf"`
	}
	btfQueueProgs struct {
		Issue    *ebpf.Program `ebpf:"issue_btf_q"`
		Complete *ebpf.Program `ebpf:"complete_btf"`
	}
	tpProgs struct {
		Issue    *ebpf.Program `ebpf:"issue_tp"`
		Complete *ebpf.Program `ebpf:"complete_tp"`
	}
)

type strategy struct {
	name string
	// try loads and attaches the programs for this kernel through b (or
	// says why none fit).
	try func(b *latency.Base, spec *ebpf.CollectionSpec) error
}

func strategyList() []strategy {
	return []strategy{
		{StrategyTPBTF, tryBTF},
		{StrategyTracepoint, tryTracepoint},
	}
}

// tryBTF picks the block_rq_issue program matching the kernel's tracepoint
// arguments: the request queue argument was dropped in 5.11, and a program
// reading the wrong argument would read a queue as a request.
func tryBTF(b *latency.Base, spec *ebpf.CollectionSpec) error {
	queueArg, err := issueHasQueue()
	if err != nil {
		return err
	}
	var objs any = new(btfProgs)
	if queueArg {
		objs = new(btfQueueProgs)
	}
	return b.LoadAttach(spec, Hook, objs, func() ([]link.Link, error) { return latency.AttachTracing(objs) })
}

// issueHasQueue reads from the kernel's BTF whether block_rq_issue still
// passes the request queue before the request.
func issueHasQueue() (bool, error) {
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return false, fmt.Errorf("kernel BTF: %w", err)
	}
	issue, err := requestArg(kernel, "block_rq_issue")
	if err != nil {
		return false, err
	}
	complete, err := requestArg(kernel, "block_rq_complete")
	if err != nil {
		return false, err
	}
	if issue > 1 || complete != 0 {
		return false, fmt.Errorf("unknown tracepoint arguments: request is argument %d of block_rq_issue, %d of block_rq_complete", issue, complete)
	}
	return issue == 1, nil
}

// requestArg returns the index of the struct request * argument of a raw
// tracepoint, from the kernel's btf_trace_<name> typedef.
func requestArg(kernel *btf.Spec, tp string) (int, error) {
	var td *btf.Typedef
	if err := kernel.TypeByName("btf_trace_"+tp, &td); err != nil {
		return 0, fmt.Errorf("tracepoint %s in kernel BTF: %w", tp, err)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return 0, fmt.Errorf("btf_trace_%s is not a function pointer", tp)
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok || len(proto.Params) < 2 {
		return 0, fmt.Errorf("btf_trace_%s is not a tracepoint prototype", tp)
	}
	// Params[0] is the tracepoint's private data, not an argument.
	for i, p := range proto.Params[1:] {
		if isPtrTo(p.Type, "request") {
			return i, nil
		}
	}
	return 0, fmt.Errorf("tracepoint %s has no struct request argument", tp)
}

func isPtrTo(t btf.Type, name string) bool {
	ptr, ok := btf.UnderlyingType(t).(*btf.Pointer)
	if !ok {
		return false
	}
	s, ok := btf.UnderlyingType(ptr.Target).(*btf.Struct)
	return ok && s.Name == name
}

// tryTracepoint points the programs at the fields of this kernel's
// block_rq_issue and block_rq_complete records, then loads and attaches
// them.
func tryTracepoint(b *latency.Base, spec *ebpf.CollectionSpec) error {
	for _, tp := range []struct{ name, prefix string }{
		{"block_rq_issue", "issue"}, {"block_rq_complete", "complete"},
	} {
		f, err := tracefs.ReadFormat("block", tp.name)
		if err != nil {
			return err
		}
		if err := setOffsets(spec, f, tp.prefix); err != nil {
			return fmt.Errorf("tracepoint block:%s: %w", tp.name, err)
		}
	}
	objs := new(tpProgs)
	return b.LoadAttach(spec, Hook, objs, func() ([]link.Link, error) {
		return latency.AttachTracepoints(
			latency.Tracepoint{Group: "block", Name: "block_rq_issue", Prog: objs.Issue},
			latency.Tracepoint{Group: "block", Name: "block_rq_complete", Prog: objs.Complete})
	})
}

// setOffsets checks that dev and sector start the record where struct
// block_rq_head (biolat.bpf.c) reads them, and sets <prefix>_rwbs_off to
// where this kernel keeps rwbs.
func setOffsets(spec *ebpf.CollectionSpec, f *tracefs.Format, prefix string) error {
	for _, w := range []struct {
		field        string
		offset, size uint32
	}{{"dev", 8, 4}, {"sector", 16, 8}} {
		got, err := f.Field(w.field)
		if err != nil {
			return err
		}
		if got.Offset != w.offset || got.Size != w.size {
			return fmt.Errorf("field %s at offset %d size %d, the program expects offset %d size %d",
				w.field, got.Offset, got.Size, w.offset, w.size)
		}
	}
	rwbs, err := f.Field("rwbs")
	if err != nil {
		return err
	}
	if rwbs.Size < 2 {
		return fmt.Errorf("field rwbs has size %d, the program reads 2 bytes", rwbs.Size)
	}
	name := prefix + "_rwbs_off"
	v := spec.Variables[name]
	if v == nil {
		return errors.New("object has no variable " + name)
	}
	if err := v.Set(rwbs.Offset); err != nil {
		return fmt.Errorf("setting %s: %w", name, err)
	}
	return nil
}
