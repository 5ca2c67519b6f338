package symbolizer

import (
	"debug/elf"
	"encoding/binary"
)

// Relocation types that store load base + addend: how a PIE Go binary's
// moduledata pointers are filled in at load time.
const (
	rX8664Relative   = 8
	rAArch64Relative = 1027
	relaEntSize      = 24
	maxModuledatas   = 4
)

// moduledataFromRelocs rebuilds the moduledata of a PIE binary, whose
// pointer words are zero in the file: the relocation whose addend is the
// pclntab header (hdr) sits at the moduledata's first word, and those
// inside it give the other pointers.
func (img *elfImage) moduledataFromRelocs(hdr uint64) ([]byte, bool) {
	if img.f.Type != elf.ET_DYN || img.f.Class != elf.ELFCLASS64 {
		return nil, false
	}
	var cands []uint64
	img.scanRelative(func(off, addend uint64) bool {
		if addend == hdr && off%8 == 0 {
			cands = append(cands, off)
		}
		return len(cands) >= maxModuledatas
	})
	for _, md := range cands {
		if b, ok := img.relocatedModuledata(md); ok {
			return b, true
		}
	}
	return nil, false
}

// relocatedModuledata reads the moduledata at md with its relocated words
// filled in, and checks that minpc equals text.
func (img *elfImage) relocatedModuledata(md uint64) ([]byte, bool) {
	n := uint64(moduledataGofunc + 8)
	off, ok := fileOffset(img.loads, md, n)
	if !ok {
		return nil, false
	}
	b := make([]byte, n)
	if _, err := img.ra.ReadAt(b, int64(off)); err != nil {
		return nil, false
	}
	img.scanRelative(func(at, addend uint64) bool {
		if at >= md && at-md <= n-8 {
			binary.LittleEndian.PutUint64(b[at-md:], addend)
		}
		return false
	})
	minpc := binary.LittleEndian.Uint64(b[moduledataMinPC:])
	text := binary.LittleEndian.Uint64(b[moduledataText:])
	return b, text != 0 && text == minpc
}

// scanRelative calls fn with the place and addend of each relative
// relocation in the RELA sections, read in chunks, until fn returns true.
func (img *elfImage) scanRelative(fn func(off, addend uint64) bool) {
	want := uint32(rX8664Relative)
	if img.f.Machine == elf.EM_AARCH64 {
		want = rAArch64Relative
	}
	buf := make([]byte, 2730*relaEntSize) // about 64 KiB
	for _, s := range img.f.Sections {
		if s.Type != elf.SHT_RELA || s.Entsize != relaEntSize || !img.sectionOK(s, maxSectionSize) {
			continue
		}
		for at := uint64(0); at+relaEntSize <= s.Size; at += uint64(len(buf)) {
			chunk := buf[:min(uint64(len(buf)), (s.Size-at)/relaEntSize*relaEntSize)]
			if _, err := s.ReadAt(chunk, int64(at)); err != nil {
				break
			}
			for e := chunk; len(e) >= relaEntSize; e = e[relaEntSize:] {
				info := img.f.ByteOrder.Uint64(e[8:])
				if uint32(info) == want && fn(img.f.ByteOrder.Uint64(e), img.f.ByteOrder.Uint64(e[16:])) {
					return
				}
			}
		}
	}
}
