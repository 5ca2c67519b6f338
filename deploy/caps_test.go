package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var (
	vigilOnce sync.Once
	vigilBin  string
	vigilErr  error
	vigilOut  []byte
)

// buildVigil builds cmd/vigil once per test run.
func buildVigil(t *testing.T) string {
	t.Helper()
	vigilOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-deploy-test")
		if err != nil {
			vigilErr = err
			return
		}
		vigilBin = filepath.Join(dir, "vigil")
		cmd := exec.Command("go", "build", "-o", vigilBin, "./cmd/vigil")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		vigilOut, vigilErr = cmd.CombinedOutput()
	})
	if vigilErr != nil {
		t.Fatalf("building vigil: %v\n%s", vigilErr, vigilOut)
	}
	return vigilBin
}

// withCaps runs vigil as uid 0 held to exactly caps, as the systemd unit
// and the DaemonSet run it: the bounding set limits what root gets at exec.
func withCaps(t *testing.T, caps []string, args ...string) (string, error) {
	t.Helper()
	bounding := "-all"
	for _, c := range caps {
		bounding += ",+" + strings.ToLower(c)
	}
	setpriv := append([]string{"--bounding-set", bounding, "--inh-caps", "-all", buildVigil(t)}, args...)
	out, err := exec.Command("setpriv", setpriv...).CombinedOutput()
	return string(out), err
}

func requireRootAndSetpriv(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs vigil")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand vigil its capabilities")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
}

// busyInKernel keeps a process making system calls for the rest of the
// test, so the profile has kernel frames to name even on an idle machine.
func busyInKernel(t *testing.T) {
	t.Helper()
	cmd := exec.Command("dd", "if=/dev/zero", "of=/dev/null", "bs=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a system-call workload: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// unnamedKernelFrame is a kernel frame vigil could not name.
var unnamedKernelFrame = regexp.MustCompile(`\[kernel\.kallsyms\]\+0x`)

// The capabilities the deployment files grant are enough: with exactly
// these, every latency hook attaches and the profiler names kernel frames.
func TestRequiredCapsSuffice(t *testing.T) {
	requireRootAndSetpriv(t)
	out, err := withCaps(t, requiredCaps, "latency", "--duration", "1s", "--interval", "1s", "--output", "json")
	if err != nil {
		t.Fatalf("vigil latency with %v: %v\n%s", requiredCaps, err, out)
	}
	for _, hook := range []string{"read", "runqueue", "tcp_connect", "block"} {
		if !strings.Contains(out, "hook="+hook+" ") {
			t.Errorf("hook %s did not attach with %v:\n%s", hook, requiredCaps, out)
		}
	}
	busyInKernel(t)
	folded := filepath.Join(t.TempDir(), "cpu.folded")
	if out, err := withCaps(t, requiredCaps, "profile", "-d", "2s", "-F", "99", "-format", "folded", "-o", folded); err != nil {
		t.Fatalf("vigil profile with %v: %v\n%s", requiredCaps, err, out)
	}
	named, unnamed := kernelFrames(t, folded)
	t.Logf("kernel frames: %d named, %d unnamed", named, unnamed)
	if named == 0 || unnamed > named {
		t.Errorf("with %v kernel frames should be named: %d named, %d unnamed", requiredCaps, named, unnamed)
	}
}

// CAP_SYSLOG is on the list because without it /proc/kallsyms reads zeros
// and no kernel frame is named.
func TestSyslogCapNamesKernelFrames(t *testing.T) {
	requireRootAndSetpriv(t)
	var without []string
	for _, c := range requiredCaps {
		if c != "SYSLOG" {
			without = append(without, c)
		}
	}
	busyInKernel(t)
	folded := filepath.Join(t.TempDir(), "cpu.folded")
	if out, err := withCaps(t, without, "profile", "-d", "2s", "-F", "99", "-format", "folded", "-o", folded); err != nil {
		t.Fatalf("vigil profile with %v: %v\n%s", without, err, out)
	}
	named, unnamed := kernelFrames(t, folded)
	if unnamed == 0 || named > 0 {
		t.Errorf("without CAP_SYSLOG: %d kernel frames named, %d unnamed; want none named", named, unnamed)
	}
}

// kernelFrames counts the unnamed kernel frames of a folded profile and the
// named ones, recognised by the kernel's entry functions (system calls,
// interrupts, kernel threads) that nearly every kernel stack passes through.
func kernelFrames(t *testing.T, path string) (named, unnamed int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`^(entry_SYSCALL_64|do_syscall_64|asm_|ret_from_fork|kthread|cpu_startup_entry|x64_sys_call|__x64_sys_)`)
	for line := range strings.Lines(string(data)) {
		stack, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		for f := range strings.SplitSeq(stack, ";") {
			switch {
			case unnamedKernelFrame.MatchString(f):
				unnamed++
			case entry.MatchString(f):
				named++
			}
		}
	}
	return named, unnamed
}
