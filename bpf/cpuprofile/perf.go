package cpuprofile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// perfEvent is one cpu-clock sampling event on one CPU with the program
// attached to it.
type perfEvent struct {
	fd   int
	link link.Link // nil when attached through the ioctl fallback
}

// openCPUClock opens a software cpu-clock event sampling at hz on cpu. The
// software clock exists on every kernel and VM, unlike hardware cycles.
func openCPUClock(cpu, hz int) (int, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: uint64(hz),
		Bits:   unix.PerfBitFreq,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("perf_event_open on cpu %d: %w", cpu, os.NewSyscallError("perf_event_open", err))
	}
	return fd, nil
}

// attachPerf attaches prog to the event: a BPF link where the kernel has
// them for perf events (5.15+), else the older PERF_EVENT_IOC_SET_BPF ioctl.
func attachPerf(fd int, prog *ebpf.Program, useLink bool) (perfEvent, error) {
	if useLink {
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
		if err != nil {
			return perfEvent{}, fmt.Errorf("bpf link on perf event: %w", err)
		}
		return perfEvent{fd: fd, link: l}, nil
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, prog.FD()); err != nil {
		return perfEvent{}, fmt.Errorf("PERF_EVENT_IOC_SET_BPF: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		return perfEvent{}, fmt.Errorf("PERF_EVENT_IOC_ENABLE: %w", err)
	}
	return perfEvent{fd: fd}, nil
}

func (e perfEvent) close() error {
	var errs []error
	if e.link != nil {
		errs = append(errs, e.link.Close())
	}
	errs = append(errs, unix.Close(e.fd))
	return errors.Join(errs...)
}

// onlineCPUs parses /sys/devices/system/cpu/online ("0-3,5,7-8").
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("reading online CPUs: %w", err)
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, found := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		b := a
		if found {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("cpu list %q: %w", s, err)
			}
		}
		if a < 0 || b < a || b-a > 1<<16 {
			return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("cpu list %q: no CPUs", s)
	}
	return cpus, nil
}
