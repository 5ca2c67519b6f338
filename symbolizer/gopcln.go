package symbolizer

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"fmt"
)

// maxPclntabSize bounds the Go line table read into memory.
const maxPclntabSize = 512 << 20

// pclntab magic numbers of Go 1.2, 1.16, 1.18 and 1.20+ (little endian).
var pclntabMagics = [][]byte{
	{0xf1, 0xff, 0xff, 0xff, 0, 0},
	{0xf0, 0xff, 0xff, 0xff, 0, 0},
	{0xfa, 0xff, 0xff, 0xff, 0, 0},
	{0xfb, 0xff, 0xff, 0xff, 0, 0},
}

// goTable opens the Go function table of a Go binary, including one built
// with -ldflags='-s -w': the .gopclntab section survives stripping. For
// files without section headers the table is found by its magic number in
// the read-only segments.
func (img *elfImage) goTable() (t *gosym.Table, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, errPanic(r)
		}
	}()
	data, text := img.sectionData(".gopclntab", maxPclntabSize), uint64(0)
	if data == nil {
		data, text = img.scanPclntab()
	}
	if data == nil {
		return nil, nil
	}
	if s := img.f.Section(".text"); s != nil {
		text = s.Addr
	}
	t, err = gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		return nil, fmt.Errorf("%w: go pclntab: %w", ErrMalformed, err)
	}
	if len(t.Funcs) == 0 {
		return nil, nil
	}
	return t, nil
}

// scanPclntab looks for a Go 1.18+ pclntab header in non-executable loaded
// segments and returns the data from there on and the text start the
// header records.
func (img *elfImage) scanPclntab() ([]byte, uint64) {
	if img.f.Machine != elf.EM_X86_64 && img.f.Machine != elf.EM_AARCH64 {
		return nil, 0
	}
	for _, p := range img.f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X != 0 || p.Filesz > maxPclntabSize ||
			p.Off > uint64(img.size) || p.Filesz > uint64(img.size)-p.Off {
			continue
		}
		seg := make([]byte, p.Filesz)
		if _, err := p.ReadAt(seg, 0); err != nil {
			continue
		}
		if data, text := findPclntab(seg); data != nil {
			return data, text
		}
	}
	return nil, 0
}

// findPclntab returns the first plausible pclntab in seg: magic, then
// minLC in {1,2,4} and pointer size 8, then for Go 1.18+ the text start.
func findPclntab(seg []byte) ([]byte, uint64) {
	for _, magic := range pclntabMagics[:2] {
		for off := 0; off+40 <= len(seg); {
			i := bytes.Index(seg[off:], magic)
			if i < 0 {
				break
			}
			at := off + i
			h := seg[at:]
			if len(h) >= 32 && (h[6] == 1 || h[6] == 2 || h[6] == 4) && h[7] == 8 {
				return h, binary.LittleEndian.Uint64(h[24:])
			}
			off = at + 4
		}
	}
	return nil, 0
}

// goFrames names pc from the Go table: one frame, as the table records the
// outermost function (inlined Go calls need DWARF).
func goFrames(t *gosym.Table, pc uint64) (out []Frame, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, errPanic(r)
		}
	}()
	file, line, fn := t.PCToLine(pc)
	if fn == nil {
		return nil, nil
	}
	return []Frame{{Function: fn.Name, File: file, Line: line}}, nil
}
