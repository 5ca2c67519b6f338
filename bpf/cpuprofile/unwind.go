package cpuprofile

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/vigil-ebpf/vigil/bpf/attach"
)

// Unwind modes: how user stacks are walked.
const (
	// UnwindAuto walks with each binary's unwind tables (.eh_frame,
	// .debug_frame) where it has them, frame pointers elsewhere.
	UnwindAuto = "auto"
	// UnwindFramePointer walks with frame pointers only, as the kernel does.
	UnwindFramePointer = "frame-pointer"
)

// Strategies of the "unwind" hook, in the order tried.
const (
	StrategyTables       = "tables"
	StrategyFramePointer = "frame_pointer"
)

// UnwindHook is the name vigil check and the kernel matrix give the user
// stack walker.
const UnwindHook = "unwind"

// DefaultUnwindTableBytes bounds the BPF memory of the unwind tables. A
// typical host's libraries need a few MiB; libLLVM alone about 4.
const DefaultUnwindTableBytes = 16 << 20

// Fixed parts of the table memory; the rest of the budget holds rows.
const (
	unwindFiles = 4096
	unwindPages = 1 << 16
	unwindRules = 1 << 16
	// procsEntries bounds the registered processes (6 KiB each, an LRU:
	// a process evicted is registered again at its next sample).
	procsEntries = 1024
)

func validUnwind(mode string) error {
	switch mode {
	case "", UnwindAuto, UnwindFramePointer:
		return nil
	}
	return fmt.Errorf("unwind mode %q: must be %q or %q", mode, UnwindAuto, UnwindFramePointer)
}

// loadWithStrategies loads the program with table unwinding, or without
// it when that is disabled or the kernel refuses it.
func (p *Profiler) loadWithStrategies(ncpu int) error {
	skip := map[string]bool{}
	for k, v := range p.opts.Skip {
		skip[k] = v
	}
	if p.opts.Unwind == UnwindFramePointer {
		skip[StrategyTables] = true
	}
	strategies := []attach.Strategy{
		{Name: StrategyTables, Try: func() error { return p.load(ncpu, true) }},
		{Name: StrategyFramePointer, Try: func() error { return p.load(ncpu, false) }},
	}
	r, err := attach.First(UnwindHook, strategies, skip)
	p.unwindReport = r
	return err
}

// sizePythonMaps sizes the Python walker's maps, or to one entry each
// when it is off. Python stacks are sized below the native ones: a
// sample whose Python stack finds no room keeps its native frames.
func (p *Profiler) sizePythonMaps(spec *ebpf.CollectionSpec, py bool, perInterval float64) {
	set := func(name string, n uint32) { spec.Maps[name].MaxEntries = n }
	if !py {
		for _, n := range []string{"py_procs", "py_threads", "pystacks_a", "pystacks_b"} {
			set(n, 1)
		}
		return
	}
	set("py_procs", procsEntries)
	set("py_threads", pyThreadsEntries)
	ps := clampPow2(uint32(perInterval), 512, 1<<13)
	set("pystacks_a", ps)
	set("pystacks_b", ps)
}

// pyThreadsEntries bounds the threads whose PyThreadState is cached (an
// LRU: a thread pushed out is looked up again).
const pyThreadsEntries = 8192

// sizeUnwindMaps sizes the table arrays from the byte budget, or to one
// entry each when tables are off.
func (p *Profiler) sizeUnwindMaps(spec *ebpf.CollectionSpec, tables bool, perInterval float64) {
	set := func(name string, n uint32) { spec.Maps[name].MaxEntries = n }
	if !tables {
		for _, n := range []string{"unwind_files", "unwind_pages", "unwind_rows", "unwind_rules", "ustacks_a", "ustacks_b", "procs"} {
			set(n, 1)
		}
		return
	}
	budget := p.opts.UnwindTableBytes
	if budget <= 0 {
		budget = DefaultUnwindTableBytes
	}
	fixed := int64(unwindFiles*fileInfoSize + unwindPages*pageInfoSize + unwindRules*ruleSize)
	rows := max(budget-fixed, 1<<20) / 8 // two rows per 8-byte element
	set("unwind_files", unwindFiles)
	set("unwind_pages", unwindPages)
	set("unwind_rules", unwindRules)
	set("unwind_rows", uint32(min(rows, 1<<28)))
	set("procs", procsEntries)
	// One distinct user stack per sample at most; twice one interval's
	// samples leaves room for a drain that runs late.
	us := clampPow2(uint32(perInterval*2), 1024, 1<<16)
	set("ustacks_a", us)
	set("ustacks_b", us)
}

func haveTaskPtRegs() bool {
	return features.HaveProgramHelper(ebpf.PerfEvent, asm.FnTaskPtRegs) == nil
}

