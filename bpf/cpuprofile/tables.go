package cpuprofile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/vigil-ebpf/vigil/symbolizer/unwind"
)

// File states, as enum file_state in unwind.bpf.h.
const (
	fileLoading = 0 // known, table not in place: walks stop there, counted
	fileReady   = 1
	fileNoTable = 2 // no usable CFI (or a Go binary): frame pointers
)

// Sizes of the elements user space writes into the mmapped arrays; the
// spec test checks them against the generated types.
const (
	fileInfoSize = 24
	pageInfoSize = 8
	ruleSize     = 8
	rowSize      = 4
	pageBits     = 16
	maxRules     = 1 << 16
	// A file's table spans at most this many 64 KiB pages (4 GiB of code).
	maxFilePages = 1 << 16
)

// ErrNoRoom is returned when a table does not fit even after every table
// no process uses was evicted.
var ErrNoRoom = errors.New("unwind table space exhausted")

// tableStore owns the four shared arrays the BPF walker reads: rules
// (deduplicated across files), and per file its pages and rows, placed by
// a first-fit allocator. Files that no registered process maps stay cached
// until their space is needed.
type tableStore struct {
	mu                        sync.Mutex
	files, pages, rows, rules arrayWindow
	rowAlloc, pageAlloc       rangeAlloc
	maxFiles                  uint32
	freeIDs                   []uint32
	nextID                    uint32
	ruleIDs                   map[unwind.Rule]uint16
	byID                      map[uint32]*tableFile
	lruTick                   uint64
}

// tableFile is one file's place in the arrays.
type tableFile struct {
	id                   uint32
	state                uint32
	rowStart, rowCount   uint32
	pageStart, pageCount uint32
	firstPage            uint64 // file address >> pageBits of its first page
	refs                 int    // registered processes mapping it
	lastUse              uint64 // lruTick when last referenced
	placed               bool
	onEvict              func() // forgets the file's identity when evicted
}

func newTableStore(files, pages, rows, rules *ebpf.Map) (*tableStore, error) {
	s := &tableStore{ruleIDs: map[unwind.Rule]uint16{}, byID: map[uint32]*tableFile{}, nextID: 1}
	s.files, s.pages, s.rows, s.rules = newArrayWindow(files), newArrayWindow(pages), newArrayWindow(rows), newArrayWindow(rules)
	// One write proves the arrays can be mapped here before any table
	// depends on it.
	if _, err := s.files.WriteAt(make([]byte, fileInfoSize), 0); err != nil {
		return nil, fmt.Errorf("writing unwind tables: %w", err)
	}
	s.maxFiles = files.MaxEntries()
	s.rowAlloc = rangeAlloc{size: rows.MaxEntries() * 2}
	s.pageAlloc = rangeAlloc{size: pages.MaxEntries()}
	return s, nil
}

// newFile reserves a file id, state loading, or fails when every id is in use
// by a file some process maps.
func (s *tableStore) newFile() (*tableFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id uint32
	switch {
	case len(s.freeIDs) > 0:
		id = s.freeIDs[len(s.freeIDs)-1]
		s.freeIDs = s.freeIDs[:len(s.freeIDs)-1]
	case s.nextID < s.maxFiles:
		id = s.nextID
		s.nextID++
	default:
		if !s.evictOne() || len(s.freeIDs) == 0 {
			return nil, fmt.Errorf("%w: all %d file slots in use", ErrNoRoom, s.maxFiles-1)
		}
		id = s.freeIDs[len(s.freeIDs)-1]
		s.freeIDs = s.freeIDs[:len(s.freeIDs)-1]
	}
	f := &tableFile{id: id, state: fileLoading}
	s.byID[id] = f
	return f, s.writeFile(f)
}

// setState records a file without a table (frame pointers) or back to
// loading when its table could not be placed.
func (s *tableStore) setState(f *tableFile, state uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.state = state
	return s.writeFile(f)
}

// place writes a built table and marks the file ready. Rows and pages are
// written before the file entry that makes the walker use them.
func (s *tableStore) place(f *tableFile, t *unwind.Table) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lay, err := buildLayout(t.Rows, s.ruleID)
	if err != nil {
		return err
	}
	if len(lay.pages) == 0 {
		f.state = fileNoTable
		return s.writeFile(f)
	}
	rowStart, ok := s.allocEvicting(&s.rowAlloc, uint32(len(lay.rows)))
	if !ok {
		return fmt.Errorf("%w: %d rows", ErrNoRoom, len(lay.rows))
	}
	pageStart, ok := s.allocEvicting(&s.pageAlloc, uint32(len(lay.pages)))
	if !ok {
		s.rowAlloc.free(rowStart, uint32(len(lay.rows)))
		return fmt.Errorf("%w: %d pages", ErrNoRoom, len(lay.pages))
	}
	f.rowStart, f.rowCount, f.pageStart, f.pageCount, f.placed = rowStart, uint32(len(lay.rows)), pageStart, uint32(len(lay.pages)), true
	if err := s.writeTable(f, lay); err != nil {
		s.release(f)
		return err
	}
	f.state = fileReady
	return s.writeFile(f)
}

