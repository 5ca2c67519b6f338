package readlat

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"golang.org/x/sys/unix"
)

// syscallNrs are this architecture's numbers of read, pread64, readv and
// preadv, in the order of read_nr in readlat.bpf.c.
var syscallNrs = [4]int64{unix.SYS_READ, unix.SYS_PREAD64, unix.SYS_READV, unix.SYS_PREADV}

// load loads only the named programs (and the maps) of the embedded object:
// the other strategies' programs may not load on this kernel.
func load(progs []string, l *hist.Layout, opts Options) (*ebpf.Collection, error) {
	spec, err := loadReadlat()
	if err != nil {
		return nil, fmt.Errorf("loading read latency spec: %w", err)
	}
	if err := histmap.SetLayout(spec, l); err != nil {
		return nil, err
	}
	if err := spec.Variables["read_nr"].Set(syscallNrs); err != nil {
		return nil, fmt.Errorf("setting read syscall numbers: %w", err)
	}
	if err := spec.Variables["target_tgid"].Set(opts.PID); err != nil {
		return nil, fmt.Errorf("setting target pid: %w", err)
	}
	if err := histmap.SetupByProcess(spec, "by_comm", "read_hist_comm", opts.ByProcess, opts.MaxSeries); err != nil {
		return nil, err
	}
	if err := histmap.KeepPrograms(spec, progs...); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("loading %v: %w", progs, err)
	}
	return coll, nil
}
