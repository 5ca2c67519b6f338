package cpuprofile

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Counter slots, in the order of enum counter in cpuprofile.bpf.c: the lost
// reasons, then the number of samples that passed the filters.
const (
	lostReasons    = 9
	counterSamples = lostReasons
)

// The table unwinder's counters follow: frames by how they were walked,
// then walks that stopped early by why.
const (
	counterFramesTable = counterSamples + 1 + iota
	counterFramesFP
	counterFPNoMapping
	counterFPNoRule
	counterSignalFrames
	counterTailCallFailed
	counterTruncBase
)

// The Python walker's counters follow the truncation reasons.
const (
	counterPyFrames = counterTruncBase + len(TruncationReasons) + iota
	counterPyNoThreadState
	counterPyStackLost
	counterPyTailCallFailed
	counters
)

// TruncationReasons name why a table walk stopped before the outermost
// frame, in the order of enum truncation in unwind.bpf.h. Such a stack
// keeps the frames walked and ends in a "[user stack truncated: reason]"
// frame in the profile.
var TruncationReasons = [...]string{
	"process_not_loaded",
	"table_not_loaded",
	"unsupported_rule",
	"bad_read",
	"depth_limit",
	"bad_frame",
}

// markerBase is MARKER_BASE in unwind.bpf.h: frames at or above it are not
// addresses but the reason a walk stopped.
const markerBase = 0xffffffffffff0000

// Stack id values in sample keys that are not ids.
const (
	stackNone   = -1 // the sample had no such part
	stackLost   = -2 // it had one but it could not be stored
	stackHashed = -3 // the user stack is in ustacks_a/b under the key's hash
)

// pyhashNone is PYHASH_NONE: a sample key without a Python stack. Any
// other value names one in pystacks_a/b, or is PYHASH_LOST, which names
// none and so reads as lost.
const pyhashNone = 0

// LostReasons names each lost_reason slot; these are the reason labels of
// the lost-sample counter and of the profile's synthetic frames. A
// collision is a stack whose hash bucket other stacks held both in the
// stack map and in its spill map.
var LostReasons = [lostReasons]string{
	"kernel_stack_collision",
	"kernel_stack_map_full",
	"kernel_stack_error",
	"user_stack_collision",
	"user_stack_map_full",
	"user_stack_error",
	"counts_map_full",
	"process_notify_dropped",
	"empty_stack",
}

// Sample is one distinct stack of one thread with how often it was seen.
type Sample struct {
	PID, TID uint32
	Comm     string
	Kernel   []uint64 // leaf first; nil when the sample had no kernel part
	User     []uint64 // leaf first; nil when the sample had no user part
	// KernelLost / UserLost are set when that part was sampled but its
	// stack could not be stored (see Batch.Lost for why).
	KernelLost, UserLost bool
	// UserTruncated says why the user stack ends before its outermost
	// frame ("" when it doesn't): one of TruncationReasons.
	UserTruncated string
	// Python holds the sample's Python frames, leaf first, when the
	// process runs CPython; PythonLost when they could not be stored.
	Python     []PyFrame
	PythonLost bool
	Count      uint64
	// OffCPUNanos is the blocked time of an off-CPU sample, whose Count is
	// the number of blocked intervals; 0 for CPU samples.
	OffCPUNanos uint64
}

// Batch is what one drain returned.
type Batch struct {
	Samples []Sample
	// Lost counts, by reason, what could not be recorded since the previous
	// drain. Whole samples lost (counts_map_full, empty_stack) are not in
	// Samples; the stack reasons lost a part of a stack, which Samples marks.
	Lost map[string]uint64
	// Seen is how many samples passed the filters since the previous drain:
	// the sum of Samples' counts plus the whole samples lost.
	Seen uint64
	// OffCPU holds the off-CPU stacks since the previous drain (with
	// Options.OffCPU), and OffCPUTotals accounts for their intervals.
	OffCPU       []Sample
	OffCPUTotals OffCPUTotals
}

// WholeSampleLost tells the loss reasons that drop a sample entirely.
func WholeSampleLost(reason string) bool {
	return reason == "counts_map_full" || reason == "empty_stack"
}

