package unwind

import "slices"

// fdeRange is one FDE's address range and its rows in builder.in.rows.
type fdeRange struct {
	lo, hi     uint64
	first, end uint32 // rows[first:end]
	seq        uint32 // parse order, to break ties deterministically
	prio       uint8
}

// builder accumulates the FDEs of every section of one file.
type builder struct {
	in        interp
	fdes      []fdeRange
	fdeCount  int
	malformed int
	// cies caches decoded CIEs by section offset; most files have a
	// handful shared by thousands of FDEs. Reset per section.
	cies    map[uint64]*cie
	lastOff uint64
	lastCIE *cie
}

func newBuilder() *builder {
	return &builder{cies: make(map[uint64]*cie)}
}

// parseSection reads every record of sec. A broken record is counted and
// skipped; a broken length ends the section, since the next record can't
// be found. It returns how many FDEs it read.
func (b *builder) parseSection(sec *section) int {
	clear(b.cies)
	b.lastCIE = nil
	before := b.fdeCount
	// Pre-size from the section: compilers' CFI averages about one row per
	// 5 bytes and one FDE per 50, so appends rarely have to copy. Bounded
	// by the bytes actually read, not by any count in the file.
	b.in.rows = slices.Grow(b.in.rows, len(sec.data)/5)
	b.fdes = slices.Grow(b.fdes, len(sec.data)/48)
	r := reader{buf: sec.data}
	for !r.atEnd() {
		if !b.parseRecord(&r, sec) {
			break
		}
	}
	return b.fdeCount - before
}

// parseRecord reads one CIE or FDE; false means stop reading the section.
func (b *builder) parseRecord(r *reader, sec *section) bool {
	if r.remaining() >= 4 && r.buf[r.off]|r.buf[r.off+1]|r.buf[r.off+2]|r.buf[r.off+3] == 0 {
		r.off += 4 // zero terminator (or padding between input sections)
		return !sec.stopAtZero
	}
	end, id, idPos, is64, ok := recordHeader(r)
	if !ok {
		b.malformed++
		return false
	}
	if !isCIEID(sec.kind, id, is64) {
		b.parseFDE(r, sec, end, id, idPos)
	}
	r.off = end
	return true
}

// parseFDE decodes one FDE and runs its program.
func (b *builder) parseFDE(r *reader, sec *section, end int, id uint64, idPos int) {
	cieOff := id
	if sec.kind == kindEHFrame {
		// .eh_frame: the distance back from this field to the CIE.
		cieOff = uint64(idPos) - id
		if id > uint64(idPos) {
			b.malformed++
			return
		}
	}
	c := b.cie(sec, cieOff)
	if c.bad {
		b.malformed++
		return
	}
	fr := reader{buf: r.buf[:end], off: r.off}
	f, ok := parseFDE(&fr, sec, c)
	if !ok {
		b.malformed++
		return
	}
	b.fdeCount++
	if f.lo == f.hi {
		return
	}
	b.addFDE(sec, c, f)
}

func (b *builder) addFDE(sec *section, c *cie, f fdeInfo) {
	first := len(b.in.rows)
	b.in.run(sec, c, f)
	if len(b.in.rows) == first {
		return
	}
	b.fdes = append(b.fdes, fdeRange{
		lo: f.lo, hi: f.hi,
		first: uint32(first), end: uint32(len(b.in.rows)),
		seq: uint32(len(b.fdes)), prio: sec.prio,
	})
}

func (b *builder) cie(sec *section, off uint64) *cie {
	if b.lastCIE != nil && b.lastOff == off {
		return b.lastCIE
	}
	c, ok := b.cies[off]
	if !ok {
		c = parseCIE(sec, off)
		if !c.bad && !c.signal && !b.in.initCIE(sec, c) {
			c.bad = true
		}
		b.cies[off] = c
	}
	b.lastOff, b.lastCIE = off, c
	return c
}
