package cpuprofile

import (
	"reflect"
	"testing"
	"time"
	"unsafe"
)

func TestOffCPUSpecMatchesGoTypes(t *testing.T) {
	spec, err := loadCpuprofile()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"offcpu_a", "offcpu_b"} {
		m := spec.Maps[name]
		if m.KeySize != uint32(unsafe.Sizeof(cpuprofileOffcpuKey{})) || m.ValueSize != uint32(unsafe.Sizeof(cpuprofileOffcpuValue{})) {
			t.Errorf("%s key/value %d/%d bytes, Go types %d/%d", name, m.KeySize, m.ValueSize,
				unsafe.Sizeof(cpuprofileOffcpuKey{}), unsafe.Sizeof(cpuprofileOffcpuValue{}))
		}
	}
	if got := spec.Maps["offcpu_sums"].ValueSize; got != offSlots*8 {
		t.Errorf("offcpu_sums holds %d bytes, Go knows %d slots", got, offSlots)
	}
	for _, names := range offStrategies {
		for _, n := range []string{names.entry, names.walkUser, names.walkPython} {
			if spec.Programs[n] == nil {
				t.Errorf("strategy %s: no program %s", names.name, n)
			}
		}
	}
}

func TestValidOffCPU(t *testing.T) {
	o := Options{NoCPU: true}
	if err := validOffCPU(&o); err != nil || !o.OffCPU || o.MinBlock != DefaultMinBlock {
		t.Errorf("NoCPU alone: %+v, %v; want OffCPU on and the default threshold", o, err)
	}
	o = Options{OffCPU: true, MinBlock: 50 * time.Microsecond}
	if err := validOffCPU(&o); err != nil || o.MinBlock != 50*time.Microsecond {
		t.Errorf("explicit threshold changed: %+v, %v", o, err)
	}
	if err := validOffCPU(&Options{MinBlock: -1}); err == nil {
		t.Error("a negative threshold was accepted")
	}
}

// An off-CPU key resolves against the stacks of the epoch it names; what
// the store lacks reads as lost, and keep carries exactly what a key names.
func TestStackStoreResolvesAndCarries(t *testing.T) {
	src := newStackStore()
	src.kernel[3] = []uint64{0xffffffff81000010, 0xffffffff81000020}
	src.kernel[9] = []uint64{0xdead}
	src.user[0xabc] = userStack{frames: []uint64{0x401000, 0x402000}, truncated: "bad_read"}
	src.python[0x10] = []PyFrame{{}}
	k := cpuprofileSampleKey{Pid: 7, Tid: 8, Kstack: 3, Ustack: stackHashed, Uhash: 0xabc, Pyhash: 0x10}
	copy(k.Comm[:], []int8{'w', 'o', 'r', 'k'})

	s := src.resolve(&k)
	if s.PID != 7 || s.TID != 8 || s.Comm != "work" || len(s.Kernel) != 2 || len(s.User) != 2 ||
		s.UserTruncated != "bad_read" || len(s.Python) != 1 || s.KernelLost || s.UserLost || s.PythonLost {
		t.Fatalf("resolved %+v", s)
	}
	dst := newStackStore()
	dst.keep(src, &k)
	if !reflect.DeepEqual(dst.resolve(&k), s) {
		t.Errorf("carried store resolves %+v, want %+v", dst.resolve(&k), s)
	}
	if _, ok := dst.kernel[9]; ok {
		t.Error("keep carried a stack the key does not name")
	}
	var none *stackStore
	lost := none.resolve(&k)
	if !lost.KernelLost || !lost.UserLost || !lost.PythonLost {
		t.Errorf("no store: %+v, want every part lost", lost)
	}
	k.Kstack, k.Ustack, k.Pyhash = stackNone, stackLost, pyhashNone
	if s := src.resolve(&k); s.Kernel != nil || s.KernelLost || !s.UserLost || s.Python != nil {
		t.Errorf("markers: %+v", s)
	}
}

// totalsSince turns cumulative counters into per-drain totals that add up,
// and counts records pushed out of the LRU map once, never going back.
func TestOffCPUTotalsAddUp(t *testing.T) {
	var o offCPU
	var sums [offSlots]uint64
	sums[offSeen], sums[offSeenNs] = 10, 1000
	sums[offRecorded], sums[offRecordedNs] = 7, 900
	sums[offBelow], sums[offBelowNs] = 2, 1
	sums[offLostFull], sums[offLostFullNs] = 1, 99
	sums[offStarted] = 15
	sums[offStackBase+1] = 1
	sums[offReplaced] = 1
	// 15 started, 10 ended, 1 replaced, 2 still live: 2 pushed out.
	tot := o.totalsSince(sums, 15, 2)
	lost, lostNs := uint64(0), uint64(0)
	for _, n := range tot.Lost {
		lost += n
	}
	for _, n := range tot.LostNanos {
		lostNs += n
	}
	if tot.Seen != tot.Recorded+tot.Below+lost || tot.SeenNanos != tot.RecordedNanos+tot.BelowNanos+lostNs {
		t.Fatalf("totals do not add up: %+v", tot)
	}
	if tot.Lost["record_evicted"] != 2 || tot.Lost["record_replaced"] != 1 || tot.StackLost["kernel_stack_map_full"] != 1 {
		t.Errorf("losses %v, stack losses %v", tot.Lost, tot.StackLost)
	}
	// A lower estimate later (a scan that saw a record twice) takes
	// nothing back; nothing new happened, so everything is zero.
	tot = o.totalsSince(sums, 15, 3)
	if tot.Seen != 0 || len(tot.Lost) != 0 {
		t.Errorf("second drain with no change: %+v", tot)
	}
}
