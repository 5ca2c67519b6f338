package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/kernels"
)

const probePkg = "./bpf/kernels/probe"

func run(ctx context.Context, cfg config) (failed bool, err error) {
	cache, err := filepath.Abs(cfg.cache)
	if err != nil {
		return false, err
	}
	for _, d := range []string{"build", "images", "logs"} {
		if err := os.MkdirAll(filepath.Join(cache, d), 0o755); err != nil {
			return false, fmt.Errorf("creating cache: %w", err)
		}
	}
	exps, err := loadExpectations(cfg.expect)
	if err != nil {
		return false, err
	}
	release, err := lockCache(cache)
	if err != nil {
		return false, err
	}
	defer release()
	accel, why := kernels.DetectAccel()
	slog.Info("accelerator", "component", "matrix", "accel", accel, "reason", why)

	ks, fetchFailures := fetchAll(ctx, cache, cfg.kernels)
	if len(ks) == 0 {
		return false, fmt.Errorf("no kernel could be fetched: %w", errors.Join(fetchFailures...))
	}
	jobs, workloads, buildFailures, err := buildJobs(ctx, cfg, cache)
	if err != nil {
		return false, err
	}
	var runs []kernels.Run
	for _, err := range fetchFailures {
		runs = append(runs, kernels.Run{Kernel: "(not fetched)", Err: err})
	}
	for _, k := range ks {
		r := runKernel(ctx, cfg, cache, &accel, k, jobs, workloads)
		runs = append(runs, r)
	}
	fmt.Println()
	kernels.PrintTable(os.Stdout, runs)
	fmt.Printf("\ndurations (%s):\n  %s\n", accel, strings.Join(timings, "\n  "))
	for name, err := range buildFailures {
		fmt.Printf("build of %s failed: %v\n", name, err)
	}
	failed = len(buildFailures) > 0
	for _, r := range runs {
		failed = failed || r.Failed()
		mm, applied := kernels.Check(r, exps)
		if !applied && len(exps) > 0 {
			fmt.Printf("%s: no expectations for this kernel in %s\n", r.Kernel, cfg.expect)
		}
		for _, m := range mm {
			fmt.Printf("%s: %s\n", r.Kernel, m)
			failed = true
		}
	}
	return failed, nil
}

// fetchAll fetches every kernel it can; one that fails (a suite gone from
// the mirror, say) is reported without keeping the others from running.
func fetchAll(ctx context.Context, cache string, names []string) ([]kernels.Kernel, []error) {
	defer stopwatch("fetch kernels")()
	var ks []kernels.Kernel
	var errs []error
	for _, n := range names {
		k, err := kernels.Fetch(ctx, cache, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ks = append(ks, k)
	}
	return ks, errs
}

// buildJobs compiles the probe, every suite's tests and the C workloads
// under their testdata. A suite that does not compile is reported and left
// out, so one package under construction does not hide the others' results.
func buildJobs(ctx context.Context, cfg config, cache string) ([]kernels.Job, []kernels.HostFile, map[string]error, error) {
	defer stopwatch("build test binaries")()
	root, err := os.Getwd()
	if err != nil {
		return nil, nil, nil, err
	}
	out := filepath.Join(cache, "build")
	suites, err := kernels.DiscoverSuites(root)
	if err != nil {
		return nil, nil, nil, err
	}
	suites = kernels.FilterSuites(suites, cfg.suites)
	probe, err := kernels.BuildProgram(ctx, root, out, "probe", probePkg)
	if err != nil {
		return nil, nil, nil, err
	}
	jobs := []kernels.Job{{Name: "probe", Binary: probe, Dir: "probe", Timeout: cfg.jobTimeout}}
	var workloads []kernels.HostFile
	failures := map[string]error{}
	for _, s := range suites {
		bin, err := kernels.BuildTest(ctx, root, out, s)
		if err != nil {
			failures[s.Name] = err
			continue
		}
		w, err := kernels.BuildWorkloads(ctx, root, out, s)
		if err != nil {
			failures[s.Name] = err
			continue
		}
		jobs = append(jobs, kernels.TestJob(s, bin, cfg.jobTimeout))
		workloads = append(workloads, w...)
	}
	return jobs, workloads, failures, nil
}

// runKernel boots one kernel. When KVM fails before the guest's init runs,
// it retries with software emulation and keeps to it for later kernels.
func runKernel(ctx context.Context, cfg config, cache string, accel *string, k kernels.Kernel, jobs []kernels.Job, workloads []kernels.HostFile) kernels.Run {
	run := kernels.Run{Kernel: k.Release}
	img := filepath.Join(cache, "images", k.Release+".cpio")
	if err := buildImage(k, img, jobs, workloads, cfg); err != nil {
		run.Err = err
		return run
	}
	vm := kernels.VM{
		Kernel: k, Initramfs: img, Accel: *accel, MemoryMB: cfg.memoryMB, CPUs: cfg.cpus,
		Timeout:     min(cfg.vmTimeout, cfg.bootBudget+time.Duration(len(jobs))*cfg.jobTimeout),
		BootTimeout: cfg.bootBudget,
		ConsoleLog:  filepath.Join(cache, "logs", k.Release+".console.log"),
		ResultsLog:  filepath.Join(cache, "logs", k.Release+".results.log"),
	}
	done := stopwatch("boot and run", "kernel", k.Release, "accel", *accel)
	run.Err = vm.Run(ctx)
	done()
	if errors.Is(run.Err, kernels.ErrNoBoot) && *accel == kernels.AccelKVM {
		slog.Warn("KVM did not boot the guest; using software emulation", "component", "matrix", "kernel", k.Release)
		vm.Accel, *accel = kernels.AccelTCG, kernels.AccelTCG
		done := stopwatch("boot and run", "kernel", k.Release, "accel", vm.Accel)
		run.Err = vm.Run(ctx)
		done()
	}
	run.Result, run.Err = readResults(vm.ResultsLog, run.Err)
	if !run.Result.Done {
		run.ConsoleTail = consoleTail(vm.ConsoleLog)
	}
	return run
}

func buildImage(k kernels.Kernel, path string, jobs []kernels.Job, workloads []kernels.HostFile, cfg config) error {
	defer stopwatch("build initramfs", "kernel", k.Release)()
	mods, err := kernels.Modules(k, cfg.modules)
	if err != nil {
		return err
	}
	bb, err := kernels.StaticBusybox()
	if err != nil {
		return err
	}
	tools, err := kernels.HostTools(cfg.tools)
	if err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	trees, err := kernels.TestData(root)
	if err != nil {
		return err
	}
	return kernels.WriteInitramfs(path, kernels.Image{Busybox: bb, Jobs: jobs, Modules: mods, Trees: trees, Files: append(tools, workloads...)})
}

func readResults(path string, runErr error) (kernels.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return kernels.Result{}, fmt.Errorf("reading guest results: %w", err)
	}
	defer f.Close()
	res, err := kernels.ParseResults(f)
	if runErr != nil {
		return res, runErr
	}
	return res, err
}

func loadExpectations(path string) ([]kernels.Expectation, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading expectations: %w", err)
	}
	defer f.Close()
	exps, err := kernels.ParseExpectations(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return exps, nil
}

func consoleTail(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{"(no kernel log: " + err.Error() + ")"}
	}
	defer f.Close()
	lines, _ := kernels.TailLines(f, 25)
	return lines
}
