package symbolizer

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/flate"
)

// Bounds on what is read from an ELF file. Files come from other people's
// machines (containers, deleted binaries), so no size in them is trusted.
const (
	maxSectionSize   = 1 << 30 // any one section read into memory
	maxNoteSize      = 64 << 10
	maxLoadSegments  = 64
	maxSymbols       = 8 << 20
	maxELFSections   = 1 << 16
	maxBuildIDLength = 64
)

// elfImage is an ELF file's headers: what is needed to turn a file offset
// into a virtual address, and the build ID. Parsing symbols is left for later.
type elfImage struct {
	f       *elf.File
	ra      io.ReaderAt // the file, for reads after parsing (Go inline trees)
	size    int64
	loads   []elf.ProgHeader
	buildID string
}

// openELF parses the headers of an ELF file from ra. A panic in the parser on
// malformed input becomes an error.
func openELF(ra io.ReaderAt, size int64) (img *elfImage, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, errPanic(r)
		}
	}()
	f, err := elf.NewFile(ra)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(f.Sections) > maxELFSections {
		return nil, fmt.Errorf("%w: %d sections: %w", ErrMalformed, len(f.Sections), ErrTooLarge)
	}
	img = &elfImage{f: f, ra: ra, size: size}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		if len(img.loads) >= maxLoadSegments {
			return nil, fmt.Errorf("%w: over %d PT_LOAD segments", ErrMalformed, maxLoadSegments)
		}
		img.loads = append(img.loads, p.ProgHeader)
	}
	img.buildID = readBuildID(f, size)
	return img, nil
}

// toVaddr converts a file offset inside an executable segment to the ELF
// virtual address it is linked at. This one rule covers PIE, shared
// libraries and fixed-address executables alike.
func (img *elfImage) toVaddr(off uint64) (uint64, bool) {
	for i := range img.loads {
		p := &img.loads[i]
		if off >= p.Off && off-p.Off < p.Filesz {
			return off - p.Off + p.Vaddr, true
		}
	}
	return 0, false
}

// section returns the named section when its size is within bounds and, for
// sections stored in the file, its bytes lie inside the file.
func (img *elfImage) section(name string, limit uint64) *elf.Section {
	if s := img.f.Section(name); img.sectionOK(s, limit) {
		return s
	}
	return nil
}

// sectionOK checks a section's claimed sizes against the bound and the file.
func (img *elfImage) sectionOK(s *elf.Section, limit uint64) bool {
	if s == nil || s.Type == elf.SHT_NOBITS || s.Size > limit {
		return false
	}
	if s.Offset > uint64(img.size) || s.FileSize > uint64(img.size)-s.Offset {
		return false
	}
	return img.compressionOK(s)
}

// maxCompressionRatio bounds the size a compressed section may claim
// relative to its bytes in the file: the parser allocates the claimed size
// up front. Real debug sections compress 3 to 10 times.
const maxCompressionRatio = 256

// compressionOK checks the claimed uncompressed size of SHF_COMPRESSED and
// old-style ".zdebug" (a "ZLIB" magic and a big-endian size) sections.
func (img *elfImage) compressionOK(s *elf.Section) bool {
	limit := s.FileSize * maxCompressionRatio
	if s.Flags&elf.SHF_COMPRESSED != 0 && s.Size > limit {
		return false
	}
	if !strings.HasPrefix(s.Name, ".zdebug") {
		return true
	}
	var hdr [12]byte
	if _, err := s.ReadAt(hdr[:], 0); err != nil {
		return true // the parser fails on it without allocating
	}
	return string(hdr[:4]) != "ZLIB" || binary.BigEndian.Uint64(hdr[4:]) <= limit
}

// sectionData reads a bounded section, nil when absent or out of bounds.
func (img *elfImage) sectionData(name string, limit uint64) []byte {
	s := img.section(name, limit)
	if s == nil {
		return nil
	}
	b, err := s.Data()
	if err != nil {
		return nil
	}
	return b
}

// readBuildID returns the hex GNU build ID from a note section or a PT_NOTE
// segment, "" when there is none.
func readBuildID(f *elf.File, size int64) string {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE || s.Size > maxNoteSize || s.Offset+s.Size > uint64(size) {
			continue
		}
		b, err := s.Data()
		if err == nil {
			if id := findBuildIDNote(b, f.ByteOrder); id != "" {
				return id
			}
		}
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > maxNoteSize || p.Off+p.Filesz > uint64(size) {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err == nil {
			if id := findBuildIDNote(b, f.ByteOrder); id != "" {
				return id
			}
		}
	}
	return ""
}

