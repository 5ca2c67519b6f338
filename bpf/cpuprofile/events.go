package cpuprofile

import (
	"encoding/binary"
	"errors"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// EventKind tells why user space hears about a process.
type EventKind uint32

const (
	NewProcess EventKind = 1 // first sample of the process
	Exec       EventKind = 2 // the process replaced its image
)

// Event announces a process whose mappings should be captured now, while it
// still exists: short-lived processes are gone by the next drain.
type Event struct {
	Kind EventKind
	PID  uint32
}

// WatchProcesses calls fn for every announcement until the profiler is
// closed. It blocks: run it in its own goroutine.
func (p *Profiler) WatchProcesses(fn func(Event)) error {
	for {
		rec, err := p.rb.Read()
		if errors.Is(err, ringbuf.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(rec.RawSample) < 8 {
			continue
		}
		fn(Event{
			Kind: EventKind(binary.NativeEndian.Uint32(rec.RawSample[0:4])),
			PID:  binary.NativeEndian.Uint32(rec.RawSample[4:8]),
		})
	}
}

func unixClose(fd int) error { return unix.Close(fd) }
