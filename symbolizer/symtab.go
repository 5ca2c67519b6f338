package symbolizer

import (
	"debug/elf"
	"slices"
	"sort"
	"strings"
	"unsafe"
)

// symbol is one named address range. size 0 means "up to the next symbol".
type symbol struct {
	addr uint64
	size uint64
	name string
	rank uint8 // among aliases at one address the highest rank names it
}

// symtab is a sorted symbol table answering "which symbol covers addr" with
// one binary search.
type symtab struct {
	syms []symbol
	// frames holds, per symbol, the one-frame answer built on first use so
	// warm lookups do not allocate. It is made by the first lookup: files
	// with DWARF or a Go table seldom need it.
	frames [][]Frame
	names  int64 // bytes of the names
	filled int64 // bytes of the frames built so far
}

// bytes estimates the memory the table holds.
func (t *symtab) bytes() int64 {
	if t == nil {
		return 0
	}
	per := int64(unsafe.Sizeof(symbol{}))
	if t.frames != nil {
		per += int64(unsafe.Sizeof([]Frame(nil)))
	}
	return int64(len(t.syms))*per + t.names + t.filled
}

// maxNestedLookback bounds how many preceding symbols are checked for one
// that encloses an address (a large function containing smaller labels).
const maxNestedLookback = 4

// newSymtab sorts syms, drops aliases at one address (keeping the sized,
// best ranked name), and returns the table. The sort moves small keys
// holding no pointers; it is the pattern-defeating quicksort sort.Slice
// runs, over the same order, so aliases equal in size and rank
// (lstat, lstat64) resolve to the same name. The names kept are copied into one block, so
// the table holds neither the string tables they were read from nor the
// names of the aliases dropped.
func newSymtab(syms []symbol) *symtab {
	if len(syms) > maxSymtabLen {
		syms = syms[:maxSymtabLen]
	}
	keys := make([]symKey, len(syms))
	for i := range syms {
		s := &syms[i]
		keys[i] = symKey{addr: s.addr, size: s.size, idx: uint32(i), rank: s.rank}
	}
	slices.SortFunc(keys, compareSymKeys)
	n, names := 0, 0
	for i := range keys {
		if i > 0 && keys[i-1].addr == keys[i].addr {
			continue
		}
		keys[n] = keys[i]
		n++
		names += len(syms[keys[i].idx].name)
	}
	buf := make([]byte, 0, names)
	for _, k := range keys[:n] {
		buf = append(buf, syms[k.idx].name...)
	}
	all := bytesString(buf)
	out := make([]symbol, n)
	off := 0
	for i, k := range keys[:n] {
		l := len(syms[k.idx].name)
		out[i] = symbol{addr: k.addr, size: k.size, name: all[off : off+l], rank: k.rank}
		off += l
	}
	return &symtab{syms: out, names: int64(names)}
}

// maxSymtabLen bounds one table, so that a key's index fits in 32 bits
// (and an int everywhere); the readers stop far below it.
const maxSymtabLen = 1<<31 - 1

// symKey is what newSymtab sorts: a symbol's order and its index.
type symKey struct {
	addr, size uint64
	idx        uint32
	rank       uint8
}

// compareSymKeys orders symbols by address, then the sized and larger
// first, then the best ranked first.
func compareSymKeys(a, b symKey) int {
	switch {
	case a.addr != b.addr:
		if a.addr < b.addr {
			return -1
		}
		return 1
	case a.size != b.size:
		if a.size > b.size {
			return -1
		}
		return 1
	case a.rank != b.rank:
		if a.rank > b.rank {
			return -1
		}
		return 1
	}
	return 0
}

// find returns the index of the symbol covering addr, or -1.
func (t *symtab) find(addr uint64) int {
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].addr > addr }) - 1
	if i < 0 {
		return -1
	}
	if covers(&t.syms[i], addr, t.next(i)) {
		return i
	}
	for j := i - 1; j >= 0 && j >= i-maxNestedLookback; j-- {
		if s := &t.syms[j]; s.size > 0 && addr < s.addr+s.size {
			return j
		}
	}
	return -1
}

// next returns the address of the symbol after i, or 0 when i is last.
func (t *symtab) next(i int) uint64 {
	if i+1 < len(t.syms) {
		return t.syms[i+1].addr
	}
	return 0
}

// covers reports whether s contains addr. Sized symbols cover exactly their
// size; unsized ones (assembly) cover up to the next symbol, and the last one
// a bounded stretch so addresses far past the end stay unnamed.
func covers(s *symbol, addr, next uint64) bool {
	if s.size > 0 {
		return addr-s.addr < s.size
	}
	if next != 0 {
		return addr < next
	}
	return addr-s.addr < 4096
}

// lookup returns the cached one-frame answer for addr, or nil. demangled
// names are computed once per symbol.
func (t *symtab) lookup(addr uint64) []Frame {
	i := t.find(addr)
	if i < 0 {
		return nil
	}
	if t.frames == nil {
		t.frames = make([][]Frame, len(t.syms))
	}
	if f := t.frames[i]; f != nil {
		return f
	}
	f := []Frame{{Function: demangle(t.syms[i].name)}}
	t.frames[i] = f
	t.filled += int64(unsafe.Sizeof(Frame{})) + int64(len(f[0].Function))
	return f
}

// symName is a symbol's demangled name and start address.
type symName struct {
	name string
	addr uint64
}

// nameAt returns the demangled name and start of the symbol covering addr.
func (t *symtab) nameAt(addr uint64) symName {
	if i := t.find(addr); i >= 0 {
		return symName{name: demangle(t.syms[i].name), addr: t.syms[i].addr}
	}
	return symName{}
}

// aliasRank orders alias names at one address: exported before local, and
// the public name before internal ones ("getpid" over "__GI_getpid",
// "malloc" over "__libc_malloc").
func aliasRank(name string, bind elf.SymBind) uint8 {
	var r uint8
	if (bind == elf.STB_GLOBAL || bind == elf.STB_WEAK) &&
		!strings.HasPrefix(name, "__GI_") && !strings.HasPrefix(name, "__libc_") {
		r = 1 << 4
	}
	under := len(name) - len(strings.TrimLeft(name, "_"))
	return r + uint8(15-min(under, 15))
}

// unversioned drops the "@GLIBC_2.2.5" or "@@GLIBC_2.34" version that
// symbol tables append to versioned names.
func unversioned(name string) string {
	if i := strings.IndexByte(name, '@'); i > 0 {
		return name[:i]
	}
	return name
}
