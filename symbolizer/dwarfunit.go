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
// sections are zlib streams, so a prefix: each stream stays where it
// stopped, and a later unit continues from there), into chunks allocated as
// the reading reaches them, then handed to debug/dwarf as a file of one
// unit, its line program as a line section of its own.
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
	tab  []byte       // lazy: the unit's abbreviations and bytes d reads
	unit []byte
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

// lineReader opens e's line program, first loading its bytes. Lazily, the
// program is handed to debug/dwarf alone, as a line section of its own, with
// a copy of e pointing at its start.
func (u *unitReader) lineReader(e *dwarf.Entry) (*dwarf.LineReader, error) {
	if u.lazy == nil {
		return u.d.LineReader(e)
	}
	off, ok := e.Val(dwarf.AttrStmtList).(int64)
	if !ok || off < 0 {
		return nil, nil
	}
	prog, err := u.lazy.line.unit(uint64(off), u.lazy.order)
	if err != nil {
		return nil, err
	}
	d, err := u.lazy.newData(u.tab, u.unit, prog)
	if err != nil {
		return nil, err
	}
	cu := *e
	cu.Field = append([]dwarf.Field(nil), e.Field...)
	for i := range cu.Field {
		if cu.Field[i].Attr == dwarf.AttrStmtList {
			cu.Field[i].Val = int64(0)
		}
	}
	return d.LineReader(&cu)
}

// lazySection is a debug section read (and decompressed) as far as needed,
// into chunks allocated as the reading reaches them.
type lazySection struct {
	r      io.Reader
	size   uint64   // the section's uncompressed size
	chunk  uint64   // bytes per chunk: lazyChunk, less in tests
	chunks [][]byte // chunk bytes each, the last maybe fewer
	n      uint64   // bytes read
	err    error
}

// lazyStep is the least read at a time, so small steps don't each pay for
// a call into the decompressor; lazyChunk the bytes held per allocation.
const (
	lazyStep  = 16 << 10
	lazyChunk = 1 << 20
)

func newLazySection(img *elfImage, s *elf.Section) *lazySection {
	if s == nil {
		return &lazySection{chunk: lazyChunk}
	}
	return &lazySection{r: img.sectionReader(s), size: s.Size, chunk: lazyChunk}
}

// ensure reads the section up to end (capped at its size).
func (l *lazySection) ensure(end uint64) error {
	end = min(end, l.size)
	for l.n < end {
		if l.err != nil {
			return errors.Join(ErrMalformed, l.err)
		}
		ci := l.n / l.chunk
		if ci == uint64(len(l.chunks)) {
			l.chunks = append(l.chunks, make([]byte, min(l.chunk, l.size-ci*l.chunk)))
		}
		c, at := l.chunks[ci], l.n-ci*l.chunk
		want := min(uint64(len(c)), max(end-ci*l.chunk, at+lazyStep))
		k, err := io.ReadFull(l.r, c[at:want])
		l.n += uint64(k)
		l.err = err
	}
	return nil
}

// view returns the bytes [off, end) read already: part of a chunk when they
// lie in one, else a copy.
func (l *lazySection) view(off, end uint64) []byte {
	if off >= end {
		return nil
	}
	if ci := off / l.chunk; (end-1)/l.chunk == ci {
		return l.chunks[ci][off-ci*l.chunk : end-ci*l.chunk]
	}
	out := make([]byte, 0, end-off)
	for p := off; p < end; {
		ci := p / l.chunk
		c := l.chunks[ci][p-ci*l.chunk:]
		c = c[:min(uint64(len(c)), end-p)]
		out = append(out, c...)
		p += uint64(len(c))
	}
	return out
}

// unit reads the unit (a line program, a compilation unit) starting at off,
// as far as its 32-bit DWARF length says, and returns its bytes.
func (l *lazySection) unit(off uint64, order binary.ByteOrder) ([]byte, error) {
	end, err := l.unitEnd(off, order)
	if err != nil {
		return nil, err
	}
	return l.view(off, end), nil
}

