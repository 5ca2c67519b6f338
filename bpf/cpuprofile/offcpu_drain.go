package cpuprofile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// stackStore holds the stacks of one drain epoch, decoded: kernel stacks by
// id, user and Python stacks by hash.
type stackStore struct {
	kernel map[int32][]uint64
	user   map[uint64]userStack
	python map[uint64][]PyFrame
}

// resolveUser fills in the user and Python stacks a key names by hash. A
// hash without its stack (never expected) is a lost part.
func (st *stackStore) resolveUser(k *cpuprofileSampleKey, s *Sample) {
	if k.Ustack == stackHashed {
		u, ok := st.user[k.Uhash]
		s.User, s.UserLost, s.UserTruncated = u.frames, !ok, u.truncated
	}
	if k.Pyhash != pyhashNone {
		py, ok := st.python[k.Pyhash]
		s.Python, s.PythonLost = py, !ok
	}
}

// resolve decodes a sample key against the store alone (nil: every part it
// names is lost).
func (st *stackStore) resolve(k *cpuprofileSampleKey) Sample {
	if st == nil {
		st = &stackStore{}
	}
	s := Sample{PID: k.Pid, TID: k.Tid, Comm: commString(k.Comm)}
	s.Kernel, s.KernelLost = storedStack(st.kernel, k.Kstack)
	s.User, s.UserLost = storedStack(st.kernel, k.Ustack)
	st.resolveUser(k, &s)
	return s
}

func storedStack(m map[int32][]uint64, id int32) ([]uint64, bool) {
	if id == stackLost {
		return nil, true
	}
	if id < 0 {
		return nil, false
	}
	st, ok := m[id]
	return st, !ok
}

// keep copies into dst the stacks of src that k names.
func (st *stackStore) keep(src *stackStore, k *cpuprofileSampleKey) {
	if src == nil {
		return
	}
	for _, id := range []int32{k.Kstack, k.Ustack} {
		if f, ok := src.kernel[id]; ok && id >= 0 {
			st.kernel[id] = f
		}
	}
	if u, ok := src.user[k.Uhash]; ok && k.Ustack == stackHashed {
		st.user[k.Uhash] = u
	}
	if py, ok := src.python[k.Pyhash]; ok && k.Pyhash != pyhashNone {
		st.python[k.Pyhash] = py
	}
}

func newStackStore() *stackStore {
	return &stackStore{kernel: map[int32][]uint64{}, user: map[uint64]userStack{}, python: map[uint64][]PyFrame{}}
}

// offLive is what a drain lists of the threads still blocked, before it
// flips the buffers.
type offLive struct {
	started uint64                // records started, read before the listing
	keys    []cpuprofileOffcpuKey // the key of each live record
	err     error
}

// listOffCPU lists the records of threads still blocked. It runs before the
// flip, so that every interval the coming drains count is either of the two
// newest epochs or was live here: one that ends after the flip was listed,
// one that ended before it is counted in the buffer this drain takes. (The
// drain waits for running programs between the listing and the flip: a
// switch-in that cleared its record before the listing reached it has
// counted it by the flip.)
func (p *Profiler) listOffCPU() offLive {
	var l offLive
	sums, err := sumSlots(p.objs.OffcpuSums)
	l.started = sums[offStarted]
	if p.off.live != nil {
		l.keys, l.err = liveTaskRecords(p.off.live)
	} else {
		l.keys, l.err = liveRecords(p.objs.OffcpuStart)
	}
	l.err = errors.Join(err, l.err)
	return l
}

// drainOffCPU takes the off-CPU counts of the drained epoch, resolves each
// against the stacks of the epoch it was recorded in, keeps the stacks that
// threads still blocked (listed before the flip) will need, and adds up the
// totals.
func (p *Profiler) drainOffCPU(epoch uint32, cur *stackStore, live offLive, b *Batch) error {
	o := p.off
	store := func(e uint32) *stackStore {
		switch {
		case e == epoch:
			return cur
		case o.prev != nil && e == o.prevEpoch:
			return o.prev
		}
		return o.carried[e]
	}
	m := p.objs.OffcpuA
	if epoch&1 == 1 {
		m = p.objs.OffcpuB
	}
	err := takeOffCPU(m, store, b)
	carried := map[uint32]*stackStore{}
	for i := range live.keys {
		carry(carried, store, &live.keys[i])
	}
	o.carried, o.prev, o.prevEpoch = carried, cur, epoch
	sums, terr := sumSlots(p.objs.OffcpuSums)
	b.OffCPUTotals = o.totalsSince(sums, live.started, uint64(len(live.keys)))
	return errors.Join(err, live.err, terr)
}

