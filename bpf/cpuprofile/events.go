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
	NewProcess  EventKind = 1 // first sample of the process
	Exec        EventKind = 2 // the process replaced its image
	MapsChanged EventKind = 3 // a PC fell outside its known mappings (dlopen, JIT)
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
	for e := range p.announce {
		fn(e)
	}
	return p.readErr
}

// readEvents reads the ring buffer: the unwinder registers each announced
// process at once, and the announcement is passed on to WatchProcesses. A
// caller that does not watch loses nothing of the unwinder's; what its
// queue could not hold is counted.
func (p *Profiler) readEvents() {
	defer close(p.readerDone)
	defer close(p.announce)
	for {
		rec, err := p.rb.Read()
		if errors.Is(err, ringbuf.ErrClosed) {
			return
		}
		if err != nil {
			p.readErr = err
			return
		}
		if len(rec.RawSample) < 8 {
			continue
		}
		e := Event{
			Kind: EventKind(binary.NativeEndian.Uint32(rec.RawSample[0:4])),
			PID:  binary.NativeEndian.Uint32(rec.RawSample[4:8]),
		}
		if p.reg != nil {
			p.reg.request(e.PID, e.Kind == Exec)
		}
		select {
		case p.announce <- e:
		default:
			p.announceLost.Add(1)
		}
	}
}

func unixClose(fd int) error { return unix.Close(fd) }
