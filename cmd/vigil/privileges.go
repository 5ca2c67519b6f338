package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vigil-ebpf/vigil/cmd/vigil/internal/agent"
)

// Capability bits (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// errPrivileges is a runtime error: the command was right, the process lacks rights.
var errPrivileges = errors.New("missing privileges")

// checkPrivileges explains, before anything is loaded, what is missing:
// CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN on kernels before 5.8), and BTF.
func checkPrivileges() error {
	caps, err := effectiveCaps()
	if err == nil && !hasCap(caps, capSysAdmin) && !(hasCap(caps, capBPF) && hasCap(caps, capPerfmon)) {
		return fmt.Errorf("%w: vigil needs root, or the capabilities CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8); run it with sudo", errPrivileges)
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing); vigil needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (the default on current Debian, Ubuntu, Fedora and RHEL kernels)")
	}
	return nil
}

func hasCap(caps uint64, bit uint) bool { return caps&(1<<bit) != 0 }

func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

// explainOpenError turns the kernel's refusals to start the CPU profiler
// into advice, the agent's words.
func explainOpenError(err error) error { return agent.ExplainProfilerError(err) }