// takeOffCPU reads and empties one off-CPU counts map.
func takeOffCPU(m *ebpf.Map, store func(uint32) *stackStore, b *Batch) error {
	return takeAll(m, "off-CPU counts", func(key *cpuprofileOffcpuKey, val *cpuprofileOffcpuValue) {
		s := store(key.Epoch).resolve(&key.Key)
		s.Count, s.OffCPUNanos = val.Count, val.Ns
		b.OffCPU = append(b.OffCPU, s)
	})
}

// liveRecords lists the keys of the records in offcpu_start.
func liveRecords(m *ebpf.Map) ([]cpuprofileOffcpuKey, error) {
	var (
		tid  uint32
		rec  cpuprofileOffcpuRec
		keys []cpuprofileOffcpuKey
	)
	it := m.Iterate()
	for it.Next(&tid, &rec) {
		keys = append(keys, rec.K)
	}
	if err := it.Err(); err != nil {
		return keys, fmt.Errorf("reading off-CPU records: %w", err)
	}
	return keys, nil
}

// maxLiveRecords bounds what one listing of task-storage records reads: a
// thread has one record at most, and Linux's pid_max is 4M.
const maxLiveRecords = 1 << 22

// liveTaskRecords is liveRecords for records in task storage, listed by
// the offcpu_live iterator.
func liveTaskRecords(it *link.Iter) ([]cpuprofileOffcpuKey, error) {
	r, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("listing off-CPU records: %w", err)
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		rec  cpuprofileOffcpuRec
		keys []cpuprofileOffcpuKey
	)
	for len(keys) < maxLiveRecords {
		if err := binary.Read(br, binary.LittleEndian, &rec); err != nil {
			if errors.Is(err, io.EOF) {
				return keys, nil
			}
			return keys, fmt.Errorf("listing off-CPU records: %w", err)
		}
		keys = append(keys, rec.K)
	}
	return keys, fmt.Errorf("listing off-CPU records: more than %d", maxLiveRecords)
}

// carry copies the stacks k names into out, by epoch.
func carry(out map[uint32]*stackStore, store func(uint32) *stackStore, k *cpuprofileOffcpuKey) {
	dst := out[k.Epoch]
	if dst == nil {
		dst = newStackStore()
		out[k.Epoch] = dst
	}
	dst.keep(store(k.Epoch), &k.Key)
}

// sumSlots adds up the per-CPU off-CPU counters.
func sumSlots(m *ebpf.Map) ([offSlots]uint64, error) {
	var out [offSlots]uint64
	var perCPU []cpuprofileOffcpuTotals
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return out, fmt.Errorf("reading off-CPU counters: %w", err)
	}
	for _, c := range perCPU {
		for i := range out {
			out[i] += c.N[i]
		}
	}
	return out, nil
}

// totalsSince turns cumulative counters into the totals since the previous
// drain. Records pushed out of the LRU map are what was started and neither
// ended nor is still there; started is read before the records are listed
// and the rest after, so the estimate can only fall short, and it is kept
// from going down.
func (o *offCPU) totalsSince(sums [offSlots]uint64, started, live uint64) OffCPUTotals {
	var d [offSlots]uint64
	for i := range sums {
		d[i] = sums[i] - o.last[i]
	}
	o.last = sums
	var evicted uint64
	if est := int64(started) - int64(sums[offSeen]) - int64(sums[offReplaced]) - int64(live); est > int64(o.evicted) {
		evicted = uint64(est) - o.evicted
		o.evicted = uint64(est)
	}
	t := OffCPUTotals{
		Seen: d[offSeen] + evicted + d[offReplaced] + d[offNoRecord], SeenNanos: d[offSeenNs],
		Recorded: d[offRecorded], RecordedNanos: d[offRecordedNs],
		Below: d[offBelow], BelowNanos: d[offBelowNs],
		Lost: map[string]uint64{}, LostNanos: map[string]uint64{}, StackLost: map[string]uint64{},
		KernelStacksReused: d[offKstackReused], UserStacksReused: d[offUstackReused],
	}
	add := func(m map[string]uint64, k string, v uint64) {
		if v > 0 {
			m[k] += v
		}
	}
	add(t.Lost, "counts_map_full", d[offLostFull])
	add(t.LostNanos, "counts_map_full", d[offLostFullNs])
	add(t.Lost, "empty_stack", d[offLostEmpty])
	add(t.LostNanos, "empty_stack", d[offLostEmptyNs])
	add(t.Lost, "record_evicted", evicted)
	add(t.Lost, "record_replaced", d[offReplaced])
	add(t.Lost, "record_failed", d[offNoRecord])
	for i := 0; i < 6; i++ {
		add(t.StackLost, LostReasons[i], d[offStackBase+i])
	}
	add(t.StackLost, "user_stack_incomplete", d[offUstackIncomplete])
	add(t.StackLost, "user_regs_unreadable", d[offNoUserRegs])
	return t
}
