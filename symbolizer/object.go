package symbolizer

import (
	"container/list"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// maxDWARFSize bounds the debug sections of one file held in memory.
const maxDWARFSize = 1 << 30

// maxResultsPerFile bounds the per-file cache of DWARF answers; it is
// dropped wholesale when full.
const maxResultsPerFile = 1 << 15

// objFile is one mapped ELF file: its headers parsed when opened, symbols,
// DWARF and the Go table parsed on first lookup. The open handle keeps the
// bytes reachable after the process exits or the file is deleted.
type objFile struct {
	key     string
	img     *elfImage
	closers []io.Closer
	path    string // as mapped, used to find a .gnu_debuglink file
	root    string // the process's root when it was opened (containers)

	// refs, cached and elem are guarded by Symbolizer.mu.
	refs   int
	cached bool
	elem   *list.Element

	// dwarfLimit is the most DWARF (in bytes held) this file may load; 0
	// means maxDWARFSize. Larger debug info is skipped so that one file
	// cannot take the whole byte budget.
	dwarfLimit uint64
	lastUse    atomic.Uint64 // the tick of its last lookup, for LRU eviction

	mu          sync.Mutex
	parsed      bool
	closed      bool
	syms        *symtab
	dw          *dwarfInfo
	gotab       goLines
	results     map[uint64][]Frame
	resultBytes int64
	held        int64      // bytes charged for what is parsed and cached
	acct        parseStats // where held was charged
	headers     int64      // bytes charged for the parsed headers while open
	headersAcct parseStats
}

// chargeHeaders charges st with the ELF headers o keeps while open
// (section and program headers, names), measured at about 250 bytes a
// section.
func (o *objFile) chargeHeaders(st parseStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.headers = int64(len(o.img.f.Sections))*256 + int64(len(o.img.f.Progs))*128 + 512
	o.headersAcct = st
	st.charge(o.headers)
}

// parseStats counts what lazy parsing did and the bytes it holds, for
// Stats and the byte budget.
type parseStats interface {
	parsed(err error)
	charge(delta int64)
	tick() uint64
}

// lookup names the ELF virtual address vaddr. Warm answers come from the
// symbol table's per-symbol frames or the per-file result cache.
func (o *objFile) lookup(vaddr uint64, dirs []string, st parseStats) []Frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.lastUse.Store(st.tick())
	if !o.parsed {
		o.parse(dirs, st)
	}
	if o.dw == nil && o.gotab == nil {
		f := o.syms.lookup(vaddr)
		o.account(st)
		return f
	}
	if f, ok := o.results[vaddr]; ok {
		return f
	}
	f := o.resolve(vaddr)
	if len(o.results) >= maxResultsPerFile {
		clear(o.results)
		o.resultBytes = 0
	}
	o.results[vaddr] = f
	o.resultBytes += resultBytes(f)
	o.account(st)
	return f
}

// resultBytes estimates one cached answer: its map slot with its share
// of the map's growth, and its frames. Their strings are shared with the
// tables that produced them (DWARF scopes and files, interned Go names
// and paths, the symbol table) and counted there.
func resultBytes(f []Frame) int64 {
	return 104 + int64(len(f))*int64(unsafe.Sizeof(Frame{})+8)
}

// account charges st with the change in what o holds. Called with o.mu held.
func (o *objFile) account(st parseStats) {
	n := o.resultBytes + o.syms.bytes() + o.dw.bytes()
	if o.gotab != nil {
		n += o.gotab.bytes()
	}
	if n != o.held {
		st.charge(n - o.held)
		o.held, o.acct = n, st
	}
}

// drop forgets everything parsed, keeping the open handle so a later lookup
// parses the file again, and returns whether anything was held.
func (o *objFile) drop() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropLocked()
}

func (o *objFile) dropLocked() bool {
	held := o.held
	if o.acct != nil {
		o.acct.charge(-o.held)
	}
	o.held, o.parsed = 0, false
	o.syms, o.dw, o.gotab, o.results, o.resultBytes = nil, nil, nil, nil, 0
	for _, c := range o.closers[min(1, len(o.closers)):] {
		c.Close() // separate debug files are found again on the next parse
	}
	o.closers = o.closers[:min(1, len(o.closers))]
	return held > 0
}

