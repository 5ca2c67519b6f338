package symbolizer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
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
	addrs   []uint64   // sorted
	names   nameChunks // every name followed by '\n', in the file's order
	nameOff []uint32   // where each symbol's name starts in names
	modules []int32    // index into mods per symbol
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

// kallsymsParser accumulates the text symbols of kallsyms in the columns
// Kallsyms keeps, so that a sorted file (the kernel's own symbols are) is
// packed in place.
type kallsymsParser struct {
	addrs   []uint64
	offs    []uint32
	modOf   []int32
	names   nameChunks
	modIdx  map[string]int32
	mods    []*Mapping
	lastMod int32
	zero    int // text symbols whose address is hidden (zero)
}

// ParseKallsyms parses /proc/kallsyms text ("addr type name [module]").
// It keeps text symbols only and fails with ErrKallsymsRestricted when all
// addresses are zero, as they are when kernel.kptr_restrict hides them.
// Lines are parsed in place: a distribution kernel has over 100,000, and
// this runs on the first kernel address of every `vigil profile`.
func ParseKallsyms(r io.Reader) (*Kallsyms, error) {
	p := kallsymsParser{modIdx: map[string]int32{}, lastMod: -1}
	br := bufio.NewReaderSize(r, 64<<10)
	lines := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxKallsymsLineSize {
			return nil, fmt.Errorf("reading kallsyms: %w: a line over %d bytes", ErrTooLarge, maxKallsymsLineSize)
		}
		if len(line) > 0 {
			lines++
			if lines > maxKallsymsEntries {
				return nil, fmt.Errorf("parsing kallsyms: %w: over %d lines", ErrTooLarge, maxKallsymsEntries)
			}
			p.line(line)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading kallsyms: %w", err)
		}
	}
	if len(p.addrs) == 0 && p.zero > 0 {
		return nil, ErrKallsymsRestricted
	}
	if len(p.addrs) == 0 {
		return nil, fmt.Errorf("parsing kallsyms: %w: no text symbols in %d lines", ErrMalformed, lines)
	}
	return p.build(), nil
}

// line keeps one line if it is a text symbol.
func (p *kallsymsParser) line(line []byte) {
	var f [4][]byte
	n := kallsymsFields(line, &f)
	if n < 3 || len(f[1]) != 1 {
		return
	}
	switch f[1][0] {
	case 't', 'T', 'w', 'W':
	default:
		return
	}
	addr, ok := parseHex(f[0])
	if !ok {
		return
	}
	if addr == 0 {
		p.zero++
		return
	}
	if len(f[2]) >= nameChunkSize || len(p.names) >= math.MaxUint16 {
		return // a name fits in a chunk, chunk numbers in 16 bits; no real kernel comes near
	}
	mod := []byte("[kernel.kallsyms]")
	if n == 4 && len(f[3]) >= 2 && f[3][0] == '[' && f[3][len(f[3])-1] == ']' {
		mod = f[3]
	}
	p.grow()
	p.addrs = append(p.addrs, addr)
	p.offs = append(p.offs, p.names.add(f[2]))
	p.modOf = append(p.modOf, p.module(mod, addr))
}

// grow makes room for one more symbol, doubling: append's gentler growth
// for large slices copies tables this size several times over.
func (p *kallsymsParser) grow() {
	if len(p.addrs) == cap(p.addrs) {
		more := max(len(p.addrs), 1024)
		p.addrs = slices.Grow(p.addrs, more)
		p.offs = slices.Grow(p.offs, more)
		p.modOf = slices.Grow(p.modOf, more)
	}
}

