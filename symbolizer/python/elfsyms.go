package python

import (
	"debug/elf"
	"errors"
	"fmt"
)

// maxSymSection bounds a symbol or string table read from a file; the
// largest interpreters' tables are a few MiB.
const maxSymSection = 64 << 20

// elfSym is a defined symbol found in a file.
type elfSym struct {
	value, size uint64
	section     elf.SectionIndex
	found       bool
}

var errSymbols = errors.New("malformed symbol table")

// findSymbols looks the defined symbols names up in .dynsym, then .symtab
// (a stripped executable keeps only the first, a library's internal symbols
// are only in the second). It compares names in place rather than build
// every symbol's string: interpreters hold tens of thousands.
func findSymbols(f *elf.File, names ...string) ([]elfSym, error) {
	syms := make([]elfSym, len(names))
	for _, typ := range []elf.SectionType{elf.SHT_DYNSYM, elf.SHT_SYMTAB} {
		for _, s := range f.Sections {
			if s.Type != typ {
				continue
			}
			if err := scanSymbols(f, s, names, syms); err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
		}
	}
	return syms, nil
}

// scanSymbols fills syms with the symbols of table s named names, unless
// already found.
func scanSymbols(f *elf.File, s *elf.Section, names []string, syms []elfSym) error {
	entSize := 24
	if f.Class == elf.ELFCLASS32 {
		entSize = 16
	}
	if int(s.Link) <= 0 || int(s.Link) >= len(f.Sections) {
		return fmt.Errorf("%w: string table %d", errSymbols, s.Link)
	}
	data, err := sectionData(s)
	if err != nil {
		return err
	}
	strs, err := sectionData(f.Sections[s.Link])
	if err != nil {
		return err
	}
	for off := entSize; off+entSize <= len(data); off += entSize {
		sym := parseSym(f, data[off:off+entSize])
		if sym.section == elf.SHN_UNDEF {
			continue // a reference to another file's symbol
		}
		name := f.ByteOrder.Uint32(data[off:])
		for i, want := range names {
			if !syms[i].found && nameAt(strs, name, want) {
				syms[i] = sym
			}
		}
	}
	return nil
}

// parseSym decodes one symbol table entry (of the file's class).
func parseSym(f *elf.File, b []byte) elfSym {
	bo := f.ByteOrder
	if f.Class == elf.ELFCLASS32 {
		return elfSym{value: uint64(bo.Uint32(b[4:])), size: uint64(bo.Uint32(b[8:])),
			section: elf.SectionIndex(bo.Uint16(b[14:])), found: true}
	}
	return elfSym{value: bo.Uint64(b[8:]), size: bo.Uint64(b[16:]),
		section: elf.SectionIndex(bo.Uint16(b[6:])), found: true}
}

// nameAt says whether the NUL-terminated string at off in strs is want.
func nameAt(strs []byte, off uint32, want string) bool {
	end := uint64(off) + uint64(len(want))
	return end < uint64(len(strs)) && strs[end] == 0 && string(strs[off:end]) == want
}

// sectionData reads a section of bounded size that the file holds.
func sectionData(s *elf.Section) ([]byte, error) {
	if s.Type == elf.SHT_NOBITS || s.Size > maxSymSection {
		return nil, fmt.Errorf("%w: section %q of type %v, %d bytes", errSymbols, s.Name, s.Type, s.Size)
	}
	return s.Data()
}

// symbolBytes reads the first n bytes of sym's value from the file.
func symbolBytes(f *elf.File, sym elfSym, n int) ([]byte, error) {
	if sym.section >= elf.SHN_LORESERVE || int(sym.section) >= len(f.Sections) {
		return nil, fmt.Errorf("symbol in section %d", sym.section)
	}
	s := f.Sections[sym.section]
	if s.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("symbol in %s, which the file does not hold", s.Name)
	}
	if sym.value < s.Addr || s.Size < uint64(n) || sym.value-s.Addr > s.Size-uint64(n) {
		return nil, fmt.Errorf("symbol at %#x outside %s", sym.value, s.Name)
	}
	buf := make([]byte, n)
	if _, err := s.ReadAt(buf, int64(sym.value-s.Addr)); err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.Name, err)
	}
	return buf, nil
}
