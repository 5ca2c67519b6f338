package main

import (
	"io"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/biolat"
	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	vhooks "github.com/vigil-ebpf/vigil/bpf/hooks"
	"github.com/vigil-ebpf/vigil/bpf/kernels/selftest"
	"github.com/vigil-ebpf/vigil/bpf/ksyms"
	"github.com/vigil-ebpf/vigil/bpf/readlat"
	"github.com/vigil-ebpf/vigil/bpf/runqlat"
	"github.com/vigil-ebpf/vigil/bpf/tcplat"
)

type hook struct {
	name  string
	suite string // the package whose tests cover the hook
	open  opener
}

// reporter is what every hook package's handle offers.
type reporter interface {
	Report() attach.Report
	Close() error
}

// single adapts a package whose Open attaches one hook.
func single[T reporter](hookName string, open func(skip map[string]bool) (T, error)) opener {
	return func(skip map[string]bool) (attach.Report, io.Closer, error) {
		p, err := open(skip)
		if err != nil {
			return reportOf(err, hookName), nil, err
		}
		return p.Report(), p, nil
	}
}

// openers holds one adapter per attach point of bpf/hooks: each package has
// its own Options type. A test fails when one is missing.
var openers = map[string]opener{
	selftest.Hook: single(selftest.Hook, func(skip map[string]bool) (*selftest.Counter, error) {
		return selftest.Open(selftest.Options{Skip: skip})
	}),
	"read": single("read", func(skip map[string]bool) (*readlat.Program, error) {
		return readlat.Open(readlat.Options{Skip: skip})
	}),
	"runqueue": single("runqueue", func(skip map[string]bool) (*runqlat.Program, error) {
		return runqlat.Open(runqlat.Options{Skip: skip})
	}),
	tcplat.HookConnect:    tcpHook(tcplat.HookConnect),
	tcplat.HookRTT:        tcpHook(tcplat.HookRTT),
	tcplat.HookRetransmit: tcpHook(tcplat.HookRetransmit),
	biolat.Hook: single(biolat.Hook, func(skip map[string]bool) (*biolat.Program, error) {
		return biolat.Open(biolat.Options{Skip: skip})
	}),
	"profile": single("profile", func(skip map[string]bool) (*cpuprofile.Profiler, error) {
		return cpuprofile.Open(cpuprofile.Options{Frequency: 49, Skip: skip})
	}),
	cpuprofile.UnwindHook: single(cpuprofile.UnwindHook, func(skip map[string]bool) (unwindReporter, error) {
		p, err := cpuprofile.Open(cpuprofile.Options{Frequency: 49, Skip: skip})
		return unwindReporter{p}, err
	}),
	cpuprofile.PythonHook: single(cpuprofile.PythonHook, func(skip map[string]bool) (pythonReporter, error) {
		p, err := cpuprofile.Open(cpuprofile.Options{Frequency: 49, Skip: skip, PythonAtOpen: true})
		return pythonReporter{p}, err
	}),
	cpuprofile.OffCPUHook: single(cpuprofile.OffCPUHook, func(skip map[string]bool) (offCPUReporter, error) {
		p, err := cpuprofile.Open(cpuprofile.Options{Frequency: 49, OffCPU: true, NoCPU: true, Skip: skip})
		return offCPUReporter{p}, err
	}),
	ksyms.Hook: single(ksyms.Hook, func(skip map[string]bool) (*ksyms.Namer, error) {
		return ksyms.Open(ksyms.Options{Skip: skip})
	}),
}

// hooks lists every attach point the matrix probes, in bpf/hooks' order,
// each with the suite whose tests cover it. A point without an adapter is
// left out (its test fails).
func hooks() []hook {
	var out []hook
	for _, h := range vhooks.All() {
		for _, p := range h.Points {
			if open, ok := openers[p.Name]; ok {
				out = append(out, hook{p.Name, h.Suite, open})
			}
		}
	}
	return out
}

// unwindReporter reports the profiler's user-stack walker as its own hook.
type unwindReporter struct{ *cpuprofile.Profiler }

func (u unwindReporter) Report() attach.Report { return u.UnwindReport() }

// pythonReporter reports the profiler's Python frame walker as its own hook.
type pythonReporter struct{ *cpuprofile.Profiler }

func (u pythonReporter) Report() attach.Report { return u.PythonReport() }

// offCPUReporter reports the profiler's scheduler-switch hook as its own.
type offCPUReporter struct{ *cpuprofile.Profiler }

func (u offCPUReporter) Report() attach.Report { return u.OffCPUReport() }

// tcpHook picks one hook out of tcplat, whose Open attaches all three and
// fails only when none attaches.
func tcpHook(name string) opener {
	return func(skip map[string]bool) (attach.Report, io.Closer, error) {
		p, err := tcplat.Open(tcplat.Options{Skip: skip})
		if err != nil {
			return reportOf(err, name), nil, err
		}
		for _, r := range p.Reports() {
			if r.Hook == name {
				return r, p, nil
			}
		}
		return attach.Report{Hook: name}, p, nil
	}
}

// reportOf stands in for the report a failed Open does not return: the
// error text carries the reasons.
func reportOf(err error, hook string) attach.Report {
	return attach.Report{Hook: hook, Attempts: []attach.Attempt{{Strategy: "open", Err: err}}}
}
