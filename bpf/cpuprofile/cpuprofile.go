// Package cpuprofile samples the kernel and user stacks of every process
// with a perf_event BPF program on each online CPU.
//
// With Options.OffCPU it also records off-CPU time: a sched_switch program
// (the "offcpu" hook: tp_btf, else the classic tracepoint) records where a
// user thread blocks (its kernel stack, and its user stack walked there
// and then, in its own context, by the same table walker as CPU samples),
// and when the thread runs again adds the time it was away to those stacks
// (Batch.OffCPU, Sample.OffCPUNanos). Threads switched out while runnable
// (preempted) are waiting for a CPU, which the run-queue histogram measures:
// they are not off-CPU and are not recorded. Batch.OffCPUTotals accounts
// for every interval: recorded, below Options.MinBlock, or lost by reason.
// See offcpu.bpf.h for why both stacks are taken at switch-out.
package cpuprofile

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// Options configure the sampler.
type Options struct {
	Frequency     int           // samples per second per CPU
	PIDs          []uint32      // sample only these processes (all threads); empty = all
	IncludeIdle   bool          // also sample the idle task (pid 0)
	DrainInterval time.Duration // how often the caller drains; sizes the maps
	Skip          map[string]bool
	// Unwind is UnwindAuto (the default) or UnwindFramePointer.
	Unwind string
	// UnwindTableBytes bounds the BPF memory of the unwind tables
	// (DefaultUnwindTableBytes when zero).
	UnwindTableBytes int64
	// NoPython turns off walking CPython's frames (on with table unwinding).
	NoPython bool
	// PythonAtOpen loads (and has the kernel verify) the Python walker in
	// Open, as vigil check and the kernel matrix do, so that PythonReport
	// says whether it loads. Else it is loaded when the first CPython
	// process is found: most profiles have none, and the walker's
	// verification is about a third of Open's CPU time.
	PythonAtOpen bool
	ProcRoot     string // where /proc is; "/proc" when empty

	OffCPU bool // also record off-CPU time on the scheduler switch
	// NoCPU attaches no perf events: only off-CPU time is recorded
	// (vigil profile --off-cpu). It implies OffCPU. The CPU sampler is
	// loaded but not attached; Report says so.
	NoCPU bool
	// MinBlock: off-CPU intervals shorter than this are only counted;
	// 0 = DefaultMinBlock.
	MinBlock time.Duration
	// OffCPUStacks says which stacks off-CPU intervals get:
	// OffCPUStacksBoth ("" too), OffCPUStacksUser or OffCPUStacksKernel.
	OffCPUStacks string
	// NoStackCache walks every off-CPU stack, kernel and user, as on
	// kernels without task storage (for tests and benchmarks to compare).
	NoStackCache bool
}

// Profiler owns the loaded program, its maps and one perf event per CPU.
type Profiler struct {
	objs   cpuprofileObjects
	events []perfEvent
	exec   link.Link
	rb     *ringbuf.Reader
	report attach.Report
	opts   Options
	ncpu   int

	unwindReport attach.Report
	pyMu         sync.Mutex // guards pythonReport, which a late load of the walker may change
	pythonReport attach.Report
	pyLoader     func() (*ebpf.Program, error) // loads walk_python late; nil: from spec (tests replace it)
	tables       bool                          // user stacks walked with tables
	reg          *registry                     // nil with frame pointers
	announce     chan Event                    // process announcements for WatchProcesses
	announceLost atomic.Uint64
	readErr      error
	readerDone   chan struct{}

	mu           sync.Mutex // serialises Drain and PeekPython
	active       uint32
	peeked       map[uint64]bool // Python stacks PeekPython showed since the last drain
	lastCounters [counters]uint64
	closed       sync.Once

	spec *ebpf.CollectionSpec // what loaded, for the off-CPU programs
	data *ebpf.Map            // .bss (active_buf), shared with them
	off  *offCPU              // nil unless Options.OffCPU

	fence *programFence // nil: the kernel refused it, the drain sleeps instead
	// afterFlip, when set (by tests), runs in Drain once the buffers are
	// flipped and no program writes to the old one.
	afterFlip func()
}

