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
func load(progs []string, l *hist.Layout, pid uint32) (*ebpf.Collection, error) {
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
	if err := spec.Variables["target_tgid"].Set(pid); err != nil {
		return nil, fmt.Errorf("setting target pid: %w", err)
	}
	keep := make(map[string]*ebpf.ProgramSpec, len(progs))
	for _, n := range progs {
		ps, ok := spec.Programs[n]
		if !ok {
			return nil, fmt.Errorf("%s: %w", n, errNoProgram)
		}
		keep[n] = ps
	}
	spec.Programs = keep
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("loading %v: %w", progs, err)
	}
	return coll, nil
}
