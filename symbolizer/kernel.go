package symbolizer

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// kernelReloadInterval bounds how often a kernel address outside every
// known symbol makes kallsyms be read again (a module may have loaded).
const kernelReloadInterval = 10 * time.Second

// kernelFallback is the mapping of kernel addresses no symbol covers.
var kernelFallback = &Mapping{Path: "[kernel.kallsyms]", Kernel: true}

type kernelState struct {
	mu       sync.Mutex
	syms     *Kallsyms
	err      error
	loadedAt time.Time
}

func (k *kernelState) snapshot() (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.syms == nil {
		return 0, k.err
	}
	return k.syms.Len(), k.err
}

// LoadKernel reads kallsyms now and returns why kernel frames can't be
// named (ErrKallsymsRestricted when addresses are hidden), nil when they can.
func (s *Symbolizer) LoadKernel() error {
	s.kernel.mu.Lock()
	defer s.kernel.mu.Unlock()
	s.loadKallsyms()
	return s.kernel.err
}

// loadKallsyms (re)reads kallsyms. Called with kernel.mu held.
func (s *Symbolizer) loadKallsyms() {
	s.kernel.loadedAt = time.Now()
	f, err := os.Open(s.opts.KallsymsPath)
	if err != nil {
		s.kernel.err = fmt.Errorf("reading kernel symbols: %w", err)
		return
	}
	defer f.Close()
	k, err := ParseKallsyms(f)
	if err != nil {
		s.kernel.err = fmt.Errorf("reading kernel symbols from %s: %w", s.opts.KallsymsPath, err)
		return
	}
	s.kernel.syms, s.kernel.err = k, nil
}

// Kernel names kernel addresses from kallsyms: core kernel symbols under
// "[kernel.kallsyms]", module symbols under "[module]". Addresses no
// symbol covers keep the kernel mapping and their address.
func (s *Symbolizer) Kernel(addrs []uint64) []Location {
	out := make([]Location, len(addrs))
	s.kernel.mu.Lock()
	defer s.kernel.mu.Unlock()
	if s.kernel.syms == nil && s.kernel.loadedAt.IsZero() {
		s.loadKallsyms()
	}
	for i, a := range addrs {
		out[i] = s.kernelOne(a)
		if out[i].Named() {
			s.st.hits.Add(1)
		} else {
			s.st.misses.Add(1)
		}
	}
	return out
}

func (s *Symbolizer) kernelOne(addr uint64) Location {
	if s.kernel.syms != nil {
		if loc := s.kernel.syms.Lookup(addr); loc.Mapping != nil {
			return loc
		}
	}
	if time.Since(s.kernel.loadedAt) > kernelReloadInterval {
		s.loadKallsyms()
		if s.kernel.syms != nil {
			if loc := s.kernel.syms.Lookup(addr); loc.Mapping != nil {
				return loc
			}
		}
	}
	return Location{Address: addr, Mapping: kernelFallback}
}
