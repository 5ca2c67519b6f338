package symbolizer

import (
	"debug/elf"
	"encoding/binary"
)

// Indexes of the inline tables among a Go function's pcdata and funcdata,
// and the size of one inlinedCall record (funcID, padding, nameOff,
// parentPc, startLine): the layout the runtime has used since Go 1.20.
const (
	pcdataInlTreeIndex = 2
	funcdataInlTree    = 3
	inlinedCallSize    = 16
)

// Offsets in the runtime's moduledata (Go 1.20+, 64-bit) of the fields
// that locate the inline trees: rodata, then gofunc, the base that
// funcdata offsets count from.
const (
	moduledataRodata = moduledataText + 17*8
	moduledataGofunc = moduledataRodata + 8
)

// inlineTrees reads the inline trees of a Go binary from its file on
// demand, 16 bytes per inlined frame: they live in read-only data next to
// the other funcdata, which is never read into memory whole.
type inlineTrees struct {
	ra     *pagedReader // the file, through the table's page cache
	gofunc uint64
	loads  []elf.ProgHeader
}

// inlinedCall is one node of an inline tree.
type inlinedCall struct {
	nameOff  uint32
	parentPC int32
}

// call reads node ix of the tree at offset tree from gofunc.
func (it *inlineTrees) call(tree uint32, ix int32) (inlinedCall, bool) {
	vaddr := it.gofunc + uint64(tree) + uint64(ix)*inlinedCallSize
	off, ok := fileOffset(it.loads, vaddr, inlinedCallSize)
	if !ok {
		return inlinedCall{}, false
	}
	var b [inlinedCallSize]byte
	if _, err := it.ra.ReadAt(b[:], int64(off)); err != nil {
		return inlinedCall{}, false
	}
	return inlinedCall{nameOff: binary.LittleEndian.Uint32(b[4:]), parentPC: int32(binary.LittleEndian.Uint32(b[8:]))}, true
}

// fileOffset maps n bytes at vaddr to their offset in the file, when a
// loaded segment holds all of them.
func fileOffset(loads []elf.ProgHeader, vaddr, n uint64) (uint64, bool) {
	for i := range loads {
		p := &loads[i]
		if vaddr >= p.Vaddr && vaddr-p.Vaddr <= p.Filesz && p.Filesz-(vaddr-p.Vaddr) >= n {
			return vaddr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// inlinedFrames returns the inlined calls at pc in f, innermost first,
// each at its own position, and the pc of the call site in f itself that
// gives the outermost frame its line.
func (t *pclntab) inlinedFrames(f goFunc, pc uint64) ([]Frame, uint64) {
	if f.npcdata <= pcdataInlTreeIndex || f.nfuncdata <= funcdataInlTree {
		return nil, pc
	}
	idx, ok1 := t.pcln.u32(f.pcdataAt + 4*pcdataInlTreeIndex)
	tree, ok2 := t.pcln.u32(f.funcdataAt + 4*funcdataInlTree)
	if !ok1 || !ok2 || idx == 0 || tree == ^uint32(0) {
		return nil, pc
	}
	var out []Frame
	for depth := 0; depth < maxInlineDepth; depth++ {
		ix := t.pcvalue(idx, f.entry, pc)
		if ix < 0 {
			break
		}
		call, ok := t.inl.call(tree, ix)
		if !ok || call.parentPC < 0 {
			break
		}
		file, line := t.fileLine(f, pc)
		out = append(out, Frame{Function: t.funcName(call.nameOff), File: file, Line: line})
		pc = f.entry + uint64(call.parentPC)
	}
	return out, pc
}

// inlineTrees locates gofunc through the runtime's moduledata, found by
// its first word pointing at the pclntab header (hdr), or in PIE binaries
// through the relocations that fill that word in. Only Go 1.20+ tables
// are expanded; nil when the moduledata is not found.
func (img *elfImage) inlineTrees(t *pclntab, hdr uint64, ra *pagedReader) *inlineTrees {
	if t.magic != pclnGo120 || t.ptr != 8 || img.f.Class != elf.ELFCLASS64 {
		return nil
	}
	md, ok := img.findModuledata(hdr)
	if !ok {
		md, ok = img.moduledataFromRelocs(hdr)
	}
	if !ok {
		return nil
	}
	rodata := binary.LittleEndian.Uint64(md[moduledataRodata:])
	gofunc := binary.LittleEndian.Uint64(md[moduledataGofunc:])
	if rodata == 0 || gofunc < rodata {
		return nil
	}
	if _, ok := fileOffset(img.loads, gofunc, 1); !ok {
		return nil
	}
	return &inlineTrees{ra: ra, gofunc: gofunc, loads: img.loads}
}

// findModuledata returns the bytes of the moduledata whose first word is
// hdr and whose minpc equals its text start.
func (img *elfImage) findModuledata(hdr uint64) ([]byte, bool) {
	var found []byte
	img.scanWritable(hdr, func(seg []byte, off int) bool {
		if off%8 != 0 || off+moduledataGofunc+8 > len(seg) {
			return false
		}
		minpc := binary.LittleEndian.Uint64(seg[off+moduledataMinPC:])
		text := binary.LittleEndian.Uint64(seg[off+moduledataText:])
		if text == 0 || text != minpc {
			return false
		}
		found = append([]byte(nil), seg[off:off+moduledataGofunc+8]...) // not the whole segment
		return true
	})
	return found, found != nil
}
