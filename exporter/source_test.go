package exporter

import (
	"errors"
	"sync"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// fakeSource is an in-test latency program: it returns whatever readings the
// test sets, cumulative since start.
type fakeSource struct {
	mu       sync.Mutex
	start    time.Time
	readings []hist.Reading
	stats    []attach.RunStat
	err      error
}

func (f *fakeSource) Read() ([]hist.Reading, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readings, f.err
}

func (f *fakeSource) StartTime() time.Time { return f.start }

func (f *fakeSource) set(r []hist.Reading, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readings, f.err = r, err
}

// statsSource adds the kernel's run accounting.
type statsSource struct{ *fakeSource }

func (s statsSource) Stats() []attach.RunStat { return s.stats }

var errRead = errors.New("map lookup failed")

// readReading is a vigil.read.duration reading of values (ns) bucketed as
// the kernel does at scale 3.
func readReading(vals ...uint64) hist.Reading {
	l, err := hist.NewLayout(3, 1000, 100e9)
	if err != nil {
		panic(err)
	}
	return hist.Reading{
		Name: "vigil.read.duration", Description: "Time read system calls take.", Unit: "s",
		Histograms: []hist.Series{{Attrs: map[string]string{"vigil.hook": "syscall"}, Hist: kernelHistogram(l, vals)}},
	}
}

func retransmitReading(n uint64) hist.Reading {
	return hist.Reading{
		Name: "vigil.tcp.retransmits", Description: "Retransmitted TCP segments.", Unit: "{segment}",
		Counters: []hist.CounterSeries{{Value: n}},
	}
}
