package symbolizer

import (
	"bytes"
	"debug/elf"
	"fmt"
)

// Bounds on reading a symbol table: the entries are read in chunks of
// symChunk bytes and names are cut at maxSymNameLen.
const (
	symChunk      = 64 << 10
	maxSymNameLen = 64 << 10
)

// rawSym is a function symbol kept before its name is read.
type rawSym struct {
	name        uint32
	value, size uint64
	bind        elf.SymBind
}

// readFuncSymbols reads the function symbols of the symbol table s whose
// names are in strtab, leaving out those inside skip. The entries are read
// in chunks and only the names of the symbols kept are copied, so a Go
// binary's table (whose functions the Go table names) costs little.
func (img *elfImage) readFuncSymbols(s, strtab *elf.Section, skip goRange) ([]symbol, error) {
	min := uint64(16)
	if img.f.Class == elf.ELFCLASS64 {
		min = 24
	}
	if s.Entsize < min || s.Entsize > 1<<10 {
		return nil, fmt.Errorf("%w: symbol entry size %d", ErrMalformed, s.Entsize)
	}
	kept, err := img.scanSymbols(s, skip)
	if err != nil || len(kept) == 0 {
		return nil, err
	}
	strs, err := strtab.Data()
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrMalformed, strtab.Name, err)
	}
	out := make([]symbol, 0, len(kept))
	for _, k := range kept {
		name := symString(strs, k.name)
		if name == "" {
			continue
		}
		name = unversioned(name)
		out = append(out, symbol{addr: k.value, size: k.size, name: name, rank: aliasRank(name, k.bind)})
	}
	return out, nil
}

// scanSymbols reads the entries of s chunk by chunk and keeps the named
// functions with code outside skip.
func (img *elfImage) scanSymbols(s *elf.Section, skip goRange) ([]rawSym, error) {
	n := s.Size / s.Entsize
	per := max(symChunk/s.Entsize, 1)
	buf := make([]byte, per*s.Entsize)
	var kept []rawSym
	for i := uint64(1); i < n; i += per { // entry 0 is the null symbol
		cnt := min(per, n-i)
		chunk := buf[:cnt*s.Entsize]
		if _, err := s.ReadAt(chunk, int64(i*s.Entsize)); err != nil {
			return nil, fmt.Errorf("%w: reading %s: %w", ErrMalformed, s.Name, err)
		}
		for j := uint64(0); j < cnt; j++ {
			if r, ok := img.funcSym(chunk[j*s.Entsize:]); ok && !skip.has(r.value) {
				kept = append(kept, r)
			}
		}
	}
	return kept, nil
}

// funcSym decodes one symbol entry, reporting whether it is a named
// function with code.
func (img *elfImage) funcSym(e []byte) (rawSym, bool) {
	bo := img.f.ByteOrder
	var r rawSym
	var info byte
	var shndx uint16
	r.name = bo.Uint32(e)
	if img.f.Class == elf.ELFCLASS64 {
		info, shndx = e[4], bo.Uint16(e[6:])
		r.value, r.size = bo.Uint64(e[8:]), bo.Uint64(e[16:])
	} else {
		r.value, r.size = uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[8:]))
		info, shndx = e[12], bo.Uint16(e[14:])
	}
	t := elf.ST_TYPE(info)
	r.bind = elf.ST_BIND(info)
	ok := (t == elf.STT_FUNC || t == elf.STT_GNU_IFUNC) && r.value != 0 && r.name != 0 &&
		elf.SectionIndex(shndx) != elf.SHN_UNDEF
	return r, ok
}

// symString is the NUL-terminated name at off of a string table.
func symString(strs []byte, off uint32) string {
	if uint64(off) >= uint64(len(strs)) {
		return ""
	}
	b := strs[off:]
	if i := bytes.IndexByte(b[:min(len(b), maxSymNameLen)], 0); i >= 0 {
		return string(b[:i])
	}
	return ""
}
