package profiler

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
)

// Grouping modes: how the continuous profiler splits the machine into
// profiles, one per group per interval.
const (
	GroupAuto       = "auto"       // container id when there is one, else the executable name
	GroupExecutable = "executable" // the executable name
	GroupContainer  = "container"  // the container id, "host" outside containers
	GroupPID        = "pid"        // one profile per process
)

// Group is one group's profile of one kind over one interval. A group
// whose processes were both on and off the CPU in the interval has two: its
// CPU profile, then its off-CPU profile, with the same Service and Attrs.
// Kind says which (as the profile's DefaultSampleType does), so a consumer
// that knows only CPU profiles keeps working by skipping other kinds.
type Group struct {
	Service    string            // service name: the group's key, or OTEL_SERVICE_NAME when read
	Attrs      map[string]string // resource attributes
	Start, End time.Time
	Kind       string // KindCPU or KindOffCPU
	Profile    *profile.Profile
}

// ContinuousOptions configure the continuous profiler.
type ContinuousOptions struct {
	Frequency     int
	Interval      time.Duration // one profile per group per interval
	DrainInterval time.Duration // how often samples leave the kernel (keeps maps small)
	GroupBy       string
	Proc          ProcReader
	HostName      string
	MaxProcesses  int // bound on remembered process metadata
	// MinBlock is the sampler's off-CPU threshold, named in the off-CPU
	// profiles. They are made whenever the sampler records off-CPU time
	// (cpuprofile.Options.OffCPU): one per group with blocked threads.
	MinBlock time.Duration
}

// ContinuousStats are cumulative counters of the continuous profiler.
type ContinuousStats struct {
	Samples   uint64
	Lost      map[string]uint64
	Unnamed   uint64 // locations without a function name
	Profiles  uint64 // group profiles emitted, of both kinds
	Intervals uint64
	// OffCPU is the sampler's accounting of blocked time: seen, recorded,
	// below the threshold and lost by reason.
	OffCPU cpuprofile.OffCPUTotals
}

// Continuous samples without end and emits one profile per process group
// every interval.
type Continuous struct {
	sampler Sampler
	symbols interface {
		Symbolizer
		Preparer
	}
	opts  ContinuousOptions
	procs *procCache

	mu     sync.Mutex
	groups map[string]*groupState
	start  time.Time
	stats  ContinuousStats
	ann    announcements
	py     *PythonNamer // nil when the sampler walks no Python frames
}

type groupState struct {
	b    *Builder // CPU samples; nil when the group had none
	off  *Builder // off-CPU samples; nil when the group had none
	info ProcInfo // of the first process seen in the group
	pids map[uint32]bool
}

// NewContinuous prepares a continuous profiler over sampler.
func NewContinuous(sampler Sampler, symbols interface {
	Symbolizer
	Preparer
}, opts ContinuousOptions) *Continuous {
	if opts.DrainInterval <= 0 {
		opts.DrainInterval = time.Second
	}
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = 16384
	}
	if opts.GroupBy == "" {
		opts.GroupBy = GroupAuto
	}
	return &Continuous{
		sampler: sampler, symbols: symbols, opts: opts,
		procs:  newProcCache(opts.MaxProcesses, opts.Proc.Root),
		groups: map[string]*groupState{},
		stats:  ContinuousStats{Lost: map[string]uint64{}},
	}
}

// Run samples until ctx is done, calling emit with each interval's
// profiles (and a last time with the partial interval when stopping).
// emit must not block for long: hand the profiles to queues.
func (c *Continuous) Run(ctx context.Context, emit func([]Group)) error {
	c.ann = announcements{prep: c.symbols, also: func(e cpuprofile.Event) { c.procs.put(c.opts.Proc.Read(e.PID)) }}
	c.ann.watch(c.sampler)
	c.start = time.Now()
	drain := time.NewTicker(c.opts.DrainInterval)
	defer drain.Stop()
	flush := time.NewTicker(c.opts.Interval)
	defer flush.Stop()
	var warm *time.Ticker
	if c.py, warm = startPython(c.sampler); c.py != nil {
		defer warm.Stop()
		defer c.py.Close()
	}
	var errs []error
	for {
		select {
		case <-ticks(warm):
			if err := c.py.Warm(); err != nil {
				slog.Debug("reading Python stacks failed", "component", "profiler", "err", err)
			}
		case <-ctx.Done():
			errs = append(errs, c.sampler.Stop(), c.drainOnce())
			emit(c.flush(time.Now()))
			return errors.Join(errs...)
		case <-drain.C:
			if err := c.drainOnce(); err != nil {
				slog.Warn("draining samples failed", "component", "profiler", "err", err)
			}
		case now := <-flush.C:
			emit(c.flush(now))
		}
	}
}

// PythonUnreadable returns the Python frames that could not be named so
// far, by reason (nil without Python frames).
func (c *Continuous) PythonUnreadable() map[string]uint64 {
	if c.py == nil {
		return nil
	}
	return c.py.Unreadable()
}

// Stats returns the cumulative counters.
func (c *Continuous) Stats() ContinuousStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Lost = make(map[string]uint64, len(c.stats.Lost))
	for k, v := range c.stats.Lost {
		s.Lost[k] = v
	}
	s.OffCPU = cloneOffCPU(c.stats.OffCPU)
	return s
}

