package cpuprofile

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/vigil-ebpf/vigil/symbolizer"
	"github.com/vigil-ebpf/vigil/symbolizer/python"
)

// maxMappings is MAX_MAPPINGS in unwind.bpf.h: executable mappings kept per
// process; past it the rest of a process's code is walked with frame pointers.
const maxMappings = 256

// registry keeps every sampled process's executable mappings in the procs
// map and hands new files to the table builder. Processes are registered
// when BPF first sees them, when they exec, and when a PC falls outside
// their known mappings (dlopen, new JIT code); dead ones are swept.
type registry struct {
	procs    *ebpf.Map
	seen     *ebpf.Map
	store    *tableStore
	builder  *builder
	procRoot string

	q worker[regRequest]

	// pyProcs is the py_procs map when Python frames are walked, else nil.
	pyProcs *ebpf.Map
	// loadPython loads the Python walker before the first py_procs entry,
	// once; nil when it was loaded in Open.
	loadPython func() error
	pyOnce     sync.Once
	pyErr      error

	mu     sync.Mutex
	files  map[string]*fileRef // by "dev:inode" and by "build-id:<hex>"
	regs   map[uint32]*procReg
	python map[uint32]*pythonProc
	// pythonGone are CPython processes that exited, kept a little;
	// pythonFound counts those found since the start, by version.
	pythonGone  map[uint32]*goneProcess
	pythonFound map[string]int
	failed      map[uint32]time.Time // last failed registration, to retry at most once a second
	lastSwep    time.Time
	stats       unwindCounters
}

type regRequest struct {
	pid   uint32
	force bool // exec: the old registration is void even if maps look alike
}

// fileRef is one mapped file's identity, load segments and table.
type fileRef struct {
	keys  []string
	loads []elf.ProgHeader
	table *tableFile
	py    *python.Binary // a CPython interpreter (executable or libpython), else nil
}

// procReg is what a process was registered with.
type procReg struct {
	sig   uint64 // hash of its executable mappings: skips re-registering the same
	files []*fileRef
}

// unwindCounters are user-space counts of the unwinder, read by Stats.
type unwindCounters struct {
	processes        uint64 // registrations written
	registerFailed   uint64
	mappingsDropped  uint64 // executable mappings past maxMappings
	tablesBuilt      uint64
	tablesNoCFI      uint64 // files walked with frame pointers: no CFI, or Go
	tablesNoRoom     uint64
	tablesTooLarge   uint64 // CFI over maxCFIBytes: frame pointers
	tablesFailed     uint64
	tableRows        uint64
	tableSourceBytes uint64
	buildTime        time.Duration
	unsupported      map[string]uint64
	pythonProcesses  uint64 // processes found to run CPython
	pythonFailed     uint64 // interpreters found but not usable
}

func newRegistry(procs, seen *ebpf.Map, store *tableStore, procRoot string) *registry {
	r := &registry{
		procs: procs, seen: seen, store: store, procRoot: procRoot,
		files: map[string]*fileRef{}, regs: map[uint32]*procReg{}, failed: map[uint32]time.Time{},
		python: map[uint32]*pythonProc{}, pythonGone: map[uint32]*goneProcess{}, pythonFound: map[string]int{},
	}
	r.stats.unsupported = map[string]uint64{}
	r.builder = newBuilder(r)
	r.q.start(r.registerLogged, func(regRequest) {})
	return r
}

// request queues pid for registration; it never blocks the event reader.
// A pid already waiting is not queued twice, unless this is an exec.
func (r *registry) request(pid uint32, force bool) {
	// BPF announces an unregistered process again at its next sample; a
	// process that can't be registered (its maps unreadable) would cost a
	// registration per sample without this.
	r.mu.Lock()
	last, failed := r.failed[pid]
	r.mu.Unlock()
	if failed && !force && time.Since(last) < time.Second {
		return
	}
	r.q.push(regRequest{pid, force}, func(queued []regRequest) bool {
		return !force && slices.ContainsFunc(queued, func(q regRequest) bool { return q.pid == pid })
	})
}

