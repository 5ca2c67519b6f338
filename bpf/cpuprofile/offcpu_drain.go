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

// readStacks reads every stack of a stack map (err is passed through,
// joined with any of its own).
func readStacks(m *ebpf.Map, err error) (map[int32][]uint64, error) {
	out := map[int32][]uint64{}
	var (
		id  uint32
		raw [maxStackDepth]uint64
	)
	it := m.Iterate()
	for it.Next(&id, &raw) {
		n := 0
		for n < len(raw) && raw[n] != 0 {
			n++
		}
		out[int32(id)] = append([]uint64(nil), raw[:n]...)
	}
	if ierr := it.Err(); ierr != nil {
		err = errors.Join(err, fmt.Errorf("reading stacks: %w", ierr))
	}
	return out, err
}

// drainOffCPU takes the off-CPU counts of the drained epoch, resolves each
// against the stacks of the epoch it was recorded in, keeps the stacks that
// threads still blocked will need, and adds up the totals.
func (p *Profiler) drainOffCPU(epoch uint32, cur *stackStore, b *Batch) error {
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
	started, serr := sumSlots(p.objs.OffcpuSums)
	var (
		live    uint64
		carried map[uint32]*stackStore
		cerr    error
	)
	if o.live != nil {
		live, carried, cerr = liveTaskRecords(o.live, store)
	} else {
		live, carried, cerr = liveRecords(p.objs.OffcpuStart, store)
	}
	o.carried, o.prev, o.prevEpoch = carried, cur, epoch
	sums, terr := sumSlots(p.objs.OffcpuSums)
	b.OffCPUTotals = o.totalsSince(sums, started[offStarted], live)
	return errors.Join(err, serr, cerr, terr)
}

// takeOffCPU reads and empties one off-CPU counts map.
func takeOffCPU(m *ebpf.Map, store func(uint32) *stackStore, b *Batch) error {
	return takeAll(m, "off-CPU counts", func(key *cpuprofileOffcpuKey, val *cpuprofileOffcpuValue) {
		s := store(key.Epoch).resolve(&key.Key)
		s.Count, s.OffCPUNanos = val.Count, val.Ns
		b.OffCPU = append(b.OffCPU, s)
	})
}

// liveRecords counts the records of threads still blocked and copies the
// stacks they name, by epoch, out of the stores about to be dropped.
func liveRecords(m *ebpf.Map, store func(uint32) *stackStore) (uint64, map[uint32]*stackStore, error) {
	var (
		tid  uint32
		rec  cpuprofileOffcpuRec
		live uint64
	)
	out := map[uint32]*stackStore{}
	it := m.Iterate()
	for it.Next(&tid, &rec) {
		live++
		carry(out, store, &rec)
	}
	if err := it.Err(); err != nil {
		return live, out, fmt.Errorf("reading off-CPU records: %w", err)
	}
	return live, out, nil
}

// maxLiveRecords bounds what one listing of task-storage records reads: a
// thread has one record at most, and Linux's pid_max is 4M.
const maxLiveRecords = 1 << 22

// liveTaskRecords is liveRecords for records in task storage, listed by
// the offcpu_live iterator.
func liveTaskRecords(it *link.Iter, store func(uint32) *stackStore) (uint64, map[uint32]*stackStore, error) {
	out := map[uint32]*stackStore{}
	r, err := it.Open()
	if err != nil {
		return 0, out, fmt.Errorf("listing off-CPU records: %w", err)
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		rec  cpuprofileOffcpuRec
		live uint64
	)
	for live < maxLiveRecords {
		if err := binary.Read(br, binary.LittleEndian, &rec); err != nil {
			if errors.Is(err, io.EOF) {
				return live, out, nil
			}
			return live, out, fmt.Errorf("listing off-CPU records: %w", err)
		}
		live++
		carry(out, store, &rec)
	}
	return live, out, fmt.Errorf("listing off-CPU records: more than %d", maxLiveRecords)
}

// carry copies the stacks rec names into out, by epoch.
func carry(out map[uint32]*stackStore, store func(uint32) *stackStore, rec *cpuprofileOffcpuRec) {
	dst := out[rec.K.Epoch]
	if dst == nil {
		dst = newStackStore()
		out[rec.K.Epoch] = dst
	}
	dst.keep(store(rec.K.Epoch), &rec.K.Key)
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
