package hooks

import (
	"fmt"
	"slices"
)

// Strategy names. A name means the same kind of attachment in every hook,
// so latency.skip_strategies can turn one off everywhere.
const (
	Fentry         = "fentry"           // fentry/fexit through a BPF trampoline
	Kprobe         = "kprobe"           // kprobe/kretprobe; needs CONFIG_KPROBES
	TPBTF          = "tp_btf"           // BTF-typed raw tracepoint
	Tracepoint     = "tracepoint"       // classic tracepoint through tracefs
	PerfEventLink  = "perf_event_link"  // perf event with a BPF link
	PerfEventIoctl = "perf_event_ioctl" // perf event attached with the ioctl
	Tables         = "tables"           // user stacks walked with .eh_frame tables
	FramePointer   = "frame_pointer"    // user stacks walked with frame pointers
	PythonFrames   = "frame_list"       // CPython's frame list walked in BPF
	PythonOff      = "off"              // Python left to its native frames
	Snprintf       = "snprintf"         // kernel addresses named by a BPF program (bpf_snprintf "%pS")
	Kallsyms       = "kallsyms"         // kernel addresses named from /proc/kallsyms
)

// Kind says who turns a hook on.
type Kind int

const (
	// Latency hooks are named in latency.hooks and --hooks.
	Latency Kind = iota
	// Profiler hooks come with the CPU profiler (profiler.enabled).
	Profiler
	// Matrix hooks exist only to test the kernel matrix itself.
	Matrix
)

// Kernel is a Linux release, major and minor.
type Kernel struct{ Major, Minor int }

func (k Kernel) String() string { return fmt.Sprintf("%d.%d", k.Major, k.Minor) }

// Before reports whether k is an older release than o.
func (k Kernel) Before(o Kernel) bool {
	return k.Major < o.Major || k.Major == o.Major && k.Minor < o.Minor
}

// Minimum is the oldest kernel vigil supports (BTF, CAP_BPF, ring buffers).
var Minimum = Kernel{5, 10}

// Strategy is one way to attach, and the oldest kernel on which it works.
type Strategy struct {
	Name      string
	MinKernel Kernel
	Why       string // what the kernel needs from MinKernel on, when not Minimum
}

// Point is one attachment reported on its own (vigil check's row, the
// matrix's expectation). Most hooks are one point; tcp is three.
type Point struct {
	Name       string
	Strategies []Strategy // in the order tried: best first
}

// Hook is one feature that attaches to the kernel.
type Hook struct {
	Name   string // in latency.hooks and --hooks; the point's name when there is one
	Kind   Kind
	Suite  string // the package whose tests cover it (the matrix runs them)
	Points []Point
}

// StrategyNames are the point's strategies in the order tried.
func (p Point) StrategyNames() []string {
	out := make([]string, len(p.Strategies))
	for i, s := range p.Strategies {
		out[i] = s.Name
	}
	return out
}

// Strategy looks up one of the point's strategies.
func (p Point) Strategy(name string) (Strategy, bool) {
	i := slices.IndexFunc(p.Strategies, func(s Strategy) bool { return s.Name == name })
	if i < 0 {
		return Strategy{}, false
	}
	return p.Strategies[i], true
}
