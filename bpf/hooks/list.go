package hooks

import "slices"

// Kernel features that moved a strategy's minimum past Minimum.
var (
	taskStorage = Kernel{5, 11} // BPF task storage for tracing programs
	perfLink    = Kernel{5, 15} // BPF links for perf events
	symLookup   = Kernel{5, 16} // syscall programs with bpf_kallsyms_lookup_name
)

func s(name string) Strategy { return Strategy{Name: name, MinKernel: Minimum} }

func since(name string, k Kernel, why string) Strategy {
	return Strategy{Name: name, MinKernel: k, Why: why}
}

// one is a hook that attaches at a single point of the same name.
func one(name string, kind Kind, suite string, strategies ...Strategy) Hook {
	return Hook{Name: name, Kind: kind, Suite: suite, Points: []Point{{Name: name, Strategies: strategies}}}
}

// all is the list, in the order hooks open and print. The strategy orders
// are what each package tries; the minimum kernels are the README's table.
var all = []Hook{
	one("read", Latency, "readlat",
		since(Fentry, taskStorage, "start times in BPF task storage"), s(Kprobe),
		since(TPBTF, taskStorage, "start times in BPF task storage"), s(Tracepoint)),
	one("runqueue", Latency, "runqlat",
		since(TPBTF, taskStorage, "wakeup times in BPF task storage"), s(Tracepoint)),
	{Name: "tcp", Kind: Latency, Suite: "tcplat", Points: []Point{
		{Name: "tcp_connect", Strategies: []Strategy{s(Fentry), s(Kprobe), s(Tracepoint)}},
		{Name: "tcp_rtt", Strategies: []Strategy{s(Fentry), s(Kprobe), s(Tracepoint)}},
		{Name: "tcp_retransmit", Strategies: []Strategy{s(Tracepoint)}},
	}},
	one("block", Latency, "biolat", s(TPBTF), s(Tracepoint)),
	one("profile", Profiler, "cpuprofile",
		since(PerfEventLink, perfLink, "BPF links for perf events"), s(PerfEventIoctl)),
	one("unwind", Profiler, "proftest", s(Tables), s(FramePointer)),
	one("python", Profiler, "proftest", s(PythonFrames), s(PythonOff)),
	one("offcpu", Profiler, "cpuprofile", s(TPBTF), s(Tracepoint)),
	one("ksyms", Profiler, "ksyms",
		since(Snprintf, symLookup, "syscall programs with bpf_kallsyms_lookup_name"), s(Kallsyms)),
	one("selftest", Matrix, "selftest", s(Fentry), s(Kprobe), s(TPBTF), s(Tracepoint)),
}

// All returns every hook, in the order they open and print.
func All() []Hook { return clone(all) }

// OfKind returns the hooks of one kind, in order.
func OfKind(k Kind) []Hook {
	var out []Hook
	for _, h := range all {
		if h.Kind == k {
			out = append(out, h)
		}
	}
	return clone(out)
}

// LatencyNames are the names latency.hooks and --hooks accept, in order;
// also the default list.
func LatencyNames() []string {
	var out []string
	for _, h := range OfKind(Latency) {
		out = append(out, h.Name)
	}
	return out
}

// LatencyStrategies are the strategy names latency.skip_strategies may
// name: every latency hook's, in the order first tried.
func LatencyStrategies() []string {
	var out []string
	for _, h := range OfKind(Latency) {
		for _, p := range h.Points {
			for _, s := range p.Strategies {
				if !slices.Contains(out, s.Name) {
					out = append(out, s.Name)
				}
			}
		}
	}
	return out
}

// Lookup finds a hook by name.
func Lookup(name string) (Hook, bool) {
	for _, h := range all {
		if h.Name == name {
			return clone([]Hook{h})[0], true
		}
	}
	return Hook{}, false
}

// PointOf finds an attach point by name, in whichever hook has it.
func PointOf(name string) (Point, bool) {
	for _, h := range all {
		for _, p := range h.Points {
			if p.Name == name {
				return clone([]Hook{{Points: []Point{p}}})[0].Points[0], true
			}
		}
	}
	return Point{}, false
}

// Points are every hook's attach points, in order.
func Points() []Point {
	var out []Point
	for _, h := range All() {
		out = append(out, h.Points...)
	}
	return out
}

// clone copies hooks deeply enough that callers can't change the list.
func clone(hs []Hook) []Hook {
	out := make([]Hook, len(hs))
	for i, h := range hs {
		out[i] = h
		out[i].Points = make([]Point, len(h.Points))
		for j, p := range h.Points {
			out[i].Points[j] = Point{Name: p.Name, Strategies: slices.Clone(p.Strategies)}
		}
	}
	return out
}
