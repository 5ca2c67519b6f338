package symbolizer

import (
	"debug/dwarf"
	"errors"
	"sort"
	"unsafe"
)

// Bounds on DWARF work per compilation unit and per file.
const (
	maxCUEntries  = 1 << 21
	maxCULineRows = 1 << 22
	// maxUnitWeight bounds the parsed units kept per file, counted in line
	// rows plus scopes (about 16 bytes each, scopes weighing 8): all of
	// libc's units weigh about 250,000.
	maxUnitWeight    = 1 << 21
	maxNameChase     = 8
	maxCUs           = 1 << 20
	maxInlineDepth   = 64
	maxScopesPerFunc = 1 << 16
	maxCachedNames   = 1 << 20
)

// dwarfInfo answers file:line and inlined-call questions from DWARF. Units
// are parsed on first use and a bounded number are kept.
type dwarfInfo struct {
	whole   *unitReader                  // the whole of .debug_info, when read at once
	lazy    *lazyDWARF                   // else units read one at a time (dwarfunit.go)
	readers map[dwarf.Offset]*unitReader // lazy: by unit start
	cus     []cuRange                    // sorted by lo
	units   map[dwarf.Offset]*cuInfo
	weight  int // of the units kept
	names   map[dwarf.Offset]string
	base    int64 // bytes of the sections and abbreviations loaded
}

// Estimated bytes per unit of weight (a line row or an eighth of a
// scope), per cached name and per unit range.
const (
	bytesPerWeight = 24
	bytesPerName   = 64
	bytesPerCU     = int64(unsafe.Sizeof(cuRange{})) + 64
)

// bytes estimates the memory the DWARF index holds.
func (info *dwarfInfo) bytes() int64 {
	if info == nil {
		return 0
	}
	base := info.base
	if info.lazy != nil {
		base = info.lazy.bytes()
	}
	return base + int64(info.weight)*bytesPerWeight + int64(len(info.names))*bytesPerName + int64(len(info.cus))*bytesPerCU
}

type cuRange struct {
	lo, hi uint64
	off    dwarf.Offset
}

// cuInfo is one parsed compilation unit: its line table and the address
// ranges of its functions, whose inlined calls are read on first use.
type cuInfo struct {
	ur        *unitReader
	rows      []lineRow
	files     []string
	callFiles []int32     // DW_AT_call_file index -> files index
	funcs     []funcRange // one per address range of each subprogram, sorted by lo
	fns       []funcInfo
}

// funcInfo is one subprogram with code. nodes holds the subprogram itself
// and its inlined calls once expanded.
type funcInfo struct {
	off      dwarf.Offset
	expanded bool
	nodes    []scopeNode
}

type lineRow struct {
	addr uint64
	file int32
	line int32 // -1 marks the end of a sequence
}

// scopeNode is a subprogram or an inlined call inside one. Its descendants
// follow it contiguously, up to end.
type scopeNode struct {
	name     string
	ranges   [][2]uint64
	depth    int32
	end      int32 // index after the last descendant
	callFile int32
	callLine int32
}

type funcRange struct {
	lo, hi uint64
	fn     int32
}

var errNoDWARF = errors.New("no DWARF")

// newDWARFInfo indexes the compilation units of d by address range.
func newDWARFInfo(d *dwarf.Data) (info *dwarfInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			info, err = nil, errPanic(r)
		}
	}()
	info = &dwarfInfo{whole: &unitReader{d: d}, units: map[dwarf.Offset]*cuInfo{}, names: map[dwarf.Offset]string{}}
	r := d.Reader()
	for n := 0; n < maxCUs; n++ {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			info.addCU(d, e)
		}
		r.SkipChildren()
	}
	sort.Slice(info.cus, func(i, j int) bool { return info.cus[i].lo < info.cus[j].lo })
	if len(info.cus) == 0 {
		return nil, errNoDWARF
	}
	return info, nil
}

