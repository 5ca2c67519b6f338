package cpuprofile

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
)

// OffCPUHook is the name vigil check and the kernel matrix give the
// scheduler-switch hook of off-CPU profiles.
const OffCPUHook = "offcpu"

// Strategies of the off-CPU hook, in the order tried.
const (
	StrategyOffCPUBTF        = "tp_btf"     // tp_btf/sched_switch: typed task pointers
	StrategyOffCPUTracepoint = "tracepoint" // tracepoint/sched/sched_switch
)

// DefaultMinBlock is the shortest off-CPU interval recorded with its
// stacks; shorter ones are only counted. The stacks are taken when a thread
// blocks, before its duration is known, so the threshold saves no walk:
// it only keeps sub-microsecond waits (a lock handed over at once, a
// wakeup racing the switch) out of the profile.
const DefaultMinBlock = time.Microsecond

// OffCPUTotals accounts for every off-CPU interval that ended while the
// hook was attached: Seen = Recorded + Below + the sum of Lost, in count
// and in nanoseconds.
type OffCPUTotals struct {
	Seen, Recorded, Below                uint64 // intervals
	SeenNanos, RecordedNanos, BelowNanos uint64
	// Lost and LostNanos count intervals not recorded, by reason (one of
	// OffCPULostReasons). A record the kernel's LRU map pushed out, one
	// that could not be written (no task storage to be had), or one still
	// there when its thread blocked again (its switch-in was not seen), is
	// lost with its duration unknown: it counts in Lost and Seen, with no
	// nanoseconds.
	Lost, LostNanos map[string]uint64
	// StackLost counts recorded intervals with part of a stack lost, by
	// reason (LostReasons' stack reasons, and user_stack_incomplete,
	// user_regs_unreadable); the samples carry KernelLost or UserLost.
	StackLost map[string]uint64
	// KernelStacksReused and UserStacksReused count blocked switches
	// whose stack came from the thread's cache of the stacks it blocked
	// with before, not from a walk.
	KernelStacksReused, UserStacksReused uint64
}

// OffCPULostReasons name why an off-CPU interval was not recorded.
var OffCPULostReasons = [...]string{"counts_map_full", "empty_stack", "record_evicted", "record_failed", "record_replaced"}

// Slots of offcpu_sums, in the order of enum offcpu_slot in offcpu.bpf.h.
const (
	offSeen = iota
	offSeenNs
	offRecorded
	offRecordedNs
	offBelow
	offBelowNs
	offLostFull
	offLostFullNs
	offLostEmpty
	offLostEmptyNs
	offStarted
	offStackBase // six stack reasons, as LostReasons' first six
)

const (
	offUstackIncomplete = offStackBase + 6 + iota
	offNoUserRegs
	offReplaced
	offNoRecord
	offKstackReused
	offUstackReused
	offSlots
)

// offCPU is the state of the off-CPU hook: its programs and link, and the
// stacks user space keeps for threads that blocked across drains.
type offCPU struct {
	report attach.Report
	progs  map[string]*ebpf.Program
	slots  *ebpf.Map // the program array the walkers were put in
	link   link.Link
	// live lists the records kept in task storage (nil: they are in
	// offcpu_start, which user space reads itself).
	live *link.Iter

	// The stacks of the previous drain (every one), and of older epochs
	// those that live records still name.
	prev      *stackStore
	prevEpoch uint32
	carried   map[uint32]*stackStore
	last      [offSlots]uint64
	evicted   uint64 // records pushed out of the LRU, as estimated so far
}

// validOffCPU checks and completes the off-CPU options.
func validOffCPU(opts *Options) error {
	if opts.NoCPU {
		opts.OffCPU = true
	}
	if opts.MinBlock < 0 {
		return fmt.Errorf("minimum off-CPU time %v: must not be negative", opts.MinBlock)
	}
	if opts.MinBlock == 0 {
		opts.MinBlock = DefaultMinBlock
	}
	switch opts.OffCPUStacks {
	case "":
		opts.OffCPUStacks = OffCPUStacksBoth
	case OffCPUStacksBoth, OffCPUStacksUser, OffCPUStacksKernel:
	default:
		return fmt.Errorf("off-CPU stacks %q: must be %s, %s or %s", opts.OffCPUStacks, OffCPUStacksBoth, OffCPUStacksUser, OffCPUStacksKernel)
	}
	return nil
}

