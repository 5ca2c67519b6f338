package symbolizer

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"
)

// Bounds on reading a symbol table: the entries are read in chunks of
// symChunk bytes and names are cut at maxSymNameLen.
const (
	symChunk      = 64 << 10
	maxSymNameLen = 64 << 10
)

// readFuncSymbols reads the function symbols of the symbol table s whose
// names are in strtab, leaving out those inside skip. The entries are read
// in chunks and decoded in place; the string table is read once, when the
// first symbol is kept, and the names are slices of it rather than a copy
// each (newSymtab packs the names it keeps), so a Go binary's table (whose
// functions the Go table names) costs little and a C library's costs no
// allocation per symbol.
func (img *elfImage) readFuncSymbols(s, strtab *elf.Section, skip goRange) ([]symbol, error) {
	if s.Entsize < symEntSize(img.f.Class == elf.ELFCLASS64) || s.Entsize > 1<<10 {
		return nil, fmt.Errorf("%w: symbol entry size %d", ErrMalformed, s.Entsize)
	}
	n := s.Size / s.Entsize
	if n > maxSymbols {
		return nil, fmt.Errorf("%w: %d symbols: %w", ErrMalformed, n, ErrTooLarge)
	}
	d := symDecoder{
		bo:      img.f.ByteOrder,
		is64:    img.f.Class == elf.ELFCLASS64,
		entsize: s.Entsize,
		skip:    skip,
		load: func() (string, error) {
			b, err := strtab.Data()
			if err != nil {
				return "", fmt.Errorf("%w: reading %s: %w", ErrMalformed, strtab.Name, err)
			}
			return bytesString(b), nil
		},
	}
	// A table of up to symWhole bytes is read at once; a larger one in
	// chunks, twice: once to count the symbols kept, once to decode them.
	per := max(symChunk/s.Entsize, 1)
	if n*s.Entsize <= symWhole {
		per = max(n, 1)
	}
	buf := make([]byte, min(per, n)*s.Entsize)
	read := func(i uint64) ([]byte, error) {
		chunk := buf[:min(per, n-i)*s.Entsize]
		if _, err := s.ReadAt(chunk, int64(i*s.Entsize)); err != nil {
			return nil, fmt.Errorf("%w: reading %s: %w", ErrMalformed, s.Name, err)
		}
		return chunk, nil
	}
	kept := 0
	for i := uint64(1); i < n; i += per { // entry 0 is the null symbol
		chunk, err := read(i)
		if err != nil {
			return nil, err
		}
		kept += d.count(chunk)
		if per >= n {
			// The whole table is in buf: decode it without reading again.
			return d.decode(make([]symbol, 0, kept), chunk)
		}
	}
	if kept == 0 {
		return nil, nil
	}
	out := make([]symbol, 0, kept)
	for i := uint64(1); i < n; i += per {
		chunk, err := read(i)
		if err != nil {
			return nil, err
		}
		if out, err = d.decode(out, chunk); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// symWhole is the largest symbol table read in one piece (a variable for
// the tests of reading in chunks).
var symWhole uint64 = 1 << 20

// bytesString views b, which nothing writes to again, as a string.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// symDecoder decodes the entries of one symbol table.
type symDecoder struct {
	bo      binary.ByteOrder
	is64    bool
	entsize uint64 // at least an entry's size: checked by the caller
	skip    goRange

	// load reads the string table, on the first symbol kept.
	load   func() (string, error)
	loaded bool
	strs   string
}

// symEntSize is the size of an ELF symbol entry.
func symEntSize(is64 bool) uint64 {
	if is64 {
		return 24
	}
	return 16
}

// entry decodes one entry of at least d.entsize bytes, reporting whether
// it is a function with code outside d.skip and a name.
func (d *symDecoder) entry(e []byte) (value, size uint64, nameOff uint32, info byte, ok bool) {
	var shndx uint16
	nameOff = d.bo.Uint32(e)
	if d.is64 {
		info, shndx = e[4], d.bo.Uint16(e[6:])
		value, size = d.bo.Uint64(e[8:]), d.bo.Uint64(e[16:])
	} else {
		value, size = uint64(d.bo.Uint32(e[4:])), uint64(d.bo.Uint32(e[8:]))
		info, shndx = e[12], d.bo.Uint16(e[14:])
	}
	t := elf.ST_TYPE(info)
	ok = (t == elf.STT_FUNC || t == elf.STT_GNU_IFUNC) && value != 0 && nameOff != 0 &&
		elf.SectionIndex(shndx) != elf.SHN_UNDEF && !d.skip.has(value)
	return value, size, nameOff, info, ok
}

// count is how many of the whole entries of ents decode may keep: at
// most that many, as it drops those whose names are out of bounds.
func (d *symDecoder) count(ents []byte) int {
	if !d.sizeOK() {
		return 0
	}
	n := 0
	for es := int(d.entsize); len(ents) >= es; ents = ents[es:] {
		if _, _, _, _, ok := d.entry(ents[:es]); ok {
			n++
		}
	}
	return n
}

func (d *symDecoder) sizeOK() bool {
	return d.entsize >= symEntSize(d.is64) && d.entsize <= 1<<10
}

// decode appends to out the named functions with code outside d.skip
// among the whole entries of ents.
func (d *symDecoder) decode(out []symbol, ents []byte) ([]symbol, error) {
	if !d.sizeOK() {
		return nil, fmt.Errorf("%w: symbol entry size %d", ErrMalformed, d.entsize)
	}
	for es := int(d.entsize); len(ents) >= es; ents = ents[es:] {
		value, size, nameOff, info, ok := d.entry(ents[:es])
		if !ok {
			continue
		}
		if !d.loaded {
			strs, err := d.load()
			if err != nil {
				return nil, err
			}
			d.strs, d.loaded = strs, true
		}
		name := symString(d.strs, nameOff)
		if name == "" {
			continue
		}
		name = unversioned(name)
		out = append(out, symbol{addr: value, size: size, name: name, rank: aliasRank(name, elf.ST_BIND(info))})
	}
	return out, nil
}

// symString is the NUL-terminated name at off of a string table: a slice
// of strs, "" when off is outside it or no NUL ends the name within
// maxSymNameLen bytes.
func symString(strs string, off uint32) string {
	if uint64(off) >= uint64(len(strs)) {
		return ""
	}
	b := strs[off:]
	if i := strings.IndexByte(b[:min(len(b), maxSymNameLen)], 0); i >= 0 {
		return b[:i]
	}
	return ""
}