type tableLayout struct {
	firstPage uint64
	pages     []uint64 // page_info: first row | count<<32 (relative rows until placed)
	rows      []uint32 // pc&0xffff << 16 | rule
}

// buildLayout splits a table into 64 KiB pages whose rows each start with
// the rule in effect at the page start, so the walker searches one page.
func buildLayout(rows []unwind.Row, ruleID func(unwind.Rule) (uint16, error)) (tableLayout, error) {
	var lay tableLayout
	if len(rows) == 0 {
		return lay, nil
	}
	first, last := rows[0].PC>>pageBits, rows[len(rows)-1].PC>>pageBits
	if last-first >= maxFilePages {
		return lay, fmt.Errorf("unwind table spans %d pages, more than %d", last-first+1, maxFilePages)
	}
	lay.firstPage = first
	lay.rows = make([]uint32, 0, len(rows)+int(last-first)+1)
	lay.pages = make([]uint64, last-first+1)
	carry := uint16(0)
	i := 0
	for p := first; p <= last; p++ {
		start := uint32(len(lay.rows))
		if i >= len(rows) || rows[i].PC>>pageBits != p || rows[i].PC&0xffff != 0 {
			if carry != 0 {
				lay.rows = append(lay.rows, uint32(carry))
			}
		}
		for ; i < len(rows) && rows[i].PC>>pageBits == p; i++ {
			id, err := ruleID(rows[i].Rule)
			if err != nil {
				return lay, err
			}
			lay.rows = append(lay.rows, uint32(rows[i].PC&0xffff)<<16|uint32(id))
			carry = id
		}
		lay.pages[p-first] = uint64(start) | uint64(uint32(len(lay.rows))-start)<<32
	}
	return lay, nil
}

// ruleID returns the shared id of r, adding it the first time. Id 0 means
// no rule (CFANone); offsets the BPF rule can't hold become invalid rules.
func (s *tableStore) ruleID(r unwind.Rule) (uint16, error) {
	if r.CFA == unwind.CFANone {
		return 0, nil
	}
	if r.RBPOffset < -32768 || r.RBPOffset > 32767 {
		r = unwind.Rule{CFA: unwind.CFAInvalid}
	}
	if id, ok := s.ruleIDs[r]; ok {
		return id, nil
	}
	id := len(s.ruleIDs) + 1
	if id >= maxRules || uint32(id) >= s.rules.Size()/ruleSize {
		return 0, fmt.Errorf("%w: more than %d distinct unwind rules", ErrNoRoom, id-1)
	}
	var b [ruleSize]byte
	b[0], b[1] = byte(r.CFA), byte(r.RBP)
	binary.LittleEndian.PutUint16(b[2:], uint16(int16(r.RBPOffset)))
	binary.LittleEndian.PutUint32(b[4:], uint32(r.CFAOffset))
	if _, err := s.rules.WriteAt(b[:], int64(id)*ruleSize); err != nil {
		return 0, fmt.Errorf("writing unwind rule: %w", err)
	}
	s.ruleIDs[r] = uint16(id)
	return uint16(id), nil
}

func (s *tableStore) writeTable(f *tableFile, lay tableLayout) error {
	rb := make([]byte, len(lay.rows)*rowSize)
	for i, r := range lay.rows {
		binary.LittleEndian.PutUint32(rb[i*rowSize:], r)
	}
	if _, err := s.rows.WriteAt(rb, int64(f.rowStart)*rowSize); err != nil {
		return fmt.Errorf("writing unwind rows: %w", err)
	}
	pb := make([]byte, len(lay.pages)*pageInfoSize)
	for i, p := range lay.pages {
		binary.LittleEndian.PutUint32(pb[i*pageInfoSize:], uint32(p)+f.rowStart)
		binary.LittleEndian.PutUint32(pb[i*pageInfoSize+4:], uint32(p>>32))
	}
	if _, err := s.pages.WriteAt(pb, int64(f.pageStart)*pageInfoSize); err != nil {
		return fmt.Errorf("writing unwind pages: %w", err)
	}
	f.firstPage = lay.firstPage
	return nil
}

