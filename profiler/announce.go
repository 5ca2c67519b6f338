package profiler

import (
	"log/slog"
	"sync"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
)

// announcements handles the sampler's process announcements for a one-shot
// session and the continuous profiler alike: it captures a process's
// mappings the moment it is announced (short-lived processes are gone by
// the next drain) and remembers which processes exec'd since the last drain.
type announcements struct {
	prep Preparer
	also func(cpuprofile.Event) // optional extra work per announcement

	mu    sync.Mutex
	execs map[uint32]bool
}

// watch handles announcements until the sampler closes; it returns at once.
func (a *announcements) watch(s Sampler) {
	go func() {
		if err := s.WatchProcesses(a.handle); err != nil {
			slog.Warn("process announcements stopped", "component", "profiler", "err", err)
		}
	}()
}

func (a *announcements) handle(e cpuprofile.Event) {
	if err := a.prep.Prepare(int(e.PID)); err != nil {
		slog.Debug("capturing mappings failed", "component", "profiler", "pid", e.PID, "err", err)
	}
	if a.also != nil {
		a.also(e)
	}
	if e.Kind == cpuprofile.Exec {
		a.mu.Lock()
		if a.execs == nil {
			a.execs = map[uint32]bool{}
		}
		a.execs[e.PID] = true
		a.mu.Unlock()
	}
}

// takeExecs returns the processes that exec'd since the last call. Their
// addresses seen before meant the old image and must be forgotten; samples
// of the same batch taken before the exec are symbolized against the new
// image, a small error confined to the exec itself.
func (a *announcements) takeExecs() []uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]uint32, 0, len(a.execs))
	for pid := range a.execs {
		out = append(out, pid)
	}
	clear(a.execs)
	return out
}