// resolve tries DWARF (lines and inlined calls), then the Go table, then
// the ELF symbol tables.
func (o *objFile) resolve(vaddr uint64) []Frame {
	sym := o.syms.nameAt(vaddr)
	if o.dw != nil {
		if f, err := o.dw.frames(vaddr, sym); err == nil && len(f) > 0 && f[len(f)-1].Function != "" {
			return f
		}
	}
	if o.gotab != nil {
		if f := goTableFrames(o.gotab, vaddr); len(f) > 0 {
			return f
		}
	}
	return o.syms.lookup(vaddr)
}

// goTableFrames asks the Go table, turning a parser panic on a malformed
// table into no answer, as for the other parsers.
func goTableFrames(t goLines, pc uint64) (out []Frame) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	return t.frames(pc)
}

// parse reads symbols, the Go table and DWARF, from the file itself or a
// separate debug file. Failures leave the parts that worked.
func (o *objFile) parse(dirs []string, st parseStats) {
	o.parsed = true
	o.results = map[uint64][]Frame{}
	var goErr error
	if o.img.isGo() {
		o.gotab, goErr = o.img.goTable()
	}
	// Functions the Go table names are left out of the symbol table: it
	// would hold every Go function's name a second time.
	var skip goRange
	if pt, ok := o.gotab.(*pclntab); ok {
		skip = goRange{lo: pt.entry(0), hi: pt.entry(pt.nfunc)}
	}
	syms, symErr := o.img.elfSymbols(skip)
	if o.gotab == nil { // a Go table already names Go code: see parseDWARF
		syms = append(syms, o.parseDWARF(dirs)...)
	}
	o.syms = newSymtab(syms)
	st.parsed(errors.Join(symErr, goErr))
}

// parseDWARF loads the file's DWARF, or a separate debug file's, and
// returns the debug file's symbols. Files with a Go table skip it: the
// table already names Go code with files, lines and inlined calls, cgo's
// C code is named from the symbol table instead, and Go's DWARF has no
// .debug_aranges, so it would be read whole (most of the cost of a first
// look at a Go binary).
func (o *objFile) parseDWARF(dirs []string) []symbol {
	limit := o.dwarfLimit
	if limit == 0 {
		limit = maxDWARFSize
	}
	if o.img.hasDWARF() {
		o.dw = o.img.dwarfInfo(limit)
		return nil
	}
	dbg := o.findDebugFile(dirs)
	if dbg == nil {
		return nil
	}
	o.dw = dbg.dwarfInfo(limit)
	more, _ := dbg.elfSymbols(goRange{})
	return more
}

// findDebugFile looks for a separate debug file: by build ID under each
// debug directory, then through .gnu_debuglink with its CRC checked.
func (o *objFile) findDebugFile(dirs []string) *elfImage {
	if id := o.img.buildID; id != "" {
		for _, d := range dirs {
			if img, f := openDebugFile(buildIDPath(d, id), id, 0, false); img != nil {
				o.closers = append(o.closers, f)
				return img
			}
		}
	}
	link, ok := o.img.readDebugLink()
	if !ok || o.path == "" {
		return nil
	}
	var cands []string
	cands = append(cands, debugLinkPaths(o.path, dirs, link.name)...)
	if o.root != "" {
		for _, p := range debugLinkPaths(o.path, nil, link.name) {
			cands = append(cands, o.root+p)
		}
	}
	for _, p := range cands {
		if img, f := openDebugFile(p, "", link.crc, true); img != nil {
			o.closers = append(o.closers, f)
			return img
		}
	}
	return nil
}

// close releases the file handles.
func (o *objFile) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropLocked()
	if o.headersAcct != nil && !o.closed {
		o.headersAcct.charge(-o.headers)
	}
	o.closed = true
	for _, c := range o.closers {
		c.Close()
	}
	o.closers = nil
}

