package symbolizer

import (
	"debug/dwarf"
	"encoding/binary"
	"fmt"
	"sort"
)

// The few pieces of DWARF's encoding that reading one unit at a time needs
// and debug/dwarf does not export: .debug_aranges, unit headers and
// abbreviation tables.

// parseAranges reads the address ranges of each unit from .debug_aranges,
// sorted by start (32-bit DWARF, no segments).
func parseAranges(b []byte, order binary.ByteOrder) ([]cuRange, error) {
	var out []cuRange
	for off := 0; off+16 <= len(b) && len(out) < maxCUs; {
		n := int(order.Uint32(b[off:]))
		if n >= 0xfffffff0 || n < 12 || n > len(b)-off-4 {
			return nil, fmt.Errorf("%w: aranges set at %#x", ErrMalformed, off)
		}
		set := b[off : off+4+n]
		cu := dwarf.Offset(order.Uint32(set[6:]))
		asize, seg := int(set[10]), set[11]
		if asize != 8 || seg != 0 {
			return nil, fmt.Errorf("%w: aranges set at %#x: address size %d, segment size %d", ErrMalformed, off, asize, seg)
		}
		// Tuples start at a multiple of twice the address size.
		for p := 16; p+16 <= len(set); p += 16 {
			lo, size := order.Uint64(set[p:]), order.Uint64(set[p+8:])
			if lo == 0 && size == 0 {
				break
			}
			if size > 0 && lo != 0 && lo+size > lo {
				out = append(out, cuRange{lo: lo, hi: lo + size, off: cu})
			}
		}
		off += 4 + n
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo < out[j].lo })
	return out, nil
}

// unitHeader is what a 32-bit compilation unit header says about its
// layout.
type unitHeader struct {
	version  int
	addrSize int
	abbrevAt int // where the abbreviation table's offset sits in the header
}

func parseUnitHeader(unit []byte, order binary.ByteOrder) (unitHeader, error) {
	if len(unit) < 12 {
		return unitHeader{}, fmt.Errorf("%w: short unit", ErrMalformed)
	}
	h := unitHeader{version: int(order.Uint16(unit[4:]))}
	switch {
	case h.version >= 2 && h.version <= 4:
		h.abbrevAt, h.addrSize = 6, int(unit[10])
	case h.version == 5:
		// DW_UT_compile and DW_UT_partial only: skeleton and type units
		// carry more header.
		if t := unit[6]; t != 0x01 && t != 0x03 {
			return h, fmt.Errorf("%w: DWARF 5 unit type %#x", errUnsupportedUnit, t)
		}
		h.abbrevAt, h.addrSize = 8, int(unit[7])
	default:
		return h, fmt.Errorf("%w: DWARF version %d", ErrMalformed, h.version)
	}
	return h, nil
}

func (h unitHeader) abbrevOffset(unit []byte, order binary.ByteOrder) uint64 {
	return uint64(order.Uint32(unit[h.abbrevAt:]))
}

func (h unitHeader) setAbbrevOffset(unit []byte, order binary.ByteOrder, v uint32) {
	order.PutUint32(unit[h.abbrevAt:], v)
}

// DWARF forms the rewrite touches.
const (
	formData4       = 0x06
	formData8       = 0x07
	formRefAddr     = 0x10
	formIndirect    = 0x16
	formImplicitCst = 0x21
)

// refAddrForm is the data form of DW_FORM_ref_addr's size: the address
// size in DWARF 2, the offset size (4 here) from DWARF 3 on.
func (h unitHeader) refAddrForm() uint64 {
	if h.version == 2 && h.addrSize == 8 {
		return formData8
	}
	return formData4
}

// rewriteAbbrevs copies the abbreviation table at the start of b with every
// DW_FORM_ref_addr replaced by refAddr. done is false when b ends before
// the table does.
func rewriteAbbrevs(b []byte, refAddr uint64) (tab []byte, done bool, err error) {
	p := 0
	next := func() (uint64, bool) {
		v, n := uleb(b[p:])
		p += n
		return v, n > 0
	}
	for {
		code, ok := next()
		if !ok {
			return nil, false, nil
		}
		if code == 0 {
			break
		}
		if _, ok := next(); !ok { // tag
			return nil, false, nil
		}
		if p >= len(b) {
			return nil, false, nil
		}
		p++ // children
		for {
			attr, ok1 := next()
			formAt := p
			form, ok2 := next()
			if !ok1 || !ok2 {
				return nil, false, nil
			}
			if attr == 0 && form == 0 {
				break
			}
			switch form {
			case formIndirect:
				return nil, false, fmt.Errorf("%w: DW_FORM_indirect", errUnsupportedUnit)
			case formImplicitCst:
				_, n := uleb(b[p:]) // a signed LEB128: the same length
				if n == 0 {
					return nil, false, nil
				}
				p += n
			case formRefAddr:
				if p-formAt != 1 {
					return nil, false, fmt.Errorf("%w: a padded DW_FORM_ref_addr", errUnsupportedUnit)
				}
				tab = append(tab, b[len(tab):formAt]...)
				tab = append(tab, byte(refAddr))
			}
		}
	}
	return append(tab, b[len(tab):p]...), true, nil
}

// uleb decodes an unsigned LEB128, returning its length, 0 when b ends
// first or it is too long.
func uleb(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
