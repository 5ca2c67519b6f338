package cpuprofile

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cilium/ebpf"
)

// programFence waits for the BPF programs already running to return. The
// drain flips active_buf and then reads the buffer it left: a program that
// read the old index just before the flip may still be writing to that
// buffer. It runs with preemption off, but on a virtual machine its vCPU
// can be descheduled by the host for milliseconds (steal time), so no
// fixed wait is safe.
//
// The kernel's own guarantee is used instead: it answers an update of a
// map-in-map from user space only after an RCU grace period, precisely so
// that no program still running can hold the old value (every kernel since
// 4.20). Each program of the profiler, its tail calls included, runs in one
// RCU read-side section, so when the update returns, none that read the old
// index is left.
type programFence struct {
	outer, inner *ebpf.Map
}

// fenceFallback is how long wait sleeps when the kernel refused the fence's
// maps: long enough for a program on a running CPU, not for a descheduled
// vCPU.
const fenceFallback = 2 * time.Millisecond

func newProgramFence() (*programFence, error) {
	innerSpec := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	inner, err := ebpf.NewMap(innerSpec)
	if err != nil {
		return nil, fmt.Errorf("creating the drain fence's inner map: %w", err)
	}
	outer, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "vigil_fence", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1,
		InnerMap: innerSpec,
	})
	if err != nil {
		inner.Close()
		return nil, fmt.Errorf("creating the drain fence: %w", err)
	}
	return &programFence{outer: outer, inner: inner}, nil
}

// wait returns once every BPF program that was running when it was called
// has returned. A nil fence, or one the kernel fails, sleeps fenceFallback.
func (f *programFence) wait() {
	if f == nil {
		time.Sleep(fenceFallback)
		return
	}
	if err := f.outer.Put(uint32(0), f.inner); err != nil {
		slog.Debug("drain fence failed, waiting a fixed time", "component", "cpuprofile", "err", err)
		time.Sleep(fenceFallback)
	}
}

func (f *programFence) close() {
	if f != nil {
		f.outer.Close()
		f.inner.Close()
	}
}