func (r *registry) registerLogged(req regRequest) {
	if err := r.register(req.pid, req.force); err != nil {
		r.count(func(c *unwindCounters) {
			c.registerFailed++
			r.failed[req.pid] = time.Now()
		})
		slog.Debug("registering process for unwinding failed", "component", "cpuprofile", "pid", req.pid, "err", err)
	}
}

// wait blocks until the registrations queued so far are done.
func (r *registry) wait() { r.q.wait() }

func (r *registry) close() {
	r.q.stop()
	r.builder.close()
}

func (r *registry) count(f func(*unwindCounters)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// register writes pid's executable mappings into the procs map.
func (r *registry) register(pid uint32, force bool) error {
	text, err := os.ReadFile(r.procPath(pid, "maps"))
	if err != nil {
		return fmt.Errorf("reading mappings: %w", err)
	}
	maps, err := symbolizer.ParseMaps(bytes.NewReader(text))
	if err != nil {
		return err
	}
	exec := executable(maps)
	sig := signature(exec)
	r.mu.Lock()
	old := r.regs[pid]
	r.mu.Unlock()
	if old != nil && old.sig == sig && !force && r.stillRegistered(pid) {
		return nil
	}
	var val cpuprofileProc
	var py *pythonProc
	reg := &procReg{sig: sig}
	for i := range exec {
		if int(val.N) == maxMappings {
			r.count(func(c *unwindCounters) { c.mappingsDropped += uint64(len(exec) - maxMappings) })
			break
		}
		m := &exec[i]
		entry := cpuprofileMapping{Start: m.Start, Len: uint32(min(m.Limit-m.Start, 1<<32-1))}
		if ref := r.fileFor(pid, m); ref != nil {
			if bias, ok := loadBias(ref.loads, m); ok {
				entry.Bias, entry.File = bias, ref.table.id
				reg.files = append(reg.files, ref)
				if ref.py != nil && py == nil {
					py = &pythonProc{bin: ref.py, bias: bias, path: m.Path}
				}
			}
		}
		val.M[val.N] = entry
		val.N++
	}
	for _, f := range reg.files {
		r.store.ref(f.table)
	}
	if err := r.procs.Put(pid, &val); err != nil {
		r.unrefAll(reg)
		return fmt.Errorf("writing process %d mappings: %w", pid, err)
	}
	r.mu.Lock()
	r.regs[pid] = reg
	r.stats.processes++
	r.mu.Unlock()
	if old != nil {
		r.unrefAll(old)
	}
	r.registerPython(pid, py)
	return nil
}

// Rough sizes of what the registry keeps, for UnwindStats.UserBytes: a map
// entry with its key, a file's identity and load segments, a process's
// list of files, a rule.
const (
	mapEntryBytes  = 48
	fileRefBytes   = 96
	progHdrBytes   = 56
	ruleEntryBytes = 40
)

// userBytes estimates the registry's heap between builds.
func (r *registry) userBytes() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	seen := map[*fileRef]bool{}
	for k, f := range r.files {
		n += mapEntryBytes + uint64(len(k))
		if !seen[f] {
			seen[f] = true
			n += fileRefBytes + uint64(len(f.loads))*progHdrBytes
		}
	}
	for _, reg := range r.regs {
		n += mapEntryBytes + 8*uint64(cap(reg.files))
	}
	return n
}

// stillRegistered tells whether pid's entry is still in the procs map (it
// is an LRU: a busy host can push out a quiet process).
func (r *registry) stillRegistered(pid uint32) bool {
	var v cpuprofileProc
	return r.procs.Lookup(pid, &v) == nil
}

func (r *registry) unrefAll(reg *procReg) {
	for _, f := range reg.files {
		r.store.unref(f.table)
	}
}

func (r *registry) procPath(pid uint32, name string) string {
	return r.procRoot + "/" + strconv.FormatUint(uint64(pid), 10) + "/" + name
}

// userLimit is above every user-space address: x86-64 user space ends at
// 2^47 (2^56 with five-level paging). The legacy [vsyscall] page lies above
// it and is left out: the walker's branch-free search compares addresses
// by the sign of their difference, which holds only below 2^63.
const userLimit = 1 << 63

