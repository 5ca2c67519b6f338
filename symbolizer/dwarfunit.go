package symbolizer

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Reading DWARF one compilation unit at a time. Opening a file's DWARF as a
// whole decompresses every section and makes debug/dwarf parse the header
// and abbreviation table of every unit: for libc's debug file that is most
// of the cost of its first address. Here .debug_aranges finds the unit
// holding an address, and only the bytes up to that unit, its
// abbreviation table and its line program are decompressed (compressed
// sections are zlib streams, so a prefix), then handed to debug/dwarf as a
// file of one unit.
//
// Offsets: debug/dwarf sees the unit at offset 0, so its entry offsets and
// unit-relative references (DW_FORM_ref4 ...) come back relative to the
// unit (add unitReader.base). Section-relative references
// (DW_FORM_ref_addr) would be indistinguishable, so the unit's private copy
// of its abbreviation table declares them as plain data of the same size:
// they come back as int64, already absolute.

// unitReader reads entries of one unit (lazy) or of the whole section.
type unitReader struct {
	d    *dwarf.Data
	base dwarf.Offset // where d's offset 0 lies in .debug_info
	lazy *lazyDWARF   // nil when d holds the whole section
}

// seek returns the entry at the section offset off.
func (u *unitReader) seek(off dwarf.Offset) (*dwarf.Reader, *dwarf.Entry, error) {
	if off < u.base {
		return nil, nil, ErrMalformed
	}
	r := u.d.Reader()
	r.Seek(off - u.base)
	e, err := r.Next()
	if err != nil || e == nil {
		return nil, nil, errors.Join(ErrMalformed, err)
	}
	return r, e, nil
}

// ref returns the section offset an attribute value refers to.
func (u *unitReader) ref(v any) (dwarf.Offset, bool) {
	switch x := v.(type) {
	case dwarf.Offset:
		return x + u.base, true
	case int64: // a DW_FORM_ref_addr, rewritten (see above)
		return dwarf.Offset(x), u.lazy != nil && x >= 0
	}
	return 0, false
}

// lineReader opens e's line program, first loading its bytes.
func (u *unitReader) lineReader(e *dwarf.Entry) (*dwarf.LineReader, error) {
	if u.lazy != nil {
		off, ok := e.Val(dwarf.AttrStmtList).(int64)
		if !ok {
			return nil, nil
		}
		if err := u.lazy.line.ensureUnit(uint64(off), u.lazy.order); err != nil {
			return nil, err
		}
	}
	return u.d.LineReader(e)
}

// lazySection is a debug section read (and decompressed) as far as needed.
type lazySection struct {
	r   io.Reader
	buf []byte // the whole section's length; buf[:n] is read
	n   int
	err error
}

// lazyStep is the least read at a time, so small steps don't each pay for
// a call into the decompressor.
const lazyStep = 64 << 10

func newLazySection(s *elf.Section) *lazySection {
	if s == nil {
		return &lazySection{}
	}
	return &lazySection{r: s.Open(), buf: make([]byte, s.Size)}
}

// ensure reads the section up to end (capped at its size).
func (l *lazySection) ensure(end uint64) error {
	end = min(end, uint64(len(l.buf)))
	for uint64(l.n) < end {
		if l.err != nil {
			return errors.Join(ErrMalformed, l.err)
		}
		want := min(len(l.buf), max(int(end), l.n+lazyStep))
		k, err := io.ReadFull(l.r, l.buf[l.n:want])
		l.n += k
		l.err = err
	}
	return nil
}

// ensureUnit reads the unit (a line program, a compilation unit) starting
// at off, as far as its 32-bit DWARF length says.
func (l *lazySection) ensureUnit(off uint64, order binary.ByteOrder) error {
	_, err := l.unitEnd(off, order)
	return err
}

func (l *lazySection) unitEnd(off uint64, order binary.ByteOrder) (uint64, error) {
	if err := l.ensure(off + 4); err != nil {
		return 0, err
	}
	if off+4 > uint64(l.n) {
		return 0, fmt.Errorf("%w: unit at %#x past the section", ErrMalformed, off)
	}
	n := uint64(order.Uint32(l.buf[off:]))
	if n >= 0xfffffff0 {
		return 0, fmt.Errorf("%w: 64-bit DWARF unit at %#x", errUnsupportedUnit, off)
	}
	end := off + 4 + n
	if end > uint64(len(l.buf)) {
		return 0, fmt.Errorf("%w: unit at %#x past the section", ErrMalformed, off)
	}
	return end, l.ensure(end)
}

var errUnsupportedUnit = errors.New("unit not read lazily")

// lazyDWARF holds a file's debug sections, read as units need them.
type lazyDWARF struct {
	order      binary.ByteOrder
	info       *lazySection
	abbrev     *lazySection
	line       *lazySection
	sections   map[string]*elf.Section // the small sections, read whole on first use
	small      map[string][]byte
	starts     []dwarf.Offset // unit starts found by walking the headers
	next       uint64         // the offset after the last unit walked
	abbrevOff  map[dwarf.Offset]uint64
	abbrevHeld int
}

// smallSections are read whole: strings and range lists may be referenced
// from anywhere, and they are small next to .debug_info.
var smallSections = []string{"str", "ranges", "addr", "line_str", "rnglists", "str_offsets"}

