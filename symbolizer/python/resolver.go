package python

import (
	"io"
	"sync"
)

const (
	// DefaultMaxCodes is the cache bound NewResolver takes for a maxCodes
	// below 1.
	DefaultMaxCodes = 16 << 10
	// maxCacheBytes bounds the cache's memory as well as its count: a
	// process can make huge line tables.
	maxCacheBytes = 64 << 20
)

// Resolver names the Python frames of many processes. It caches every code
// object it has read, keyed by (pid, address, checksum), so each is read
// from the process once. The cache holds at most maxCodes code objects and
// about 64 MiB; past either bound the oldest entries are dropped first
// (first in, first out: a cheap bound that needs no bookkeeping on hits,
// which are by far the most frequent call). A Resolver is safe for
// concurrent use; memory is read without holding its lock.
type Resolver struct {
	mu       sync.Mutex
	maxCodes int
	count    int // live entries
	bytes    int // their estimated size
	procs    map[uint32]map[codeRef]*entry
	queue    []*entry // insertion order, oldest at head; may hold dead entries
	head     int
}

// codeRef identifies a code object within a process. The checksum is part
// of it: a new code object at a freed one's address is another entry.
type codeRef struct {
	addr  uint64
	check uint32
}

// entry is a cached code object, with the last line looked up: a thread
// busy in one place is sampled at the same offset again and again.
type entry struct {
	pid  uint32
	ref  codeRef
	code *codeObject
	cost int
	dead bool // forgotten or evicted: only the queue still holds it

	lastOff  uint32
	lastLine int
	hasLast  bool
}

// NewResolver returns a Resolver caching at most maxCodes code objects
// (DefaultMaxCodes when maxCodes < 1).
func NewResolver(maxCodes int) *Resolver {
	if maxCodes < 1 {
		maxCodes = DefaultMaxCodes
	}
	return &Resolver{maxCodes: maxCodes, procs: map[uint32]map[codeRef]*entry{}}
}

// Frame names the code object at address code in process pid, whose
// memory mem reads at virtual addresses (/proc/<pid>/mem), at byte offset
// offset into its instructions (UnknownOffset for its first line). check is
// the checksum the BPF program computed when it sampled the frame; a code
// object that no longer matches it is not named. Errors other than a nil
// or inconsistent Layout are *UnreadableError.
func (r *Resolver) Frame(pid uint32, l *Layout, mem io.ReaderAt, code uint64, check uint32, offset uint32) (Frame, error) {
	ref := codeRef{addr: code, check: check}
	r.mu.Lock()
	if e := r.procs[pid][ref]; e != nil {
		f := e.frame(offset)
		r.mu.Unlock()
		return f, nil
	}
	r.mu.Unlock()
	c, err := readCode(l, mem, code, check)
	if err != nil {
		return Frame{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.insert(pid, ref, c).frame(offset), nil
}

// frame names e's code object at offset.
func (e *entry) frame(offset uint32) Frame {
	if !e.hasLast || e.lastOff != offset {
		e.lastOff, e.lastLine, e.hasLast = offset, e.code.line(offset), true
	}
	return Frame{Function: e.code.function, File: e.code.file, Line: e.lastLine}
}

// insert caches c, unless another call did meanwhile, and returns the
// cached entry. Called with r.mu held.
func (r *Resolver) insert(pid uint32, ref codeRef, c *codeObject) *entry {
	if e := r.procs[pid][ref]; e != nil {
		return e
	}
	e := &entry{pid: pid, ref: ref, code: c, cost: c.size()}
	for r.head < len(r.queue) && (r.count >= r.maxCodes || r.bytes+e.cost > maxCacheBytes ||
		len(r.queue)-r.head >= r.maxCodes) {
		r.evictOldest()
	}
	codes := r.procs[pid]
	if codes == nil {
		codes = map[codeRef]*entry{}
		r.procs[pid] = codes
	}
	codes[ref] = e
	r.queue = append(r.queue, e)
	r.count++
	r.bytes += e.cost
	return e
}

// evictOldest drops the entry at the head of the queue, if still cached.
func (r *Resolver) evictOldest() {
	e := r.queue[r.head]
	r.queue[r.head] = nil
	r.head++
	if r.head >= 1024 && r.head >= len(r.queue)/2 {
		// Reuse the space in front rather than let the queue grow.
		r.queue = append(r.queue[:0], r.queue[r.head:]...)
		r.head = 0
	}
	if e.dead {
		return
	}
	codes := r.procs[e.pid]
	delete(codes, e.ref)
	if len(codes) == 0 {
		delete(r.procs, e.pid)
	}
	r.drop(e)
}

// drop uncounts e and lets go of what it holds; the queue may keep the
// husk a while longer.
func (r *Resolver) drop(e *entry) {
	e.dead = true
	e.code = nil
	r.count--
	r.bytes -= e.cost
}

// Forget drops the cache entries of process pid, once it has exited or
// exec'd: its addresses will mean other things. (A Frame call for pid
// running meanwhile may still cache its code object; it ages out.)
func (r *Resolver) Forget(pid uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.procs[pid] {
		r.drop(e)
	}
	delete(r.procs, pid)
}

// Len returns how many code objects are cached.
func (r *Resolver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}
