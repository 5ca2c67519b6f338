package cpuprofile

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// arrayWindow writes into a BPF array created with BPF_F_MMAPABLE by
// mapping only the pages a write touches, and only for that write. The
// kernel maps every page of an array at mmap time, so a mapping kept open
// would count the whole table budget (16 MiB by default) in vigil's RSS
// although it is kernel memory already charged to the memory cgroup.
type arrayWindow struct {
	m    *ebpf.Map
	size int64 // bytes of the value area: MaxEntries * ValueSize (8-byte aligned)
}

func newArrayWindow(m *ebpf.Map) arrayWindow {
	return arrayWindow{m: m, size: int64(m.MaxEntries()) * int64((m.ValueSize()+7)&^7)}
}

// Size is the bytes the array holds.
func (w arrayWindow) Size() uint32 { return uint32(w.size) }

// WriteAt copies p to byte offset off of the array's values.
func (w arrayWindow) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > w.size {
		return 0, fmt.Errorf("writing %d bytes at %d of %s: outside its %d bytes", len(p), off, w.m, w.size)
	}
	if len(p) == 0 {
		return 0, nil
	}
	page := int64(os.Getpagesize())
	start := off &^ (page - 1)
	length := (off + int64(len(p)) - start + page - 1) &^ (page - 1)
	b, err := unix.Mmap(w.m.FD(), start, int(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("mapping %s: %w", w.m, err)
	}
	n := copy(b[off-start:], p)
	if err := unix.Munmap(b); err != nil {
		return n, fmt.Errorf("unmapping %s: %w", w.m, err)
	}
	return n, nil
}
