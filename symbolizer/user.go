package symbolizer

import (
	"fmt"
	"os"
	"time"
)

// User names addresses of pid using what Prepare captured, preparing the
// process first if it was never seen. An address outside the known
// mappings makes it re-read the maps of a live process (at most once a
// second). It never fails per address: unnamed ones keep their mapping.
func (s *Symbolizer) User(pid int, addrs []uint64) []Location {
	out := make([]Location, len(addrs))
	p := s.lookupProcess(pid)
	if p == nil {
		p, _ = s.prepare(pid)
	}
	perfChecked := false // the perf map is stat'ed at most once per call
	for i, a := range addrs {
		out[i] = s.userOne(&p, pid, a, &perfChecked)
		if out[i].Named() {
			s.st.hits.Add(1)
		} else {
			s.st.misses.Add(1)
		}
	}
	return out
}

// userOne names one address, refreshing *pp when the address is outside
// the mappings known so far.
func (s *Symbolizer) userOne(pp **process, pid int, addr uint64, perfChecked *bool) Location {
	p := *pp
	var pm *procMapping
	if p != nil {
		pm = p.find(addr)
	}
	if pm == nil && (p == nil || p.mayRefresh(time.Now())) {
		if np, err := s.prepare(pid); err == nil {
			*pp, p = np, np
			pm = p.find(addr)
		}
	}
	loc := Location{Address: addr}
	if pm != nil {
		loc.Mapping = pm.m
		loc.Frames = s.mappedFrames(pm, addr)
	}
	if len(loc.Frames) == 0 && p != nil && (pm == nil || pm.obj == nil) {
		loc.Frames = s.perfMapFrames(p, addr, !*perfChecked)
		*perfChecked = true
	}
	return loc
}

// mappedFrames converts addr to the file's virtual address through the
// mapping's file offset and the PT_LOAD segment holding it, then looks it up.
func (s *Symbolizer) mappedFrames(pm *procMapping, addr uint64) []Frame {
	if pm.obj == nil {
		return nil
	}
	vaddr, ok := pm.obj.img.toVaddr(pm.m.FileOffset(addr))
	if !ok {
		return nil
	}
	return s.lookupFile(pm.obj, vaddr)
}

// perfMapFrames names JIT code from /tmp/perf-<pid>.map (or, for a process
// in its own pid namespace, the map in its root under its own pid),
// re-reading the file, when recheck is set, if it has grown or changed
// since it was parsed.
func (s *Symbolizer) perfMapFrames(p *process, addr uint64, recheck bool) []Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	if recheck {
		s.reloadPerfMap(p)
	}
	if p.perf == nil {
		return nil
	}
	return p.perf.lookup(addr)
}

// reloadPerfMap parses the perf map again when its size or time changed.
// Called with p.mu held.
func (s *Symbolizer) reloadPerfMap(p *process) {
	path := fmt.Sprintf("%s/perf-%d.map", s.opts.PerfMapDir, p.pid)
	if p.nsPid != p.pid {
		path = fmt.Sprintf("%s/tmp/perf-%d.map", p.root, p.nsPid)
	}
	if st, err := os.Stat(path); err == nil && (st.Size() != p.perfSize || !st.ModTime().Equal(p.perfMod)) {
		p.perfSize, p.perfMod = st.Size(), st.ModTime()
		p.perf = loadPerfMap(path)
	}
}

func loadPerfMap(path string) *symtab {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	syms, _ := ParsePerfMap(f) // keep the entries that parsed
	if len(syms) == 0 {
		return nil
	}
	return symtabFromSymbols(syms)
}