func (info *dwarfInfo) addCU(d *dwarf.Data, e *dwarf.Entry) {
	ranges, err := d.Ranges(e)
	if err != nil {
		return
	}
	for _, rg := range ranges {
		if rg[1] > rg[0] && rg[0] != 0 {
			info.cus = append(info.cus, cuRange{lo: rg[0], hi: rg[1], off: e.Offset})
		}
	}
}

// frames returns the inlined call chain at pc, innermost first, with names
// from DWARF; sym (the symbol table's entry covering pc) names the
// outermost function when it starts where that function's range does. It returns nil when no unit covers pc.
func (info *dwarfInfo) frames(pc uint64, sym symName) (out []Frame, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, errPanic(r)
		}
	}()
	off, ok := info.findCU(pc)
	if !ok {
		return nil, nil
	}
	cu, err := info.unit(off)
	if err != nil {
		return nil, err
	}
	return cu.frames(info, pc, sym), nil
}

func (info *dwarfInfo) findCU(pc uint64) (dwarf.Offset, bool) {
	i := sort.Search(len(info.cus), func(i int) bool { return info.cus[i].lo > pc }) - 1
	for j := i; j >= 0 && j > i-maxNestedLookback; j-- {
		if c := info.cus[j]; pc >= c.lo && pc < c.hi {
			return c.off, true
		}
	}
	return 0, false
}

// unit returns the parsed unit at off, parsing it on first use. When the
// units kept outweigh the budget the set is dropped wholesale: simple,
// bounded, and the per-address cache above it keeps the hot answers.
func (info *dwarfInfo) unit(off dwarf.Offset) (*cuInfo, error) {
	if cu, ok := info.units[off]; ok {
		return cu, nil
	}
	cu, err := info.parseUnit(off)
	if err != nil {
		return nil, err
	}
	w := len(cu.rows) + 8*len(cu.fns)
	if info.weight+w > maxUnitWeight {
		clear(info.units)
		clear(info.readers)
		info.weight = 0
	}
	info.units[off] = cu
	info.weight += w
	return cu, nil
}

func (info *dwarfInfo) parseUnit(off dwarf.Offset) (*cuInfo, error) {
	ur, err := info.readerAt(off)
	if err != nil {
		return nil, err
	}
	r, cuEntry, err := ur.seek(off)
	if err != nil {
		return nil, err
	}
	cu := &cuInfo{ur: ur}
	cu.callFiles = cu.readLines(cuEntry)
	if cuEntry.Children {
		if err := info.readFuncs(r, cu); err != nil {
			return nil, err
		}
	}
	sort.Slice(cu.funcs, func(i, j int) bool { return cu.funcs[i].lo < cu.funcs[j].lo })
	return cu, nil
}

// maxUnitReaders bounds the units kept open for lookups and references.
const maxUnitReaders = 1 << 12

// readerAt returns a reader of the unit holding the section offset off.
func (info *dwarfInfo) readerAt(off dwarf.Offset) (*unitReader, error) {
	if info.lazy == nil {
		return info.whole, nil
	}
	start, _, err := info.lazy.unitAt(off)
	if err != nil {
		return nil, err
	}
	if ur, ok := info.readers[start]; ok {
		return ur, nil
	}
	ur, err := info.lazy.reader(start)
	if err != nil {
		return nil, err
	}
	if len(info.readers) >= maxUnitReaders {
		clear(info.readers)
	}
	info.readers[start] = ur
	return ur, nil
}

