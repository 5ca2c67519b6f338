package profiler

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
)

// Sampler is the BPF side: *cpuprofile.Profiler satisfies it.
type Sampler interface {
	Drain() (*cpuprofile.Batch, error)
	Stop() error // end sampling; a Drain after it returns the rest
	WatchProcesses(fn func(cpuprofile.Event)) error
}

// Preparer captures a process's mappings while it is alive;
// *symbolizer.Symbolizer satisfies it.
type Preparer interface {
	Prepare(pid int) error
	Forget(pid int)
}

// Session drives one profile: it prepares every process the sampler
// announces, drains every interval and symbolizes each batch at once, so
// processes that live a fraction of a second still get named.
type Session struct {
	Sampler Sampler
	Symbols interface {
		Symbolizer
		Preparer
	}
	Frequency int
	Interval  time.Duration                        // how often to drain
	Progress  func(elapsed time.Duration, s Stats) // optional, called after each drain
	// OffCPU makes an off-CPU profile of the batches' off-CPU samples
	// instead of a CPU profile of their CPU samples; MinBlock is the
	// sampler's threshold, named in the profile.
	OffCPU   bool
	MinBlock time.Duration

	mu      sync.Mutex // guards builder between drains and Stats
	builder *Builder
	ann     announcements
	py      *PythonNamer // nil when the sampler walks no Python frames
}

// pyWarmInterval is how often Python stacks are named before their drain,
// so a process that lives a fraction of a second is read while it lives.
const pyWarmInterval = 100 * time.Millisecond

// startPython makes a namer when sampler can show Python stacks, and
// returns the ticks to warm it on (nil when there is none).
func startPython(sampler Sampler) (*PythonNamer, *time.Ticker) {
	src, ok := sampler.(PythonSource)
	if !ok {
		return nil, nil
	}
	return NewPythonNamer(src, ""), time.NewTicker(pyWarmInterval)
}

// ticks is t's channel, or nil (never ready) without a ticker.
func ticks(t *time.Ticker) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// PythonUnreadable returns the Python frames that could not be named so
// far, by reason.
func (s *Session) PythonUnreadable() map[string]uint64 {
	if s.py == nil {
		return nil
	}
	return s.py.Unreadable()
}

// Run samples until ctx is done (or duration passes) and returns the profile.
func (s *Session) Run(ctx context.Context, duration time.Duration) (*profile.Profile, error) {
	start := time.Now()
	if s.OffCPU {
		s.builder = NewOffCPUBuilder(s.Symbols, s.MinBlock, start)
	} else {
		s.builder = NewBuilder(s.Symbols, s.Frequency, start)
	}
	s.ann = announcements{prep: s.Symbols}
	s.ann.watch(s.Sampler)
	var warm *time.Ticker
	if s.py, warm = startPython(s.Sampler); s.py != nil {
		s.builder.SetPython(s.py)
		defer warm.Stop()
		defer s.py.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	var errs []error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
			if err := s.Sampler.Stop(); err != nil {
				errs = append(errs, err)
			}
		case <-tick.C:
		case <-ticks(warm):
			if err := s.py.Warm(); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := s.drainOnce(); err != nil {
			errs = append(errs, err)
		}
		if s.Progress != nil {
			s.Progress(time.Since(start), s.builder.Stats())
		}
	}
	p, err := s.builder.Profile(time.Now())
	return p, errors.Join(append(errs, err)...)
}

// Stats is what the profile holds so far.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.builder.Stats()
}

func (s *Session) drainOnce() error {
	batch, err := s.Sampler.Drain()
	if batch == nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pid := range s.ann.takeExecs() {
		s.builder.ForgetProcess(pid)
		if s.py != nil {
			s.py.Forget(pid)
		}
	}
	s.builder.Add(batch)
	if s.py != nil {
		s.py.Tidy()
	}
	return err
}
