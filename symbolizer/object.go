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

	mu      sync.Mutex
	parsed  bool
	closed  bool
	syms    *symtab
	dw      *dwarfInfo
	gotab   goLines
	results map[uint64][]Frame
}

// parseStats counts what lazy parsing did, for Stats.
type parseStats interface {
	parsed(err error)
}

// lookup names the ELF virtual address vaddr. Warm answers come from the
// symbol table's per-symbol frames or the per-file result cache.
func (o *objFile) lookup(vaddr uint64, dirs []string, st parseStats) []Frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	if !o.parsed {
		o.parse(dirs, st)
	}
	if o.dw == nil && o.gotab == nil {
		return o.syms.lookup(vaddr)
	}
	if f, ok := o.results[vaddr]; ok {
		return f
	}
	f := o.resolve(vaddr)
	if len(o.results) >= maxResultsPerFile {
		clear(o.results)
	}
	o.results[vaddr] = f
	return f
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
		if f := o.gotab.frames(vaddr); len(f) > 0 {
			return f
		}
	}
	return o.syms.lookup(vaddr)
}

// parse reads symbols, the Go table and DWARF, from the file itself or a
// separate debug file. Failures leave the parts that worked.
func (o *objFile) parse(dirs []string, st parseStats) {
	o.parsed = true
	o.results = map[uint64][]Frame{}
	syms, symErr := o.img.elfSymbols()
	if o.img.hasDWARF() {
		o.dw = o.img.dwarfInfo()
	} else if dbg := o.findDebugFile(dirs); dbg != nil {
		o.dw = dbg.dwarfInfo()
		more, _ := dbg.elfSymbols()
		syms = append(syms, more...)
	}
	var goErr error
	if o.img.isGo() {
		o.gotab, goErr = o.img.goTable()
	}
	o.syms = newSymtab(syms)
	st.parsed(errors.Join(symErr, goErr))
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
	o.closed = true
	for _, c := range o.closers {
		c.Close()
	}
	o.closers = nil
	o.dw, o.gotab, o.results = nil, nil, nil
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

// dwarfInfo loads DWARF when every debug section is within bounds.
func (img *elfImage) dwarfInfo() (info *dwarfInfo) {
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
	if total > maxDWARFSize {
		return nil // names still come from the symbol tables
	}
	if img.f.Type == elf.ET_REL {
		return nil // relocatable objects are never mapped; relocating DWARF is more untrusted work
	}
	d, err := img.loadDWARF()
	if err != nil {
		return nil
	}
	info, err = newDWARFInfo(d)
	if err != nil {
		return nil
	}
	return info
}

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
