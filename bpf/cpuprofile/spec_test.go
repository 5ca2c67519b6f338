package cpuprofile

import (
	"testing"
	"time"
	"unsafe"

	"github.com/vigil-ebpf/vigil/symbolizer/unwind"
)

// The generated key type must match the C struct byte for byte, and the map
// value size must hold the deepest stack the kernel records.
func TestSpecMatchesGoTypes(t *testing.T) {
	spec, err := loadCpuprofile()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"counts_a", "counts_b"} {
		m := spec.Maps[name]
		if got, want := m.KeySize, uint32(unsafe.Sizeof(cpuprofileSampleKey{})); got != want {
			t.Errorf("%s key size %d, Go type %d", name, got, want)
		}
	}
	for _, name := range []string{"stacks_a", "stacks_b", "spill_a", "spill_b"} {
		if got, want := spec.Maps[name].ValueSize, uint32(maxStackDepth*8); got != want {
			t.Errorf("%s value size %d, want %d", name, got, want)
		}
	}
	if got := spec.Maps["counters"].MaxEntries; got != uint32(counters) {
		t.Errorf("counters map has %d slots, Go knows %d", got, counters)
	}
}

func TestParseCPUList(t *testing.T) {
	got, err := parseCPUList("0-2,5,7-8")
	if err != nil {
		t.Fatal(err)
	}
	want := []int{0, 1, 2, 5, 7, 8}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "1-b", "0-99999999"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted a bad list", bad)
		}
	}
}

func TestMapSizesArePowersOfTwoWithinBounds(t *testing.T) {
	for _, tc := range []struct {
		hz, cpus int
		every    time.Duration
	}{{19, 1, time.Second}, {99, 2, 500 * time.Millisecond}, {999, 256, 15 * time.Second}} {
		s, c := mapSizes(tc.hz, tc.cpus, tc.every)
		perInterval := float64(tc.hz*tc.cpus) * tc.every.Seconds()
		if s&(s-1) != 0 || c&(c-1) != 0 {
			t.Errorf("%+v: sizes %d, %d not powers of two", tc, s, c)
		}
		if s < 2048 || s > 1<<16 || c < 1024 || c > 1<<18 {
			t.Errorf("%+v: sizes %d, %d out of bounds", tc, s, c)
		}
		if s < 1<<16 && float64(s) < 64*perInterval {
			t.Errorf("%+v: stack map %d smaller than 64x the %v samples of an interval", tc, s, perInterval)
		}
	}
}

// The table store writes the arrays byte by byte and the walker reads them
// as C structs; both sides must agree on sizes and on the rule kinds'
// numbers (enum cfa_kind and enum rbp_kind in unwind.bpf.h).
func TestTableLayoutMatchesTheWalker(t *testing.T) {
	for _, c := range []struct {
		name      string
		go_, spec uintptr
	}{
		{"file_info", fileInfoSize, unsafe.Sizeof(cpuprofileFileInfo{})},
		{"page_info", pageInfoSize, unsafe.Sizeof(cpuprofilePageInfo{})},
		{"rule", ruleSize, unsafe.Sizeof(cpuprofileRule{})},
		{"mapping", 24, unsafe.Sizeof(cpuprofileMapping{})},
		{"proc mappings", maxMappings, uintptr(len(cpuprofileProc{}.M))},
		{"ustack frames", maxStackDepth + 1, uintptr(len(cpuprofileUstack{}.Frames))},
	} {
		if c.go_ != c.spec {
			t.Errorf("%s: Go writes %d, the walker has %d", c.name, c.go_, c.spec)
		}
	}
	kinds := []struct {
		got, want int
	}{
		{int(unwind.CFANone), 0}, {int(unwind.CFARSP), 1}, {int(unwind.CFARBP), 2}, {int(unwind.CFAPLT), 3},
		{int(unwind.CFASignal), 4}, {int(unwind.CFAStop), 5}, {int(unwind.CFAInvalid), 6},
		{int(unwind.RBPSame), 0}, {int(unwind.RBPAtCFA), 1}, {int(unwind.RBPUndefined), 2},
	}
	for i, k := range kinds {
		if k.got != k.want {
			t.Errorf("kind %d is %d in Go, %d in unwind.bpf.h", i, k.got, k.want)
		}
	}
}
