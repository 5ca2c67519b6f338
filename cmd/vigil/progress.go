package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ebpf/vigil/profiler"
)

// progress shows one self-updating line while sampling, only on a terminal.
type progress struct {
	w      io.Writer
	total  time.Duration
	tty    bool
	offCPU bool // counting blocked time, not samples
}

func newProgress(w io.Writer, total time.Duration) *progress {
	return &progress{w: w, total: total, tty: isTerminal(w)}
}

func (p *progress) update(elapsed time.Duration, s profiler.Stats) {
	if !p.tty {
		return
	}
	if elapsed > p.total {
		elapsed = p.total
	}
	if p.offCPU {
		fmt.Fprintf(p.w, "\rrecording: %4.1fs / %.0fs, %v blocked, %d processes ", elapsed.Seconds(), p.total.Seconds(),
			time.Duration(s.OffCPU.RecordedNanos).Round(time.Millisecond), s.Processes)
		return
	}
	fmt.Fprintf(p.w, "\rsampling: %4.1fs / %.0fs, %d samples, %d processes ", elapsed.Seconds(), p.total.Seconds(), s.Samples, s.Processes)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
