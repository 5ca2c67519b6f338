package readlat

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
)

// readMaps are the maps every strategy writes.
type readMaps struct {
	Hist   *ebpf.Map `ebpf:"read_hist"`      // everything, or the overflow series when by process
	ByComm *ebpf.Map `ebpf:"read_hist_comm"` // the series by process name
}

// The programs of each strategy, an entry and an exit in that order, and for
// kprobes and tracepoints the _tid twins that keep start times in a hash.
type (
	fentryProgs struct {
		Enter *ebpf.Program `ebpf:"read_fentry"`
		Exit  *ebpf.Program `ebpf:"read_fexit"`
	}
	kprobeProgs struct {
		Enter *ebpf.Program `ebpf:"read_kprobe"`
		Exit  *ebpf.Program `ebpf:"read_kretprobe"`
	}
	kprobeTidProgs struct {
		Enter *ebpf.Program `ebpf:"read_kprobe_tid"`
		Exit  *ebpf.Program `ebpf:"read_kretprobe_tid"`
	}
	sysProgs struct {
		Enter *ebpf.Program `ebpf:"read_sys_enter"`
		Exit  *ebpf.Program `ebpf:"read_sys_exit"`
	}
	tpProgs struct {
		Enter *ebpf.Program `ebpf:"read_tp_enter"`
		Exit  *ebpf.Program `ebpf:"read_tp_exit"`
	}
	tpTidProgs struct {
		Enter *ebpf.Program `ebpf:"read_tp_enter_tid"`
		Exit  *ebpf.Program `ebpf:"read_tp_exit_tid"`
	}
)

// pair is a strategy's programs struct: its entry program, then its exit.
type pair = any

// enterExit returns the two programs of a loaded pair.
func enterExit(objs pair) (enter, exit *ebpf.Program) {
	ps := latency.Programs(objs)
	return ps[0].Prog, ps[1].Prog
}

// strategy is one way to see reads: which programs to load and how to
// attach them.
type strategy struct {
	name string
	hook string // vigil.hook attribute of the values it measures
	// objs returns an empty programs struct to load: the twins with tid.
	objs   func(tid bool) pair
	attach func(pair) ([]link.Link, error)
	// tidTwins: the programs have _tid twins for kernels without task
	// storage.
	tidTwins bool
}

// strategies, best first: fentry has the least overhead; kprobes work
// without BTF; tp_btf costs less than classic tracepoints, which work
// everywhere BPF does.
var strategies = []strategy{
	{"fentry", "vfs_read", func(bool) pair { return new(fentryProgs) }, attachTracing, false},
	{"kprobe", "vfs_read", func(tid bool) pair {
		if tid {
			return new(kprobeTidProgs)
		}
		return new(kprobeProgs)
	}, attachKprobes, true},
	{"tp_btf", "syscall", func(bool) pair { return new(sysProgs) }, attachTracing, false},
	{"tracepoint", "syscall", func(tid bool) pair {
		if tid {
			return new(tpTidProgs)
		}
		return new(tpProgs)
	}, attachTracepoints, true},
}

// programs returns an empty programs struct for s: the _tid twins when task
// storage is missing (or tid is forced) and s has them.
func (s strategy) programs(tid bool) pair {
	return s.objs(s.tidTwins && (tid || !histmap.HaveTaskStorage()))
}

// readSyscalls are the syscalls the tracepoint strategies time.
var readSyscalls = []string{"read", "pread64", "readv", "preadv"}

func attachTracing(objs pair) ([]link.Link, error) { return latency.AttachTracing(objs) }

func attachKprobes(objs pair) ([]link.Link, error) {
	enter, exit := enterExit(objs)
	return latency.AttachKprobes(
		latency.Kprobe{Fn: "vfs_read", Prog: enter},
		latency.Kprobe{Fn: "vfs_read", Prog: exit, Return: true})
}

func attachTracepoints(objs pair) ([]link.Link, error) {
	enter, exit := enterExit(objs)
	var tps []latency.Tracepoint
	for _, sc := range readSyscalls {
		tps = append(tps,
			latency.Tracepoint{Group: "syscalls", Name: "sys_enter_" + sc, Prog: enter},
			latency.Tracepoint{Group: "syscalls", Name: "sys_exit_" + sc, Prog: exit})
	}
	return latency.AttachTracepoints(tps...)
}