// Open loads the program and starts sampling on every online CPU.
func Open(opts Options) (*Profiler, error) {
	if opts.Frequency < 1 || opts.Frequency > 10000 {
		return nil, fmt.Errorf("sampling frequency %d Hz: must be between 1 and 10000", opts.Frequency)
	}
	if opts.DrainInterval <= 0 {
		opts.DrainInterval = time.Second
	}
	if err := validUnwind(opts.Unwind); err != nil {
		return nil, err
	}
	if err := validOffCPU(&opts); err != nil {
		return nil, err
	}
	cpus, err := onlineCPUs()
	if err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		// Kernels from 5.11 charge BPF memory to the cgroup instead.
		slog.Debug("raising RLIMIT_MEMLOCK refused", "component", "cpuprofile", "err", err)
	}
	p := &Profiler{opts: opts, ncpu: len(cpus)}
	if err := p.loadWithStrategies(len(cpus)); err != nil {
		return nil, err
	}
	if opts.OffCPU {
		if err := p.openOffCPU(); err != nil {
			p.closeObjects()
			return nil, err
		}
	}
	if p.fence, err = newProgramFence(); err != nil {
		slog.Warn("drains fall back to a fixed wait for running programs", "component", "cpuprofile", "err", err)
	}
	p.prepareTables(opts.PIDs)
	if err := p.attachAll(cpus); err != nil {
		p.closeObjects()
		return nil, err
	}
	p.announce = make(chan Event, 4096)
	p.readerDone = make(chan struct{})
	go p.readEvents()
	return p, nil
}

// load loads the program, with or without table unwinding; with tables it
// tries the Python walker first, then goes on without it.
func (p *Profiler) load(ncpu int, tables bool) error {
	if !tables {
		if p.opts.Skip[StrategyPythonOff] {
			// Every strategy of the python hook forced off: like any
			// other hook, nothing is left to load.
			return fmt.Errorf("python: %s needs the table unwinder and %s was skipped", StrategyPythonFrames, StrategyPythonOff)
		}
		p.pythonReport = attach.Report{Hook: PythonHook, Chosen: StrategyPythonOff, Attempts: []attach.Attempt{
			{Strategy: StrategyPythonFrames, Err: errors.New("needs the table unwinder (unwind: auto)")},
			{Strategy: StrategyPythonOff}}}
		return p.loadSpec(ncpu, false, false)
	}
	skip := map[string]bool{}
	for k, v := range p.opts.Skip {
		skip[k] = v
	}
	if p.opts.NoPython {
		skip[StrategyPythonFrames] = true
	}
	r, err := attach.First(PythonHook, []attach.Strategy{
		{Name: StrategyPythonFrames, Try: func() error { return p.loadSpec(ncpu, true, true) }},
		{Name: StrategyPythonOff, Try: func() error { return p.loadSpec(ncpu, true, false) }},
	}, skip)
	p.pythonReport = r
	return err
}

func (p *Profiler) loadSpec(ncpu int, tables, py bool) error {
	spec, err := loadCpuprofile()
	if err != nil {
		return fmt.Errorf("loading cpuprofile spec: %w", err)
	}
	stacks, counts := mapSizes(p.opts.Frequency, ncpu, p.opts.DrainInterval)
	p.sizeUnwindMaps(spec, tables, float64(p.opts.Frequency*ncpu)*p.opts.DrainInterval.Seconds())
	stacks = p.sizeOffCPUMaps(spec, stacks)
	if stackEntriesForTest != 0 {
		stacks = stackEntriesForTest
	}
	p.sizePythonMaps(spec, py, float64(p.opts.Frequency*ncpu)*p.opts.DrainInterval.Seconds())
	if err := spec.Variables["unwind_tables"].Set(tables); err != nil {
		return err
	}
	if err := spec.Variables["python_frames"].Set(py); err != nil {
		return err
	}
	if err := spec.Variables["have_task_pt_regs"].Set(tables && haveTaskPtRegs()); err != nil {
		return err
	}
	for _, name := range []string{"stacks_a", "stacks_b"} {
		spec.Maps[name].MaxEntries = stacks
	}
	for _, name := range []string{"spill_a", "spill_b"} {
		spec.Maps[name].MaxEntries = spillSize(stacks)
	}
	for _, name := range []string{"counts_a", "counts_b"} {
		spec.Maps[name].MaxEntries = counts
	}
	if n := uint32(len(p.opts.PIDs)); n > spec.Maps["pid_filter"].MaxEntries {
		spec.Maps["pid_filter"].MaxEntries = n
	}
	if err := spec.Variables["filter_pids"].Set(len(p.opts.PIDs) > 0); err != nil {
		return err
	}
	if err := spec.Variables["include_idle"].Set(p.opts.IncludeIdle); err != nil {
		return err
	}
	if err := p.loadObjects(spec, tables, py && p.opts.PythonAtOpen); err != nil {
		return fmt.Errorf("loading cpuprofile: %w", err)
	}
	for _, pid := range p.opts.PIDs {
		if err := p.objs.PidFilter.Put(pid, uint8(1)); err != nil {
			p.objs.Close()
			return fmt.Errorf("adding pid %d to the filter: %w", pid, err)
		}
	}
	if tables {
		if err := p.startTables(py); err != nil {
			p.objs.Close()
			return err
		}
	}
	p.tables = tables
	p.spec = spec
	return nil
}