// readLines loads the unit's line table, sorted by address, and returns a
// map from the table's file indexes (as DW_AT_call_file uses them) to
// indexes in cu.files.
func (cu *cuInfo) readLines(cuEntry *dwarf.Entry) []int32 {
	lr, err := cu.ur.lineReader(cuEntry)
	if err != nil || lr == nil {
		return nil
	}
	byPtr := map[*dwarf.LineFile]int32{}
	var callFiles []int32
	for _, f := range lr.Files() {
		callFiles = append(callFiles, cu.fileIndex(byPtr, f))
	}
	var le dwarf.LineEntry
	for len(cu.rows) < maxCULineRows {
		if err := lr.Next(&le); err != nil {
			break
		}
		row := lineRow{addr: le.Address, file: cu.fileIndex(byPtr, le.File), line: int32(le.Line)}
		if le.EndSequence {
			row.line = -1
		}
		cu.rows = append(cu.rows, row)
	}
	// End-of-sequence rows sort before a sequence starting at the same
	// address, so the last row at or below pc is the live one.
	sort.SliceStable(cu.rows, func(i, j int) bool {
		a, b := cu.rows[i], cu.rows[j]
		if a.addr != b.addr {
			return a.addr < b.addr
		}
		return a.line < 0 && b.line >= 0
	})
	return callFiles
}

func (cu *cuInfo) fileIndex(byPtr map[*dwarf.LineFile]int32, f *dwarf.LineFile) int32 {
	if f == nil {
		return -1
	}
	if i, ok := byPtr[f]; ok {
		return i
	}
	i := int32(len(cu.files))
	cu.files = append(cu.files, f.Name)
	byPtr[f] = i
	return i
}

// readFuncs records the address ranges of the unit's subprograms, reading
// only the entries around them: function bodies, types and variables are
// skipped by their sibling links and read when a lookup needs them.
func (info *dwarfInfo) readFuncs(r *dwarf.Reader, cu *cuInfo) error {
	for depth, n := 1, 0; depth > 0; n++ {
		if n >= maxCUEntries {
			return errors.Join(ErrMalformed, ErrTooLarge)
		}
		e, err := r.Next()
		if err != nil {
			return errors.Join(ErrMalformed, err)
		}
		if e == nil {
			break
		}
		switch {
		case e.Tag == 0:
			depth--
		case e.Tag == dwarf.TagSubprogram:
			info.addFunc(cu, e)
			if e.Children {
				r.SkipChildren()
			}
		case e.Children && mayHoldCode(e.Tag):
			depth++
		case e.Children:
			r.SkipChildren()
		}
	}
	return nil
}

// mayHoldCode reports whether an entry's children can include functions
// or inlined calls with code.
func mayHoldCode(t dwarf.Tag) bool {
	switch t {
	case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine, dwarf.TagLexDwarfBlock,
		dwarf.TagNamespace, dwarf.TagModule, dwarf.TagTryDwarfBlock, dwarf.TagCatchDwarfBlock:
		return true
	}
	return false
}

// addFunc records a subprogram that has code.
func (info *dwarfInfo) addFunc(cu *cuInfo, e *dwarf.Entry) {
	ranges, err := cu.ur.d.Ranges(e)
	if err != nil || len(ranges) == 0 || len(ranges) > maxScopesPerFunc {
		return
	}
	fn := int32(len(cu.fns))
	cu.fns = append(cu.fns, funcInfo{off: e.Offset + cu.ur.base})
	for _, rg := range ranges {
		if rg[1] > rg[0] {
			cu.funcs = append(cu.funcs, funcRange{lo: rg[0], hi: rg[1], fn: fn})
		}
	}
}

// expand reads one subprogram's subtree: its name and the inlined calls
// nested in it, each with its ranges and call site.
func (info *dwarfInfo) expand(fi *funcInfo, cu *cuInfo) error {
	fi.expanded = true
	r, e, err := cu.ur.seek(fi.off)
	if err != nil {
		return err
	}
	if info.addScope(cu, &fi.nodes, e, 0) < 0 {
		return nil
	}
	if !e.Children {
		return nil
	}
	err = info.readScopes(r, cu, &fi.nodes)
	info.weight += 8 * len(fi.nodes)
	return err
}