// hasDWARF reports whether the file carries its own debug info.
func (img *elfImage) hasDWARF() bool {
	return img.f.Section(".debug_info") != nil || img.f.Section(".zdebug_info") != nil
}

// isGo reports whether the file is a Go binary.
func (img *elfImage) isGo() bool {
	if img.f.Section(".gopclntab") != nil || img.f.Section(".go.buildinfo") != nil {
		return true
	}
	return len(img.f.Sections) == 0
}

// dwarfInfo loads DWARF when every debug section is within bounds and the
// sections it reads, as held in memory, come to at most limit bytes.
func (img *elfImage) dwarfInfo(limit uint64) (info *dwarfInfo) {
	defer func() {
		if r := recover(); r != nil {
			info = nil
		}
	}()
	var total uint64
	for _, s := range img.f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			if s.Type == elf.SHT_NOBITS {
				continue
			}
			if img.section(s.Name, maxSectionSize) == nil {
				return nil
			}
			total += s.Size
		}
	}
	if total > maxDWARFSize || img.dwarfBytes() > limit {
		return nil // names still come from the symbol tables and the Go table
	}
	if img.f.Type == elf.ET_REL {
		return nil // relocatable objects are never mapped; relocating DWARF is more untrusted work
	}
	if !readWholeDWARF {
		info, err := newLazyDWARFInfo(img)
		if err == nil {
			return info
		}
		if !errors.Is(err, errUnsupportedUnit) {
			return nil
		}
	}
	d, err := img.loadDWARF()
	if err != nil {
		return nil
	}
	info, err = newDWARFInfo(d)
	if err != nil {
		return nil
	}
	info.base = int64(img.dwarfBytes())
	return info
}

// readWholeDWARF makes every file read its DWARF whole, as files without
// .debug_aranges do: the benchmarks' baseline for reading unit by unit.
var readWholeDWARF = false

// dwarfBytes estimates what loading the DWARF lookups need holds: the
// uncompressed sections read, and the abbreviation tables the parser
// builds from .debug_abbrev (several times its encoded size).
func (img *elfImage) dwarfBytes() uint64 {
	var n uint64
	for _, s := range img.f.Sections {
		name, ok := strings.CutPrefix(s.Name, ".debug_")
		if !ok {
			name, ok = strings.CutPrefix(s.Name, ".zdebug_")
		}
		if !ok || s.Type == elf.SHT_NOBITS || !slices.Contains(dwarfSections, name) {
			continue
		}
		n += s.Size
		if name == "abbrev" {
			n += abbrevExpansion * s.Size
		}
	}
	return n * 3 / 2 // the parser's units, allocator rounding: measured on libc's debug file
}

// abbrevExpansion is how much larger the parsed abbreviation tables are
// than their encoding.
const abbrevExpansion = 8

// dwarfSections are the debug sections lookups read. Location lists,
// call frames and macros are left compressed on disk: decompressing is
// most of the cost of opening a file's DWARF.
var dwarfSections = []string{"abbrev", "info", "str", "line", "ranges", "addr", "line_str", "rnglists", "str_offsets"}

// loadDWARF reads only the debug sections lookups need.
func (img *elfImage) loadDWARF() (*dwarf.Data, error) {
	dat := map[string][]byte{}
	for _, s := range img.f.Sections {
		if strings.HasPrefix(s.Name, ".zdebug_") {
			return img.f.DWARF() // old-style compression: the full loader handles it
		}
		name, ok := strings.CutPrefix(s.Name, ".debug_")
		if !ok || s.Type == elf.SHT_NOBITS || !slices.Contains(dwarfSections, name) {
			continue
		}
		if _, dup := dat[name]; dup {
			continue
		}
		b, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %w", ErrMalformed, s.Name, err)
		}
		dat[name] = b
	}
	d, err := dwarf.New(dat["abbrev"], nil, nil, dat["info"], dat["line"], nil, dat["ranges"], dat["str"])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	for _, name := range dwarfSections[5:] {
		if b, ok := dat[name]; ok {
			if err := d.AddSection(".debug_"+name, b); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
	}
	return d, nil
}
