package symbolizer

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// kernelReloadInterval bounds how often a kernel address outside every
// known symbol makes kallsyms be read again (a module may have loaded).
const kernelReloadInterval = 10 * time.Second

type kernelState struct {
	mu       sync.Mutex
	syms     *Kallsyms
	err      error
	loadedAt time.Time
	fallback *Mapping // for kernel addresses no symbol covers
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
	for _, m := range k.mods {
		m.BuildID = s.kernelBuildID(m.Path)
	}
}

// kernelBuildID reads the GNU build ID of the kernel image or of a module
// from the notes the kernel exports in sysfs, "" when unavailable.
func (s *Symbolizer) kernelBuildID(module string) string {
	path := filepath.Join(s.opts.SysRoot, "kernel", "notes")
	if module != "[kernel.kallsyms]" {
		name := strings.Trim(module, "[]")
		if name == "" || strings.ContainsAny(name, "/.") {
			return ""
		}
		path = filepath.Join(s.opts.SysRoot, "module", name, "notes", ".note.gnu.build-id")
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNoteSize))
	if err != nil {
		return ""
	}
	return findBuildIDNote(b, binary.NativeEndian)
}

// kernelMapping returns the mapping for kernel addresses no symbol covers:
// the whole address space, so the offset it prints is the address itself.
// Called with kernel.mu held.
func (s *Symbolizer) kernelMapping() *Mapping {
	if s.kernel.fallback == nil {
		s.kernel.fallback = &Mapping{Path: "[kernel.kallsyms]", Kernel: true, Limit: ^uint64(0), BuildID: s.kernelBuildID("[kernel.kallsyms]")}
	}
	return s.kernel.fallback
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
	return Location{Address: addr, Mapping: s.kernelMapping()}
}
