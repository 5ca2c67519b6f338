package symbolizer

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// Defaults for Options fields left zero.
const (
	defaultMaxFiles     = 1024
	defaultMaxProcesses = 4096
	defaultMaxBytes     = 64 << 20
)

// Options configures a Symbolizer. Zero values take the defaults noted.
type Options struct {
	KallsymsPath string // default /proc/kallsyms
	ProcRoot     string // default /proc
	MaxFiles     int    // parsed files kept when no process uses them (LRU); default 1024
	// MaxBytes bounds what parsed files hold (section data, symbol
	// tables, DWARF indexes, Go tables, cached answers); default 64 MiB.
	// Over it, the least recently used files are dropped: closed when no
	// process uses them, else parsed again from their open handle when
	// next needed. One file's DWARF may take at most half of it.
	MaxBytes     int64
	MaxProcesses int      // processes remembered (LRU); default 4096
	PerfMapDir   string   // default /tmp (JIT perf maps perf-<pid>.map)
	DebugDirs    []string // default /usr/lib/debug
	SysRoot      string   // default /sys (kernel and module build IDs from notes)
	// KernelNamer, when set, names kernel addresses instead of kallsyms:
	// only the addresses asked about, so /proc/kallsyms (which the kernel
	// formats whole, tens of milliseconds) is read only for those it
	// leaves unnamed, or when it fails.
	KernelNamer KernelNamer
}

func (o Options) withDefaults() Options {
	if o.KallsymsPath == "" {
		o.KallsymsPath = "/proc/kallsyms"
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = defaultMaxFiles
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.MaxProcesses <= 0 {
		o.MaxProcesses = defaultMaxProcesses
	}
	if o.PerfMapDir == "" {
		o.PerfMapDir = "/tmp"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.DebugDirs == nil {
		o.DebugDirs = []string{"/usr/lib/debug"}
	}
	return o
}

// Symbolizer names kernel and user addresses. It is safe for concurrent use.
type Symbolizer struct {
	opts Options

	mu      sync.Mutex
	files   map[string]*objFile // by inode key and by "b:"+build ID
	fileLRU *list.List          // of *objFile, front = most recent
	procs   map[int]*process
	procLRU *list.List // of *process
	vdsos   map[uint64]*objFile

	kernel kernelState
	st     counters
}

// counters are the Stats, updated atomically.
type counters struct {
	hits, misses, filesOpened, filesParsed, parseErrors, openErrors atomic.Uint64
	fileEvictions, procEvictions, mapsReads                         atomic.Uint64
	byteEvictions, clock                                            atomic.Uint64
	held                                                            atomic.Int64
}

func (c *counters) charge(delta int64) { c.held.Add(delta) }
func (c *counters) tick() uint64       { return c.clock.Add(1) }

func (c *counters) parsed(err error) {
	c.filesParsed.Add(1)
	if err != nil {
		c.parseErrors.Add(1)
	}
}

// Stats describes the Symbolizer's work since New.
type Stats struct {
	Hits             uint64 // addresses given a function name
	Misses           uint64 // addresses left as module+offset (or bare, outside any mapping)
	FilesOpened      uint64 // distinct mapped files opened and cached
	FilesParsed      uint64 // files whose symbols, DWARF and Go table were read
	ParseErrors      uint64 // files that were not ELF or failed (in part) to parse
	OpenErrors       uint64 // mapped files that could not be opened
	FileEvictions    uint64 // files dropped from the cache
	ProcessEvictions uint64 // processes dropped because MaxProcesses was reached
	MapsReads        uint64 // /proc/<pid>/maps reads
	BytesHeld        int64  // estimated bytes open and parsed files hold now (bounded by MaxBytes)
	ByteEvictions    uint64 // parsed files dropped to stay within MaxBytes
	Files            int    // files cached now
	Processes        int    // processes remembered now
	KernelSymbols    int    // kernel text symbols loaded
	KernelErr        error  // why kernel symbols are unavailable (e.g. ErrKallsymsRestricted)
	KernelNamed      int    // kernel functions the KernelNamer named (cached now)
	KernelNamerErr   error  // why the KernelNamer is no longer asked
}

// New returns a Symbolizer. It opens nothing until used.
func New(opts Options) *Symbolizer {
	return &Symbolizer{
		opts:    opts.withDefaults(),
		files:   map[string]*objFile{},
		fileLRU: list.New(),
		procs:   map[int]*process{},
		procLRU: list.New(),
		vdsos:   map[uint64]*objFile{},
	}
}

// Close releases every file handle. The Symbolizer must not be used after.
func (s *Symbolizer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, p := range s.procs {
		s.releaseProcess(p)
		delete(s.procs, pid)
	}
	s.procLRU.Init()
	for s.fileLRU.Len() > 0 {
		s.evictFile(s.fileLRU.Back().Value.(*objFile))
	}
	for k, o := range s.vdsos {
		o.close()
		delete(s.vdsos, k)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Symbolizer) Stats() Stats {
	s.mu.Lock()
	files, procs := s.fileLRU.Len(), len(s.procs)
	s.mu.Unlock()
	ksyms, kerr := s.kernel.snapshot()
	s.kernel.mu.Lock()
	named, nerr := len(s.kernel.named), s.kernel.namerErr
	s.kernel.mu.Unlock()
	return Stats{
		Hits: s.st.hits.Load(), Misses: s.st.misses.Load(),
		FilesOpened: s.st.filesOpened.Load(), FilesParsed: s.st.filesParsed.Load(),
		ParseErrors: s.st.parseErrors.Load(), OpenErrors: s.st.openErrors.Load(),
		FileEvictions: s.st.fileEvictions.Load(), ProcessEvictions: s.st.procEvictions.Load(),
		MapsReads: s.st.mapsReads.Load(),
		BytesHeld: s.st.held.Load(), ByteEvictions: s.st.byteEvictions.Load(),
		Files: files, Processes: procs, KernelSymbols: ksyms, KernelErr: kerr,
		KernelNamed: named, KernelNamerErr: nerr,
	}
}
