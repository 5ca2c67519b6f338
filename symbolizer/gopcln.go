package symbolizer

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
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

// goLines names pcs of a Go binary: the in-place reader of Go 1.16+
// tables, or the standard library's table for older layouts.
type goLines interface {
	frames(pc uint64) []Frame
	bytes() int64
}

// goTable opens the Go function table of a Go binary, including one built
// with -ldflags='-s -w': the .gopclntab section survives stripping. For
// files without section headers the table is found by its magic number in
// the read-only segments.
func (img *elfImage) goTable() (t goLines, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, errPanic(r)
		}
	}()
	// The table and the inline trees are read from the file through one
	// page cache; a table found by scanning is read from memory.
	ra := newPagedReader(img.ra)
	var base, size, text, hdr uint64
	var data []byte // only when found by scanning, or for the old layouts
	s := img.section(".gopclntab", maxPclntabSize)
	switch {
	case s != nil && s.Flags&elf.SHF_COMPRESSED == 0:
		base, size, hdr = s.Offset, s.Size, s.Addr
	case s != nil:
		data, hdr = img.sectionData(".gopclntab", maxPclntabSize), s.Addr
	default:
		data, text, hdr = img.scanPclntab()
	}
	if data == nil && s == nil {
		return nil, nil
	}
	src := ra
	if data != nil {
		src, size = newPagedReader(bytes.NewReader(data)), uint64(len(data))
	}
	if s := img.f.Section(".text"); s != nil {
		text = s.Addr
	}
	pt, err := newPclntab(src, base, size, text)
	if err == nil {
		pt.inl = img.inlineTrees(pt, hdr, ra)
		return pt, nil
	}
	if !errors.Is(err, errOldPclntab) {
		return nil, err
	}
	if data == nil {
		data = img.sectionData(".gopclntab", maxPclntabSize)
	}
	return oldGoTable(data, text)
}

// oldGoTable reads a Go 1.2 to 1.15 table with the standard library,
// which builds every function up front: such binaries are rare now.
func oldGoTable(data []byte, text uint64) (goLines, error) {
	if err := checkPclntabHeader(data); err != nil {
		return nil, err
	}
	t, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		return nil, fmt.Errorf("%w: go pclntab: %w", ErrMalformed, err)
	}
	if len(t.Funcs) == 0 {
		return nil, nil
	}
	return &gosymTable{t: t, size: int64(len(data)) + int64(len(t.Funcs))*gosymFuncBytes}, nil
}

// gosymFuncBytes estimates what the standard library keeps per function
// (the Func and Sym records, the name and a share of the line table's caches).
const gosymFuncBytes = 256

type gosymTable struct {
	t    *gosym.Table
	size int64
}

func (g *gosymTable) frames(pc uint64) []Frame {
	f, _ := goFrames(g.t, pc)
	return f
}

func (g *gosymTable) bytes() int64 { return g.size }

// scanPclntab looks for a pclntab header in the read-only loaded segments
// and returns the data from there on and the text start: recorded in the
// header by older toolchains, found through the runtime's moduledata
// (which points at the header) by newer ones.
func (img *elfImage) scanPclntab() ([]byte, uint64, uint64) {
	if img.f.Machine != elf.EM_X86_64 && img.f.Machine != elf.EM_AARCH64 {
		return nil, 0, 0
	}
	for _, p := range img.f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&(elf.PF_X|elf.PF_W) != 0 {
			continue
		}
		seg := img.readSegment(p)
		at := findPclntab(seg)
		if at < 0 {
			continue
		}
		text := binary.LittleEndian.Uint64(seg[at+24:])
		if text == 0 {
			text = img.moduledataText(p.Vaddr + uint64(at))
		}
		return seg[at:], text, p.Vaddr + uint64(at)
	}
	return nil, 0, 0
}

// readSegment reads a loaded segment's file bytes, nil when out of bounds.
func (img *elfImage) readSegment(p *elf.Prog) []byte {
	if p.Filesz > maxPclntabSize || p.Off > uint64(img.size) || p.Filesz > uint64(img.size)-p.Off {
		return nil
	}
	seg := make([]byte, p.Filesz)
	if _, err := p.ReadAt(seg, 0); err != nil {
		return nil
	}
	return seg
}

// Offsets in the runtime's moduledata (Go 1.18+, 64-bit): the pcHeader
// pointer comes first; after six slices and findfunctab come minpc, maxpc
// and text.
const (
	moduledataMinPC = 8 + 6*24 + 8
	moduledataText  = moduledataMinPC + 16
)

// moduledataText finds the moduledata whose first word points at the
// pclntab header and returns its text start, 0 when not found (as in PIE
// binaries, whose pointers are only filled in by relocation).
func (img *elfImage) moduledataText(hdr uint64) uint64 {
	var text uint64
	img.scanWritable(hdr, func(seg []byte, off int) bool {
		if off%8 != 0 || off+moduledataText+8 > len(seg) {
			return false
		}
		minpc := binary.LittleEndian.Uint64(seg[off+moduledataMinPC:])
		text = binary.LittleEndian.Uint64(seg[off+moduledataText:])
		return text != 0 && text == minpc
	})
	return text
}

// scanWritable calls match at each place in the writable loaded segments
// holding the 64-bit little-endian word want, until match returns true.
func (img *elfImage) scanWritable(want uint64, match func(seg []byte, off int) bool) {
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], want)
	// The linker puts the moduledata in .go.module (Go 1.26) or
	// .noptrdata (before): when the section headers say where, only
	// those are read.
	for _, name := range []string{".go.module", ".noptrdata"} {
		if seg := img.sectionData(name, maxPclntabSize); seg != nil && scanWord(seg, w, match) {
			return
		}
	}
	for _, p := range img.f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_W != 0 && scanWord(img.readSegment(p), w, match) {
			return
		}
	}
}

// scanWord calls match at each place in seg holding w until it returns
// true, and reports whether it did.
func scanWord(seg []byte, w [8]byte, match func(seg []byte, off int) bool) bool {
	for off := 0; off < len(seg); off++ {
		i := bytes.Index(seg[off:], w[:])
		if i < 0 {
			return false
		}
		off += i
		if match(seg, off) {
			return true
		}
	}
	return false
}

// findPclntab returns the offset of the first plausible Go 1.18+ pclntab
// header in seg (magic, minLC in {1,2,4}, pointer size 8), or -1.
func findPclntab(seg []byte) int {
	for _, magic := range pclntabMagics[:2] {
		for off := 0; off+40 <= len(seg); {
			i := bytes.Index(seg[off:], magic)
			if i < 0 {
				break
			}
			at := off + i
			h := seg[at:]
			if len(h) >= 40 && (h[6] == 1 || h[6] == 2 || h[6] == 4) && h[7] == 8 {
				return at
			}
			off = at + 4
		}
	}
	return -1
}

// checkPclntabHeader bounds the function count the header claims by the
// table's size before the parser allocates a slot per function.
func checkPclntabHeader(data []byte) error {
	if len(data) < 16 {
		return fmt.Errorf("%w: go pclntab of %d bytes", ErrMalformed, len(data))
	}
	ptr := uint64(data[7])
	if ptr != 4 && ptr != 8 {
		return fmt.Errorf("%w: go pclntab pointer size %d", ErrMalformed, ptr)
	}
	nfunc := uint64(binary.LittleEndian.Uint32(data[8:]))
	if nfunc*8 > uint64(len(data)) {
		return fmt.Errorf("%w: go pclntab claims %d functions in %d bytes", ErrMalformed, nfunc, len(data))
	}
	return nil
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