// executable keeps the user-space mappings that may hold code, sorted by
// address.
func executable(maps []symbolizer.Mapping) []symbolizer.Mapping {
	out := make([]symbolizer.Mapping, 0, 32)
	for _, m := range maps {
		if m.Executable() && m.Limit > m.Start && m.Limit <= userLimit {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b symbolizer.Mapping) int {
		if a.Start < b.Start {
			return -1
		}
		if a.Start > b.Start {
			return 1
		}
		return 0
	})
	return out
}

func signature(exec []symbolizer.Mapping) uint64 {
	h := fnv.New64a()
	var b [32]byte
	for _, m := range exec {
		binary.LittleEndian.PutUint64(b[0:], m.Start)
		binary.LittleEndian.PutUint64(b[8:], m.Limit)
		binary.LittleEndian.PutUint64(b[16:], m.Offset)
		binary.LittleEndian.PutUint64(b[24:], m.Inode)
		h.Write(b[:])
	}
	return h.Sum64()
}

// fileFor returns the file behind a file-backed mapping, opening it and
// queueing its table the first time its identity is seen. Anonymous code
// (JIT), the vDSO and files that can't be read get no table: frame pointers.
func (r *registry) fileFor(pid uint32, m *symbolizer.Mapping) *fileRef {
	if m.Path == "[vdso]" {
		return r.vdsoFor(pid, m)
	}
	if m.Inode == 0 || m.Path == "" || m.Path[0] != '/' {
		return nil
	}
	key := "inode:" + m.Dev + ":" + strconv.FormatUint(m.Inode, 10)
	r.mu.Lock()
	ref := r.files[key]
	r.mu.Unlock()
	if ref != nil {
		return ref
	}
	f, err := os.Open(r.procPath(pid, "map_files/"+strconv.FormatUint(m.Start, 16)+"-"+strconv.FormatUint(m.Limit, 16)))
	if err != nil {
		if f, err = os.Open(r.procPath(pid, "root") + m.Path); err != nil {
			return nil
		}
	}
	ef, err := openELF(f)
	if err != nil {
		f.Close()
		return nil
	}
	id := buildID(ef)
	r.mu.Lock()
	if id != "" && r.files["build-id:"+id] != nil {
		ref = r.files["build-id:"+id]
		ref.keys = append(ref.keys, key)
		r.files[key] = ref
		r.mu.Unlock()
		f.Close()
		return ref
	}
	r.mu.Unlock()
	ref = &fileRef{keys: []string{key}, loads: loadSegments(ef)}
	if r.pyProcs != nil {
		py, err := inspectPython(ef, m.Path)
		if err != nil {
			r.count(func(c *unwindCounters) { c.pythonFailed++ })
			slog.Debug("CPython interpreter not usable", "component", "cpuprofile", "path", m.Path, "err", err)
		}
		ref.py = py
	}
	if id != "" {
		ref.keys = append(ref.keys, "build-id:"+id)
	}
	if r.track(ref) == nil {
		f.Close()
		return nil
	}
	r.builder.enqueue(buildJob{ref: ref, file: f, elf: ef, path: m.Path, root: r.procPath(pid, "root")})
	return ref
}

// track gives a new file its table slot and makes it findable by its keys.
func (r *registry) track(ref *fileRef) *fileRef {
	tf, err := r.store.newFile()
	if err != nil {
		r.count(func(c *unwindCounters) { c.tablesNoRoom++ })
		return nil
	}
	ref.table = tf
	tf.onEvict = func() { r.forgetFile(ref) } // called with the store's lock held
	r.mu.Lock()
	for _, k := range ref.keys {
		r.files[k] = ref
	}
	r.mu.Unlock()
	return ref
}

// maxVDSOSize bounds what is read of a process's vDSO (two pages today).
const maxVDSOSize = 64 << 10

// vdsoFor returns the vDSO's table, built once from the first process's
// memory: the kernel maps the same image into every process. Its
// functions (clock_gettime, gettimeofday) are frameless leaves, where a
// frame-pointer step would skip the caller.
func (r *registry) vdsoFor(pid uint32, m *symbolizer.Mapping) *fileRef {
	const key = "vdso"
	r.mu.Lock()
	ref := r.files[key]
	r.mu.Unlock()
	if ref != nil {
		return ref
	}
	size := m.Limit - m.Start
	if size > maxVDSOSize {
		return nil
	}
	mem, err := os.Open(r.procPath(pid, "mem"))
	if err != nil {
		return nil
	}
	defer mem.Close()
	img := make([]byte, size)
	if _, err := mem.ReadAt(img, int64(m.Start)); err != nil {
		return nil
	}
	ef, err := openELFBytes(img)
	if err != nil {
		return nil
	}
	ref = r.track(&fileRef{keys: []string{key}, loads: loadSegments(ef)})
	if ref == nil {
		return nil
	}
	r.builder.enqueue(buildJob{ref: ref, elf: ef, path: m.Path})
	return ref
}

