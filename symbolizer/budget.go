package symbolizer

import "sort"

// budgetTarget is the share of MaxBytes kept after enforcing the budget:
// dropping to below the limit means the next few files parsed do not each
// trigger another round.
const budgetTarget = 0.75

// dwarfLimit is the most one file's DWARF may hold: half the budget, so
// libc's debug file (about 24 MiB held) fits the default.
func (s *Symbolizer) dwarfLimit() uint64 {
	return uint64(s.opts.MaxBytes) / 2
}

// lookupFile names vaddr of o and keeps what parsed files hold within
// MaxBytes.
func (s *Symbolizer) lookupFile(o *objFile, vaddr uint64) []Frame {
	f := o.lookup(vaddr, s.opts.DebugDirs, &s.st)
	if s.st.held.Load() > s.opts.MaxBytes {
		s.enforceBudget()
	}
	return f
}

// enforceBudget drops parsed files, least recently used first, until what
// they hold is under budgetTarget of MaxBytes. A file no process uses is
// evicted and closed; one still in use keeps its handle and is parsed
// again when next needed. The most recently used file is kept, so a file
// larger than the budget on its own does not thrash.
func (s *Symbolizer) enforceBudget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	target := int64(float64(s.opts.MaxBytes) * budgetTarget)
	if s.st.held.Load() <= s.opts.MaxBytes {
		return // another goroutine got here first
	}
	cands := s.parsedFiles()
	sort.Slice(cands, func(i, j int) bool { return cands[i].lastUse.Load() < cands[j].lastUse.Load() })
	for _, o := range cands[:max(len(cands)-1, 0)] {
		if s.st.held.Load() <= target {
			break
		}
		if o.drop() {
			s.st.byteEvictions.Add(1)
		}
		if o.cached && o.refs == 0 && o.elem != nil {
			s.evictFile(o)
		}
	}
}

// parsedFiles lists every distinct file that may hold parsed data: cached,
// used by a remembered process (cached or not), or a vDSO image. Called
// with s.mu held.
func (s *Symbolizer) parsedFiles() []*objFile {
	seen := map[*objFile]bool{}
	var out []*objFile
	add := func(o *objFile) {
		if o != nil && !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	for _, o := range s.files {
		add(o)
	}
	for _, p := range s.procs {
		for _, o := range p.objs {
			add(o)
		}
	}
	for _, o := range s.vdsos {
		add(o)
	}
	return out
}