// startTables maps the table arrays, fills the tail-call slot and starts
// the process registry.
func (p *Profiler) startTables(py bool) error {
	if err := p.objs.UnwindProgs.Put(uint32(0), p.objs.WalkUser); err != nil {
		return fmt.Errorf("installing the stack walker: %w", err)
	}
	if py && p.objs.WalkPython != nil {
		if err := p.objs.UnwindProgs.Put(uint32(1), p.objs.WalkPython); err != nil {
			return fmt.Errorf("installing the Python walker: %w", err)
		}
	}
	store, err := newTableStore(p.objs.UnwindFiles, p.objs.UnwindPages, p.objs.UnwindRows, p.objs.UnwindRules)
	if err != nil {
		return err
	}
	root := p.opts.ProcRoot
	if root == "" {
		root = "/proc"
	}
	p.reg = newRegistry(p.objs.Procs, p.objs.Seen, store, root)
	if py {
		p.reg.pyProcs = p.objs.PyProcs
		if p.objs.WalkPython == nil {
			p.reg.loadPython = p.loadPythonWalker
		}
	}
	return nil
}

// UnwindReport says how user stacks are walked: "tables", or
// "frame_pointer" with the reason tables could not be used.
func (p *Profiler) UnwindReport() attach.Report { return p.unwindReport }

// UnwindStats is what the table unwinder did so far (zero with frame
// pointers).
type UnwindStats struct {
	Processes        uint64 // registrations written
	RegisterFailed   uint64
	MappingsDropped  uint64
	TablesBuilt      uint64
	TablesNoCFI      uint64 // files walked with frame pointers (no CFI, or Go)
	TablesNoRoom     uint64 // tables that did not fit the budget
	TablesTooLarge   uint64 // files with more CFI than vigil reads (64 MiB)
	TablesFailed     uint64
	TableRows        uint64
	TableSourceBytes uint64 // bytes of .eh_frame/.debug_frame read
	BuildTime        time.Duration
	// Unsupported counts table rows vigil can't execute, by reason; walks
	// that reach one stop there.
	Unsupported map[string]uint64
	// BPF memory of the tables: bytes in use, and reserved by the arrays.
	TableBytes, TableCapacity uint64
	// UserBytes estimates what the registry keeps in vigil's own heap
	// between builds (files, processes, rules); a build needs about ten
	// times its file's CFI more while it runs.
	UserBytes           uint64
	TablesLoaded, Rules int
	// Frames by how they were walked, and walks that stopped early by why
	// (cumulative, from the kernel's counters).
	Frames    map[string]uint64
	Truncated map[string]uint64
}

// UnwindStats returns the unwinder's counters.
func (p *Profiler) UnwindStats() UnwindStats {
	var s UnwindStats
	if p.reg == nil {
		return s
	}
	p.reg.mu.Lock()
	c := p.reg.stats
	s.Unsupported = make(map[string]uint64, len(c.unsupported))
	for k, v := range c.unsupported {
		s.Unsupported[k] = v
	}
	p.reg.mu.Unlock()
	s.Processes, s.RegisterFailed, s.MappingsDropped = c.processes, c.registerFailed, c.mappingsDropped
	s.TablesBuilt, s.TablesNoCFI, s.TablesNoRoom, s.TablesFailed = c.tablesBuilt, c.tablesNoCFI, c.tablesNoRoom, c.tablesFailed
	s.TablesTooLarge = c.tablesTooLarge
	s.TableRows, s.TableSourceBytes, s.BuildTime = c.tableRows, c.tableSourceBytes, c.buildTime
	s.TableBytes, s.TableCapacity, s.TablesLoaded, s.Rules = p.reg.store.usage()
	s.UserBytes = p.reg.userBytes() + uint64(s.Rules)*ruleEntryBytes
	s.Frames, s.Truncated = p.unwindCounters()
	return s
}

// tablesReadyWait bounds how long Open waits for the tables of the
// processes it was asked to sample.
const tablesReadyWait = 2 * time.Second

// prepareTables registers the processes named in Options.PIDs before
// sampling starts, so their first samples are walked whole. With no pids
// (the whole machine) nothing waits: each process is registered at its
// first sample, and its tables are built meanwhile.
func (p *Profiler) prepareTables(pids []uint32) {
	if p.reg == nil || len(pids) == 0 {
		return
	}
	for _, pid := range pids {
		p.reg.request(pid, false)
	}
	done := make(chan struct{})
	go func() { p.WaitTables(); close(done) }()
	select {
	case <-done:
	case <-time.After(tablesReadyWait):
	}
}

// Register registers pid's mappings now, as its first sample would.
func (p *Profiler) Register(pid uint32) {
	if p.reg != nil {
		p.reg.request(pid, false)
	}
}

// WaitTables blocks until every registration and table queued so far is
// done; tests use it to sample only once a workload's tables are in place.
func (p *Profiler) WaitTables() {
	if p.reg != nil {
		p.reg.wait()
		p.reg.builder.wait()
	}
}
