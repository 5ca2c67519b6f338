package unwind

// DW_EH_PE pointer encodings (LSB, "DWARF Extensions": .eh_frame).
const (
	peAbsptr  = 0x00
	peUleb128 = 0x01
	peUdata2  = 0x02
	peUdata4  = 0x03
	peUdata8  = 0x04
	peSleb128 = 0x09
	peSdata2  = 0x0a
	peSdata4  = 0x0b
	peSdata8  = 0x0c

	pePcrel   = 0x10
	peTextrel = 0x20
	peDatarel = 0x30
	peFuncrel = 0x40
	peAligned = 0x50

	peIndirect = 0x80
	peOmit     = 0xff
)

// bases are the addresses the relative pointer encodings are measured from.
// data is .got on x86-64; both are zero when the file has no such section,
// which only matters for the (unseen in practice) text/datarel encodings.
type bases struct {
	text uint64
	data uint64
}

// readEncoded reads the value part of an encoded pointer, sign-extending the
// signed forms. ok is false for unknown formats, so a record using one is
// rejected instead of mis-parsed.
func readEncoded(r *reader, enc uint8) (v uint64, ok bool) {
	switch enc & 0x0f {
	case peAbsptr, peUdata8, peSdata8:
		v = r.u64()
	case peUleb128:
		v = r.uleb()
	case peUdata2:
		v = uint64(r.u16())
	case peUdata4:
		v = uint64(r.u32())
	case peSleb128:
		v = uint64(r.sleb())
	case peSdata2:
		v = uint64(int64(int16(r.u16())))
	case peSdata4:
		v = uint64(int64(int32(r.u32())))
	default:
		return 0, false
	}
	return v, r.ok()
}

// readPointer reads a pointer with its application modifier. secAddr is the
// virtual address of r.buf[0], so pcrel is the address of the field itself.
// Indirect pointers are refused: they point into writable data that only
// exists at run time, and only personality routines use them.
func readPointer(r *reader, enc uint8, secAddr uint64, b bases) (uint64, bool) {
	if enc == peOmit || enc&peIndirect != 0 {
		return 0, false
	}
	fieldAddr := secAddr + uint64(r.off)
	var base uint64
	switch enc & 0x70 {
	case peAbsptr:
	case pePcrel:
		base = fieldAddr
	case peTextrel:
		base = b.text
	case peDatarel:
		base = b.data
	case peAligned:
		// Aligned pointers start at the next address-size boundary.
		pad := (8 - fieldAddr%8) % 8
		r.skip(pad)
	default: // funcrel has no meaning for an FDE's own address.
		return 0, false
	}
	v, ok := readEncoded(r, enc)
	return base + v, ok
}

// skipPointer steps over an encoded pointer whose value we don't need (a
// personality routine), keeping the reader aligned with the record.
func skipPointer(r *reader, enc uint8) bool {
	if enc == peOmit {
		return true
	}
	if enc&0x70 == peAligned {
		return false
	}
	_, ok := readEncoded(r, enc)
	return ok
}
