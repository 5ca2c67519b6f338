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

// newSpec returns the embedded object with the layout and options written into
// its constants, ready for each strategy's load.
func newSpec(l *hist.Layout, opts Options) (*ebpf.CollectionSpec, error) {
	spec, err := loadReadlat()
	if err != nil {
		return nil, fmt.Errorf("loading read latency spec: %w", err)
	}
	if err := histmap.SetLayout(spec, l); err != nil {
		return nil, err
	}
	if err := spec.Variables[readlatVarReadNr].Set(syscallNrs); err != nil {
		return nil, fmt.Errorf("setting read syscall numbers: %w", err)
	}
	if err := spec.Variables[readlatVarTargetTgid].Set(opts.PID); err != nil {
		return nil, fmt.Errorf("setting target pid: %w", err)
	}
	if err := histmap.SetupByProcess(spec, readlatVarByComm, readlatMapReadHistComm, opts.ByProcess, opts.MaxSeries); err != nil {
		return nil, err
	}
	return spec, nil
}
