package symbolizer

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
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

	named    namedFuncs          // functions the KernelNamer named
	namerMod map[string]*Mapping // mappings of the KernelNamer's answers, by path
	namerErr error               // why the KernelNamer is no longer asked
}

// KernelSymbol is what a KernelNamer says of one kernel address.
type KernelSymbol struct {
	Name   string // the function; "" when no symbol covers the address
	Offset uint64 // of the address from the function's start
	Size   uint64 // the function's size; 0 when unknown
	// Module is "" for the kernel image, "bpf" for BPF programs and
	// trampolines, else the module's name.
	Module string
	// ModuleStart and ModuleLimit bound the text of the module (or of the
	// kernel image); both 0 when unknown.
	ModuleStart, ModuleLimit uint64
}

// KernelNamer names kernel addresses: one answer per address, in order.
// An error means it cannot name any, now or later.
type KernelNamer func(addrs []uint64) ([]KernelSymbol, error)

// namedFuncs are the functions a KernelNamer named, sorted by start, so
// that another address in one of them needs no question.
type namedFuncs []namedFunc

type namedFunc struct {
	start, end uint64
	mapping    *Mapping
	frames     []Frame
}

// lookup finds the function covering addr.
func (n namedFuncs) lookup(addr uint64) (namedFunc, bool) {
	i := sort.Search(len(n), func(i int) bool { return n[i].start > addr }) - 1
	if i >= 0 && addr < n[i].end {
		return n[i], true
	}
	return namedFunc{}, false
}

// add keeps f unless a known function overlaps it; the set is dropped when
// full.
func (n *namedFuncs) add(f namedFunc) {
	if len(*n) >= maxKernelFrames {
		*n = (*n)[:0]
	}
	i := sort.Search(len(*n), func(i int) bool { return (*n)[i].start >= f.start })
	if i < len(*n) && (*n)[i].start < f.end || i > 0 && (*n)[i-1].end > f.start {
		return
	}
	*n = slices.Insert(*n, i, f)
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
//
// With a KernelNamer, it names them instead, and kallsyms only those it
// cannot.
func (s *Symbolizer) Kernel(addrs []uint64) []Location {
	out := make([]Location, len(addrs))
	s.kernel.mu.Lock()
	defer s.kernel.mu.Unlock()
	rest := s.nameKernel(addrs, out)
	if len(rest) > 0 && s.kernel.syms == nil && s.kernel.loadedAt.IsZero() {
		s.loadKallsyms()
	}
	for _, i := range rest {
		out[i] = s.kernelOne(addrs[i])
	}
	for i := range out {
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

// nameKernel names what it can of addrs into out through the KernelNamer
// and returns the indexes left to kallsyms: all of them without a namer.
// Called with kernel.mu held.
func (s *Symbolizer) nameKernel(addrs []uint64, out []Location) []int {
	var ask []uint64
	var at []int
	for i, a := range addrs {
		if s.opts.KernelNamer != nil && s.kernel.namerErr == nil {
			if f, ok := s.kernel.named.lookup(a); ok {
				out[i] = Location{Address: a, Mapping: f.mapping, Frames: f.frames}
				continue
			}
		}
		ask, at = append(ask, a), append(at, i)
	}
	if len(ask) == 0 || s.opts.KernelNamer == nil || s.kernel.namerErr != nil {
		return at
	}
	syms, err := s.opts.KernelNamer(ask)
	if err == nil && len(syms) != len(ask) {
		err = fmt.Errorf("%w: %d answers for %d kernel addresses", ErrMalformed, len(syms), len(ask))
	}
	if err != nil {
		s.kernel.namerErr = fmt.Errorf("naming kernel addresses: %w", err)
		return at
	}
	rest := at[:0]
	for j, sym := range syms {
		a, i := ask[j], at[j]
		if sym.Name == "" || sym.Offset > a || sym.Size > 0 && sym.Offset >= sym.Size {
			rest = append(rest, i)
			continue
		}
		start := a - sym.Offset
		end := start + sym.Size
		if sym.Size == 0 || end < start {
			end = a + 1 // only this address is known to be in it
		}
		f := namedFunc{start: start, end: end, mapping: s.namerMapping(sym), frames: []Frame{{Function: sym.Name}}}
		if sym.Module != "bpf" { // BPF programs come and go at the same addresses
			s.kernel.named.add(f)
		}
		out[i] = Location{Address: a, Mapping: f.mapping, Frames: f.frames}
	}
	return rest
}

// namerMapping is the mapping of a KernelNamer's answer, one per module,
// named as kallsyms names them. Called with kernel.mu held.
func (s *Symbolizer) namerMapping(sym KernelSymbol) *Mapping {
	path := "[kernel.kallsyms]"
	if sym.Module != "" {
		path = "[" + sym.Module + "]"
	}
	if m, ok := s.kernel.namerMod[path]; ok {
		return m
	}
	m := &Mapping{Path: path, Kernel: true, Start: sym.ModuleStart, Limit: sym.ModuleLimit}
	if m.Limit <= m.Start {
		m.Start, m.Limit = 0, ^uint64(0)
	}
	if sym.Module != "bpf" {
		m.BuildID = s.kernelBuildID(path)
	}
	if s.kernel.namerMod == nil {
		s.kernel.namerMod = map[string]*Mapping{}
	}
	s.kernel.namerMod[path] = m
	return m
}