// loadObjects loads the maps and programs; with frame pointers the table
// walker is not loaded at all, so a kernel whose verifier refuses it still
// profiles. The off-CPU programs are loaded later, by their own strategies.
func (p *Profiler) loadObjects(spec *ebpf.CollectionSpec, tables, py bool) error {
	type base struct {
		cpuprofileMaps
		cpuprofileVariables
		Data        *ebpf.Map     `ebpf:".bss"`
		ProcessExec *ebpf.Program `ebpf:"process_exec"`
		ProfileCpu  *ebpf.Program `ebpf:"profile_cpu"`
	}
	var b base
	var walkUser, walkPython *ebpf.Program
	switch {
	case tables && py:
		var objs struct {
			base
			WalkUser   *ebpf.Program `ebpf:"walk_user"`
			WalkPython *ebpf.Program `ebpf:"walk_python"`
		}
		if err := spec.LoadAndAssign(&objs, nil); err != nil {
			return err
		}
		b, walkUser, walkPython = objs.base, objs.WalkUser, objs.WalkPython
	case tables:
		var objs struct {
			base
			WalkUser *ebpf.Program `ebpf:"walk_user"`
		}
		if err := spec.LoadAndAssign(&objs, nil); err != nil {
			return err
		}
		b, walkUser = objs.base, objs.WalkUser
	default:
		if err := spec.LoadAndAssign(&b, nil); err != nil {
			return err
		}
	}
	p.objs = cpuprofileObjects{cpuprofileMaps: b.cpuprofileMaps, cpuprofileVariables: b.cpuprofileVariables,
		cpuprofilePrograms: cpuprofilePrograms{ProcessExec: b.ProcessExec, ProfileCpu: b.ProfileCpu, WalkUser: walkUser, WalkPython: walkPython}}
	p.data = b.Data
	return nil
}

// closeObjects stops the registry and releases the maps and programs.
func (p *Profiler) closeObjects() error {
	if p.reg != nil {
		p.reg.close()
	}
	p.fence.close()
	errs := []error{p.closeOffCPU(), p.objs.Close()}
	if p.data != nil {
		errs = append(errs, p.data.Close())
	}
	return errors.Join(errs...)
}

// mapSizes sizes the double-buffered maps for one drain interval. A stack
// map refuses a new stack whose hash bucket is taken (EEXIST), and by the
// birthday bound a fraction of about n/2m of n distinct stacks collide in m
// buckets. With m at least 64 times the samples of one interval, under 1% of
// stacks collide even when every sample is a new stack; draining often keeps
// n small, which is cheaper than ever larger maps (each entry is 1 KiB).
func mapSizes(hz, ncpu int, interval time.Duration) (stacks, counts uint32) {
	perInterval := float64(hz*ncpu) * interval.Seconds()
	stacks = clampPow2(uint32(perInterval*64), 2048, 1<<16)
	counts = clampPow2(uint32(perInterval*2), 1024, 1<<18)
	return stacks, counts
}

// stackEntriesForTest, when set, replaces the main stack maps' size (tests
// shrink them to make buckets collide).
var stackEntriesForTest uint32

// spillSize sizes a spill map for a stack map of n entries: it takes only
// the stacks refused there for a taken bucket, under 1% of them by
// mapSizes' bound, so a thirty-second of n leaves a wide margin.
func spillSize(n uint32) uint32 {
	return clampPow2(n/32, 256, 4096)
}

