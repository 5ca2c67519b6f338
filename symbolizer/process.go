package symbolizer

import (
	"bufio"
	"container/list"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	maxMapsBytes = 16 << 20
	// refreshInterval bounds how often an address outside the known
	// mappings makes User re-read a live process's maps.
	refreshInterval = time.Second
)

// process is what Prepare captured of one process. Its mappings are
// immutable; a new Prepare replaces the whole value.
type process struct {
	pid      int
	maps     []procMapping // sorted by Start
	objs     []*objFile    // distinct files referenced, one reference each
	mapsHash uint64
	root     string
	nsPid    int // the pid inside the process's pid namespace (containers)
	elem     *list.Element

	mu          sync.Mutex // guards the fields below
	lastRefresh time.Time
	perf        *symtab
	perfSize    int64
	perfMod     time.Time
}

type procMapping struct {
	m   *Mapping
	obj *objFile // nil when the file could not be opened or is not ELF
}

// Prepare captures pid's mappings and opens every mapped executable file now,
// so its frames can be named after it exits or deletes its binary. It is
// cheap when the maps have not changed since the last call.
func (s *Symbolizer) Prepare(pid int) error {
	_, err := s.prepare(pid)
	return err
}

func (s *Symbolizer) prepare(pid int) (*process, error) {
	raw, err := s.readMaps(pid)
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	h.Write(raw)
	sum := h.Sum64()
	if p := s.lookupProcess(pid); p != nil && p.mapsHash == sum {
		return p, nil
	}
	maps, err := ParseMaps(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("preparing pid %d: %w", pid, err)
	}
	p := s.openMappings(pid, maps)
	p.mapsHash = sum
	s.installProcess(p)
	return p, nil
}

func (s *Symbolizer) readMaps(pid int) ([]byte, error) {
	s.st.mapsReads.Add(1)
	f, err := os.Open(fmt.Sprintf("%s/%d/maps", s.opts.ProcRoot, pid))
	if err != nil {
		return nil, fmt.Errorf("reading maps of pid %d: %w", pid, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxMapsBytes))
	if err != nil {
		return nil, fmt.Errorf("reading maps of pid %d: %w", pid, err)
	}
	return raw, nil
}

// openMappings opens the file behind each executable mapping, once per
// distinct file, preferring /proc/<pid>/map_files (works for deleted files)
// over /proc/<pid>/root/<path> (works for containers).
func (s *Symbolizer) openMappings(pid int, maps []Mapping) *process {
	p := &process{pid: pid, root: fmt.Sprintf("%s/%d/root", s.opts.ProcRoot, pid), nsPid: s.nsPid(pid)}
	byFile := map[string]*objFile{}
	maps = codeMappings(maps)
	for i := range maps {
		m := &maps[i]
		pm := procMapping{m: m}
		switch {
		case m.Path == "[vdso]":
			pm.obj = s.vdsoObject(pid, m)
		case isFileMapping(m) && m.Executable():
			id := m.Dev + ":" + fmt.Sprint(m.Inode) + ":" + m.Path
			o, seen := byFile[id]
			if !seen {
				o = s.openMapped(pid, m, p.root)
				byFile[id] = o
				if o != nil {
					p.objs = append(p.objs, o)
				}
			}
			pm.obj = o
		}
		if pm.obj != nil {
			m.BuildID = pm.obj.img.buildID
		}
		p.maps = append(p.maps, pm)
	}
	sort.Slice(p.maps, func(i, j int) bool { return p.maps[i].m.Start < p.maps[j].m.Start })
	return p
}

// codeMappings returns copies of the executable mappings, the only ones a
// sampled pc can be in, with their strings copied out of the maps lines
// they were cut from: what a remembered process keeps is its code
// mappings, not the whole text of its maps.
func codeMappings(maps []Mapping) []Mapping {
	n := 0
	for i := range maps {
		if maps[i].Executable() {
			n++
		}
	}
	out := make([]Mapping, 0, n)
	for _, m := range maps {
		if m.Executable() {
			m.Path, m.Perms, m.Dev = strings.Clone(m.Path), strings.Clone(m.Perms), strings.Clone(m.Dev)
			out = append(out, m)
		}
	}
	return out
}

func (s *Symbolizer) openMapped(pid int, m *Mapping, root string) *objFile {
	f, err := os.Open(fmt.Sprintf("%s/%d/map_files/%x-%x", s.opts.ProcRoot, pid, m.Start, m.Limit))
	if err != nil {
		f, err = os.Open(root + strings.TrimSuffix(m.Path, " (deleted)"))
	}
	if err != nil {
		s.st.openErrors.Add(1)
		return nil
	}
	return s.adoptFile(f, strings.TrimSuffix(m.Path, " (deleted)"), root)
}

func (s *Symbolizer) lookupProcess(pid int) *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[pid]
	if p != nil {
		s.procLRU.MoveToFront(p.elem)
	}
	return p
}

// installProcess replaces what was known of p.pid and evicts the least
// recently used processes beyond MaxProcesses.
func (s *Symbolizer) installProcess(p *process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.procs[p.pid]; old != nil {
		p.lastRefresh = old.refreshTime()
		s.dropProcess(old)
	}
	s.procs[p.pid] = p
	p.elem = s.procLRU.PushFront(p)
	for s.procLRU.Len() > s.opts.MaxProcesses {
		s.dropProcess(s.procLRU.Back().Value.(*process))
		s.st.procEvictions.Add(1)
	}
}

// dropProcess forgets p. Called with s.mu held.
func (s *Symbolizer) dropProcess(p *process) {
	delete(s.procs, p.pid)
	s.procLRU.Remove(p.elem)
	s.releaseProcess(p)
}

// releaseProcess gives back p's file references. Called with s.mu held.
func (s *Symbolizer) releaseProcess(p *process) {
	for _, o := range p.objs {
		s.releaseFile(o)
	}
	p.objs = nil
}

// Forget drops what is remembered of pid (call it once the process is gone).
func (s *Symbolizer) Forget(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[pid]; p != nil {
		s.dropProcess(p)
	}
}

// find returns the mapping containing addr, or nil.
func (p *process) find(addr uint64) *procMapping {
	i := sort.Search(len(p.maps), func(i int) bool { return p.maps[i].m.Start > addr }) - 1
	if i >= 0 && addr < p.maps[i].m.Limit {
		return &p.maps[i]
	}
	return nil
}

func (p *process) refreshTime() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastRefresh
}

// mayRefresh reports whether a miss may re-read maps now, and records it.
func (p *process) mayRefresh(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.lastRefresh) < refreshInterval {
		return false
	}
	p.lastRefresh = now
	return true
}

// nsPid returns pid as the process sees itself (the last NSpid in
// /proc/<pid>/status), which names its JIT perf map inside a container.
func (s *Symbolizer) nsPid(pid int) int {
	f, err := os.Open(fmt.Sprintf("%s/%d/status", s.opts.ProcRoot, pid))
	if err != nil {
		return pid
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.Atoi(f[len(f)-1]); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return pid
}