func (l *lazySection) unitEnd(off uint64, order binary.ByteOrder) (uint64, error) {
	if off > l.size-min(l.size, 4) {
		return 0, fmt.Errorf("%w: unit at %#x past the section", ErrMalformed, off)
	}
	if err := l.ensure(off + 4); err != nil {
		return 0, err
	}
	if off+4 > l.n {
		return 0, fmt.Errorf("%w: unit at %#x past the section", ErrMalformed, off)
	}
	n := uint64(order.Uint32(l.view(off, off+4)))
	if n >= 0xfffffff0 {
		return 0, fmt.Errorf("%w: 64-bit DWARF unit at %#x", errUnsupportedUnit, off)
	}
	end := off + 4 + n
	if end > l.size {
		return 0, fmt.Errorf("%w: unit at %#x past the section", ErrMalformed, off)
	}
	if err := l.ensure(end); err != nil {
		return 0, err
	}
	if end > l.n {
		return 0, fmt.Errorf("%w: unit at %#x past the section", ErrMalformed, off)
	}
	return end, nil
}

var errUnsupportedUnit = errors.New("unit not read lazily")

// lazyDWARF holds a file's debug sections, read as units need them.
type lazyDWARF struct {
	img        *elfImage
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
	ar, err := img.sectionBytes(secs["aranges"])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading .debug_aranges: %w", ErrMalformed, err)
	}
	cus, err := parseAranges(ar, img.f.ByteOrder)
	if err != nil || len(cus) == 0 {
		return nil, nil, errors.Join(errUnsupportedUnit, err)
	}
	l := &lazyDWARF{
		img: img, order: img.f.ByteOrder, info: newLazySection(img, secs["info"]), abbrev: newLazySection(img, secs["abbrev"]),
		line: newLazySection(img, secs["line"]), sections: secs, abbrevOff: map[dwarf.Offset]uint64{},
	}
	return l, cus, nil
}

// bytes is what the sections read so far hold.
func (l *lazyDWARF) bytes() int64 {
	n := int(l.info.n+l.abbrev.n+l.line.n) + l.abbrevHeld
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
	unit := l.info.view(uint64(start), end)
	hdr, err := parseUnitHeader(unit, l.order)
	if err != nil {
		return nil, err
	}
	// The unit's bytes say its table is at offset 0 of its own
	// abbreviations; the real offset is kept for the next time the unit is
	// read.
	abOff, seen := l.abbrevOff[start]
	if !seen {
		abOff = hdr.abbrevOffset(unit, l.order)
		l.abbrevOff[start] = abOff
	}
	hdr.setAbbrevOffset(unit, l.order, 0)
	tab, err := l.abbrevTable(abOff, hdr.refAddrForm())
	if err != nil {
		return nil, err
	}
	if err := l.loadSmall(); err != nil {
		return nil, err
	}
	d, err := l.newData(tab, unit, nil)
	if err != nil {
		return nil, err
	}
	return &unitReader{d: d, base: start, lazy: l, tab: tab, unit: unit}, nil
}

// newData hands debug/dwarf one unit, its abbreviations and, when not nil,
// a line section.
func (l *lazyDWARF) newData(tab, unit, line []byte) (*dwarf.Data, error) {
	d, err := dwarf.New(tab, nil, nil, unit, line, nil, l.small["ranges"], l.small["str"])
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
	return d, nil
}

func (l *lazyDWARF) loadSmall() error {
	if l.small != nil {
		return nil
	}
	l.small = map[string][]byte{}
	for _, name := range smallSections {
		if s := l.sections[name]; s != nil {
			b, err := l.img.sectionBytes(s)
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
	size := l.abbrev.size
	for want := uint64(4 << 10); ; want *= 2 {
		end := min(off+want, size)
		if off > end {
			return nil, ErrMalformed
		}
		if err := l.abbrev.ensure(end); err != nil {
			return nil, err
		}
		tab, done, err := rewriteAbbrevs(l.abbrev.view(off, end), refAddr)
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