func (s *tableStore) writeFile(f *tableFile) error {
	var b [fileInfoSize]byte
	binary.LittleEndian.PutUint64(b[0:], f.firstPage)
	binary.LittleEndian.PutUint32(b[8:], f.pageStart)
	binary.LittleEndian.PutUint32(b[12:], f.pageCount)
	binary.LittleEndian.PutUint32(b[16:], f.state)
	if _, err := s.files.WriteAt(b[:], int64(f.id)*fileInfoSize); err != nil {
		return fmt.Errorf("writing unwind file %d: %w", f.id, err)
	}
	return nil
}

// allocEvicting allocates n entries, evicting unused tables until they fit.
func (s *tableStore) allocEvicting(a *rangeAlloc, n uint32) (uint32, bool) {
	for {
		if start, ok := a.alloc(n); ok {
			return start, true
		}
		if !s.evictOne() {
			return 0, false
		}
	}
}

// evictOne drops the least recently used table that no process maps.
func (s *tableStore) evictOne() bool {
	var victim *tableFile
	for _, f := range s.byID {
		if f.refs == 0 && (victim == nil || f.lastUse < victim.lastUse) {
			victim = f
		}
	}
	if victim == nil {
		return false
	}
	s.release(victim)
	delete(s.byID, victim.id)
	s.freeIDs = append(s.freeIDs, victim.id)
	if victim.onEvict != nil {
		victim.onEvict()
	}
	return true
}

// release returns a file's space; its entry goes back to loading first so
// no walk reads rows that are about to be reused.
func (s *tableStore) release(f *tableFile) {
	f.state = fileLoading
	_ = s.writeFile(f)
	if f.placed {
		s.rowAlloc.free(f.rowStart, f.rowCount)
		s.pageAlloc.free(f.pageStart, f.pageCount)
		f.placed = false
	}
}

// ref and unref count the registered processes that map a file.
func (s *tableStore) ref(f *tableFile) {
	s.mu.Lock()
	f.refs++
	s.lruTick++
	f.lastUse = s.lruTick
	s.mu.Unlock()
}

func (s *tableStore) unref(f *tableFile) {
	s.mu.Lock()
	f.refs--
	s.mu.Unlock()
}

// usage is the bytes of BPF array memory the tables occupy and reserve.
func (s *tableStore) usage() (used, capacity uint64, files int, rules int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	used = uint64(s.rowAlloc.used)*rowSize + uint64(s.pageAlloc.used)*pageInfoSize +
		uint64(len(s.ruleIDs))*ruleSize + uint64(len(s.byID))*fileInfoSize
	capacity = uint64(s.rows.Size()) + uint64(s.pages.Size()) + uint64(s.rules.Size()) + uint64(s.files.Size())
	for _, f := range s.byID {
		if f.state == fileReady {
			files++
		}
	}
	return used, capacity, files, len(s.ruleIDs)
}

// rangeAlloc is a first-fit allocator of index ranges in [0, size).
type rangeAlloc struct {
	size uint32
	used uint32
	// free ranges sorted by start; an empty list with end < size means the
	// tail [end, size) is free.
	holes []span
	end   uint32
}

type span struct{ start, n uint32 }

func (a *rangeAlloc) alloc(n uint32) (uint32, bool) {
	if n == 0 {
		return 0, true
	}
	for i, h := range a.holes {
		if h.n >= n {
			if h.n == n {
				a.holes = slices.Delete(a.holes, i, i+1)
			} else {
				a.holes[i] = span{h.start + n, h.n - n}
			}
			a.used += n
			return h.start, true
		}
	}
	if a.size-a.end < n {
		return 0, false
	}
	start := a.end
	a.end += n
	a.used += n
	return start, true
}

// free returns a range, merging it with its neighbours.
func (a *rangeAlloc) free(start, n uint32) {
	if n == 0 {
		return
	}
	a.used -= n
	i, _ := slices.BinarySearchFunc(a.holes, start, func(h span, s uint32) int { return int(int64(h.start) - int64(s)) })
	a.holes = slices.Insert(a.holes, i, span{start, n})
	if i+1 < len(a.holes) && a.holes[i].start+a.holes[i].n == a.holes[i+1].start {
		a.holes[i].n += a.holes[i+1].n
		a.holes = slices.Delete(a.holes, i+1, i+2)
	}
	if i > 0 && a.holes[i-1].start+a.holes[i-1].n == a.holes[i].start {
		a.holes[i-1].n += a.holes[i].n
		a.holes = slices.Delete(a.holes, i, i+1)
	}
	if last := a.holes[len(a.holes)-1]; last.start+last.n == a.end {
		a.end = last.start
		a.holes = a.holes[:len(a.holes)-1]
	}
}