// Which stacks off-CPU intervals get (Options.OffCPUStacks).
const (
	OffCPUStacksBoth   = "both"   // kernel and user (the default)
	OffCPUStacksUser   = "user"   // user only: no walk of the kernel stack, the larger part of the cost
	OffCPUStacksKernel = "kernel" // kernel only: no walk of user memory
)

// offStacksMask is off_stacks for a choice validOffCPU accepted.
func offStacksMask(s string) uint32 {
	switch s {
	case OffCPUStacksUser:
		return 2
	case OffCPUStacksKernel:
		return 1
	}
	return 3
}

// offCPUEntries bounds the distinct off-CPU keys of one drain interval and
// the threads blocked at once that can be recorded.
const offCPUEntries = 16384

// sizeOffCPUMaps sizes the off-CPU maps, to a token size when off, and
// returns the stack maps' size: off-CPU kernel stacks share them.
func (p *Profiler) sizeOffCPUMaps(spec *ebpf.CollectionSpec, stacks uint32) uint32 {
	n := uint32(offCPUEntries)
	if !p.opts.OffCPU {
		n = 64
	}
	for _, name := range []string{"offcpu_a", "offcpu_b", "offcpu_start"} {
		spec.Maps[name].MaxEntries = n
	}
	if !histmap.HaveTaskStorage() {
		// Created with the other maps, so it must exist; the programs
		// don't use it (task_records stays false).
		for _, name := range []string{"offcpu_task", "offcpu_stack_cache"} {
			m := spec.Maps[name]
			m.Type, m.Flags, m.MaxEntries = ebpf.Hash, 0, 1
		}
	}
	if p.opts.OffCPU {
		stacks = max(stacks, 8192)
	}
	return stacks
}

// offStrategy names one strategy's programs and how its entry attaches.
type offStrategy struct {
	name                        string
	entry, walkUser, walkPython string
	slots                       func(*cpuprofileMaps) *ebpf.Map
	attach                      func(*ebpf.Program) (link.Link, error)
}

var offStrategies = []offStrategy{
	{StrategyOffCPUBTF, "offcpu_switch", "offcpu_walk_user", "offcpu_walk_python",
		func(m *cpuprofileMaps) *ebpf.Map { return m.OffcpuProgs },
		func(prog *ebpf.Program) (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: prog})
		}},
	{StrategyOffCPUTracepoint, "offcpu_tp_switch", "offcpu_tp_walk_user", "offcpu_tp_walk_python",
		func(m *cpuprofileMaps) *ebpf.Map { return m.OffcpuTpProgs },
		func(prog *ebpf.Program) (link.Link, error) {
			return link.Tracepoint("sched", "sched_switch", prog, nil)
		}},
}

// openOffCPU loads and attaches the off-CPU hook with the first strategy
// that works.
func (p *Profiler) openOffCPU() error {
	if err := p.spec.Variables["min_block_ns"].Set(uint64(p.opts.MinBlock.Nanoseconds())); err != nil {
		return err
	}
	if err := p.spec.Variables["have_prev_state"].Set(haveSwitchPrevState()); err != nil {
		return err
	}
	if err := p.spec.Variables["task_records"].Set(histmap.HaveTaskStorage()); err != nil {
		return err
	}
	if err := p.spec.Variables["cache_stacks"].Set(histmap.HaveTaskStorage() && !p.opts.NoStackCache); err != nil {
		return err
	}
	if err := p.spec.Variables["off_stacks"].Set(offStacksMask(p.opts.OffCPUStacks)); err != nil {
		return err
	}
	p.off = &offCPU{carried: map[uint32]*stackStore{}}
	tries := make([]attach.Strategy, 0, len(offStrategies))
	for _, s := range offStrategies {
		tries = append(tries, attach.Strategy{Name: s.name, Try: func() error { return p.tryOffCPU(s) }})
	}
	r, err := attach.First(OffCPUHook, tries, p.opts.Skip)
	p.off.report = r
	if err != nil {
		return fmt.Errorf("attaching off-CPU profiling: %w", err)
	}
	return nil
}

