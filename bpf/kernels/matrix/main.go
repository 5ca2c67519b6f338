// Command matrix boots Debian kernels in QEMU and runs vigil's privileged
// tests inside each, then prints kernel × hook → strategy and pass/fail.
// Run it from the module root as root (make test-kernels).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type config struct {
	cache      string
	kernels    []string
	suites     []string
	modules    []string
	tools      []string
	expect     string
	jobTimeout time.Duration
	bootBudget time.Duration
	vmTimeout  time.Duration
	memoryMB   int
	cpus       int
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	var cfg config
	var kernelList, suiteList, moduleList, toolList string
	fs.StringVar(&cfg.cache, "cache", ".cache/kernels", "directory for downloaded kernels, built images and logs")
	fs.StringVar(&kernelList, "kernels", "linux-image-cloud-amd64,linux-image-6.12-cloud-amd64,bullseye:linux-image-cloud-amd64",
		"comma-separated Debian kernel packages, optionally suite:package (meta-packages resolve to their current version);\n"+
			"the default is Debian 12's 6.1 and 6.12 and Debian 11's 5.10, the oldest the mirror still has")
	fs.StringVar(&suiteList, "suites", "", "comma-separated test packages to run (default: every bpf/ package with tests)")
	fs.StringVar(&moduleList, "modules", "null_blk,loop,veth,sch_netem",
		"comma-separated kernel modules the guest loads before the tests (block devices, netns links, delay)")
	fs.StringVar(&toolList, "tools", "ip,losetup",
		"comma-separated host programs copied into the guest with their libraries, for the tests' workloads")
	fs.StringVar(&cfg.expect, "expect", "bpf/kernels/expect.txt",
		"file of the fallback order each hook must show per kernel release prefix (empty: no check)")
	fs.DurationVar(&cfg.jobTimeout, "job-timeout", 4*time.Minute, "time limit of each test binary inside the guest")
	fs.DurationVar(&cfg.bootBudget, "boot-timeout", 90*time.Second,
		"time the guest may take to reach its init; with KVM, a guest that does not is retried with software emulation")
	fs.DurationVar(&cfg.vmTimeout, "vm-timeout", 12*time.Minute, "time limit of each VM, boot to power-off")
	fs.IntVar(&cfg.memoryMB, "memory", 1024, "guest memory in MiB")
	fs.IntVar(&cfg.cpus, "cpus", 1, "guest CPUs (each one more host thread under emulation)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.kernels, cfg.suites, cfg.modules = split(kernelList), split(suiteList), split(moduleList)
	cfg.tools = split(toolList)

	if cfg.jobTimeout < 30*time.Second {
		return cfg, fmt.Errorf("-job-timeout %s: must be at least 30s", cfg.jobTimeout)
	}
	if len(cfg.kernels) == 0 {
		return cfg, errors.New("-kernels: no kernel given")
	}
	return cfg, nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// timings collects every step's duration for the summary under the table:
// they decide whether the matrix fits in CI.
var timings []string

// stopwatch logs how long a step took and records it for the summary.
func stopwatch(what string, attrs ...any) func() {
	start := time.Now()
	return func() {
		secs := time.Since(start).Seconds()
		slog.Info("done", append([]any{"component", "matrix", "step", what, "seconds", fmt.Sprintf("%.1f", secs)}, attrs...)...)
		label := what
		for i := 1; i < len(attrs); i += 2 {
			label += fmt.Sprintf(" %v", attrs[i])
		}
		timings = append(timings, fmt.Sprintf("%s: %.1fs", label, secs))
	}
}