func (c *Continuous) drainOnce() error {
	batch, err := c.sampler.Drain()
	if batch == nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pid := range c.ann.takeExecs() {
		for _, g := range c.groups {
			for _, b := range []*Builder{g.b, g.off} {
				if b != nil {
					b.ForgetProcess(pid)
				}
			}
		}
		if c.py != nil {
			c.py.Forget(pid)
		}
	}
	if c.py != nil {
		defer c.py.Tidy()
	}
	for r, n := range batch.Lost {
		c.stats.Lost[r] += n
	}
	for key, samples := range c.split(batch.Samples) {
		g := c.group(key)
		if g.b == nil {
			g.b = NewBuilder(c.symbols, c.opts.Frequency, c.start)
			g.b.SetPython(c.py)
		}
		for i := range samples {
			g.pids[samples[i].PID] = true
			c.stats.Samples += samples[i].Count
		}
		g.b.AddSamples(samples)
	}
	AddOffCPUTotals(&c.stats.OffCPU, batch.OffCPUTotals)
	for key, samples := range c.split(batch.OffCPU) {
		g := c.group(key)
		if g.off == nil {
			g.off = NewOffCPUBuilder(c.symbols, c.opts.MinBlock, c.start)
			g.off.SetPython(c.py)
		}
		for i := range samples {
			g.pids[samples[i].PID] = true
		}
		g.off.AddSamples(samples)
	}
	return err
}

// group returns the state of a group, creating it. Called with c.mu held.
func (c *Continuous) group(key groupKey) *groupState {
	g := c.groups[key.name]
	if g == nil {
		g = &groupState{info: key.info, pids: map[uint32]bool{}}
		c.groups[key.name] = g
	}
	return g
}

type groupKey struct {
	name string
	info ProcInfo
}

// split sorts samples into their groups.
func (c *Continuous) split(samples []cpuprofile.Sample) map[groupKey][]cpuprofile.Sample {
	out := map[groupKey][]cpuprofile.Sample{}
	keys := map[string]groupKey{}
	for _, s := range samples {
		info := c.info(s)
		name := groupName(c.opts.GroupBy, info, s)
		k, ok := keys[name]
		if !ok {
			k = groupKey{name: name, info: info}
			keys[name] = k
		}
		out[k] = append(out[k], s)
	}
	return out
}

// info returns what is known of the sample's process, reading it now when
// the process was never announced (kernel threads are not).
func (c *Continuous) info(s cpuprofile.Sample) ProcInfo {
	if p, ok := c.procs.get(s.PID); ok {
		return p
	}
	p := c.opts.Proc.Read(s.PID)
	c.procs.put(p)
	return p
}

// groupName is the group of a sample's process. Kernel threads have no
// executable and no user stack: they all go to "kernel".
func groupName(mode string, info ProcInfo, s cpuprofile.Sample) string {
	exe := info.Executable
	if exe == "" {
		exe = s.Comm
		if len(s.User) == 0 && !s.UserLost {
			exe = "kernel"
		}
	}
	if info.ServiceName != "" && mode != GroupPID {
		return info.ServiceName
	}
	switch mode {
	case GroupExecutable:
		return exe
	case GroupContainer:
		if info.ContainerID != "" {
			return info.ContainerID
		}
		return "host"
	case GroupPID:
		return exe + "-" + strconv.FormatUint(uint64(s.PID), 10)
	}
	if info.ContainerID != "" {
		return info.ContainerID
	}
	return exe
}

// flush finishes every group's profile and starts a new interval.
func (c *Continuous) flush(end time.Time) []Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.groups))
	for n := range c.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Group, 0, len(names))
	for _, name := range names {
		g := c.groups[name]
		for _, b := range []*Builder{g.b, g.off} {
			if b == nil {
				continue
			}
			p, err := b.Profile(end)
			c.stats.Unnamed += b.stats.UnnamedFrame
			if err != nil {
				slog.Warn("dropping an invalid profile", "component", "profiler", "group", name, "kind", b.kind, "err", err)
				continue
			}
			out = append(out, Group{Service: name, Attrs: c.attrs(g), Start: c.start, End: end, Kind: b.kind, Profile: p})
		}
	}
	c.stats.Profiles += uint64(len(out))
	c.stats.Intervals++
	c.groups = map[string]*groupState{}
	c.start = end
	return out
}

// attrs are the group's resource attributes (OpenTelemetry semantic
// conventions). Per-process ones only when the group is one process.
func (c *Continuous) attrs(g *groupState) map[string]string {
	a := map[string]string{}
	if c.opts.HostName != "" {
		a["host.name"] = c.opts.HostName
	}
	if g.info.Executable != "" {
		a["process.executable.name"] = g.info.Executable
	}
	if g.info.ContainerID != "" {
		a["container.id"] = g.info.ContainerID
	}
	if len(g.pids) == 1 {
		a["process.pid"] = strconv.FormatUint(uint64(g.info.PID), 10)
		if g.info.CommandLine != "" {
			a["process.command_line"] = g.info.CommandLine
		}
	}
	return a
}
