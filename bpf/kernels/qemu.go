package kernels

import (
	"bytes"
	"context"
	"errors"
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
	Kernel      Kernel
	Initramfs   string
	Accel       string
	MemoryMB    int
	CPUs        int           // virtual CPUs; 0 means 1
	Timeout     time.Duration // the whole boot, run and power-off
	BootTimeout time.Duration // until the guest's init reports; 0: no separate limit
	ConsoleLog  string        // first serial port: the kernel's messages
	ResultsLog  string        // second serial port: what the guest jobs print
}

// ErrNoBoot means the guest's init never reported: QEMU failed or hung
// before it. With KVM that usually means the accelerator is not really
// usable (on some nested hosts QEMU takes -accel kvm and then hangs, or
// aborts setting up the virtual CPU).
var ErrNoBoot = errors.New("guest did not reach its init")

// Run boots the VM and waits until the guest powers off or the timeout
// passes. QEMU runs under timeout(1) as well as the context so that no
// emulator outlives a killed harness. When the guest's init has not
// written its first line within BootTimeout, Run stops it and returns
// ErrNoBoot instead of waiting out the whole timeout.
func (vm VM) Run(ctx context.Context) error {
	_ = os.Remove(vm.ResultsLog) // a stale log would look like a boot
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	secs := int(vm.Timeout / time.Second)
	args := append([]string{"-k", "10", strconv.Itoa(secs), "qemu-system-x86_64"}, vm.qemuArgs()...)
	cmd := exec.CommandContext(ctx, "timeout", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kernel %s: starting qemu: %w", vm.Kernel.Release, err)
	}
	go vm.watchBoot(ctx, cancel)
	err := cmd.Wait()
	if errors.Is(context.Cause(ctx), ErrNoBoot) {
		return fmt.Errorf("kernel %s with %s: %w within %s", vm.Kernel.Release, vm.Accel, ErrNoBoot, vm.BootTimeout)
	}
	if err != nil && !vm.booted() {
		return fmt.Errorf("kernel %s with %s: %w: %v: %s", vm.Kernel.Release, vm.Accel, ErrNoBoot, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 124 {
		return fmt.Errorf("kernel %s: timed out after %s", vm.Kernel.Release, vm.Timeout)
	}
	if err != nil {
		return fmt.Errorf("kernel %s: qemu: %w: %s", vm.Kernel.Release, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// watchBoot cancels the run when the results log is still empty after
// BootTimeout.
func (vm VM) watchBoot(ctx context.Context, cancel context.CancelCauseFunc) {
	if vm.BootTimeout <= 0 {
		return
	}
	t := time.NewTimer(vm.BootTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		if !vm.booted() {
			cancel(ErrNoBoot)
		}
	}
}

// booted says whether the guest's init has written anything.
func (vm VM) booted() bool {
	fi, err := os.Stat(vm.ResultsLog)
	return err == nil && fi.Size() > 0
}

func (vm VM) qemuArgs() []string {
	cpu := "max"
	if vm.Accel == AccelKVM {
		cpu = "host"
	}
	mem, cpus := vm.MemoryMB, vm.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 1
	}
	return []string{
		"-accel", vm.Accel, "-cpu", cpu, "-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem),
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