// readScopes walks the children of node 0 of *nodes, appending the inlined
// calls (and nested subprograms) with code, each followed by its own.
func (info *dwarfInfo) readScopes(r *dwarf.Reader, cu *cuInfo, nodes *[]scopeNode) error {
	open, openDepth := []int32{0}, []int{0}
	for depth, n := 1, 0; depth > 0; n++ {
		if n >= maxCUEntries {
			return errors.Join(ErrMalformed, ErrTooLarge)
		}
		e, err := r.Next()
		if err != nil {
			return errors.Join(ErrMalformed, err)
		}
		if e == nil {
			break
		}
		if e.Tag == 0 {
			depth--
			for len(open) > 0 && openDepth[len(openDepth)-1] >= depth {
				(*nodes)[open[len(open)-1]].end = int32(len(*nodes))
				open, openDepth = open[:len(open)-1], openDepth[:len(openDepth)-1]
			}
			continue
		}
		if e.Children && !mayHoldCode(e.Tag) {
			r.SkipChildren() // parameters' and variables' subtrees
			continue
		}
		if idx := info.addScope(cu, nodes, e, len(open)); idx >= 0 && e.Children {
			open, openDepth = append(open, idx), append(openDepth, depth)
		}
		if e.Children {
			depth++
		}
	}
	for _, i := range open {
		(*nodes)[i].end = int32(len(*nodes))
	}
	return nil
}

// addScope appends e when it is the subprogram itself (nesting 0), an
// inlined call or a nested subprogram with code, returning its index or -1.
func (info *dwarfInfo) addScope(cu *cuInfo, nodes *[]scopeNode, e *dwarf.Entry, nesting int) int32 {
	isFunc := e.Tag == dwarf.TagSubprogram
	isInline := e.Tag == dwarf.TagInlinedSubroutine && nesting > 0
	if (!isFunc && !isInline) || nesting >= maxInlineDepth || len(*nodes) >= maxScopesPerFunc {
		return -1
	}
	ranges, err := cu.ur.d.Ranges(e)
	if err != nil || len(ranges) == 0 || len(ranges) > maxScopesPerFunc {
		return -1
	}
	callFiles := cu.callFiles
	idx := int32(len(*nodes))
	node := scopeNode{name: info.entryName(cu.ur, e), ranges: ranges, depth: int32(nesting), end: idx + 1, callFile: -1}
	if isInline {
		if f, ok := e.Val(dwarf.AttrCallFile).(int64); ok && f >= 0 && f < int64(len(callFiles)) {
			node.callFile = callFiles[f]
		}
		if l, ok := e.Val(dwarf.AttrCallLine).(int64); ok && l > 0 && l < 1<<31 {
			node.callLine = int32(l)
		}
	}
	*nodes = append(*nodes, node)
	return idx
}

// entryName prefers the demangled linkage name (C++ and Rust functions carry
// their qualified name and signature there), then DW_AT_name, following
// abstract origins and specifications at most maxNameChase references deep:
// the DWARF comes from other people's machines, and a long chain of
// references must not grow the stack without bound.
func (info *dwarfInfo) entryName(ur *unitReader, e *dwarf.Entry) string {
	return info.chaseName(ur, e, 0)
}

func (info *dwarfInfo) chaseName(ur *unitReader, e *dwarf.Entry, depth int) string {
	if s, ok := e.Val(dwarf.AttrLinkageName).(string); ok && s != "" {
		return demangle(s)
	}
	if s, ok := e.Val(dwarf.AttrName).(string); ok && s != "" {
		if ref, ok := ur.ref(e.Val(dwarf.AttrSpecification)); ok {
			if n := info.refName(ref, depth+1); n != "" {
				return n
			}
		}
		return s
	}
	ref, ok := ur.ref(e.Val(dwarf.AttrAbstractOrigin))
	if !ok {
		ref, ok = ur.ref(e.Val(dwarf.AttrSpecification))
	}
	if !ok {
		return ""
	}
	return info.refName(ref, depth+1)
}