// newLazyDWARF sets up unit-at-a-time reading of img's DWARF and returns the
// address ranges of its units from .debug_aranges; errUnsupportedUnit when
// the file lacks what that needs (then the whole DWARF is read at once).
func newLazyDWARF(img *elfImage) (*lazyDWARF, []cuRange, error) {
	secs := map[string]*elf.Section{}
	for _, s := range img.f.Sections {
		if strings.HasPrefix(s.Name, ".zdebug_") {
			return nil, nil, errUnsupportedUnit
		}
		if name, ok := strings.CutPrefix(s.Name, ".debug_"); ok && s.Type != elf.SHT_NOBITS && secs[name] == nil {
			secs[name] = s
		}
	}
	if secs["info"] == nil || secs["abbrev"] == nil || secs["aranges"] == nil {
		return nil, nil, errUnsupportedUnit
	}
	ar, err := secs["aranges"].Data()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading .debug_aranges: %w", ErrMalformed, err)
	}
	cus, err := parseAranges(ar, img.f.ByteOrder)
	if err != nil || len(cus) == 0 {
		return nil, nil, errors.Join(errUnsupportedUnit, err)
	}
	l := &lazyDWARF{
		order: img.f.ByteOrder, info: newLazySection(secs["info"]), abbrev: newLazySection(secs["abbrev"]),
		line: newLazySection(secs["line"]), sections: secs, abbrevOff: map[dwarf.Offset]uint64{},
	}
	return l, cus, nil
}

// bytes is what the sections read so far hold.
func (l *lazyDWARF) bytes() int64 {
	n := l.info.n + l.abbrev.n + l.line.n + l.abbrevHeld
	for _, b := range l.small {
		n += len(b)
	}
	return int64(n)
}

// unitAt returns the start and end of the unit holding the section offset
// off, walking unit headers as far as needed.
func (l *lazyDWARF) unitAt(off dwarf.Offset) (dwarf.Offset, uint64, error) {
	for l.next <= uint64(off) {
		end, err := l.info.unitEnd(l.next, l.order)
		if err != nil {
			return 0, 0, err
		}
		l.starts = append(l.starts, dwarf.Offset(l.next))
		l.next = end
	}
	i := sort.Search(len(l.starts), func(i int) bool { return l.starts[i] > off }) - 1
	if i < 0 {
		return 0, 0, ErrMalformed
	}
	end := l.next
	if i+1 < len(l.starts) {
		end = uint64(l.starts[i+1])
	}
	return l.starts[i], end, nil
}

// reader builds a debug/dwarf view of the unit holding off.
func (l *lazyDWARF) reader(off dwarf.Offset) (*unitReader, error) {
	start, end, err := l.unitAt(off)
	if err != nil {
		return nil, err
	}
	unit := l.info.buf[start:end]
	hdr, err := parseUnitHeader(unit, l.order)
	if err != nil {
		return nil, err
	}
	// The unit's copy says its table is at offset 0 of its own abbreviations;
	// the real offset is kept for the next time the unit is read.
	abOff, seen := l.abbrevOff[start]
	if !seen {
		abOff = hdr.abbrevOffset(unit, l.order)
		l.abbrevOff[start] = abOff
		hdr.setAbbrevOffset(unit, l.order, 0)
	}
	tab, err := l.abbrevTable(abOff, hdr.refAddrForm())
	if err != nil {
		return nil, err
	}
	if err := l.loadSmall(); err != nil {
		return nil, err
	}
	d, err := dwarf.New(tab, nil, nil, unit, l.line.buf, nil, l.small["ranges"], l.small["str"])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	for _, name := range smallSections[2:] {
		if b, ok := l.small[name]; ok {
			if err := d.AddSection(".debug_"+name, b); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
	}
	return &unitReader{d: d, base: start, lazy: l}, nil
}

func (l *lazyDWARF) loadSmall() error {
	if l.small != nil {
		return nil
	}
	l.small = map[string][]byte{}
	for _, name := range smallSections {
		if s := l.sections[name]; s != nil {
			b, err := s.Data()
			if err != nil {
				return fmt.Errorf("%w: reading .debug_%s: %w", ErrMalformed, name, err)
			}
			l.small[name] = b
		}
	}
	return nil
}

// abbrevTable returns a private copy of the abbreviation table at off, with
// DW_FORM_ref_addr rewritten to refAddr, reading the section as far as the
// table goes.
func (l *lazyDWARF) abbrevTable(off uint64, refAddr uint64) ([]byte, error) {
	size := uint64(len(l.abbrev.buf))
	for want := uint64(4 << 10); ; want *= 2 {
		end := min(off+want, size)
		if off > end {
			return nil, ErrMalformed
		}
		if err := l.abbrev.ensure(end); err != nil {
			return nil, err
		}
		tab, done, err := rewriteAbbrevs(l.abbrev.buf[off:end], refAddr)
		if err != nil {
			return nil, err
		}
		if done {
			l.abbrevHeld += len(tab)
			return tab, nil
		}
		if end == size {
			return nil, fmt.Errorf("%w: abbreviation table at %#x runs past the section", ErrMalformed, off)
		}
	}
}

// newLazyDWARFInfo indexes img's units by .debug_aranges, reading no unit
// yet; errUnsupportedUnit when the file needs the whole-section reader.
func newLazyDWARFInfo(img *elfImage) (info *dwarfInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			info, err = nil, errPanic(r)
		}
	}()
	l, cus, err := newLazyDWARF(img)
	if err != nil {
		return nil, err
	}
	return &dwarfInfo{
		lazy: l, cus: cus, readers: map[dwarf.Offset]*unitReader{},
		units: map[dwarf.Offset]*cuInfo{}, names: map[dwarf.Offset]string{},
	}, nil
}