// kallsymsFields splits a kallsyms line ("%016x %c %s", then a tab and
// "[module]" for modules) into at most four fields: by its fixed columns
// when it has them, else at any white space.
func kallsymsFields(line []byte, f *[4][]byte) int {
	for len(line) > 0 && isSpace(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	if len(line) < 20 || line[16] != ' ' || line[18] != ' ' || isSpace(line[19]) {
		return splitFields(line, f[:])
	}
	f[0], f[1] = line[:16], line[17:18]
	rest := line[19:]
	tab := bytes.IndexByte(rest, '\t')
	if tab < 0 {
		tab = len(rest)
	}
	if bytes.IndexByte(rest[:tab], ' ') >= 0 {
		return splitFields(line, f[:])
	}
	f[2] = rest[:tab]
	if tab == len(rest) {
		return 3
	}
	return 3 + splitFields(rest[tab:], f[3:])
}

// module returns the index of the named module, adding it when new. Lines
// of one module come together, so the last one answers most.
func (p *kallsymsParser) module(name []byte, addr uint64) int32 {
	if p.lastMod >= 0 && p.mods[p.lastMod].Path == string(name) {
		return p.lastMod
	}
	idx, seen := p.modIdx[string(name)]
	if !seen {
		idx = int32(len(p.mods))
		path := string(name)
		p.modIdx[path] = idx
		p.mods = append(p.mods, &Mapping{Path: path, Kernel: true, Start: addr, Limit: addr})
	}
	p.lastMod = idx
	return idx
}

// splitFields splits line at ASCII white space into at most len(out)
// fields (the last one ends at the next space) and returns how many.
func splitFields(line []byte, out [][]byte) int {
	n := 0
	for i := 0; i < len(line) && n < len(out); {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		if j > i {
			out[n] = line[i:j]
			n++
		}
		i = j
	}
	return n
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// parseHex parses an unsigned hexadecimal number of at most 64 bits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// build sorts the symbols by address and packs them, keeping the first
// name at an address (aliases). The names stay where parsing put them.
func (p *kallsymsParser) build() *Kallsyms {
	if !slices.IsSorted(p.addrs) {
		p.sortByAddr()
	}
	n := 0
	for i, a := range p.addrs {
		mod := p.modOf[i]
		if n > 0 && p.addrs[n-1] == a && p.modOf[n-1] == mod {
			continue // aliases: keep the first name at an address
		}
		p.addrs[n], p.offs[n], p.modOf[n] = a, p.offs[i], mod
		n++
		m := p.mods[mod]
		m.Start = min(m.Start, a)
		m.Limit = max(m.Limit, a+1)
	}
	// Clipping keeps the spare capacity reserved, but it was never
	// written, so it holds no memory.
	k := &Kallsyms{
		addrs: slices.Clip(p.addrs[:n]), nameOff: slices.Clip(p.offs[:n]), modules: slices.Clip(p.modOf[:n]),
		names: p.names, mods: p.mods, frames: map[int32][]Frame{},
	}
	k.extendLimits()
	return k
}

// sortByAddr orders the columns by address, stably and in place: module
// symbols come after the kernel's, each module's in its own order.
func (p *kallsymsParser) sortByAddr() {
	sort.Stable(byAddr{p})
}

// byAddr sorts the parser's three columns together.
type byAddr struct{ p *kallsymsParser }

func (b byAddr) Len() int           { return len(b.p.addrs) }
func (b byAddr) Less(i, j int) bool { return b.p.addrs[i] < b.p.addrs[j] }
func (b byAddr) Swap(i, j int) {
	p := b.p
	p.addrs[i], p.addrs[j] = p.addrs[j], p.addrs[i]
	p.offs[i], p.offs[j] = p.offs[j], p.offs[i]
	p.modOf[i], p.modOf[j] = p.modOf[j], p.modOf[i]
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

// nameChunkSize is the size of one chunk of names: kernel names are at
// most 512 bytes (KSYM_NAME_LEN).
const nameChunkSize = 64 << 10

// nameChunks holds names in fixed-size chunks, so that collecting the
// names of a whole kernel never copies them to grow a buffer. An offset
// is a chunk's index in its upper 16 bits and a position in it below.
type nameChunks [][]byte

// add appends name and a '\n' and returns where it starts.
func (c *nameChunks) add(name []byte) uint32 {
	if len(*c) == 0 || len((*c)[len(*c)-1])+len(name)+1 > nameChunkSize {
		*c = append(*c, make([]byte, 0, nameChunkSize))
	}
	last := &(*c)[len(*c)-1]
	off := uint32(len(*c)-1)<<16 | uint32(len(*last))
	*last = append(append(*last, name...), '\n')
	return off
}

// at returns the bytes from offset off to the end of its chunk.
func (c nameChunks) at(off uint32) []byte {
	return c[off>>16][off&0xffff:]
}

// name is symbol i's name, copied out of the shared buffer.
func (k *Kallsyms) name(i int) string {
	b := k.names.at(k.nameOff[i])
	if end := bytes.IndexByte(b, '\n'); end >= 0 {
		b = b[:end]
	}
	return string(b)
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