// refName resolves the name of the entry at off, cached; depth counts the
// references followed to get here.
func (info *dwarfInfo) refName(off dwarf.Offset, depth int) string {
	if n, ok := info.names[off]; ok {
		return n
	}
	if depth > maxNameChase {
		return ""
	}
	info.names[off] = "" // breaks reference cycles
	ur, err := info.readerAt(off)
	if err != nil {
		return ""
	}
	_, e, err := ur.seek(off)
	if err != nil {
		return ""
	}
	n := info.chaseName(ur, e, depth)
	if len(info.names) > maxCachedNames {
		clear(info.names)
	}
	info.names[off] = n
	return n
}

// frames builds the inlined chain at pc: the innermost frame takes its
// file:line from the line table, each caller the call site recorded on the
// inlined call below it.
func (cu *cuInfo) frames(info *dwarfInfo, pc uint64, sym symName) []Frame {
	file, line := cu.lineAt(pc)
	nodes, chain, lo := cu.chainAt(info, pc)
	if len(chain) == 0 {
		if sym.name == "" && line == 0 {
			return nil
		}
		return []Frame{{Function: sym.name, File: file, Line: line}}
	}
	out := make([]Frame, len(chain))
	for i := range chain {
		n := &nodes[chain[len(chain)-1-i]]
		out[i] = Frame{Function: n.name, File: file, Line: line}
		file, line = cu.fileName(n.callFile), int(n.callLine)
	}
	// The symbol table names the outermost function better than DWARF
	// where both describe the same code: DWARF records internal assembler
	// names ("__GI_getpid") that the exported symbol ("getpid") hides.
	if outer := &out[len(out)-1]; sym.name != "" && (outer.Function == "" || sym.addr == lo) {
		outer.Function = sym.name
	}
	return out
}

func (cu *cuInfo) fileName(i int32) string {
	if i < 0 || int(i) >= len(cu.files) {
		return ""
	}
	return cu.files[i]
}

func (cu *cuInfo) lineAt(pc uint64) (string, int) {
	i := sort.Search(len(cu.rows), func(i int) bool { return cu.rows[i].addr > pc }) - 1
	if i < 0 || cu.rows[i].line <= 0 {
		return "", 0
	}
	return cu.fileName(cu.rows[i].file), int(cu.rows[i].line)
}

// chainAt returns the nodes of the function containing pc, the indexes of
// those containing pc (outermost first), and the start of the function's
// range holding pc. The function is expanded on first use.
func (cu *cuInfo) chainAt(info *dwarfInfo, pc uint64) ([]scopeNode, []int32, uint64) {
	i := sort.Search(len(cu.funcs), func(i int) bool { return cu.funcs[i].lo > pc }) - 1
	for j := i; j >= 0 && j > i-maxNestedLookback; j-- {
		f := cu.funcs[j]
		if pc < f.lo || pc >= f.hi {
			continue
		}
		fi := &cu.fns[f.fn]
		if !fi.expanded {
			info.expand(fi, cu) // on error, keep what was read
		}
		if len(fi.nodes) == 0 {
			return nil, nil, 0
		}
		return fi.nodes, fi.chain(pc), f.lo
	}
	return nil, nil, 0
}

// chain returns the indexes of the nodes containing pc, outermost first;
// node 0, the function, contains it by construction.
func (fi *funcInfo) chain(pc uint64) []int32 {
	chain := []int32{0}
	for k := int32(1); k < fi.nodes[0].end && int(k) < len(fi.nodes); k++ {
		n := &fi.nodes[k]
		if !inRanges(n.ranges, pc) {
			k = n.end - 1 // skip its descendants
			continue
		}
		chain = append(chain, k)
	}
	return chain
}

func inRanges(rs [][2]uint64, pc uint64) bool {
	for _, r := range rs {
		if pc >= r[0] && pc < r[1] {
			return true
		}
	}
	return false
}
