package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/bpf/ksyms"
	"github.com/vigil-ebpf/vigil/profiler"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

type profileFlags struct {
	duration    time.Duration
	frequency   int
	pids        pidList
	output      string
	format      string
	top         int
	includeIdle bool
	interval    time.Duration
	unwind      string
	python      bool
	offCPU      bool
	minBlock    time.Duration
	stacks      string
}

// pidList is a repeatable --pid flag.
type pidList []uint32

func (p *pidList) String() string {
	s := make([]string, len(*p))
	for i, v := range *p {
		s[i] = strconv.FormatUint(uint64(v), 10)
	}
	return strings.Join(s, ",")
}

func (p *pidList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(part), 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("%q is not a process id", part)
		}
		*p = append(*p, uint32(n))
	}
	return nil
}

func parseProfileFlags(args []string, stderr io.Writer) (*profileFlags, error) {
	f := &profileFlags{}
	fs := newFlagSet("profile", stderr)
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to sample (also -d)")
	fs.DurationVar(&f.duration, "d", 10*time.Second, "short for --duration")
	fs.IntVar(&f.frequency, "frequency", 99, "samples per second on each CPU (1-1000; also -F)")
	fs.IntVar(&f.frequency, "F", 99, "short for --frequency")
	fs.Var(&f.pids, "pid", "sample only this process and its threads (repeatable, or comma-separated; also -p)")
	fs.Var(&f.pids, "p", "short for --pid")
	fs.StringVar(&f.output, "output", "cpu.pb.gz", "file to write (also -o); '-' writes to standard output")
	fs.StringVar(&f.output, "o", "cpu.pb.gz", "short for --output")
	fs.StringVar(&f.format, "format", "pprof", "output format: pprof (gzipped protobuf) or folded (collapsed stacks)")
	fs.IntVar(&f.top, "top", 10, "print this many top functions at the end (0: none)")
	fs.BoolVar(&f.includeIdle, "include-idle", false, "also sample the idle task")
	fs.DurationVar(&f.interval, "drain-interval", 500*time.Millisecond, "how often samples are read out of the kernel")
	fs.StringVar(&f.unwind, "unwind", cpuprofile.UnwindAuto, "how user stacks are walked: auto (each binary's unwind tables where it has them, frame pointers elsewhere) or frame-pointer")
	fs.BoolVar(&f.python, "python", true, "name the Python functions of CPython 3.9-3.13 processes (needs --unwind auto)")
	fs.BoolVar(&f.offCPU, "off-cpu", false, "write an off-CPU profile instead: where threads blocked, weighted by how long (default output "+offCPUOutput+")")
	fs.DurationVar(&f.minBlock, "min-block", cpuprofile.DefaultMinBlock, "with --off-cpu: blocked intervals shorter than this are counted but get no stack")
	fs.StringVar(&f.stacks, "stacks", cpuprofile.OffCPUStacksBoth, "with --off-cpu: the stacks each interval gets: both, user (no kernel walk, about a third of the in-kernel cost) or kernel")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.offCPU && !set["output"] && !set["o"] {
		f.output = offCPUOutput
	}
	for _, name := range []string{"min-block", "stacks"} {
		if set[name] && !f.offCPU {
			return nil, usagef("--%s: only applies with --off-cpu", name)
		}
	}
	return f, f.validate()
}

// roundNanos is a time for people: to the microsecond.
func roundNanos(ns uint64) time.Duration { return time.Duration(ns).Round(time.Microsecond) }

// offCPUOutput is --output's default with --off-cpu, so an off-CPU profile
// never overwrites a CPU one by default.
const offCPUOutput = "offcpu.pb.gz"

// maxMinBlock bounds --min-block: a threshold above a minute would leave
// nothing but the counts.
const maxMinBlock = time.Minute

func (f *profileFlags) validate() error {
	switch {
	case f.duration <= 0:
		return usagef("--duration %v: must be positive", f.duration)
	case f.frequency < 1 || f.frequency > 1000:
		return usagef("--frequency %d: must be between 1 and 1000 Hz", f.frequency)
	case f.format != "pprof" && f.format != "folded":
		return usagef("--format %q: must be pprof or folded", f.format)
	case f.top < 0:
		return usagef("--top %d: must not be negative", f.top)
	case f.interval < 10*time.Millisecond || f.interval > time.Minute:
		return usagef("--drain-interval %v: must be between 10ms and 1m", f.interval)
	case f.output == "":
		return usagef("--output: must name a file or '-'")
	case f.unwind != cpuprofile.UnwindAuto && f.unwind != cpuprofile.UnwindFramePointer:
		return usagef("--unwind %q: must be %s or %s", f.unwind, cpuprofile.UnwindAuto, cpuprofile.UnwindFramePointer)
	case f.minBlock <= 0 || f.minBlock > maxMinBlock:
		return usagef("--min-block %v: must be positive and at most %v", f.minBlock, maxMinBlock)
	case f.stacks != cpuprofile.OffCPUStacksBoth && f.stacks != cpuprofile.OffCPUStacksUser && f.stacks != cpuprofile.OffCPUStacksKernel:
		return usagef("--stacks %q: must be %s, %s or %s", f.stacks, cpuprofile.OffCPUStacksBoth, cpuprofile.OffCPUStacksUser, cpuprofile.OffCPUStacksKernel)
	}
	for _, pid := range f.pids {
		if _, err := os.Stat("/proc/" + strconv.FormatUint(uint64(pid), 10)); err != nil {
			return usagef("--pid %d: no such process", pid)
		}
	}
	return nil
}