// Drain swaps the buffers and returns everything recorded in the one that
// was active, leaving it empty for the next swap.
func (p *Profiler) Drain() (*Batch, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	epoch := p.active
	var live offLive
	if p.off != nil {
		live = p.listOffCPU()
		// A switch-in the listing missed may still be counting: let it
		// count in the buffer about to be taken.
		p.fence.wait()
	}
	p.active++
	if err := p.objs.ActiveBuf.Set(p.active); err != nil {
		p.active = epoch
		return nil, fmt.Errorf("switching sample buffers: %w", err)
	}
	// A program that read the old index may still be writing to its
	// buffer: wait for it to return.
	p.fence.wait()
	if p.afterFlip != nil {
		p.afterFlip()
	}
	counts, stacks, ustacks, pystacks := p.objs.CountsA, stackMaps{p.objs.StacksA, p.objs.SpillA}, p.objs.UstacksA, p.objs.PystacksA
	if epoch&1 == 1 {
		counts, stacks, ustacks, pystacks = p.objs.CountsB, stackMaps{p.objs.StacksB, p.objs.SpillB}, p.objs.UstacksB, p.objs.PystacksB
	}
	clear(p.peeked)
	b := &Batch{}
	cur := &stackStore{kernel: map[int32][]uint64{}}
	var err error
	if p.tables {
		cur.user, err = takeUserStacks(ustacks)
		if p.PythonReport().Chosen == StrategyPythonFrames {
			var perr error
			cur.python, perr = takePyStacks(pystacks)
			err = errors.Join(err, perr)
		}
		p.reg.sweep()
	}
	if p.off != nil {
		// Off-CPU intervals may name these stacks drains later: keep all.
		var kerr error
		cur.kernel, kerr = stacks.readAll()
		err = errors.Join(err, kerr)
	}
	err = errors.Join(err, p.readCounts(counts, stacks, cur, b))
	if p.off != nil {
		err = errors.Join(err, p.drainOffCPU(epoch, cur, live, b))
	}
	err = errors.Join(err, stacks.clear())
	var lerr error
	b.Lost, b.Seen, lerr = p.countersSince()
	return b, errors.Join(err, lerr)
}

// readCounts takes every key out of counts and resolves its stacks.
func (p *Profiler) readCounts(counts *ebpf.Map, stacks stackMaps, cur *stackStore, b *Batch) error {
	return takeAll(counts, "sample counts", func(key *cpuprofileSampleKey, value *uint64) {
		s := p.sample(key, *value, stacks, cur.kernel)
		cur.resolveUser(key, &s)
		b.Samples = append(b.Samples, s)
	})
}

// takeAll hands each entry of a hash map to each, then deletes what it
// read. Deleting after iterating: deleting while iterating a hash map can
// make the iteration restart or skip keys. what names the map's contents
// in errors.
func takeAll[K, V any](m *ebpf.Map, what string, each func(*K, *V)) error {
	var (
		key  K
		val  V
		keys []K
	)
	it := m.Iterate()
	for it.Next(&key, &val) {
		keys = append(keys, key)
		each(&key, &val)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	if len(keys) == 0 {
		return nil
	}
	if _, err := m.BatchDelete(keys, nil); err != nil {
		return deleteEach(m, keys, err)
	}
	return nil
}

// deleteEach deletes keys one by one where the kernel has no batch delete.
func deleteEach[K any](m *ebpf.Map, keys []K, batchErr error) error {
	if !errors.Is(batchErr, ebpf.ErrNotSupported) {
		return fmt.Errorf("clearing %s: %w", m, batchErr)
	}
	for i := range keys {
		if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clearing %s: %w", m, err)
		}
	}
	return nil
}

func (p *Profiler) sample(k *cpuprofileSampleKey, n uint64, stacks stackMaps, cache map[int32][]uint64) Sample {
	s := Sample{PID: k.Pid, TID: k.Tid, Comm: commString(k.Comm), Count: n}
	s.Kernel, s.KernelLost = lookupStack(stacks, k.Kstack, cache)
	s.User, s.UserLost = lookupStack(stacks, k.Ustack, cache)
	return s
}

// lookupStack returns the frames of stack id (leaf first), or whether that
// part of the sample was lost.
func lookupStack(stacks stackMaps, id int32, cache map[int32][]uint64) ([]uint64, bool) {
	if id == stackLost {
		return nil, true
	}
	if id < 0 {
		return nil, false
	}
	if st, ok := cache[id]; ok {
		return st, st == nil
	}
	m, key := stacks.of(id)
	var raw [maxStackDepth]uint64
	if err := m.Lookup(key, &raw); err != nil {
		cache[id] = nil
		return nil, true
	}
	st := trimStack(raw[:])
	cache[id] = st
	return st, false
}

// trimStack copies the frames of a stack map value, which ends at the
// first zero.
func trimStack(raw []uint64) []uint64 {
	n := 0
	for n < len(raw) && raw[n] != 0 {
		n++
	}
	return append([]uint64(nil), raw[:n]...)
}

// stackSpill is STACK_SPILL in cpuprofile.bpf.c: set in the ids of stacks
// kept in the spill map because another stack held their bucket in the
// main one.
const stackSpill = 1 << 30

// stackMaps are one buffer's stack maps: the main one and its spill.
type stackMaps struct{ main, spill *ebpf.Map }

// of returns the map and key of stack id.
func (sm stackMaps) of(id int32) (*ebpf.Map, uint32) {
	if id&stackSpill != 0 {
		return sm.spill, uint32(id &^ stackSpill)
	}
	return sm.main, uint32(id)
}