func clampPow2(n, lo, hi uint32) uint32 {
	v := lo
	for v < n && v < hi {
		v <<= 1
	}
	return v
}

func (p *Profiler) attachAll(cpus []int) error {
	strategies := []attach.Strategy{
		{Name: "perf_event_link", Try: func() error { return p.attachCPUs(cpus, true) }},
		{Name: "perf_event_ioctl", Try: func() error { return p.attachCPUs(cpus, false) }},
	}
	if p.opts.NoCPU {
		p.report = notAttached("profile", strategies)
	} else {
		r, err := attach.First("profile", strategies, p.opts.Skip)
		p.report = r
		if err != nil {
			return err
		}
	}
	var err error
	if _, terr := tracefs.Ensure(); terr != nil {
		slog.Debug("tracefs unavailable", "component", "cpuprofile", "err", terr)
	}
	if p.exec, err = link.Tracepoint("sched", "sched_process_exec", p.objs.ProcessExec, nil); err != nil {
		// Without it a process that execs keeps its old mappings until an
		// address misses them; symbolization still recovers then.
		slog.Warn("exec tracking unavailable", "component", "cpuprofile", "err", err)
	}
	if p.rb, err = ringbuf.NewReader(p.objs.Events); err != nil {
		p.closeAttachments()
		return fmt.Errorf("opening process notifications: %w", err)
	}
	return nil
}

// attachCPUs opens and attaches one event per CPU, undoing all on failure.
func (p *Profiler) attachCPUs(cpus []int, useLink bool) error {
	for _, cpu := range cpus {
		fd, err := openCPUClock(cpu, p.opts.Frequency)
		if err != nil {
			p.closeEvents()
			return err
		}
		ev, err := attachPerf(fd, p.objs.ProfileCpu, useLink)
		if err != nil {
			_ = unixClose(fd)
			p.closeEvents()
			return err
		}
		p.events = append(p.events, ev)
	}
	return nil
}

func (p *Profiler) closeEvents() error {
	var errs []error
	for _, e := range p.events {
		errs = append(errs, e.close())
	}
	p.events = nil
	return errors.Join(errs...)
}

func (p *Profiler) closeAttachments() error {
	errs := []error{p.closeEvents(), p.off.detach()}
	if p.exec != nil {
		errs = append(errs, p.exec.Close())
		p.exec = nil
	}
	return errors.Join(errs...)
}

// Report says which strategy attached the sampler. With Options.NoCPU
// nothing is attached: Chosen is "" and every attempt says why.
func (p *Profiler) Report() attach.Report { return p.report }

// notAttached is the report of a hook not attached because it was not asked
// for.
func notAttached(hook string, strategies []attach.Strategy) attach.Report {
	r := attach.Report{Hook: hook}
	for _, s := range strategies {
		r.Attempts = append(r.Attempts, attach.Attempt{Strategy: s.Name, Err: errNotRequested})
	}
	return r
}

var errNotRequested = errors.New("not attached: off-CPU only (NoCPU)")

// Stats is the kernel's run count and run time of the sampling programs
// (with off-CPU, of the scheduler switch's too; tail calls are counted in
// the program that made them).
func (p *Profiler) Stats() []attach.RunStat {
	progs := map[string]*ebpf.Program{"profile_cpu": p.objs.ProfileCpu, "process_exec": p.objs.ProcessExec}
	if p.tables {
		progs["walk_user"] = p.objs.WalkUser
	}
	out := attach.Stats("profile", progs)
	if p.off != nil {
		out = append(out, attach.Stats(OffCPUHook, p.off.programs())...)
	}
	return out
}

// CPUs is the number of CPUs being sampled.
func (p *Profiler) CPUs() int { return p.ncpu }

// Stop ends sampling but keeps the maps, so a last Drain returns every
// sample up to this moment and the counters add up exactly.
func (p *Profiler) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closeAttachments()
}

// Close stops sampling and releases every kernel object.
func (p *Profiler) Close() error {
	var err error
	p.closed.Do(func() {
		errs := []error{p.closeAttachments()}
		if p.rb != nil {
			errs = append(errs, p.rb.Close())
			<-p.readerDone
		}
		errs = append(errs, p.closeObjects())
		err = errors.Join(errs...)
	})
	return err
}
