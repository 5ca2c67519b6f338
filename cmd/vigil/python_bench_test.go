package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// pyManyCodes is a Python service with n distinct functions (code
// objects), each a little pure-Python work, called round-robin forever.
const pyManyCodes = `import sys
n = int(sys.argv[1])
src = []
for i in range(n):
    src.append("def f%d(x):\n    s = x\n    for i in range(40):\n        s = (s * 31 + i) %% 1000003\n    return s\n" % i)
ns = {}
exec("".join(src), ns)
fs = [ns["f%d" % i] for i in range(n)]
x = 1
while True:
    for f in fs:
        x = f(x)
`

// BenchmarkPythonAgentCPU measures the agent's own CPU while it profiles
// a Python service of 10,000 distinct code objects at its default 19 Hz,
// after a warm-up, with Python frames on and off in alternate rounds. The target is under 0.5% of a core
// with Python frames on.
//
//	sudo go test -run '^$' -bench PythonAgentCPU -benchtime 1x ./cmd/vigil
func BenchmarkPythonAgentCPU(b *testing.B) {
	requireRoot(b)
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		b.Skipf("skipped: no %s (apt-get install python3)", py)
	}
	bin := buildVigil(b)
	script := filepath.Join(b.TempDir(), "codes.py")
	if err := os.WriteFile(script, []byte(pyManyCodes), 0o644); err != nil {
		b.Fatal(err)
	}
	svc := exec.Command(py, script, "10000")
	svc.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := svc.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { svc.Process.Kill(); svc.Wait() }()
	const warm, window, rounds = 20 * time.Second, 60 * time.Second, 2
	for b.Loop() {
		got := map[bool][]float64{}
		for range rounds {
			for _, on := range []bool{true, false} {
				got[on] = append(got[on], agentCPU(b, bin, svc.Process.Pid, on, warm, window))
			}
		}
		for _, on := range []bool{true, false} {
			name := map[bool]string{true: "python", false: "no-python"}[on]
			b.Logf("%s: %% of a core per round %.3f", name, got[on])
			b.ReportMetric(medianOf(got[on]), name+"-%core")
		}
	}
}

// agentCPU runs the agent (profiler only, sampling pid alone so that the
// rest of the machine adds nothing) and returns the percentage of a core
// it used during window, after warm.
func agentCPU(b *testing.B, bin string, pid int, python bool, warm, window time.Duration) float64 {
	b.Helper()
	cfg := writeConfig(b, fmt.Sprintf("latency:\n  enabled: false\nprofiler:\n  pids: [%d]\n  python: %v\n", pid, python))
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	time.Sleep(warm)
	before := cpuSeconds(b, cmd.Process.Pid)
	time.Sleep(window)
	after := cpuSeconds(b, cmd.Process.Pid)
	return (after - before) / window.Seconds() * 100
}
