package symbolizer

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Bounds on kallsyms input: a distribution kernel with modules has about
// 200,000 text symbols.
const (
	maxKallsymsEntries  = 4 << 20
	maxKallsymsLineSize = 4096
	// maxKernelSymbolSpan bounds how far past the last symbol of the kernel
	// or a module an address is still attributed to it.
	maxKernelSymbolSpan = 1 << 20
)

// Kallsyms is a parsed /proc/kallsyms restricted to text symbols.
type Kallsyms struct {
	addrs   []uint64 // sorted
	names   string   // every name, back to back: one allocation, not one a line
	nameEnd []uint32 // end of each symbol's name in names
	modules []int32  // index into mods per symbol
	mods    []*Mapping

	mu     sync.Mutex
	frames map[int32][]Frame // answers built so far, so warm lookups do not allocate
}

// maxKernelFrames bounds the answers kept; the set is dropped when full.
const maxKernelFrames = 1 << 16

// Len returns the number of text symbols.
func (k *Kallsyms) Len() int { return len(k.addrs) }

// Modules returns the kernel image and module mappings, each spanning its symbols.
func (k *Kallsyms) Modules() []*Mapping { return k.mods }

type ksym struct {
	addr uint64
	name string
	mod  int32
}

// ParseKallsyms parses /proc/kallsyms text ("addr type name [module]").
// It keeps text symbols only and fails with ErrKallsymsRestricted when all
// addresses are zero, as they are when kernel.kptr_restrict hides them.
func ParseKallsyms(r io.Reader) (*Kallsyms, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxKallsymsLineSize)
	modIdx := map[string]int32{}
	var mods []*Mapping
	var syms []ksym
	lines, zero := 0, 0
	for sc.Scan() {
		lines++
		if lines > maxKallsymsEntries {
			return nil, fmt.Errorf("parsing kallsyms: %w: over %d lines", ErrTooLarge, maxKallsymsEntries)
		}
		addr, name, mod, ok := parseKallsymsLine(sc.Text())
		if !ok {
			continue
		}
		if addr == 0 {
			zero++
			continue
		}
		idx, seen := modIdx[mod]
		if !seen {
			idx = int32(len(mods))
			modIdx[mod] = idx
			mods = append(mods, &Mapping{Path: mod, Kernel: true, Start: addr, Limit: addr})
		}
		syms = append(syms, ksym{addr: addr, name: name, mod: idx})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading kallsyms: %w", err)
	}
	if len(syms) == 0 && zero > 0 {
		return nil, ErrKallsymsRestricted
	}
	if len(syms) == 0 {
		return nil, fmt.Errorf("parsing kallsyms: %w: no text symbols in %d lines", ErrMalformed, lines)
	}
	return buildKallsyms(syms, mods), nil
}

// parseKallsymsLine returns the address, name and module ("[kernel.kallsyms]"
// for the core kernel) of a text symbol line.
func parseKallsymsLine(line string) (uint64, string, string, bool) {
	f := strings.Fields(line)
	if len(f) < 3 || len(f[1]) != 1 {
		return 0, "", "", false
	}
	switch f[1][0] {
	case 't', 'T', 'w', 'W':
	default:
		return 0, "", "", false
	}
	addr, err := strconv.ParseUint(f[0], 16, 64)
	if err != nil {
		return 0, "", "", false
	}
	mod := "[kernel.kallsyms]"
	if len(f) >= 4 && strings.HasPrefix(f[3], "[") && strings.HasSuffix(f[3], "]") {
		mod = f[3]
	}
	return addr, f[2], mod, true
}

func buildKallsyms(syms []ksym, mods []*Mapping) *Kallsyms {
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	k := &Kallsyms{mods: mods}
	var names strings.Builder
	for i, s := range syms {
		if i > 0 && syms[i-1].addr == s.addr && syms[i-1].mod == s.mod {
			continue // aliases: keep the first name at an address
		}
		if names.Len()+len(s.name) > math.MaxUint32 {
			break // name offsets are 32-bit; no real kernel comes near
		}
		k.addrs = append(k.addrs, s.addr)
		names.WriteString(s.name)
		k.nameEnd = append(k.nameEnd, uint32(names.Len()))
		k.modules = append(k.modules, s.mod)
		m := mods[s.mod]
		m.Start = min(m.Start, s.addr)
		m.Limit = max(m.Limit, s.addr+1)
	}
	k.names = names.String()
	k.addrs, k.nameEnd, k.modules = slices.Clip(k.addrs), slices.Clip(k.nameEnd), slices.Clip(k.modules)
	k.frames = map[int32][]Frame{}
	k.extendLimits()
	return k
}

// extendLimits makes each mapping's Limit cover what find attributes to it:
// past the last symbol of a run of one module's symbols, a bounded span
// that stops where another module's symbols start.
func (k *Kallsyms) extendLimits() {
	for i, a := range k.addrs {
		if i+1 < len(k.addrs) && k.modules[i+1] == k.modules[i] {
			continue
		}
		end := a + maxKernelSymbolSpan
		if end < a {
			end = ^uint64(0)
		}
		if i+1 < len(k.addrs) {
			end = min(end, k.addrs[i+1])
		}
		m := k.mods[k.modules[i]]
		m.Limit = max(m.Limit, end)
	}
}

// find returns the index of the symbol covering addr, or -1. A symbol covers
// addresses up to the next symbol of the same module; the last one of a
// module a bounded span.
func (k *Kallsyms) find(addr uint64) int {
	i := sort.Search(len(k.addrs), func(i int) bool { return k.addrs[i] > addr }) - 1
	if i < 0 {
		return -1
	}
	if i+1 < len(k.addrs) && k.modules[i+1] == k.modules[i] {
		return i
	}
	if addr-k.addrs[i] < maxKernelSymbolSpan {
		return i
	}
	return -1
}

// name is symbol i's name, a slice of the shared string.
func (k *Kallsyms) name(i int) string {
	start := uint32(0)
	if i > 0 {
		start = k.nameEnd[i-1]
	}
	return k.names[start:k.nameEnd[i]]
}

// Lookup names one kernel address. The Mapping is the module (or the
// kernel image) whose symbol covers it, nil when none does.
func (k *Kallsyms) Lookup(addr uint64) Location {
	i := k.find(addr)
	if i < 0 {
		return Location{Address: addr}
	}
	return Location{Address: addr, Mapping: k.mods[k.modules[i]], Frames: k.framesOf(i)}
}

// framesOf returns the one-frame answer for symbol i, built once.
func (k *Kallsyms) framesOf(i int) []Frame {
	k.mu.Lock()
	defer k.mu.Unlock()
	f, ok := k.frames[int32(i)]
	if !ok {
		if len(k.frames) >= maxKernelFrames {
			clear(k.frames)
		}
		f = []Frame{{Function: k.name(i)}}
		k.frames[int32(i)] = f
	}
	return f
}