// maxSections bounds the section headers of a file vigil reads: real
// binaries have a few dozen.
const maxSections = 1 << 16

// openELFBytes parses an ELF image read from process memory.
func openELFBytes(b []byte) (*elf.File, error) { return openELF(bytes.NewReader(b)) }

// openELF parses an ELF header from a file vigil did not build; a panic in
// the parser or an absurd section count is an error.
func openELF(f io.ReaderAt) (ef *elf.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			ef, err = nil, fmt.Errorf("parsing ELF headers: panic: %v", r)
		}
	}()
	ef, err = elf.NewFile(f)
	if err == nil && len(ef.Sections) > maxSections {
		return nil, fmt.Errorf("%d ELF sections", len(ef.Sections))
	}
	return ef, err
}

func (r *registry) forgetFile(ref *fileRef) {
	r.mu.Lock()
	for _, k := range ref.keys {
		if r.files[k] == ref {
			delete(r.files, k)
		}
	}
	r.mu.Unlock()
}

// loadSegments keeps the PT_LOAD headers, all that bias needs.
func loadSegments(f *elf.File) []elf.ProgHeader {
	var out []elf.ProgHeader
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			out = append(out, p.ProgHeader)
		}
	}
	return out
}

// loadBias is what to subtract from an address in m to get the file's
// virtual address: the segment that maps m's file offset says where that
// offset was meant to be.
func loadBias(loads []elf.ProgHeader, m *symbolizer.Mapping) (uint64, bool) {
	for _, p := range loads {
		if p.Flags&elf.PF_X == 0 {
			continue
		}
		segStart := p.Off &^ 0xfff
		if m.Offset >= segStart && m.Offset < p.Off+p.Filesz {
			return m.Start - (p.Vaddr + m.Offset - p.Off), true
		}
	}
	return 0, false
}

// buildID reads the GNU build-id note, or "".
func buildID(f *elf.File) (id string) {
	defer func() {
		if recover() != nil {
			id = ""
		}
	}()
	s := f.Section(".note.gnu.build-id")
	if s == nil || s.Size > 1024 {
		return ""
	}
	b, err := s.Data()
	if err != nil || len(b) < 16 {
		return ""
	}
	nameSz, descSz := f.ByteOrder.Uint32(b[0:]), f.ByteOrder.Uint32(b[4:])
	off := 12 + (uint64(nameSz)+3)&^3
	if descSz == 0 || descSz > 64 || off+uint64(descSz) > uint64(len(b)) {
		return ""
	}
	return fmt.Sprintf("%x", b[off:off+uint64(descSz)])
}

// sweep forgets processes that have exited, at most once a second: their
// procs entries, their table references, and their "seen" mark, so a new
// process that reuses the pid is announced again.
func (r *registry) sweep() {
	r.mu.Lock()
	if time.Since(r.lastSwep) < time.Second {
		r.mu.Unlock()
		return
	}
	r.lastSwep = time.Now()
	r.ageGonePython()
	for pid, at := range r.failed {
		if time.Since(at) > time.Second {
			delete(r.failed, pid)
		}
	}
	pids := make([]uint32, 0, len(r.regs))
	for pid := range r.regs {
		pids = append(pids, pid)
	}
	r.mu.Unlock()
	for _, pid := range pids {
		if _, err := os.Stat(r.procPath(pid, "")); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		r.mu.Lock()
		reg := r.regs[pid]
		delete(r.regs, pid)
		r.mu.Unlock()
		_ = r.procs.Delete(pid)
		_ = r.seen.Delete(pid)
		r.forgetPython(pid)
		if reg != nil {
			r.unrefAll(reg)
		}
	}
}
