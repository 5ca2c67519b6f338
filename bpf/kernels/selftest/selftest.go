// Package selftest is the kernel matrix's own hook: a program that counts
// read() calls, attachable by every strategy vigil uses (fentry, kprobe,
// tp_btf, tracepoint). It proves the harness end to end on any kernel
// without depending on the real hooks, and shows which strategies a kernel
// offers at all. It is written in BPF assembly so it needs no generated
// object.
package selftest

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hooks"
)

// Hook is the name the selftest reports under.
const Hook = "selftest"

// Strategies in preference order, as bpf/hooks lists them (the same order
// the read-latency hook uses).
var Strategies = strategiesOf(Hook)

func strategiesOf(point string) []string {
	p, _ := hooks.PointOf(point)
	return p.StrategyNames()
}

// Options says which strategies not to try.
type Options struct {
	Skip map[string]bool
}

// Counter is an attached read() counter.
type Counter struct {
	counts *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
	report attach.Report
}

// Open creates the counter map and attaches with the first strategy that
// works.
func Open(opts Options) (*Counter, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "selftest_count", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("creating selftest map: %w", err)
	}
	c := &Counter{counts: m}
	strategies := make([]attach.Strategy, 0, len(Strategies))
	for _, name := range Strategies {
		strategies = append(strategies, attach.Strategy{Name: name, Try: func() error { return c.try(name) }})
	}
	c.report, err = attach.First(Hook, strategies, opts.Skip)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("attaching selftest: %w", err)
	}
	return c, nil
}

// try loads the program for one strategy and attaches it, closing the
// program again when the attach fails.
func (c *Counter) try(strategy string) error {
	spec := programSpec(strategy, c.counts.FD())
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return fmt.Errorf("loading: %w", err)
	}
	l, err := attachProgram(strategy, prog)
	if err != nil {
		prog.Close()
		return fmt.Errorf("attaching: %w", err)
	}
	c.prog, c.link = prog, l
	return nil
}

func programSpec(strategy string, mapFD int) *ebpf.ProgramSpec {
	spec := &ebpf.ProgramSpec{Name: "selftest_count", License: "GPL", Instructions: countInsns(mapFD)}
	switch strategy {
	case "fentry":
		spec.Type, spec.AttachType, spec.AttachTo = ebpf.Tracing, ebpf.AttachTraceFEntry, "vfs_read"
	case "kprobe":
		spec.Type = ebpf.Kprobe
	case "tp_btf":
		// The raw sys_enter tracepoint fires for every system call; reads
		// are among them, which is all the count needs.
		spec.Type, spec.AttachType, spec.AttachTo = ebpf.Tracing, ebpf.AttachTraceRawTp, "sys_enter"
	case "tracepoint":
		spec.Type = ebpf.TracePoint
	}
	return spec
}

func attachProgram(strategy string, prog *ebpf.Program) (link.Link, error) {
	switch strategy {
	case "fentry", "tp_btf":
		return link.AttachTracing(link.TracingOptions{Program: prog})
	case "kprobe":
		return link.Kprobe("vfs_read", prog, nil)
	case "tracepoint":
		return link.Tracepoint("syscalls", "sys_enter_read", prog, nil)
	}
	return nil, fmt.Errorf("unknown strategy %q", strategy)
}

// countInsns adds one to slot 0 of the counter map and returns 0.
func countInsns(mapFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
}

// Count is how often the program ran so far.
func (c *Counter) Count() (uint64, error) {
	var n uint64
	if err := c.counts.Lookup(uint32(0), &n); err != nil {
		return 0, fmt.Errorf("reading selftest count: %w", err)
	}
	return n, nil
}

// Report says which strategy attached and why better ones did not.
func (c *Counter) Report() attach.Report { return c.report }

// Close detaches the program and frees the map.
func (c *Counter) Close() error {
	var errs []error
	if c.link != nil {
		errs = append(errs, c.link.Close())
	}
	if c.prog != nil {
		errs = append(errs, c.prog.Close())
	}
	errs = append(errs, c.counts.Close())
	return errors.Join(errs...)
}
