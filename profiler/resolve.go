package profiler

import (
	"strconv"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// callSite turns the i-th frame address of a stack into the address to
// symbolize. Every frame but the leaf holds a return address, which points
// after the call and may already belong to the next line or function; one
// byte back lands inside the call instruction itself.
func callSite(addrs []uint64, i int) uint64 {
	if i == 0 || addrs[i] == 0 {
		return addrs[i]
	}
	return addrs[i] - 1
}

// resolveUser symbolizes, per process, every user address not seen before.
func (b *Builder) resolveUser(samples []cpuprofile.Sample) {
	for pid, addrs := range b.unmapped {
		for _, a := range addrs {
			delete(b.userLocs[pid], a)
		}
	}
	clear(b.unmapped)
	want := map[uint32][]uint64{}
	for i := range samples {
		s := &samples[i]
		known := b.userLocs[s.PID]
		if known == nil && len(s.User) > 0 {
			known = map[uint64]*profile.Location{}
			b.userLocs[s.PID] = known
		}
		for j := range s.User {
			a := callSite(s.User, j)
			if _, ok := known[a]; !ok {
				want[s.PID] = append(want[s.PID], a)
				known[a] = nil // placeholder: asked once
			}
		}
	}
	for pid, addrs := range want {
		locs := b.sym.User(int(pid), addrs)
		for i, l := range locs {
			if i < len(addrs) {
				b.userLocs[pid][addrs[i]] = b.location(l, false)
				if l.Mapping == nil {
					b.unmapped[pid] = append(b.unmapped[pid], addrs[i])
				}
			}
		}
	}
}

// resolveKernel symbolizes every kernel address not seen before.
func (b *Builder) resolveKernel(samples []cpuprofile.Sample) {
	var want []uint64
	for i := range samples {
		s := &samples[i]
		for j := range s.Kernel {
			a := callSite(s.Kernel, j)
			if _, ok := b.kernelLocs[a]; !ok {
				want = append(want, a)
				b.kernelLocs[a] = nil
			}
		}
	}
	if len(want) == 0 {
		return
	}
	for i, l := range b.sym.Kernel(want) {
		if i < len(want) {
			b.kernelLocs[want[i]] = b.location(l, true)
		}
	}
}

// location returns the pprof location for a symbolized address, creating
// its mapping and functions the first time.
func (b *Builder) location(l symbolizer.Location, kernel bool) *profile.Location {
	m := b.mapping(l.Mapping, kernel)
	key := locKey{mapping: m, addr: l.Address}
	if m == nil {
		key.name = l.ModuleOffset()
	}
	if loc, ok := b.locs[key]; ok {
		return loc
	}
	loc := &profile.Location{ID: uint64(len(b.prof.Location) + 1), Mapping: m, Address: l.Address}
	for _, f := range l.Frames {
		if f.Function == "" {
			continue
		}
		loc.Line = append(loc.Line, profile.Line{Function: b.function(f.Function, f.File), Line: int64(f.Line)})
	}
	if len(loc.Line) == 0 {
		// Unnamed: keep module and offset as the name so the frame still
		// says where it was.
		b.stats.UnnamedFrame++
		loc.Line = []profile.Line{{Function: b.function(l.ModuleOffset(), "")}}
		if m != nil {
			b.unnamed[m] = true
		}
	}
	b.locs[key] = loc
	b.prof.Location = append(b.prof.Location, loc)
	return loc
}

func (b *Builder) mapping(sm *symbolizer.Mapping, kernel bool) *profile.Mapping {
	if sm == nil {
		return nil
	}
	key := mappingKey{path: sm.Path, start: sm.Start, limit: sm.Limit, offset: sm.Offset, kernel: kernel}
	if m, ok := b.mappings[key]; ok {
		return m
	}
	m := &profile.Mapping{
		ID: uint64(len(b.prof.Mapping) + 1), Start: sm.Start, Limit: sm.Limit, Offset: sm.Offset,
		File: sm.Path, BuildID: sm.BuildID,
	}
	if kernel && m.File == "" {
		m.File = "[kernel.kallsyms]"
	}
	b.mappings[key] = m
	b.prof.Mapping = append(b.prof.Mapping, m)
	return m
}

func (b *Builder) function(name, file string) *profile.Function {
	key := funcKey{name, file}
	if f, ok := b.funcs[key]; ok {
		return f
	}
	f := &profile.Function{ID: uint64(len(b.prof.Function) + 1), Name: name, SystemName: name, Filename: file}
	b.funcs[key] = f
	b.prof.Function = append(b.prof.Function, f)
	return f
}

// synthetic returns a location with no mapping that stands for something
// vigil could not record, such as a lost stack.
func (b *Builder) synthetic(name string) *profile.Location {
	key := locKey{name: name}
	if loc, ok := b.locs[key]; ok {
		return loc
	}
	loc := &profile.Location{ID: uint64(len(b.prof.Location) + 1), Line: []profile.Line{{Function: b.function(name, "")}}}
	b.locs[key] = loc
	b.prof.Location = append(b.prof.Location, loc)
	return loc
}

// addSample appends the kernel part (leaf first) and then the user part.
func (b *Builder) addSample(s *cpuprofile.Sample) {
	stack := make([]*profile.Location, 0, len(s.Kernel)+len(s.User)+2)
	for j := range s.Kernel {
		stack = appendLoc(stack, b.kernelLocs[callSite(s.Kernel, j)])
	}
	if b.kind == KindOffCPU {
		stack = trimTracing(stack)
	}
	if s.KernelLost {
		stack = append(stack, b.synthetic("[kernel stack lost]"))
	}
	if b.py != nil && len(s.Python) > 0 {
		stack = b.userWithPython(stack, s)
	} else {
		for j := range s.User {
			stack = appendLoc(stack, b.userLocs[s.PID][callSite(s.User, j)])
		}
	}
	if s.PythonLost {
		b.stats.PythonLost += s.Count
		stack = append(stack, b.synthetic("[python stack lost]"))
	}
	if s.UserLost {
		stack = append(stack, b.synthetic("[user stack lost]"))
	}
	if s.UserTruncated != "" {
		stack = append(stack, b.synthetic("[user stack truncated: "+s.UserTruncated+"]"))
	}
	if len(stack) == 0 {
		return
	}
	v := s.Count * uint64(b.period)
	if b.kind == KindOffCPU {
		v = s.OffCPUNanos
		b.stats.OffCPU.Recorded += s.Count
		b.stats.OffCPU.RecordedNanos += v
	}
	b.count(stack, s.PID, s.TID, s.Comm, s.Count, v)
}

func appendLoc(stack []*profile.Location, l *profile.Location) []*profile.Location {
	if l == nil {
		return stack
	}
	return append(stack, l)
}

// addLost adds n samples that were dropped whole, under one synthetic frame
// named after the reason, so the profile's total stays honest.
func (b *Builder) addLost(reason string, n uint64) {
	b.count([]*profile.Location{b.synthetic("[lost samples: " + reason + "]")}, 0, 0, "", n, n*uint64(b.period))
}

// count adds n samples (CPU) or blocked intervals (off-CPU) of v
// nanoseconds in all to a stack.
func (b *Builder) count(stack []*profile.Location, pid, tid uint32, comm string, n, v uint64) {
	ids := make([]string, len(stack))
	for i, l := range stack {
		ids[i] = strconv.FormatUint(l.ID, 10)
	}
	key := sampleKey{stack: strings.Join(ids, ","), pid: pid, tid: tid, comm: comm}
	if pid != 0 || comm != "" {
		b.stats.Samples += n
	}
	if s, ok := b.samples[key]; ok {
		s.Value[0] += int64(n)
		s.Value[1] += int64(v)
		return
	}
	s := &profile.Sample{Location: stack, Value: []int64{int64(n), int64(v)}}
	if pid != 0 || comm != "" {
		s.Label = map[string][]string{"comm": {comm}}
		s.NumLabel = map[string][]int64{"pid": {int64(pid)}, "tid": {int64(tid)}}
		s.NumUnit = map[string][]string{"pid": {""}, "tid": {""}}
	}
	b.samples[key] = s
}
