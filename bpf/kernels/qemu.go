package kernels

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Accelerator names as QEMU spells them.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// accelEnv overrides the detection, for machines where /dev/kvm looks
// usable but is not (or to compare both).
const accelEnv = "VIGIL_KERNELS_ACCEL"

// DetectAccel picks KVM when the CPU advertises hardware virtualisation and
// /dev/kvm opens, and software emulation (TCG) otherwise, saying why. A
// /dev/kvm without vmx/svm in the CPU flags is the case of nested guests
// whose host does not pass virtualisation through: QEMU accepts -accel kvm
// there and then hangs before the kernel starts.
func DetectAccel() (accel, why string) {
	if v := os.Getenv(accelEnv); v == AccelKVM || v == AccelTCG {
		return v, accelEnv + " is set"
	}
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return AccelTCG, "cannot read /proc/cpuinfo: " + err.Error()
	}
	if !hasVirtFlag(cpuinfo) {
		return AccelTCG, "CPU has no vmx/svm flag"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return AccelTCG, "cannot open /dev/kvm: " + err.Error()
	}
	f.Close()
	return AccelKVM, "CPU has vmx/svm and /dev/kvm opens"
}

func hasVirtFlag(cpuinfo []byte) bool {
	for _, line := range bytes.Split(cpuinfo, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(bytes.TrimSpace(k)) != "flags" {
			continue
		}
		for _, f := range bytes.Fields(v) {
			if string(f) == "vmx" || string(f) == "svm" {
				return true
			}
		}
	}
	return false
}

// VM describes one boot.
type VM struct {
	Kernel     Kernel
	Initramfs  string
	Accel      string
	MemoryMB   int
	Timeout    time.Duration // the whole boot, run and power-off
	ConsoleLog string        // first serial port: the kernel's messages
	ResultsLog string        // second serial port: what the guest jobs print
}

// Run boots the VM and waits until the guest powers off or the timeout
// passes. QEMU runs under timeout(1) as well as the context so that no
// emulator outlives a killed harness.
func (vm VM) Run(ctx context.Context) error {
	secs := int(vm.Timeout / time.Second)
	args := append([]string{"-k", "10", strconv.Itoa(secs), "qemu-system-x86_64"}, vm.qemuArgs()...)
	cmd := exec.CommandContext(ctx, "timeout", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 124 {
		return fmt.Errorf("kernel %s: timed out after %s", vm.Kernel.Release, vm.Timeout)
	}
	if err != nil {
		return fmt.Errorf("kernel %s: qemu: %w: %s", vm.Kernel.Release, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

func (vm VM) qemuArgs() []string {
	cpu := "max"
	if vm.Accel == AccelKVM {
		cpu = "host"
	}
	mem := vm.MemoryMB
	if mem == 0 {
		mem = 1024
	}
	return []string{
		"-accel", vm.Accel, "-cpu", cpu, "-smp", "1", "-m", strconv.Itoa(mem),
		"-display", "none", "-vga", "none", "-nic", "none", "-monitor", "none",
		"-no-reboot",
		"-serial", "file:" + vm.ConsoleLog,
		"-serial", "file:" + vm.ResultsLog,
		"-kernel", vm.Kernel.Vmlinuz(),
		"-initrd", vm.Initramfs,
		// panic=-1 turns a guest panic into a QEMU exit (with -no-reboot);
		// mitigations=off because emulated speculation barriers only cost time.
		"-append", "console=ttyS0 panic=-1 quiet loglevel=4 mitigations=off",
	}
}