// tryOffCPU loads one strategy's programs against the loaded maps, fills
// its tail-call slots and attaches; on failure it leaves nothing behind.
func (p *Profiler) tryOffCPU(s offStrategy) error {
	names := []string{s.entry}
	if p.tables {
		names = append(names, s.walkUser)
	}
	py := p.tables && p.PythonReport().Chosen == StrategyPythonFrames
	if py {
		names = append(names, s.walkPython)
	}
	repl := mapsByName(&p.objs.cpuprofileMaps)
	repl[".bss"] = p.data
	progs := map[string]*ebpf.Program{}
	fail := func(err error) error {
		for _, prog := range progs {
			prog.Close()
		}
		return err
	}
	if s.name == StrategyOffCPUBTF && histmap.HaveTaskStorage() {
		names = append(names, "offcpu_live")
	}
	for _, n := range names {
		prog, err := loadProgram(p.spec, n, repl)
		if err != nil {
			return fail(fmt.Errorf("loading %s: %w", n, err))
		}
		progs[n] = prog
	}
	var live *link.Iter
	if prog := progs["offcpu_live"]; prog != nil {
		var err error
		if live, err = link.AttachIter(link.IterOptions{Program: prog}); err != nil {
			return fail(fmt.Errorf("attaching offcpu_live: %w", err))
		}
	}
	slots := s.slots(&p.objs.cpuprofileMaps)
	walkers := []string{s.walkUser, s.walkPython}[:0]
	if p.tables {
		walkers = append(walkers, s.walkUser)
	}
	if py {
		walkers = append(walkers, s.walkPython)
	}
	for i, n := range walkers {
		if err := slots.Put(uint32(i), progs[n]); err != nil {
			closeIter(live)
			return fail(fmt.Errorf("installing %s: %w", n, err))
		}
	}
	l, err := s.attach(progs[s.entry])
	if err != nil {
		clearSlots(slots)
		closeIter(live)
		return fail(err)
	}
	p.off.progs, p.off.slots, p.off.link, p.off.live = progs, slots, l, live
	return nil
}

func closeIter(it *link.Iter) {
	if it != nil {
		it.Close()
	}
}

func clearSlots(m *ebpf.Map) {
	for i := uint32(0); i < 2; i++ {
		_ = m.Delete(i)
	}
}

// loadProgram loads one program of spec, with the given maps in place of
// the spec's: LoadAndAssign loads only what it is asked for and what that
// references.
func loadProgram(spec *ebpf.CollectionSpec, name string, repl map[string]*ebpf.Map) (*ebpf.Program, error) {
	t := reflect.StructOf([]reflect.StructField{{
		Name: "P", Type: reflect.TypeFor[*ebpf.Program](), Tag: reflect.StructTag(`ebpf:"` + name + `"`),
	}})
	v := reflect.New(t)
	if err := spec.LoadAndAssign(v.Interface(), &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		return nil, err
	}
	return v.Elem().Field(0).Interface().(*ebpf.Program), nil
}

// mapsByName lists the ebpf-tagged maps of a struct.
func mapsByName(v any) map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if m, ok := rv.Field(i).Interface().(*ebpf.Map); ok && m != nil {
			out[rv.Type().Field(i).Tag.Get("ebpf")] = m
		}
	}
	return out
}

// haveSwitchPrevState reports whether the tp_btf sched_switch passes
// prev_state (5.18): the state __schedule acted on, where the task's own
// field may already say a racing wakeup made it runnable.
func haveSwitchPrevState() bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_sched_switch", &td); err != nil {
		return false
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return false
	}
	fp, ok := ptr.Target.(*btf.FuncProto)
	return ok && len(fp.Params) >= 5 // void *__data, preempt, prev, next, prev_state
}

// OffCPUReport says which strategy attached the off-CPU hook; without
// Options.OffCPU nothing is, and every attempt says so.
func (p *Profiler) OffCPUReport() attach.Report {
	if p.off != nil {
		return p.off.report
	}
	r := attach.Report{Hook: OffCPUHook}
	for _, s := range offStrategies {
		r.Attempts = append(r.Attempts, attach.Attempt{Strategy: s.name, Err: errOffCPUOff})
	}
	return r
}

var errOffCPUOff = errors.New("not attached: off-CPU profiling is off")

func (o *offCPU) programs() map[string]*ebpf.Program { return o.progs }

// detach stops recording; the programs stay for Close.
func (o *offCPU) detach() error {
	if o == nil || o.link == nil {
		return nil
	}
	err := o.link.Close()
	o.link = nil
	return err
}

func (p *Profiler) closeOffCPU() error {
	if p.off == nil {
		return nil
	}
	errs := []error{p.off.detach()}
	if p.off.live != nil {
		errs = append(errs, p.off.live.Close())
		p.off.live = nil
	}
	for _, prog := range p.off.progs {
		errs = append(errs, prog.Close())
	}
	p.off.progs = nil
	return errors.Join(errs...)
}