// findBuildIDNote walks ELF notes (namesz, descsz, type, name, desc, each
// padded to 4 bytes) looking for NT_GNU_BUILD_ID owned by "GNU".
func findBuildIDNote(b []byte, bo interface{ Uint32([]byte) uint32 }) string {
	for len(b) >= 12 {
		namesz, descsz, typ := uint64(bo.Uint32(b)), uint64(bo.Uint32(b[4:])), bo.Uint32(b[8:])
		b = b[12:]
		nameEnd := align4(namesz)
		if nameEnd > uint64(len(b)) || descsz > uint64(len(b))-nameEnd {
			return ""
		}
		name, desc := b[:namesz], b[nameEnd:nameEnd+descsz]
		if typ == ntGNUBuildID && bytes.Equal(name, []byte("GNU\x00")) &&
			descsz > 0 && descsz <= maxBuildIDLength {
			return hex.EncodeToString(desc)
		}
		next := nameEnd + align4(descsz)
		if next > uint64(len(b)) {
			return ""
		}
		b = b[next:]
	}
	return ""
}

// ntGNUBuildID is the note type of a GNU build ID.
const ntGNUBuildID = 3

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// goRange is the text a Go table names, [lo, hi); empty when none.
type goRange struct{ lo, hi uint64 }

func (r goRange) has(addr uint64) bool { return addr >= r.lo && addr < r.hi }

// elfSymbols returns the function symbols of .symtab and .dynsym, leaving
// out those inside skip.
func (img *elfImage) elfSymbols(skip goRange) (out []symbol, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, errPanic(r)
		}
	}()
	for _, typ := range []elf.SectionType{elf.SHT_SYMTAB, elf.SHT_DYNSYM} {
		// The first section of the type is the table, as the linker
		// writes one of each: check it and its linked string table.
		s := img.f.SectionByType(typ)
		if !img.sectionOK(s, maxSectionSize) || s.Entsize == 0 || s.Size/s.Entsize > maxSymbols ||
			int(s.Link) >= len(img.f.Sections) || !img.sectionOK(img.f.Sections[s.Link], maxSectionSize) {
			continue
		}
		syms, err := img.readFuncSymbols(s, img.f.Sections[s.Link], skip)
		if err != nil {
			continue
		}
		out = append(out, syms...)
	}
	return out, nil
}

// elfCompressZlib is ch_type of an SHF_COMPRESSED section holding a zlib
// stream.
const elfCompressZlib = 1

// sectionReader returns a reader of s's uncompressed bytes. A zlib section
// (SHF_COMPRESSED) is inflated straight from the file, past its zlib
// header: the stream's checksum sits at its end, which the lazy readers
// (dwarfunit.go) seldom reach, and this inflater is faster than the one
// debug/elf opens. Anything else is left to debug/elf.
func (img *elfImage) sectionReader(s *elf.Section) io.Reader {
	if s.Flags&elf.SHF_COMPRESSED == 0 || img.ra == nil {
		return s.Open()
	}
	hdr := 24 // Elf64_Chdr: type, reserved, size, alignment
	if img.f.Class == elf.ELFCLASS32 {
		hdr = 12 // Elf32_Chdr: type, size, alignment
	}
	if s.FileSize < uint64(hdr)+2 || s.Offset > uint64(img.size) || s.FileSize > uint64(img.size)-s.Offset {
		return s.Open()
	}
	var b [26]byte
	if _, err := img.ra.ReadAt(b[:hdr+2], int64(s.Offset)); err != nil {
		return s.Open()
	}
	cmf, flg := b[hdr], b[hdr+1]
	if img.f.ByteOrder.Uint32(b[:4]) != elfCompressZlib || cmf&0x0f != 8 || cmf>>4 > 7 || flg&0x20 != 0 || (uint(cmf)<<8|uint(flg))%31 != 0 {
		return s.Open() // not a plain zlib stream: debug/elf says why
	}
	start := int64(s.Offset) + int64(hdr) + 2
	raw := io.NewSectionReader(img.ra, start, int64(s.FileSize)-int64(hdr)-2)
	return flate.NewReader(bufio.NewReaderSize(raw, 32<<10))
}

// sectionBytes reads the whole of s, uncompressed; s.Size is assumed
// checked (sectionOK).
func (img *elfImage) sectionBytes(s *elf.Section) ([]byte, error) {
	b := make([]byte, s.Size)
	if _, err := io.ReadFull(img.sectionReader(s), b); err != nil {
		return nil, err
	}
	return b, nil
}
