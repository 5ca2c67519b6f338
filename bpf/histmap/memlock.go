package histmap

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
)

// RaiseMemlock lifts RLIMIT_MEMLOCK once per process. Kernels before 5.11
// charge BPF maps against it, and the default (64 KiB to 8 MiB) is smaller
// than one histogram map; later kernels charge the memory cgroup and the
// call does nothing. A refused raise (no CAP_SYS_RESOURCE) is only a debug
// line: the loads that need it then fail with their own reason.
func RaiseMemlock() { raiseOnce() }

var raiseOnce = sync.OnceFunc(func() {
	if err := rlimit.RemoveMemlock(); err != nil {
		slog.Debug("raising RLIMIT_MEMLOCK refused", "component", "histmap", "err", err)
	}
})

// HaveTaskStorage is whether the kernel has BPF_MAP_TYPE_TASK_STORAGE
// (Linux 5.11), which the cheapest strategies keep their start times in.
var HaveTaskStorage = sync.OnceValue(func() bool {
	return features.HaveMapType(ebpf.TaskStorage) == nil
})

// ErrNoTaskStorage is wrapped into the reason of a strategy that failed
// because the kernel has no task storage.
var ErrNoTaskStorage = errors.New("kernel has no BPF task storage (needs Linux 5.11 or later)")