// readAll reads every stack of both maps, by id.
func (sm stackMaps) readAll() (map[int32][]uint64, error) {
	out := map[int32][]uint64{}
	var err error
	for _, m := range []struct {
		m   *ebpf.Map
		bit int32
	}{{sm.main, 0}, {sm.spill, stackSpill}} {
		var (
			id  uint32
			raw [maxStackDepth]uint64
		)
		it := m.m.Iterate()
		for it.Next(&id, &raw) {
			out[int32(id)|m.bit] = trimStack(raw[:])
		}
		if ierr := it.Err(); ierr != nil {
			err = errors.Join(err, fmt.Errorf("reading stacks: %w", ierr))
		}
	}
	return out, err
}

// clear empties both maps.
func (sm stackMaps) clear() error {
	return errors.Join(clearStacks(sm.main), clearStacks(sm.spill))
}

// maxStackDepth is MAX_STACK_DEPTH in cpuprofile.bpf.c.
const maxStackDepth = 127

type userStack struct {
	frames    []uint64
	truncated string
}

// takeUserStacks reads every walked user stack of the idle buffer in one
// pass and empties the map; the sample keys name them by hash.
func takeUserStacks(m *ebpf.Map) (map[uint64]userStack, error) {
	out := map[uint64]userStack{}
	err := takeAll(m, "user stacks", func(key *uint64, raw *cpuprofileUstack) {
		out[*key] = decodeUserStack(raw)
	})
	return out, err
}

// decodeUserStack splits off the marker frame that says why a walk stopped
// early.
func decodeUserStack(raw *cpuprofileUstack) userStack {
	var u userStack
	n := min(int(raw.Len), len(raw.Frames))
	if n > 0 && raw.Frames[n-1] >= markerBase {
		if r := int(raw.Frames[n-1]-markerBase) - 1; r >= 0 && r < len(TruncationReasons) {
			u.truncated = TruncationReasons[r]
		} else {
			u.truncated = "unknown"
		}
		n--
	}
	n = min(n, maxStackDepth) // only a marker sits past the deepest frame
	u.frames = append([]uint64(nil), raw.Frames[:n]...)
	return u
}

// unwindCounters reads the table unwinder's cumulative kernel counters.
func (p *Profiler) unwindCounters() (frames, truncated map[string]uint64) {
	frames, truncated = map[string]uint64{}, map[string]uint64{}
	sum := p.counterSum
	for i, name := range []string{"table", "frame_pointer", "frame_pointer_no_mapping", "frame_pointer_no_rule", "signal", "tail_call_failed"} {
		frames[name] = sum(counterFramesTable + i)
	}
	for i, name := range TruncationReasons {
		truncated[name] = sum(counterTruncBase + i)
	}
	return frames, truncated
}

// counterSum reads one cumulative per-CPU counter (0 when unreadable).
func (p *Profiler) counterSum(i int) uint64 {
	var perCPU []uint64
	if err := p.objs.Counters.Lookup(uint32(i), &perCPU); err != nil {
		return 0
	}
	var t uint64
	for _, v := range perCPU {
		t += v
	}
	return t
}

// clearStacks empties a stack map. Stack maps have no batch operations.
func clearStacks(m *ebpf.Map) error {
	// Keys only: a lookup would copy each stack out for nothing.
	var (
		keys []uint32
		prev any // nil: from the first key
		next uint32
	)
	for {
		err := m.NextKey(prev, &next)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("listing stacks: %w", err)
		}
		if len(keys) > int(m.MaxEntries()) { // a stack map's ids are its buckets
			return fmt.Errorf("listing stacks: more keys than the map's %d buckets", m.MaxEntries())
		}
		keys = append(keys, next)
		prev = next
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clearing stacks: %w", err)
		}
	}
	return nil
}

// countersSince sums the per-CPU counters and returns the increase since
// the previous call: losses by reason and samples seen.
func (p *Profiler) countersSince() (map[string]uint64, uint64, error) {
	out := map[string]uint64{}
	var delta [counters]uint64
	for i := uint32(0); i <= counterSamples; i++ {
		var perCPU []uint64
		if err := p.objs.Counters.Lookup(i, &perCPU); err != nil {
			return out, 0, fmt.Errorf("reading sample counters: %w", err)
		}
		var total uint64
		for _, v := range perCPU {
			total += v
		}
		delta[i] = total - p.lastCounters[i]
		p.lastCounters[i] = total
	}
	for i := 0; i < lostReasons; i++ {
		if delta[i] > 0 {
			out[LostReasons[i]] = delta[i]
		}
	}
	return out, delta[counterSamples], nil
}

func commString(c [16]int8) string {
	b := make([]byte, 0, len(c))
	for _, v := range c {
		if v == 0 {
			break
		}
		b = append(b, byte(v))
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}
