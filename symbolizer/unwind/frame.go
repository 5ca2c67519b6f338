package unwind

import "bytes"

// sectionKind distinguishes the two CFI flavours: they differ in how CIEs
// are recognised, how an FDE points at its CIE and how addresses are coded.
type sectionKind uint8

const (
	kindEHFrame sectionKind = iota
	kindDebugFrame
)

// section is one block of CFI to parse.
type section struct {
	data []byte
	addr uint64 // virtual address of data[0] (0 for .debug_frame: unused)
	kind sectionKind
	prio uint8 // lower wins where sections overlap
	// stopAtZero ends parsing at a zero-length record. Needed when the
	// section's size is unknown (found through program headers only) and
	// the bytes after the terminator belong to something else.
	stopAtZero bool
	bases      bases
}

// cie is the part of a Common Information Entry an FDE needs.
type cie struct {
	codeAlign uint64
	dataAlign int64
	raReg     uint64
	fdeEnc    uint8
	addrSize  uint8
	segSize   uint8
	hasAug    bool // "z": FDEs carry an augmentation length
	signal    bool // "S": signal trampoline
	initial   []byte
	initOff   int        // section offset of initial, for pc-relative set_loc
	init      frameState // state after the initial instructions
	bad       bool
}

// Records larger than the section are rejected by the reader; these bounds
// keep the arithmetic on file values within what the interpreter handles.
const (
	maxAlign = 1 << 20
)

// recordHeader reads a CFI record's length and CIE id/pointer field. It
// returns the end of the record, the id, the offset where the id field
// started, and whether the record uses 64-bit DWARF.
func recordHeader(r *reader) (end int, id uint64, idPos int, is64 bool, ok bool) {
	length := uint64(r.u32())
	if length == 0xffffffff {
		length = r.u64()
		is64 = true
	}
	if !r.ok() || length > uint64(r.remaining()) {
		return 0, 0, 0, false, false
	}
	end = r.off + int(length)
	idPos = r.off
	sub := reader{buf: r.buf[:end], off: r.off}
	if is64 {
		id = sub.u64()
	} else {
		id = uint64(sub.u32())
	}
	r.off = sub.off
	return end, id, idPos, is64, sub.ok()
}

func isCIEID(kind sectionKind, id uint64, is64 bool) bool {
	if kind == kindEHFrame {
		return id == 0
	}
	if is64 {
		return id == ^uint64(0)
	}
	return id == 0xffffffff
}

// parseCIE decodes the CIE at off. A CIE that can't be decoded comes back
// with bad set, so each FDE using it is counted as malformed once.
func parseCIE(sec *section, off uint64) *cie {
	c := &cie{bad: true, addrSize: 8}
	if off >= uint64(len(sec.data)) {
		return c
	}
	r := reader{buf: sec.data, off: int(off)}
	end, id, _, is64, ok := recordHeader(&r)
	if !ok || !isCIEID(sec.kind, id, is64) {
		return c
	}
	r.buf = r.buf[:end]
	if !c.decode(&r, sec.kind) {
		return c
	}
	c.initial, c.initOff = r.buf[r.off:], r.off
	c.bad = false
	return c
}

// decode reads the CIE fields after the id.
func (c *cie) decode(r *reader, kind sectionKind) bool {
	version := r.u8()
	if version != 1 && version != 3 && (version != 4 || kind != kindDebugFrame) {
		return false
	}
	aug := r.cstring()
	if bytes.HasPrefix(aug, []byte("eh")) {
		r.skip(8) // old GCC: the address of the exception table
	}
	if version >= 4 {
		c.addrSize = r.u8()
		c.segSize = r.u8()
	}
	c.codeAlign = r.uleb()
	c.dataAlign = r.sleb()
	if version == 1 {
		c.raReg = uint64(r.u8())
	} else {
		c.raReg = r.uleb()
	}
	if !r.ok() || c.codeAlign > maxAlign || c.dataAlign > maxAlign || c.dataAlign < -maxAlign {
		return false
	}
	if c.addrSize != 4 && c.addrSize != 8 {
		return false
	}
	return c.decodeAugmentation(r, aug)
}

// decodeAugmentation handles the "z" family. Without "z" only the empty and
// old "eh" strings are understood: anything else has data of unknown size.
func (c *cie) decodeAugmentation(r *reader, aug []byte) bool {
	if len(aug) == 0 || bytes.Equal(aug, []byte("eh")) {
		return true
	}
	if aug[0] != 'z' {
		return false
	}
	c.hasAug = true
	data := r.take(r.uleb())
	if !r.ok() {
		return false
	}
	ar := reader{buf: data}
	for _, ch := range aug[1:] {
		switch ch {
		case 'L':
			ar.u8() // LSDA encoding; the LSDA itself is in the FDE's data
		case 'P':
			if !skipPointer(&ar, ar.u8()) {
				return false
			}
		case 'R':
			c.fdeEnc = ar.u8()
		case 'S':
			c.signal = true
		case 'B', 'G':
			// AArch64 pointer-auth key and MTE tags: no data, no effect here.
		default:
			// The length in "z" lets us skip what we don't know, but a later
			// 'R' can't be found past an unknown letter: keep what we have.
			return ar.ok()
		}
	}
	return ar.ok()
}

// fdeInfo is a decoded FDE header.
type fdeInfo struct {
	lo, hi   uint64
	instr    []byte
	instrOff int // section offset of instr
}

// parseFDE decodes the FDE header fields after the CIE pointer (r positioned
// there, r.buf ending at the record end).
func parseFDE(r *reader, sec *section, c *cie) (fdeInfo, bool) {
	var f fdeInfo
	var lo, size uint64
	if sec.kind == kindEHFrame {
		var ok1, ok2 bool
		lo, ok1 = readPointer(r, c.fdeEnc, sec.addr, sec.bases)
		size, ok2 = readEncoded(r, c.fdeEnc&0x0f)
		if !ok1 || !ok2 {
			return f, false
		}
	} else {
		r.skip(uint64(c.segSize))
		lo = readAddr(r, c.addrSize)
		size = readAddr(r, c.addrSize)
	}
	if c.hasAug {
		r.skip(r.uleb())
	}
	if !r.ok() || lo+size < lo {
		return f, false
	}
	f.lo, f.hi = lo, lo+size
	f.instr, f.instrOff = r.buf[r.off:], r.off
	return f, true
}

func readAddr(r *reader, size uint8) uint64 {
	if size == 4 {
		return uint64(r.u32())
	}
	return r.u64()
}