func runProfile(args []string, stdout, stderr io.Writer) error {
	f, err := parseProfileFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := checkPrivileges(); err != nil {
		return err
	}
	out, err := createOutput(f.output, stdout)
	if err != nil {
		return err
	}
	defer out.abort()

	p, err := profileOnce(f, stderr)
	if err != nil {
		return err
	}
	if err := writeProfile(out, p, f.format); err != nil {
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	report := stderr
	if f.output != "-" {
		report = stdout
	}
	if f.top > 0 {
		fmt.Fprintln(report)
		if err := profiler.WriteTop(report, p, f.top); err != nil {
			return err
		}
	}
	return nil
}

// profileOnce samples for the requested duration (or until interrupted).
func profileOnce(f *profileFlags, stderr io.Writer) (*profile.Profile, error) {
	sampler, err := cpuprofile.Open(cpuprofile.Options{
		Frequency: f.frequency, PIDs: f.pids, IncludeIdle: f.includeIdle, DrainInterval: f.interval,
		Unwind: f.unwind, NoPython: !f.python,
		// --off-cpu: the scheduler switch only, no perf events.
		OffCPU: f.offCPU, NoCPU: f.offCPU, MinBlock: f.minBlock, OffCPUStacks: f.stacks,
	})
	if err != nil {
		return nil, explainOpenError(err)
	}
	defer sampler.Close()
	// Kernel frames are named in BPF, only those the profile holds, when
	// the kernel can; else from kallsyms.
	kernelNames := ksyms.NewLazy(ksyms.Options{})
	defer kernelNames.Close()
	sym := symbolizer.New(symbolizer.Options{KernelNamer: kernelNames.Name})
	defer sym.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := newProgress(stderr, f.duration)
	progress.offCPU = f.offCPU
	s := &profiler.Session{
		Sampler: sampler, Symbols: sym, Frequency: f.frequency, Interval: f.interval,
		Progress: progress.update, OffCPU: f.offCPU, MinBlock: f.minBlock,
	}
	p, err := s.Run(ctx, f.duration)
	progress.done()
	if p == nil {
		return nil, fmt.Errorf("profiling: %w", err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil: warning: %v\n", err)
	}
	if f.offCPU {
		printOffCPUSummary(stderr, s.Stats(), f)
	} else {
		printSummary(stderr, s.Stats(), sampler.CPUs(), f)
	}
	printUnwindSummary(stderr, sampler)
	printPythonSummary(stderr, sampler, s, f.python)
	return p, nil
}

// printPythonSummary says which CPython processes were found and how many
// of their frames were named, when there were any.
func printPythonSummary(w io.Writer, p *cpuprofile.Profiler, s *profiler.Session, wanted bool) {
	r := p.PythonReport()
	st := p.PythonStats()
	if r.Chosen != cpuprofile.StrategyPythonFrames {
		if wanted && p.UnwindReport().Chosen == cpuprofile.StrategyTables {
			fmt.Fprintf(w, "vigil: python: frames not walked (%s)\n", r)
		}
		return
	}
	if len(st.Found) == 0 && st.Failed == 0 {
		return
	}
	var procs []string
	for _, v := range st.SortedFound() {
		procs = append(procs, fmt.Sprintf("%d on %s", st.Found[v], v))
	}
	fmt.Fprintf(w, "vigil: python: processes %s, %d frames recorded", strings.Join(procs, ", "), st.Frames)
	if u := countList(s.PythonUnreadable()); u != "" {
		fmt.Fprintf(w, "; unreadable: %s", u)
	}
	if st.StacksLost > 0 {
		fmt.Fprintf(w, "; stacks lost: %d", st.StacksLost)
	}
	if st.Failed > 0 {
		fmt.Fprintf(w, "; interpreters not usable: %d", st.Failed)
	}
	fmt.Fprintln(w)
}

// printUnwindSummary says how user stacks were walked and, with tables,
// how many frames each way and why walks stopped early.
func printUnwindSummary(w io.Writer, p *cpuprofile.Profiler) {
	r := p.UnwindReport()
	if r.Chosen != cpuprofile.StrategyTables {
		fmt.Fprintf(w, "vigil: user stacks: frame pointers (%s)\n", r)
		return
	}
	st := p.UnwindStats()
	fmt.Fprintf(w, "vigil: user stacks: unwind tables for %d files (%s in BPF maps, built in %v), frames: %s",
		st.TablesLoaded, humanBytes(st.TableBytes), st.BuildTime.Round(time.Millisecond), countList(st.Frames))
	if t := countList(st.Truncated); t != "" {
		fmt.Fprintf(w, "; stopped early: %s", t)
	}
	fmt.Fprintln(w)
}

// countList renders non-zero counts as "a=1 b=2", sorted by name.
func countList(m map[string]uint64) string {
	var parts []string
	for k, v := range m {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func writeProfile(w io.Writer, p *profile.Profile, format string) error {
	if format == "folded" {
		return profiler.WriteFolded(w, p)
	}
	return p.Write(w)
}

func printSummary(w io.Writer, st profiler.Stats, cpus int, f *profileFlags) {
	fmt.Fprintf(w, "vigil: %d samples from %d processes on %d CPUs at %d Hz", st.Samples, st.Processes, cpus, f.frequency)
	if st.Frames > 0 {
		fmt.Fprintf(w, "; %d frames, %d without a function name", st.Frames, st.UnnamedFrame)
	}
	fmt.Fprintln(w)
	if len(st.Lost) == 0 {
		fmt.Fprintln(w, "vigil: lost samples: none")
	} else {
		reasons := make([]string, 0, len(st.Lost))
		for r, n := range st.Lost {
			reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		}
		sort.Strings(reasons)
		fmt.Fprintf(w, "vigil: lost samples: %s\n", strings.Join(reasons, " "))
	}
	printWrote(w, f)
}

// printWrote says where the profile went and how to open it.
func printWrote(w io.Writer, f *profileFlags) {
	if f.output == "-" {
		return
	}
	hint := "go tool pprof -top " + f.output
	switch {
	case f.format == "folded" && f.offCPU:
		hint = "flamegraph.pl --countname=ns --colors=io " + f.output + " > offcpu.svg"
	case f.format == "folded":
		hint = "flamegraph.pl " + f.output + " > cpu.svg"
	}
	fmt.Fprintf(w, "vigil: wrote %s (open it with: %s)\n", f.output, hint)
}

// printOffCPUSummary says how much blocked time the profile holds and how
// much it has no stacks for: below --min-block, or lost by reason.
//
//	vigil: off-CPU: 12.5s blocked in 4210 intervals of 37 processes recorded with stacks
//	vigil: below --min-block 1µs: 1.2ms in 3100 intervals (counted only); lost: none
//	vigil: stacks reused from their threads' caches (not walked again): kernel 7200, user 6900
func printOffCPUSummary(w io.Writer, st profiler.Stats, f *profileFlags) {
	o := st.OffCPU
	fmt.Fprintf(w, "vigil: off-CPU: %v blocked in %d intervals of %d processes recorded with stacks",
		roundNanos(o.RecordedNanos), o.Recorded, st.Processes)
	if st.Frames > 0 {
		fmt.Fprintf(w, "; %d frames, %d without a function name", st.Frames, st.UnnamedFrame)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "vigil: below --min-block %v: %v in %d intervals (counted only); lost: ", f.minBlock, roundNanos(o.BelowNanos), o.Below)
	var lost []string
	for r, n := range o.Lost {
		lost = append(lost, fmt.Sprintf("%s=%v in %d intervals", r, roundNanos(o.LostNanos[r]), n))
	}
	sort.Strings(lost)
	if len(lost) == 0 {
		lost = []string{"none"}
	}
	fmt.Fprintln(w, strings.Join(lost, ", "))
	if part := countList(o.StackLost); part != "" {
		fmt.Fprintf(w, "vigil: off-CPU stacks partly lost: %s\n", part)
	}
	if o.KernelStacksReused > 0 || o.UserStacksReused > 0 {
		fmt.Fprintf(w, "vigil: stacks reused from their threads' caches (not walked again): kernel %d, user %d\n", o.KernelStacksReused, o.UserStacksReused)
	}
	printWrote(w, f)
}

// output writes to a temporary file beside the target and renames it into
// place only when everything was written, so a failed or interrupted run
// never leaves a half-written profile.
type output struct {
	io.Writer
	tmp     *os.File
	special *os.File // a non-regular file written in place
	path    string
}

func createOutput(path string, stdout io.Writer) (*output, error) {
	if path == "-" {
		return &output{Writer: stdout}, nil
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		// A device, pipe or socket (-o /dev/null, a FIFO) is written in
		// place: renaming a file over it would replace the device itself.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, usagef("--output %s: cannot write there: %v", path, errors.Unwrap(err))
		}
		return &output{Writer: f, special: f}, nil
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, usagef("--output %s: cannot write there: %v", path, errors.Unwrap(err))
	}
	return &output{Writer: tmp, tmp: tmp, path: path}, nil
}

func (o *output) commit() error {
	if o.special != nil {
		err := o.special.Close()
		o.special = nil
		return err
	}
	if o.tmp == nil {
		return nil
	}
	if err := o.tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	if err := os.Chmod(o.tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	if err := os.Rename(o.tmp.Name(), o.path); err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	o.tmp = nil
	return nil
}

func (o *output) abort() {
	if o.special != nil {
		o.special.Close()
	}
	if o.tmp != nil {
		o.tmp.Close()
		os.Remove(o.tmp.Name())
	}
}
