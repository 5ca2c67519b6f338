package readlat

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// strategy is one way to see reads: which programs to load and how to
// attach them.
type strategy struct {
	name   string
	hook   string // vigil.hook attribute of the values it measures
	progs  []string
	attach func(map[string]*ebpf.Program) ([]link.Link, error)
	// tidTwins: the programs have <name>_tid twins for kernels without
	// task storage.
	tidTwins bool
}

// strategies, best first: fentry has the least overhead; kprobes work
// without BTF; tp_btf costs less than classic tracepoints, which work
// everywhere BPF does.
var strategies = []strategy{
	{"fentry", "vfs_read", []string{"read_fentry", "read_fexit"}, attachTracing("read_fentry", "read_fexit"), false},
	{"kprobe", "vfs_read", []string{"read_kprobe", "read_kretprobe"}, attachKprobes, true},
	{"tp_btf", "syscall", []string{"read_sys_enter", "read_sys_exit"}, attachTracing("read_sys_enter", "read_sys_exit"), false},
	{"tracepoint", "syscall", []string{"read_tp_enter", "read_tp_exit"}, attachTracepoints, true},
}

// programNames returns the programs to load for s: the _tid twins when
// task storage is missing (or tid is forced) and s has them.
func (s strategy) programNames(tid bool) []string {
	if !s.tidTwins || (!tid && histmap.HaveTaskStorage()) {
		return s.progs
	}
	out := make([]string, len(s.progs))
	for i, n := range s.progs {
		out[i] = n + "_tid"
	}
	return out
}

// readSyscalls are the syscalls the tracepoint strategies time.
var readSyscalls = []string{"read", "pread64", "readv", "preadv"}

func attachTracing(names ...string) func(map[string]*ebpf.Program) ([]link.Link, error) {
	return func(progs map[string]*ebpf.Program) ([]link.Link, error) {
		var links []link.Link
		for _, n := range names {
			l, err := link.AttachTracing(link.TracingOptions{Program: progs[n]})
			if err != nil {
				closeLinks(links)
				return nil, fmt.Errorf("attaching %s: %w", n, err)
			}
			links = append(links, l)
		}
		return links, nil
	}
}

func attachKprobes(progs map[string]*ebpf.Program) ([]link.Link, error) {
	enter, err := link.Kprobe("vfs_read", progs["read_kprobe"], nil)
	if err != nil {
		return nil, kprobeError(err)
	}
	exit, err := link.Kretprobe("vfs_read", progs["read_kretprobe"], nil)
	if err != nil {
		enter.Close()
		return nil, kprobeError(err)
	}
	return []link.Link{enter, exit}, nil
}

// kprobePMU exists when the kernel can create kprobes through perf; without
// it and without tracefs kprobe_events the kernel has no kprobes at all.
var kprobeProbes = []string{"/sys/bus/event_source/devices/kprobe", "/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"}

// kprobeError names the likely cause when the kernel has no kprobe support.
func kprobeError(err error) error {
	for _, p := range kprobeProbes {
		if _, serr := os.Stat(p); serr == nil {
			return fmt.Errorf("attaching kprobe vfs_read: %w", err)
		}
	}
	return fmt.Errorf("kernel built without CONFIG_KPROBES (no kprobe PMU or kprobe_events): %w", err)
}

func attachTracepoints(progs map[string]*ebpf.Program) ([]link.Link, error) {
	if _, err := tracefs.Ensure(); err != nil {
		return nil, err
	}
	var links []link.Link
	for _, sc := range readSyscalls {
		for _, t := range []struct{ event, prog string }{{"sys_enter_" + sc, "read_tp_enter"}, {"sys_exit_" + sc, "read_tp_exit"}} {
			l, err := link.Tracepoint("syscalls", t.event, progs[t.prog], nil)
			if err != nil {
				closeLinks(links)
				return nil, fmt.Errorf("attaching tracepoint syscalls:%s: %w", t.event, err)
			}
			links = append(links, l)
		}
	}
	return links, nil
}

func closeLinks(links []link.Link) {
	for _, l := range links {
		_ = l.Close()
	}
}
